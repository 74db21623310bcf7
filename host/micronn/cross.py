"""Compile the micronn C module with each board family's cross compiler.

Two uses: the compile check in ``make test`` (every source warning-free with
``-Wall -Wextra -Werror`` and the real ports' extra warnings, for each core's
exact flags), and the module's code size and struct sizes for a core, which
``micronn inspect --board`` needs (cached in ``$MICRONN_BUILD/codesize/``).

The plain-C core (loader, runtime, kernels) compiles on its own. The binding
(modmicronn.c) needs MicroPython's py/ headers: it is compiled against the
MicroPython source with a small port configuration (tools/compile-check/) and a
qstr header generated from the names it uses; MicroPython's own headers are
included as system headers so that only micronn's code is held to -Wextra.

    python -m micronn.cross [--family F ...] [--extra FILE.c ...] [--list]
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .errors import MicronnError

ROOT = Path(__file__).resolve().parents[2]
CMODULE = ROOT / "cmodule"
PORT_CONFIG = ROOT / "tools" / "compile-check"

# The warnings every family is checked with: -Wall -Wextra -Werror, plus the
# ones MicroPython's stm32, qemu and unix ports add to their own -Werror build.
WARNINGS = ["-Wall", "-Wextra", "-Werror", "-Wpointer-arith", "-Wdouble-promotion", "-Wfloat-conversion"]

_ARM = ["-mthumb"]
# name: compiler, flags (exactly the port's for that core), -O levels as the
# port builds the module (stm32: -Os, kernels -O2 from micropython.mk; ESP-IDF:
# -O2 for everything with CONFIG_COMPILER_OPTIMIZATION_PERF), which boards.
FAMILIES: dict[str, dict] = {
    "cortex-m4f": {
        "prefix": "arm-none-eabi-",
        "flags": _ARM + ["-mtune=cortex-m4", "-mcpu=cortex-m4", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard",
                         "-mfp16-format=ieee"],
        "opt": "-Os", "kernel_opt": "-O2", "dsp": True, "real": True,
        "what": "STM32F4/L4 (NUCLEO_F446RE, B_L475E_IOT01A): Cortex-M4F, DSP extension",
    },
    "cortex-m7": {
        "prefix": "arm-none-eabi-",
        "flags": _ARM + ["-mtune=cortex-m7", "-mcpu=cortex-m7", "-mfpu=fpv5-d16", "-mfloat-abi=hard",
                         "-mfp16-format=ieee"],
        "opt": "-Os", "kernel_opt": "-O2", "dsp": True, "real": True,
        "what": "STM32H7 (NUCLEO_H743ZI): Cortex-M7, double-precision FPU, DSP extension",
    },
    "rv32imc": {
        "prefix": "riscv64-unknown-elf-",
        "flags": ["-march=rv32imc_zicsr_zifencei", "-mabi=ilp32", "--specs=picolibc.specs"],
        "opt": "-O2", "kernel_opt": "-O2", "dsp": False, "real": True,
        "what": "ESP32-C3: RISC-V rv32imc (ESP-IDF's -march)",
    },
    "xtensa": {
        "prefix": "xtensa-lx106-elf-",
        "flags": ["-mlongcalls"],
        "opt": "-O2", "kernel_opt": "-O2", "dsp": False, "real": True,
        "what": "ESP32/ESP32-S3 portability check with Debian's Xtensa lx106 gcc (ESP-IDF uses xtensa-esp32-elf)",
    },
    # The QEMU boards' cores (their firmware is built with soft float).
    "cortex-m3": {
        "prefix": "arm-none-eabi-", "flags": _ARM + ["-mcpu=cortex-m3", "-mfloat-abi=soft"],
        "opt": "-Os", "kernel_opt": "-O2", "dsp": False, "real": False, "what": "qemu-m3",
    },
    "cortex-m4": {
        "prefix": "arm-none-eabi-", "flags": _ARM + ["-mcpu=cortex-m4", "-mfloat-abi=soft"],
        "opt": "-Os", "kernel_opt": "-O2", "dsp": True, "real": False, "what": "qemu-m4, qemu-stm32f405",
    },
    "cortex-m7-soft": {
        "prefix": "arm-none-eabi-", "flags": _ARM + ["-mcpu=cortex-m7", "-mfloat-abi=soft"],
        "opt": "-Os", "kernel_opt": "-O2", "dsp": True, "real": False, "what": "qemu-m7",
    },
    "rv32imac": {
        "prefix": "riscv64-unknown-elf-",
        "flags": ["-march=rv32imac", "-mabi=ilp32", "-misa-spec=2.2", "--specs=picolibc.specs"],
        "opt": "-Os", "kernel_opt": "-O2", "dsp": False, "real": False, "what": "qemu-rv32",
    },
    "x86-64": {
        "prefix": "", "flags": [], "opt": "-Os", "kernel_opt": "-O2", "dsp": False, "real": False,
        "what": "unix port (host gcc)",
    },
}

REAL_FAMILIES = [f for f, d in FAMILIES.items() if d["real"]]


def family(name: str) -> dict:
    if name not in FAMILIES:
        raise MicronnError(f"unknown compiler family {name!r} (known: {', '.join(FAMILIES)})")
    return FAMILIES[name]


def compiler(name: str) -> str | None:
    """The family's gcc if it is installed."""
    f = family(name)
    return shutil.which(f["prefix"] + "gcc")


def core_sources() -> list[Path]:
    """The plain-C sources: no MicroPython headers."""
    return [CMODULE / "loader.c", CMODULE / "runtime.c"] + sorted((CMODULE / "kernels").glob("*.c"))


def _micropython() -> Path | None:
    """MicroPython source for py/*.h: $MICROPY_DIR, else the cached tree (not fetched here)."""
    from .firmware import DEFAULT_MICROPY

    for d in (os.environ.get("MICROPY_DIR"), DEFAULT_MICROPY):
        if d and (Path(d) / "py" / "makeqstrdata.py").exists():
            return Path(d)
    return None


def _genhdr(mp: Path, out: Path, sources: list[Path]) -> Path:
    """genhdr/ for compiling the binding: the qstrs it names, no root pointers or modules."""
    gen = out / "genhdr"
    gen.mkdir(parents=True, exist_ok=True)
    names = set()
    for s in sources:
        names.update(re.findall(r"MP_QSTR_(\w+)", s.read_text()))
    q = out / "qstrs.txt"
    q.write_text("QCFG(BYTES_IN_LEN, (1))\nQCFG(BYTES_IN_HASH, (1))\n"
                 + "".join(f"Q({n})\n" for n in sorted(names)))
    p = subprocess.run([sys.executable, str(mp / "py" / "makeqstrdata.py"), str(q)], capture_output=True, text=True)
    if p.returncode != 0:
        raise MicronnError(f"generating qstrs for the compile check failed:\n{p.stderr}")
    (gen / "qstrdefs.generated.h").write_text(p.stdout)
    for h in ("root_pointers.h", "moduledefs.h"):
        (gen / h).write_text("")
    return out


def _flags(fam: dict, src: Path, binding_inc: list[str]) -> list[str]:
    opt = fam["kernel_opt"] if src.parent.name == "kernels" else fam["opt"]
    inc = [f"-I{CMODULE}", f"-I{CMODULE / 'kernels'}"] + (binding_inc if src.name.startswith("mod") else [])
    return fam["flags"] + ["-std=gnu99", opt, "-ffunction-sections", "-fdata-sections", "-fno-common"] \
        + WARNINGS + inc


def compile_family(name: str, out: Path, extra: list[Path] = (), binding: bool = True) -> dict:
    """Compile every module source (and ``extra`` files) for a family into ``out``.

    Returns {"family", "compiler", "ok", "files": {name: {"ok", "bytes", "log"}},
    "binding": compiled or the reason not, "dsp": __ARM_FEATURE_DSP defined}."""
    fam = family(name)
    cc = compiler(name)
    if cc is None:
        raise MicronnError(f"{fam['prefix']}gcc is not installed (tools/setup-apt.sh installs it)")
    out.mkdir(parents=True, exist_ok=True)
    sources = core_sources()
    binding_inc: list[str] = []
    binding_note = "compiled against MicroPython's py/ headers (tools/compile-check/mpconfigport.h)"
    mp = _micropython() if binding else None
    if mp is not None:
        mods = [CMODULE / "modmicronn.c"]
        gen = _genhdr(mp, out / "mp", mods)
        binding_inc = [f"-isystem{PORT_CONFIG}", f"-isystem{gen}", f"-isystem{mp}"]
        sources = sources + mods
    else:
        binding_note = "not compiled: no MicroPython source (run make setup or set MICROPY_DIR)"
    sources = sources + [Path(e).resolve() for e in extra]
    files = {}
    for src in sources:
        obj = out / (src.stem + ".o")
        cmd = [cc, *_flags(fam, src, binding_inc), "-c", str(src), "-o", str(obj)]
        p = subprocess.run(cmd, capture_output=True, text=True)
        ok = p.returncode == 0 and not p.stderr.strip()
        files[src.name] = {"ok": ok, "log": (p.stdout + p.stderr).strip(), "object": str(obj) if ok else None,
                           "command": " ".join(cmd)}
    sizes = _object_sizes(fam, [f["object"] for f in files.values() if f["object"]])
    for f in files.values():
        f["bytes"] = sizes.get(f["object"]) if f["object"] else None
    return {"family": name, "compiler": cc, "flags": fam["flags"], "ok": all(f["ok"] for f in files.values()),
            "files": files, "binding": binding_note, "dsp": _defines(cc, fam, "__ARM_FEATURE_DSP")}


def _object_sizes(fam: dict, objects: list[str]) -> dict[str, int]:
    """text + data of each object (what it adds to flash), from the family's `size`."""
    if not objects:
        return {}
    tool = shutil.which(fam["prefix"] + "size")
    p = subprocess.run([tool, *objects], capture_output=True, text=True)
    if p.returncode != 0:
        raise MicronnError(f"size failed: {p.stderr.strip()}")
    sizes = {}
    for line in p.stdout.splitlines()[1:]:
        f = line.split()
        sizes[f[5]] = int(f[0]) + int(f[1])
    return sizes


def _defines(cc: str, fam: dict, macro: str) -> bool:
    p = subprocess.run([cc, *fam["flags"], "-dM", "-E", "-x", "c", os.devnull], capture_output=True, text=True)
    return f"#define {macro} " in p.stdout


def _struct_sizes(name: str, out: Path, binding_inc: list[str]) -> dict[str, int]:
    """sizeof the model object and one op record on the family's core (as nm reports arrays of that size)."""
    fam = family(name)
    cc = compiler(name)
    probe = out / "sizes_probe.c"
    probe.write_text('#include "modmicronn.c"\n'
                     "char micronn_probe_model[sizeof(micronn_model_obj_t)];\n"
                     "char micronn_probe_op[sizeof(mnn_op_t)];\n")
    obj = out / "sizes_probe.o"
    p = subprocess.run([cc, *fam["flags"], "-std=gnu99", "-Os", "-fno-common", f"-I{CMODULE}", *binding_inc,
                        "-c", str(probe), "-o", str(obj)], capture_output=True, text=True)
    if p.returncode != 0:
        raise MicronnError(f"measuring struct sizes for {name} failed:\n{p.stderr.strip()}")
    nm = subprocess.run([shutil.which(fam["prefix"] + "nm"), "-S", str(obj)], capture_output=True, text=True).stdout
    found = {}
    for line in nm.splitlines():
        f = line.split()
        if len(f) == 4 and f[3].startswith("micronn_probe_"):
            found[f[3][len("micronn_probe_"):]] = int(f[1], 16)
    return {"model_object": found["model"], "op_record": found["op"]}


def _cache_key(name: str) -> str:
    h = hashlib.sha256()
    fam = family(name)
    h.update(json.dumps(fam, sort_keys=True).encode() + " ".join(WARNINGS).encode())
    h.update(str(compiler(name)).encode())
    for f in sorted(CMODULE.rglob("*")) + sorted(PORT_CONFIG.glob("*")):
        if f.is_file():
            h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()


def module_sizes(name: str) -> dict:
    """The module's flash cost and struct sizes on a family's core, measured with its
    cross compiler and cached in $MICRONN_BUILD/codesize/FAMILY.json:
    {"code": text+data bytes of all objects, "model_object", "op_record", "files": {...}}.
    Raises MicronnError if the compiler or MicroPython's headers are missing."""
    from .firmware import build_root

    cache = build_root() / "codesize" / f"{name}.json"
    key = _cache_key(name)
    if cache.exists():
        try:
            data = json.loads(cache.read_text())
            if data.get("key") == key:
                return data
        except ValueError:
            pass
    if _micropython() is None:
        raise MicronnError("measuring the module needs MicroPython's source (make setup, or MICROPY_DIR)")
    with tempfile.TemporaryDirectory(prefix=f"micronn-size-{name}-") as tmp:
        r = compile_family(name, Path(tmp))
        if not r["ok"]:
            bad = [n for n, f in r["files"].items() if not f["ok"]]
            raise MicronnError(f"the module does not compile for {name}: {', '.join(bad)}")
        binding_inc = [f"-isystem{PORT_CONFIG}", f"-isystem{Path(tmp) / 'mp'}", f"-isystem{_micropython()}"]
        data = {"key": key, "family": name, "compiler": r["compiler"],
                "code": sum(f["bytes"] for f in r["files"].values()),
                "files": {n: f["bytes"] for n, f in r["files"].items()},
                **_struct_sizes(name, Path(tmp), binding_inc)}
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmpfile = cache.with_suffix(f".{os.getpid()}.tmp")
    tmpfile.write_text(json.dumps(data, indent=1))
    tmpfile.replace(cache)
    return data


def check(families: list[str] | None = None, extra: list[Path] = (), out: Path | None = None,
          verbose: bool = False) -> bool:
    """The compile check: print one line per family (and every failing file's messages); True if all pass."""
    families = families or REAL_FAMILIES
    ok = True
    with tempfile.TemporaryDirectory(prefix="micronn-compile-check-") as tmp:
        base = Path(out) if out else Path(tmp)
        for name in families:
            fam = family(name)
            r = compile_family(name, base / name, extra=extra)
            total = sum(f["bytes"] or 0 for f in r["files"].values())
            bad = [n for n, f in r["files"].items() if not f["ok"]]
            state = "ok" if r["ok"] else f"FAILED ({', '.join(bad)})"
            print(f"{name:<11} {Path(r['compiler']).name:<27} {len(r['files']):>2} files  "
                  f"{total:>7,} B code  DSP {'yes' if r['dsp'] else 'no ':<3}  {state}")
            if verbose:
                print(f"            {fam['what']}\n            flags: {' '.join(fam['flags'])} {' '.join(WARNINGS)}")
            if r["dsp"] != fam["dsp"]:
                print(f"            __ARM_FEATURE_DSP is {'set' if r['dsp'] else 'not set'} but the family "
                      f"{'has' if fam['dsp'] else 'lacks'} the DSP extension")
                ok = False
            for n in bad:
                print(f"--- {name}: {n}\n{r['files'][n]['command']}\n{r['files'][n]['log']}")
            ok = ok and r["ok"]
        print(f"binding (modmicronn.c): {r['binding']}")
    return ok


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="compile-check",
                                description="compile micronn's C module warning-free for each board family")
    p.add_argument("--family", action="append", help=f"one of {', '.join(FAMILIES)} "
                   f"(default: the real boards' {', '.join(REAL_FAMILIES)})")
    p.add_argument("--extra", action="append", default=[], help="also compile this C file with the same flags")
    p.add_argument("-v", "--verbose", action="store_true", help="print each family's flags")
    a = p.parse_args(argv)
    try:
        ok = check(a.family, [Path(e) for e in a.extra], verbose=a.verbose)
    except MicronnError as e:
        print(f"compile-check: error: {e}", file=sys.stderr)
        return 1
    print("compile check: " + ("all families compile warning-free" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
