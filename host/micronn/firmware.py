"""Build MicroPython firmware with the micronn module for a board."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .errors import MicronnError

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MICROPY = ROOT / ".cache" / "micropython-1.25.0"
BOARDS = ("unix",)


def micropython_dir(explicit: str | os.PathLike | None = None) -> Path:
    """MicroPython source: --micropython, else $MICROPY_DIR, else the cached Debian source (fetched if missing)."""
    d = explicit or os.environ.get("MICROPY_DIR")
    if d:
        p = Path(d).resolve()
        if not (p / "py" / "mkrules.mk").exists():
            raise MicronnError(f"{p} is not a MicroPython source tree (no py/mkrules.mk)")
        return p
    if not (DEFAULT_MICROPY / ".micronn-ok").exists():
        _run([str(ROOT / "tools" / "fetch-micropython.sh"), str(DEFAULT_MICROPY)], "fetching MicroPython source")
    return DEFAULT_MICROPY


def _run(cmd: list[str], what: str, log: Path | None = None, cwd: Path | None = None) -> None:
    """Run a build step; show a file counter while it runs and the log's tail if it fails."""
    out = open(log, "w") if log else subprocess.DEVNULL
    try:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        count = 0
        tail: list[str] = []
        tty = sys.stderr.isatty()
        for line in proc.stdout:
            if log:
                out.write(line)
            tail = (tail + [line])[-25:]
            if line.startswith(("CC ", "GEN ", "LINK ", "MPY ")):
                count += 1
                if tty:
                    sys.stderr.write(f"\r{what}: {count} steps")
                    sys.stderr.flush()
        rc = proc.wait()
        if tty and count:
            sys.stderr.write("\n")
    finally:
        if log:
            out.close()
    if rc != 0:
        raise MicronnError(f"{what} failed (exit {rc})" + (f"; log: {log}" if log else "")
                           + "\n" + "".join(tail).rstrip())


def build(board: str, micropython: str | os.PathLike | None = None, jobs: int | None = None) -> Path:
    """Build firmware for ``board``; returns the firmware file."""
    if board not in BOARDS:
        raise MicronnError(f"unknown board {board!r} (available: {', '.join(BOARDS)})")
    mp = micropython_dir(micropython)
    jobs = jobs or os.cpu_count() or 1
    out = ROOT / "build" / board
    out.mkdir(parents=True, exist_ok=True)
    _run(["make", "-C", str(mp / "mpy-cross"), f"-j{jobs}"], "building mpy-cross", out / "mpy-cross.log")
    _run(["make", "-C", str(mp / "ports" / "unix"), f"-j{jobs}", f"VARIANT_DIR={ROOT / 'boards' / 'unix'}",
          f"BUILD={out}", f"USER_C_MODULES={ROOT}"], f"building {board} firmware", out / "build.log")
    exe = out / "micropython"
    if not exe.exists():
        raise MicronnError(f"the build finished but {exe} is missing")
    return exe
