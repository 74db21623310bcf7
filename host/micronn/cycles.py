"""Cycle estimates for Cortex-M4 and Cortex-M7 boards from a QEMU TCG plugin.

QEMU counts instructions, not cycles. tools/qemu-plugin/mnn_cycles.c, loaded
with ``-plugin``, decodes every Thumb instruction QEMU translates into a cost
class and adds the core's documented timings (Cortex-M4 TRM table 3-1; the M7's
dual issue approximated): docs/benchmarks.md, "Estimated cycles". Besides totals
it writes an event line each time the guest executes a marked address: the
instruction and cycle counts at that moment. ``micronn bench --cycles`` marks the
firmware's tick counter (mp_hal_ticks_cpu) and the module's op loop (mnn_run),
so every stretch the bench already times by ticks is also timed in cycles.

The plugin is built on demand with the host's C compiler into
build/plugin/mnn_cycles-HASH.so, one file per version of its source.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import subprocess
from pathlib import Path

from .errors import MicronnError

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "tools" / "qemu-plugin" / "mnn_cycles.c"
CORES = {"cortex-m4": "m4", "cortex-m7": "m7"}
# What the estimate leaves out, printed with every figure in milliseconds.
WAIT_STATES_NOTE = "zero wait states; flash wait states add to this"


def compiler() -> str | None:
    """The host C compiler the plugin is built with ($CC, gcc or cc), or None."""
    for cc in (os.environ.get("CC"), "gcc", "cc"):
        if cc and shutil.which(cc):
            return cc
    return None


def build_plugin() -> Path:
    """The plugin's shared object, compiled if this version of its source has no build yet."""
    from .firmware import build_root

    if not SOURCE.exists():
        raise MicronnError(f"{SOURCE} is missing: cycle estimates need micronn's source checkout")
    src = SOURCE.read_bytes()
    so = build_root() / "plugin" / f"mnn_cycles-{hashlib.sha256(src).hexdigest()[:12]}.so"
    if so.exists():
        return so
    cc = compiler()
    if cc is None:
        raise MicronnError("cycle estimates need a C compiler for the QEMU plugin (gcc or cc; or set CC)")
    so.parent.mkdir(parents=True, exist_ok=True)
    tmp = so.with_suffix(f".{os.getpid()}.tmp")
    cmd = [cc, "-std=c99", "-O2", "-Wall", "-Wextra", "-shared", "-fPIC", "-fvisibility=hidden",
           "-o", str(tmp), str(SOURCE)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise MicronnError(f"building the QEMU plugin failed: {' '.join(cmd)}\n{r.stderr.strip()}")
    os.replace(tmp, so)         # atomic: a concurrent build never leaves half a file
    for old in so.parent.glob("mnn_cycles-*.so"):
        if old != so:
            old.unlink(missing_ok=True)     # builds of earlier sources
    return so


def core_model(board: str) -> str:
    """The plugin's timing model (m4, m7) for a QEMU board; an error for cores it does not model."""
    from .firmware import profile

    prof = profile(board)
    model = CORES.get(prof.get("core"))
    if prof.get("port") != "qemu" or model is None:
        raise MicronnError(f"cycle estimates model the Cortex-M4 and Cortex-M7 (qemu-m4, qemu-m7); {board} is "
                           f"{'a ' + prof['core'] if prof.get('core') else 'not such a board'}")
    return model


def elf_symbols(path: Path, names: list[str]) -> dict[str, int]:
    """Addresses of the named functions in a 32-bit little-endian ELF file
    (the Thumb bit cleared): the plugin's marks."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise MicronnError(f"{path}: {e.strerror}") from None
    if data[:4] != b"\x7fELF" or data[4] != 1 or data[5] != 1:
        raise MicronnError(f"{path}: not a 32-bit little-endian ELF file")
    shoff, = struct.unpack_from("<I", data, 0x20)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x2e)
    sections = [struct.unpack_from("<IIIIIIIIII", data, shoff + i * shentsize) for i in range(shnum)]
    found: dict[str, int] = {}
    for sh in sections:
        if sh[1] != 2:                  # SHT_SYMTAB
            continue
        strtab = sections[sh[6]]
        for off in range(sh[4], sh[4] + sh[5], 16):
            name_off, value, _size, info, _other, _shndx = struct.unpack_from("<IIIBBH", data, off)
            if info & 15 != 2:          # STT_FUNC
                continue
            start = strtab[4] + name_off
            name = data[start:data.index(b"\0", start)].decode(errors="replace")
            if name in names:
                found[name] = value & ~1
    missing = [n for n in names if n not in found]
    if missing:
        raise MicronnError(f"{path}: no function {', '.join(missing)} (firmware built without symbols?)")
    return found


def plugin_args(board: str, out: Path, marks: list[int]) -> list[str]:
    """The QEMU arguments that load the plugin for ``board``, writing to ``out``."""
    opts = [f"core={core_model(board)}", f"out={out}"] + [f"mark={a:#x}" for a in marks]
    if any("," in o for o in opts):
        raise MicronnError(f"{out}: a path with a comma cannot be passed to a QEMU plugin")
    return ["-plugin", ",".join([str(build_plugin()), *opts])]


def read_events(path: Path) -> tuple[list[tuple[int, int, int]], tuple[int, int] | None]:
    """The plugin's output: events (address, instructions, cycles) in order, and
    the run's totals (instructions, cycles) if QEMU exited normally."""
    events, totals = [], None
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise MicronnError(f"the QEMU plugin wrote no output ({e.strerror})") from None
    for line in text.splitlines():
        f = line.split()
        if len(f) == 4 and f[0] == "E":
            events.append((int(f[1], 16), int(f[2]), int(f[3])))
        elif len(f) == 3 and f[0] == "X":
            totals = (int(f[1]), int(f[2]))
    return events, totals


def regions(events: list[tuple[int, int, int]], tick: int, run: int) -> list[dict]:
    """The stretches the bench times: from a read of the tick counter through a
    call of the op loop to the next read. Each: its instructions and cycles and
    the index of its first event."""
    found = []
    for i in range(1, len(events) - 1):
        a, b, c = events[i - 1], events[i], events[i + 1]
        if b[0] == run and a[0] == tick and c[0] == tick:
            found.append({"instructions": c[1] - a[1], "cycles": c[2] - a[2], "start": i - 1})
    return found
