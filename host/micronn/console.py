"""The board as a workspace: an interactive REPL and a user's script on any
target (``unix``, a QEMU board, a serial port).

A QEMU target uses the board that ``micronn board start`` left running if there
is one (and says so); otherwise a board is booted for this command alone.
"""

from __future__ import annotations

import ast
import contextlib
import os
import signal
import subprocess
import sys

from .errors import MicronnError
from .sessions import find, notice, port_of

# Run on the board for the banner: free heap and the models in /rom and /.
_BANNER_CODE = """\
import gc, os, sys
gc.collect()
def _mn(d):
    try:
        return [d.rstrip('/') + '/' + f for f in sorted(os.listdir(d)) if f.endswith('.mnb')]
    except OSError:
        return []
print(repr((gc.mem_free(), _mn('/rom') + _mn('/'), sys.implementation.name + ' ' +
            '.'.join(str(v) for v in sys.implementation.version[:3]))))
del _mn
"""


@contextlib.contextmanager
def board_port(target: str | None = None, port: str | None = None):
    """(serial port, name) of the board a command works on; a QEMU board booted
    for this command is stopped at the end."""
    if port:
        yield port_of(port), port
        return
    s = find(target)
    if s is not None:
        notice(f"using the running board {s['name']} ({s['target']}) on {s['port']}")
        yield s["port"], s["name"]
        return
    if not target.startswith("qemu-"):
        from .firmware import boards

        raise MicronnError(f"unknown target {target!r} (available: unix, "
                           f"{', '.join(b for b in boards() if b.startswith('qemu-'))}, or --port DEVICE)")
    from .sessions import _wait_ready
    from .targets import QemuBoard

    board = QemuBoard(target)
    try:
        notice(f"booted {target} on {board.pty} for this command (its files go when it ends;"
               f" `micronn board start --target {target}` keeps a board running)")
        if not _wait_ready(board.pty, 20):
            raise MicronnError(f"{target}: no REPL prompt on {board.pty}")
        yield board.pty, target
    finally:
        board.kill()


def _open(port: str, name: str):
    from mpremote.transport import TransportError
    from mpremote.transport_serial import SerialTransport

    from .targets import _check_port_free

    _check_port_free(port)
    try:
        return SerialTransport(port, baudrate=115200)
    except TransportError as e:
        raise MicronnError(f"{name}: cannot open {port} ({e})") from None


@contextlib.contextmanager
def raw_repl(port: str, name: str, soft_reset: bool = False):
    """The board on ``port`` in raw REPL mode, as an mpremote transport
    (``exec_raw``, ``fs_*``); back at its friendly REPL and closed after."""
    from mpremote.transport import TransportError

    t = _open(port, name)
    try:
        t.enter_raw_repl(soft_reset=soft_reset)
        yield t
        t.exit_raw_repl()
    except TransportError as e:
        raise MicronnError(f"{name}: no MicroPython REPL on {port} ({e})") from None
    finally:
        t.close()


def banner_info(port: str, name: str) -> tuple[int, list[str], str]:
    """(free heap, models in /rom and /, MicroPython version) of the board on ``port``."""
    with raw_repl(port, name) as t:
        out, err = t.exec_raw(_BANNER_CODE)
    if err:
        raise MicronnError(f"{name}: {err.decode(errors='replace').strip()}")
    return ast.literal_eval(out.decode().strip())


def banner(name: str, heap: int, models: list[str], version: str, where: str = "") -> str:
    return (f"micronn repl: {name}{' on ' + where if where else ''}, {version}, heap free {heap:,} B, "
            f"models: {', '.join(models) if models else 'none'}")


def _unix_exe():
    from .targets import firmware_path

    exe = firmware_path("unix")
    if not exe.exists():
        raise MicronnError(f"{exe} not found: build it with `micronn firmware build --board unix`")
    return exe


def _run_child(cmd: list[str]) -> int:
    """Run a child on this terminal; Ctrl-C is the child's to handle."""
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return subprocess.call(cmd)
    finally:
        signal.signal(signal.SIGINT, old)


def repl(target: str | None = None, port: str | None = None) -> int:
    """An interactive REPL after a one-line banner; returns the exit status."""
    if not port and target == "unix":
        exe = _unix_exe()
        r = subprocess.run([str(exe), "-c", _BANNER_CODE], capture_output=True, text=True, timeout=30)
        if r.returncode:
            raise MicronnError(f"unix firmware: {r.stderr.strip()}")
        heap, _, version = ast.literal_eval(r.stdout.strip())
        models = sorted(f for f in os.listdir(".") if f.endswith(".mnb"))
        print(banner("unix", heap, models, version, "this host (files: the current folder)"), flush=True)
        return _run_child([str(exe)])
    with board_port(target, port) as (dev, name):
        heap, models, version = banner_info(dev, name)
        print(banner(name, heap, models, version, dev) + "; Ctrl-] leaves", flush=True)
        return _run_child([sys.executable, "-m", "mpremote", "connect", dev, "resume", "repl"])


def exec_script(path: str, target: str | None = None, port: str | None = None) -> int:
    """Run a MicroPython script on the board, its output streamed to stdout;
    Ctrl-C interrupts it on the board and leaves the board at its REPL.
    Returns 0, 1 if the script raised (its traceback on stderr), 130 if interrupted."""
    try:
        with open(path, "rb") as f:
            code = f.read()
    except OSError as e:
        raise MicronnError(f"{path}: {e.strerror}") from None
    if not port and target == "unix":
        exe = _unix_exe()
        proc = subprocess.Popen([str(exe), path])
        try:
            return proc.wait()
        except KeyboardInterrupt:
            proc.send_signal(signal.SIGINT)
            proc.wait()
            print("micronn: interrupted", file=sys.stderr)
            return 130

    def out(data: bytes) -> None:
        sys.stdout.buffer.write(data.replace(b"\x04", b""))
        sys.stdout.buffer.flush()

    interrupted = False
    with board_port(target, port) as (dev, name), raw_repl(dev, name, soft_reset=True) as t:
        t.exec_raw_no_follow(code)      # as `mpremote run`: a fresh interpreter
        try:
            _, err = t.follow(None, out)
        except KeyboardInterrupt:
            interrupted = True
            t.serial.write(b"\x03")
            _, err = t.follow(10, out)
    if interrupted:
        print(f"micronn: interrupted; {name} is back at its REPL", file=sys.stderr)
        return 130
    if err:
        sys.stderr.write(err.decode(errors="replace"))
        return 1
    return 0
