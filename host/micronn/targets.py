"""Targets a blob can run on, all reached through ``micronn.link.Link``.

``unix``: the unix-port firmware as a child process, the protocol over its
stdin/stdout pipes.
"""

from __future__ import annotations

import os
import select
import subprocess
from pathlib import Path

from .errors import MicronnError
from .link import Link

ROOT = Path(__file__).resolve().parents[2]
SERVE = "import mnserver; mnserver.serve()"


def firmware_path(board: str) -> Path:
    if board == "unix":
        env = os.environ.get("MICRONN_UNIX_FIRMWARE")
        return Path(env) if env else ROOT / "build" / "unix" / "micropython"
    raise MicronnError(f"unknown board {board!r}")


class _PipeStream:
    """read(n)/write(b) over a child's pipes, with a timeout on reads."""

    def __init__(self, proc: subprocess.Popen, timeout: float):
        self.proc, self.timeout = proc, timeout

    def read(self, n: int) -> bytes:
        fd = self.proc.stdout.fileno()
        ready, _, _ = select.select([fd], [], [], self.timeout)
        if not ready:
            return b""
        return os.read(fd, n)

    def write(self, data: bytes) -> None:
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise MicronnError("unix firmware exited unexpectedly") from None


class UnixTarget:
    """The unix firmware running the inference server in a child process."""

    name = "unix"

    def __init__(self, firmware: Path | None = None, timeout: float = 60.0):
        exe = Path(firmware) if firmware else firmware_path("unix")
        if not exe.exists():
            raise MicronnError(f"{exe} not found: build it with `micronn firmware build --board unix`"
                               " (or `make firmware`)")
        self.proc = subprocess.Popen([str(exe), "-c", SERVE], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.link = Link(_PipeStream(self.proc, timeout), name="unix")

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.link.quit()
            except MicronnError:
                pass
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=5)
            except (subprocess.TimeoutExpired, OSError):
                self.proc.kill()
                self.proc.wait()
        for f in (self.proc.stdout, self.proc.stderr):
            f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def open_target(spec: str) -> UnixTarget:
    """A target by name: ``unix``."""
    if spec == "unix":
        return UnixTarget()
    raise MicronnError(f"unknown target {spec!r} (available: unix)")
