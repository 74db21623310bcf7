"""How big the module of `micronn firmware build --ops-from` would be, without building it.

The figures come from each core's cross compiler (cross.py's flags), measured
once and kept in boards/opsizes.json (``python -m micronn.opsizes --write``
measures them again; tests/test_fit_ops.py checks that the file still matches
what the compiler gives for today's sources). For one op set the module is
compiled as the firmware build compiles it (``mnn_ops_config.h`` of opset.py,
-DMNN_OPS_CONFIG), then linked on its own (``ld -r --gc-sections`` from the
binding's module object, as the firmware's link drops what nothing reaches):
what stays is its flash cost, code (.text), constants (.rodata) and .data.

The table holds, per family, the input sections (object:section, bytes) of the
module with no op at all ("base") and, per op code and per fallback variant,
those its own build adds or grows. An op set's estimate is the base, plus every
added section once (kernels shared by two ops count once), plus each op's
growth of the shared functions (the loader's checks and bindings, the
runtime's dispatch: one ``case`` each). Linker padding and literal pools placed
apart are what it leaves out: tests/test_fit_ops.py compares it with the module
a real --ops-from firmware links. Measuring needs the family's cross compiler,
MicroPython's source (the binding's headers) and pyelftools (the dev extra);
estimating needs only the table.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from . import cross, opset
from . import format as fmt
from .errors import MicronnError

TABLE = cross.ROOT / "boards" / "opsizes.json"
ROOT_SYMBOL = "micronn_user_cmodule"        # the binding's module object: the firmware reaches all from it
CORE = ("loader.c", "runtime.c", "modmicronn.c")     # what the op list changes (the kernels: only the variants)


def _sections(obj: Path) -> dict[str, tuple[int, list[bytes]]]:
    """An object's sections that take flash (code, constants, data): name -> (bytes, and for
    merged string sections the strings, which the final link keeps once each)."""
    from elftools.elf.constants import SH_FLAGS
    from elftools.elf.elffile import ELFFile

    out = {}
    with open(obj, "rb") as f:
        for sec in ELFFile(f).iter_sections():
            flags = sec["sh_flags"]
            if not flags & SH_FLAGS.SHF_ALLOC or sec["sh_type"] == "SHT_NOBITS" or not sec["sh_size"]:
                continue
            strings = []
            if flags & SH_FLAGS.SHF_MERGE and flags & SH_FLAGS.SHF_STRINGS and sec["sh_entsize"] == 1:
                strings = [s + b"\0" for s in sec.data().split(b"\0")[:-1]]
            out[sec.name] = (sec["sh_size"], strings)
    return out


class Measurer:
    """Compiles the module for one family into a scratch folder and measures op sets:
    the kernels once per variant setting, the loader, runtime and binding per op set."""

    def __init__(self, family: str, tmp: Path):
        self.name = family
        self.fam = cross.family(family)
        self.cc = cross.compiler(family)
        if self.cc is None:
            raise MicronnError(f"{self.fam['prefix']}gcc is not installed (tools/setup-apt.sh installs it)")
        mp = cross._micropython()
        if mp is None:
            raise MicronnError("measuring the module needs MicroPython's source (make setup, or MICROPY_DIR)")
        self.tmp = tmp
        mod = cross.CMODULE / "modmicronn.c"
        gen = cross._genhdr(mp, tmp / "mp", [mod])
        self.binding_inc = [f"-isystem{cross.PORT_CONFIG}", f"-isystem{gen}", f"-isystem{mp}"]
        self._kernels: dict[bool, list[Path]] = {}
        self._cache: dict[tuple, dict[str, int]] = {}

    def _compile(self, srcs: list[Path], ops, out: Path) -> list[Path]:
        out.mkdir(parents=True, exist_ok=True)
        opset.write_config(out, ops)
        objs = []
        for src in srcs:
            flags = [f for f in cross._flags(self.fam, src, self.binding_inc) if f != "-Werror"]
            obj = out / (src.stem + ".o")
            p = subprocess.run([self.cc, *flags, "-DMNN_OPS_CONFIG", f"-I{out}", "-c", str(src), "-o", str(obj)],
                               capture_output=True, text=True)
            if p.returncode != 0:
                raise MicronnError(f"{src.name} does not compile for {self.name}:\n{p.stderr.strip()}")
            objs.append(obj)
        return objs

    def kernels(self, variants: bool) -> list[Path]:
        if variants not in self._kernels:
            srcs = sorted((cross.CMODULE / "kernels").glob("*.c"))
            ops = list(fmt.OPCODES) + (list(opset.FALLBACKS) if variants else [])
            self._kernels[variants] = self._compile(srcs, ops, self.tmp / f"kernels-{int(variants)}")
        return self._kernels[variants]

    def sections(self, ops) -> dict[str, int]:
        """The module's kept input sections ("object:section" -> bytes) built for ``ops``."""
        key = tuple(sorted(set(ops)))
        if key in self._cache:
            return self._cache[key]
        variants = any(o in opset.FALLBACKS for o in key)
        out = self.tmp / f"core-{len(self._cache)}"
        objs = self._compile([cross.CMODULE / c for c in CORE], key, out) + self.kernels(variants)
        flags = [f for f in self.fam["flags"] if not f.startswith("--specs")]     # no C library's link script
        p = subprocess.run([self.cc, *flags, "-nostdlib", "-Wl,-r", "-Wl,--gc-sections",
                            "-Wl,--print-gc-sections", f"-Wl,-u,{ROOT_SYMBOL}", "-o", str(out / "module.o"),
                            *map(str, objs)], capture_output=True, text=True)
        if p.returncode != 0:
            raise MicronnError(f"linking the module for {self.name} failed:\n{p.stderr.strip()}")
        removed = set()
        for line in p.stderr.splitlines():
            # ld: removing unused section '.text.foo' in file '/path/x.o'
            if "removing unused section" in line:
                parts = line.split("'")
                removed.add(f"{Path(parts[3]).name}:{parts[1]}")
        kept = {}
        for obj in objs:
            for sec, (n, strings) in _sections(obj).items():
                k = f"{obj.name}:{sec}"
                if k in removed:
                    continue
                if strings:         # the link keeps each string once, whichever section it came in
                    for text in strings:
                        kept[f"str:{hashlib.sha256(text).hexdigest()[:12]}"] = len(text)
                else:               # a static's ".N" suffix changes from build to build: its size tells
                    m = re.fullmatch(r"(.*\.[A-Za-z_]\w*)\.\d+", k)
                    kept[f"{m.group(1)}#{n}" if m else k] = n
        self._cache[key] = kept
        return kept


def _delta(have: dict[str, int], base: dict[str, int]) -> dict:
    """What ``have`` adds to ``base`` (sections it alone has) and grows (shared ones larger in it)."""
    add = {k: n for k, n in have.items() if k not in base}
    grow = {k: n - base[k] for k, n in have.items() if k in base and n != base[k]}
    return {"add": add, "grow": grow}


def measure_family(family: str, items=None, log=None) -> dict:
    """One family's table: every op code (or ``items``) and fallback variant, what each adds to
    the base (the module with no op) and grows of it; the base's bytes and those of its sections
    that some op grows; the full module's bytes."""
    with tempfile.TemporaryDirectory(prefix=f"micronn-opsizes-{family}-") as tmp:
        m = Measurer(family, Path(tmp))
        base = m.sections([])
        ops = {}
        for op in items if items is not None else list(fmt.OPCODES):
            if op in opset.FALLBACKS:
                continue
            ops[op] = _delta(m.sections([op]), base)
            if log:
                log(f"{family} {op}: {sum(ops[op]['add'].values()) + sum(ops[op]['grow'].values()):,} B")
        variants = {}
        for v, owner in opset.FALLBACKS.items():
            if items is not None and v not in items:
                continue
            variants[v] = {"op": owner, **_delta(m.sections([owner, v]), m.sections([owner]))}
        full = m.sections(list(fmt.OPCODES) + list(opset.FALLBACKS)) if items is None else {}
    shared = {k for part in (*ops.values(), *variants.values()) for k in part["grow"]}
    return {"compiler": Path(m.cc).name, "flags": " ".join(m.fam["flags"]), "base_bytes": sum(base.values()),
            "base": {k: n for k, n in base.items() if k in shared}, "ops": ops, "variants": variants,
            "full": sum(full.values())}


def estimate_sections(table: dict, ops) -> dict[str, int]:
    """Sections of the module for ``ops`` (op names and fallback variants) from one family's table."""
    secs = dict(table["base"])      # the base's sections that ops grow (the rest: base_bytes)
    secs["(rest of the base)"] = table["base_bytes"] - sum(table["base"].values())
    grow: dict[str, int] = {}
    parts = [table["ops"][o] for o in ops if o in table["ops"]]
    parts += [table["variants"][o] for o in ops if o in table["variants"]]
    for part in parts:
        for k, n in part["add"].items():
            secs[k] = max(secs.get(k, 0), n)
        for k, n in part["grow"].items():
            grow[k] = grow.get(k, 0) + n
    for k, n in grow.items():
        secs[k] = secs.get(k, 0) + n
    return secs


def load_table(path: Path | None = None) -> dict:
    p = Path(path) if path else TABLE
    try:
        return json.loads(p.read_text())
    except OSError:
        raise MicronnError(f"{p}: no op size table (python -m micronn.opsizes --write makes it)") from None


def estimate(family: str, ops, table: dict | None = None) -> dict:
    """The --ops-from module's flash bytes for ``ops`` on a family's core, from the table:
    {"bytes", "base", "ops", "family", "compiler", "source"}; raises MicronnError for a
    family or an op the table lacks."""
    t = (table or load_table())["families"]
    if family not in t:
        raise MicronnError(f"boards/opsizes.json has no figures for {family} (python -m micronn.opsizes "
                           f"--write --family {family})")
    fam = t[family]
    unknown = [o for o in ops if o not in fam["ops"] and o not in fam["variants"]]
    if unknown:
        raise MicronnError(f"boards/opsizes.json has no figure for {', '.join(unknown)} on {family} "
                           "(python -m micronn.opsizes --write)")
    secs = estimate_sections(fam, ops)
    return {"family": family, "ops": list(ops), "bytes": sum(secs.values()), "base": fam["base_bytes"],
            "full": fam["full"], "compiler": fam["compiler"],
            "source": f"estimated from per-op sizes measured with {fam['compiler']}, boards/opsizes.json"}


def families_of_boards() -> list[str]:
    """The compiler families of the boards that have flash limits (what fit() needs)."""
    from .firmware import boards, profile

    fams = []
    for b in boards():
        prof = profile(b)
        if prof.get("heap") is not None and prof.get("family") and prof["family"] not in fams:
            fams.append(prof["family"])
    return fams


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m micronn.opsizes",
                                description="measure the --ops-from module's per-op code sizes for each core")
    p.add_argument("--write", action="store_true", help=f"write {TABLE.relative_to(cross.ROOT)}")
    p.add_argument("--family", action="append", help="only this family (others kept from the file)")
    a = p.parse_args(argv)
    try:
        fams = a.family or families_of_boards()
        data = json.loads(TABLE.read_text()) if TABLE.exists() else {}
        data.setdefault("families", {})
        data["note"] = ("Generated by `python -m micronn.opsizes --write` (host/micronn/opsizes.py): the micronn "
                        "module's input sections kept for no op (base) and what each op code and fallback variant "
                        "adds, per compiler family. Do not edit.")
        for f in fams:
            data["families"][f] = measure_family(f, log=lambda s: print(s, file=sys.stderr))
            print(f"{f}: base {data['families'][f]['base_bytes']:,} B, full {data['families'][f]['full']:,} B",
                  file=sys.stderr)
            text = json.dumps({"note": data["note"], "families": dict(sorted(data["families"].items()))},
                              indent=1) + "\n"
            if a.write:         # after each family: a long run that stops keeps what it measured
                TABLE.write_text(text)
        if not a.write:
            sys.stdout.write(text)
    except MicronnError as e:
        print(f"opsizes: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
