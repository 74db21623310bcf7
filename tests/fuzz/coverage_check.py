"""Line coverage of cmodule/ by the committed fuzz corpus, and the check on it.

`make fuzz-check` builds the loader, runtime and kernels with clang's
source-based coverage (tests/fuzz/replay.c runs the fuzz harness once per
corpus file), merges the profile, then runs this script, which

- prints, per source file of cmodule/, the lines with code, the lines the
  corpus never executed, and the functions it executed;
- fails (exit status 1), naming them, if a function of cmodule/kernels/ never
  ran or a line of cmodule/kernels/ never ran and is not excused in the
  allow-list (tests/fuzz/coverage-allow.txt), or if an allow-list entry no
  longer matches an unexecuted line.

Line counts are llvm-cov show's: a line counts as executed when any copy of it
ran (a static inline function of a header has one copy per file that includes
it). Code inside `#if MNN_DSP` is not compiled on the host, so it has no lines
here. loader.c and runtime.c are printed, not checked; modmicronn.c needs
MicroPython and is not in the build.

    python3 tests/fuzz/coverage_check.py --binary BIN --profdata PROFDATA \\
        [--allow tests/fuzz/coverage-allow.txt] [--llvm-cov llvm-cov] [--suggest]

--suggest prints an allow-list line (reason left to fill in) for every
unexecuted run of kernel lines instead of checking.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CMODULE = ROOT / "cmodule"
KERNELS = CMODULE / "kernels"

_LINE = re.compile(r"^\s*(\d+)\|\s*([0-9.]+[kMGTPE]?)?\|(.*)$")


@dataclass
class FileCov:
    path: Path
    lines: dict[int, bool] = field(default_factory=dict)    # line with code -> executed
    text: dict[int, str] = field(default_factory=dict)
    functions: dict[str, bool] = field(default_factory=dict)  # name -> executed (any copy)
    spans: list[tuple[int, int, str]] = field(default_factory=list)  # (first, last line, function)

    def function_at(self, line: int) -> str:
        best = None
        for first, last, name in self.spans:
            if first <= line <= last and (best is None or last - first < best[1] - best[0]):
                best = (first, last, name)
        return best[2] if best else "?"

    def missed_runs(self) -> list[list[int]]:
        """Unexecuted lines, in runs of consecutive code lines of one function."""
        runs: list[list[int]] = []
        prev = None
        for n in sorted(self.lines):
            if self.lines[n]:
                prev = None
                continue
            if prev is not None and runs and self.function_at(n) == self.function_at(prev):
                runs[-1].append(n)
            else:
                runs.append([n])
            prev = n
        return runs


def rel(p: Path) -> str:
    try:
        return str(p.resolve().relative_to(ROOT))
    except ValueError:
        return str(p)


def collect(llvm_cov: str, binary: str, profdata: str, files: list[Path]) -> dict[Path, FileCov]:
    cov = {f.resolve(): FileCov(f.resolve()) for f in files}
    show = subprocess.run([llvm_cov, "show", binary, f"-instr-profile={profdata}", "-show-instantiations=false",
                           "-use-color=false", *map(str, cov)], check=True, capture_output=True, text=True).stdout
    current = None
    for line in show.splitlines():
        if line.endswith(":") and Path(line[:-1]).resolve() in cov:
            current = cov[Path(line[:-1]).resolve()]
            continue
        m = _LINE.match(line)
        if current is None or not m:
            continue
        n = int(m.group(1))
        current.text[n] = m.group(3).strip()
        if m.group(2):
            current.lines[n] = m.group(2) != "0"
    export = subprocess.run([llvm_cov, "export", binary, f"-instr-profile={profdata}", "-format=text",
                             "-skip-expansions"], check=True, capture_output=True, text=True).stdout
    for fn in json.loads(export)["data"][0]["functions"]:
        home = Path(fn["filenames"][0]).resolve()
        if home not in cov:
            continue
        name = fn["name"].split(":")[-1]        # "conv.c:fill_slow" (static) -> "fill_slow"
        fc = cov[home]
        fc.functions[name] = fc.functions.get(name, False) or fn["count"] > 0
        body = [r for r in fn["regions"] if r[5] == 0 and r[7] == 0]     # code regions in its own file
        if body:
            fc.spans.append((min(r[0] for r in body), max(r[2] for r in body), name))
    return cov


@dataclass
class Allowed:
    file: str
    function: str
    line: str
    reason: str
    where: str          # allow-list line, for messages
    used: bool = False


def read_allow(path: Path) -> list[Allowed]:
    out = []
    for k, raw in enumerate(path.read_text().splitlines(), 1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        parts = [p.strip() for p in raw.split("|", 3)]
        if len(parts) != 4 or not all(parts):
            raise SystemExit(f"{rel(path)}:{k}: expected FILE | FUNCTION | LINE | REASON, got {raw!r}")
        out.append(Allowed(*parts, where=f"{rel(path)}:{k}"))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", required=True)
    ap.add_argument("--profdata", required=True)
    ap.add_argument("--allow", default=str(ROOT / "tests/fuzz/coverage-allow.txt"))
    ap.add_argument("--llvm-cov", default="llvm-cov")
    ap.add_argument("--suggest", action="store_true")
    args = ap.parse_args()

    checked = sorted(KERNELS.glob("*.c")) + sorted(KERNELS.glob("*.h"))
    shown = [CMODULE / "loader.c", CMODULE / "runtime.c"]
    cov = collect(args.llvm_cov, args.binary, args.profdata, shown + checked)
    allow = [] if args.suggest else read_allow(Path(args.allow))

    problems: list[str] = []
    excused: dict[Path, int] = {}
    suggestions: list[str] = []
    for f in checked:
        fc = cov[f.resolve()]
        for name, ran in sorted(fc.functions.items()):
            if not ran and f.suffix == ".c":
                problems.append(f"{rel(f)}: function {name} never executed")
        for run in fc.missed_runs():
            func = fc.function_at(run[0])
            hits = [a for a in allow if a.file == rel(f) and a.function == func
                    and any(fc.text.get(n) == a.line for n in run)]
            for a in hits:
                a.used = True
            if hits:
                excused[f] = excused.get(f, 0) + len(run)
                continue
            span = f"{run[0]}" if len(run) == 1 else f"{run[0]}-{run[-1]}"
            first = next((fc.text[n] for n in run if fc.text.get(n) not in ("", "}", "{")), fc.text[run[0]])
            problems.append(f"{rel(f)}:{span}: {len(run)} line(s) of {func} never executed: {first}")
            suggestions.append(f"{rel(f)} | {func} | {first} | REASON")
    for a in allow:
        if not a.used:
            problems.append(f"{a.where}: allow-list entry matches no unexecuted line "
                            f"({a.file} | {a.function} | {a.line}); delete it")

    if args.suggest:
        print("\n".join(suggestions) if suggestions else "# every kernel line is executed")
        return 0

    print(f"{'cmodule/':34} {'lines':>6} {'missed':>7} {'cover':>8}  functions executed")
    for f in shown + checked:
        fc = cov[f.resolve()]
        n = len(fc.lines)
        miss = sum(1 for v in fc.lines.values() if not v)
        funcs = f"{sum(fc.functions.values())}/{len(fc.functions)}"
        note = f"  ({excused[f]} allowed: {rel(Path(args.allow))})" if f in excused else ""
        note += "  (not checked)" if f in shown else ""
        pct = f"{100 * (n - miss) / n:.2f}%" if n else "-"
        print(f"{rel(f)[len('cmodule/'):]:34} {n:6} {miss:7} {pct:>8}  {funcs:>9}{note}")
    print(f"{'modmicronn.c':34} {'-':>6} {'-':>7} {'-':>8}  {'-':>9}  (the MicroPython binding: not in this build)")
    if problems:
        print("fuzz-check: FAILED: the committed corpus does not reach all of cmodule/kernels/, "
              "or the allow-list is stale:")
        for p in problems:
            print(f"  {p}")
        print("Add seeds (tests/fuzz/make_synthetic_corpus.py) or, for a line no blob can reach, an entry "
              f"with its reason in {rel(Path(args.allow))}.")
        return 1
    total = sum(len(cov[f.resolve()].lines) for f in checked)
    print(f"fuzz-check: every function of cmodule/kernels/*.c executed; {total - sum(excused.values())} of {total} "
          f"kernel lines executed, the other {sum(excused.values())} allowed with a reason")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
