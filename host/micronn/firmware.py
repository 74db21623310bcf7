"""Build MicroPython firmware with the micronn module for a board."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .errors import MicronnError

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MICROPY = ROOT / ".cache" / "micropython-1.25.0"
BOARDS_DIR = ROOT / "boards"


def build_root() -> Path:
    """Where firmware is built: $MICRONN_BUILD, else build/ in the checkout."""
    env = os.environ.get("MICRONN_BUILD")
    return Path(env).resolve() if env else ROOT / "build"


def boards() -> list[str]:
    return sorted(p.parent.name for p in BOARDS_DIR.glob("*/board.json"))


def profile(board: str) -> dict:
    """The machine-readable profile boards/BOARD/board.json."""
    import json

    p = BOARDS_DIR / board / "board.json"
    if not p.exists():
        raise MicronnError(f"unknown board {board!r} (available: {', '.join(boards())})")
    return json.loads(p.read_text())


def firmware_file(board: str) -> Path:
    return build_root() / board / profile(board)["firmware"]


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


def _run(cmd: list[str], what: str, log: Path | None = None, cwd: Path | None = None, env=None) -> None:
    """Run a build step; show a file counter while it runs and the log's tail if it fails."""
    out = open(log, "w") if log else subprocess.DEVNULL
    try:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
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


def _board_hash(board: str) -> str:
    """Changes to a board's files (flags, linker script) need a clean build."""
    import hashlib

    h = hashlib.sha256()
    dirs = [BOARDS_DIR / board] + ([BOARDS_DIR / "qemu-common"] if board.startswith("qemu-") else [])
    for d in dirs:
        for f in sorted(d.glob("*")) if d.exists() else []:
            h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()


def build(board: str, micropython: str | os.PathLike | None = None, jobs: int | None = None,
          freeze: str | os.PathLike | None = None) -> Path:
    """Build firmware for ``board``; returns the firmware file."""
    import shutil

    prof = profile(board)
    mp = micropython_dir(micropython)
    jobs = jobs or os.cpu_count() or 1
    out = build_root() / board
    stamp = out / ".board-hash"
    digest = _board_hash(board)
    if out.exists() and (not stamp.exists() or stamp.read_text() != digest):
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    stamp.write_text(digest)
    _run(["make", "-C", str(mp / "mpy-cross"), f"-j{jobs}"], "building mpy-cross", out / "mpy-cross.log")
    if prof["port"] == "unix":
        args = [f"VARIANT_DIR={BOARDS_DIR / board}"]
    elif prof["port"] == "qemu":
        args = [f"BOARD={board}", f"BOARD_DIR={BOARDS_DIR / board}"]
    else:
        raise MicronnError(f"board {board!r}: port {prof['port']!r} is not built here")
    env = None
    if freeze:
        f = Path(freeze).resolve()
        if not f.exists():
            raise MicronnError(f"{f}: no such module to freeze")
        env = {**os.environ, "MICRONN_FREEZE": str(f)}
    else:
        env = {k: v for k, v in os.environ.items() if k != "MICRONN_FREEZE"}
    _run(["make", "-C", str(mp / "ports" / prof["port"]), f"-j{jobs}", *args, f"BUILD={out}",
          f"USER_C_MODULES={ROOT}"], f"building {board} firmware", out / "build.log", env=env)
    exe = firmware_file(board)
    if not exe.exists():
        raise MicronnError(f"the build finished but {exe} is missing")
    return exe
