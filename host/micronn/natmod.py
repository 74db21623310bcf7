"""micronn as a native module: micronn.mpy, which stock MicroPython firmware
imports from its filesystem (or ROMFS) with no firmware build.

The same C sources as the firmware's user C module (cmodule/: the binding,
loader, runtime and kernels), linked by MicroPython's tools/mpy_ld.py through
py/dynruntime.mk (cmodule/natmod.mk), one file per architecture:
build/natmod/micronn-ARCH.mpy. The architecture must be the firmware's
(``sys.implementation._mpy >> 10``); a wrong one, or a .mpy of another
MicroPython version, is refused by MicroPython's import.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path

from .errors import MicronnError
from .firmware import ROOT, _run, build_root, micropython_dir

# Architecture -> (the compiler it needs, the cores it serves). The armv7em builds
# have the DSP extension (__ARM_FEATURE_DSP): the kernels' DSP paths are built.
ARCHES = {
    "x64": ("gcc", "the unix port on x86-64"),
    "armv6m": ("arm-none-eabi-gcc", "Cortex-M0/M0+ (RP2040)"),
    "armv7m": ("arm-none-eabi-gcc", "Cortex-M3"),
    "armv7emsp": ("arm-none-eabi-gcc", "Cortex-M4F, M33 (single-precision FPU, DSP)"),
    "armv7emdp": ("arm-none-eabi-gcc", "Cortex-M7 (double-precision FPU, DSP)"),
    "rv32imc": ("riscv64-unknown-elf-gcc", "ESP32-C3, ESP32-C6 (RISC-V)"),
    "xtensawin": ("xtensa-esp32-elf-gcc", "ESP32, ESP32-S3 (Xtensa LX6/LX7)"),
}
# Built by `make natmod`: every architecture whose compiler Debian packages.
DEFAULT_ARCHES = ["x64", "armv6m", "armv7m", "armv7emsp", "armv7emdp", "rv32imc"]

XTENSA_HOWTO = (
    "xtensawin needs Espressif's xtensa-esp32-elf-gcc, which Debian does not package. Where it is"
    " installed (ESP-IDF: `. $IDF_PATH/export.sh` puts it on PATH), run"
    " `micronn natmod build --arch xtensawin` there")


def out_dir() -> Path:
    return build_root() / "natmod"


def mpy_file(arch: str) -> Path:
    return out_dir() / f"micronn-{arch}.mpy"


def package_file(arch: str) -> Path:
    return out_dir() / f"package-{arch}.json"


def write_package(arch: str) -> Path:
    """build/natmod/package-ARCH.json: mip's description of the package, micronn-ARCH.mpy
    installed as micronn.mpy in the board's lib folder, so that `mpremote mip install
    build/natmod/package-ARCH.json` (or the URL of a published copy of the folder) installs
    it. One per architecture: a package.json cannot pick the board's."""
    p = package_file(arch)
    p.write_text(json.dumps({"urls": [["micronn.mpy", mpy_file(arch).name]], "version": module_version()},
                            indent=1) + "\n")
    return p


def module_version() -> str:
    """MICRONN_VERSION of the binding: the native module and the firmware's are the same."""
    text = (ROOT / "cmodule" / "modmicronn.c").read_text()
    m = re.search(r'#define MICRONN_VERSION "([^"]+)"', text)
    if not m:
        raise MicronnError("cmodule/modmicronn.c: no MICRONN_VERSION")
    return m.group(1)


def build(arch: str, micropython: str | os.PathLike | None = None, jobs: int | None = None) -> Path:
    """Build build/natmod/micronn-ARCH.mpy; returns its path."""
    if arch not in ARCHES:
        raise MicronnError(f"unknown architecture {arch!r}; one of {', '.join(ARCHES)}")
    cc, _ = ARCHES[arch]
    if shutil.which(cc) is None:
        if arch == "xtensawin":
            raise MicronnError(XTENSA_HOWTO)
        raise MicronnError(f"{arch}: the compiler {cc} is missing (make setup installs it)")
    try:
        import ar  # noqa: F401  (mpy_ld.py reads libgcc with it)
        import elftools  # noqa: F401  (and the objects with this)
    except ImportError:
        raise MicronnError("MicroPython's mpy_ld.py needs pyelftools and ar: pip install -e '.[dev]'") from None
    mp = micropython_dir(micropython)
    if not (mp / "py" / "dynruntime.mk").exists() or not (mp / "tools" / "mpy_ld.py").exists():
        raise MicronnError(f"{mp}: no py/dynruntime.mk and tools/mpy_ld.py (a MicroPython source tree)")
    jobs = jobs or os.cpu_count() or 1
    work = out_dir() / arch
    work.mkdir(parents=True, exist_ok=True)
    # dynruntime.mk's rules name the Makefile in the folder they run in.
    (work / "Makefile").write_text("# written by `micronn natmod build`\ninclude $(MICRONN_DIR)/natmod.mk\n")
    _run(["make", "-C", str(mp / "mpy-cross"), f"-j{jobs}"], "building mpy-cross", work / "mpy-cross.log")
    _run(["make", "-C", str(work), f"-j{jobs}", f"ARCH={arch}", f"MPY_DIR={mp}",
          f"MICRONN_DIR={ROOT / 'cmodule'}", f"PYTHON={sys.executable}"],
         f"building micronn.mpy for {arch}", work / "build.log")
    log = (work / "build.log").read_text()
    if "warning:" in log:
        raise MicronnError(f"{arch}: the build has warnings; log: {work / 'build.log'}")
    out = mpy_file(arch)
    shutil.copyfile(work / "micronn.mpy", out)
    write_package(arch)
    return out


# The firmware board whose built-in module each architecture's .mpy is compared with
# (docs/benchmarks.md; qemu-m4's firmware is soft-float armv7em, the closest to armv7emsp).
COMPARE_BOARD = {"armv7m": "qemu-m3", "armv7emsp": "qemu-m4", "armv7emdp": "qemu-m7"}


def sizes() -> dict[str, dict]:
    """Per built architecture: the .mpy's bytes, and its code (text) and bss as mpy_ld
    linked them (build/natmod/ARCH/build.log)."""
    out = {}
    for arch in ARCHES:
        f = mpy_file(arch)
        log = out_dir() / arch / "build.log"
        if not f.exists() or not log.exists():
            continue
        text = log.read_text()
        m, b = re.search(r"text size:\s+(\d+)", text), re.search(r"bss size:\s+(\d+)", text)
        out[arch] = {"file": f.stat().st_size, "text": int(m.group(1)) if m else None,
                     "bss": int(b.group(1)) if b else None}
    return out


def size_table(built_in: dict[str, int]) -> list[str]:
    """Markdown lines: each architecture's micronn.mpy beside the built-in module's code
    (built_in: board -> the module's code bytes in that board's firmware)."""
    lines = ["| architecture | cores | micronn.mpy bytes | code (text) | bss | built-in module's code |",
             "|---|---|---:|---:|---:|---:|"]
    for arch, s in sizes().items():
        board = COMPARE_BOARD.get(arch)
        ref = f"{built_in[board]:,} ({board})" if board in built_in else "-"
        lines.append(f"| {arch} | {ARCHES[arch][1]} | {s['file']:,} | {s['text'] or 0:,} | {s['bss'] or 0:,} | {ref} |")
    return lines
