"""Targets a blob can run on, all reached through ``micronn.link.Link``.

``unix``: the unix-port firmware as a child process, the protocol over its
stdin/stdout pipes. ``qemu-*``: a QEMU board whose UART is a pty, reached
exactly like a real board on a USB serial port: pyserial, mpremote's raw REPL,
then the inference server. ``--port DEV``: a real board.
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
PROTOCOL = 3        # device/mnserver.py's PROTOCOL


def check_firmware(link: Link, board: str | None) -> dict:
    """The session handshake: the board's module, format version, op codes and
    server protocol must be those this micronn writes and speaks. Stale
    firmware is named at once instead of failing later on a blob it cannot
    read."""
    from . import __version__
    from . import format as fmt

    fw = link.info().get("firmware")
    if not isinstance(fw, dict):
        why = "its inference server has no version handshake"
    elif fw.get("protocol") != PROTOCOL:
        why = f"its server speaks protocol {fw.get('protocol')}, this micronn {PROTOCOL}"
    elif tuple(fw.get("format", ())) < (fmt.VERSION_MAJOR, fmt.VERSION_MINOR):
        why = f"it reads blob format {fw.get('format')}, this micronn writes {fmt.VERSION_MAJOR}.{fmt.VERSION_MINOR}"
    elif set(fmt.OPCODES) - set(fw.get("supported_ops", ())) and not fw.get("ops_limited"):
        missing = sorted(set(fmt.OPCODES) - set(fw.get("supported_ops", ())))
        why = f"it lacks the op{'s' if len(missing) > 1 else ''} {', '.join(missing)}"
    else:
        if fw.get("ops_limited"):
            _refuse_absent_ops(link, board, fw["supported_ops"])
        return fw
    how = f"`micronn firmware build --board {board}`" if board else "`micronn firmware build --board BOARD`"
    raise MicronnError(f"the firmware on {link.name} is older than this micronn {__version__} ({why});"
                       f" rebuild it with {how}" + ("" if board and board.startswith(("qemu-", "unix"))
                                                    else " and flash it"))


def _refuse_absent_ops(link: Link, board: str | None, supported) -> None:
    """Firmware built with --ops-from runs only some ops: refuse a blob that uses
    another before sending it, naming the op (the board's loader would refuse it too)."""
    from .opset import ops_of_blob

    have, send = set(supported), type(link).load.__get__(link)     # the unchecked load, once

    def load(blob: bytes) -> dict:
        lacking = sorted(ops_of_blob(blob) - have)
        if lacking:
            how = f"--board {board}" if board else "--board BOARD"
            raise MicronnError(f"the firmware on {link.name} runs only {', '.join(sorted(have))} (built with "
                               f"--ops-from); this blob also uses {', '.join(lacking)}: build firmware for it "
                               f"(`micronn firmware build {how} --ops-from` with this blob too) or use the full one")
        return send(blob)

    link.load = load


def firmware_path(board: str) -> Path:
    if board == "unix":
        env = os.environ.get("MICRONN_UNIX_FIRMWARE")
        if env:
            return Path(env)
        from .firmware import build_root

        return build_root() / "unix" / "micropython"
    raise MicronnError(f"unknown board {board!r}")


# How long one read of a stream waits; the link counts its own timeout over many.
READ_SLICE = 0.1


class _PipeStream:
    """read(n)/write(b) over a child's pipes: a read returns b"" when nothing
    came within `timeout` seconds, and raises EOFError when the child is gone."""

    def __init__(self, proc: subprocess.Popen, timeout: float = READ_SLICE):
        self.proc, self.timeout = proc, timeout

    def read(self, n: int) -> bytes:
        fd = self.proc.stdout.fileno()
        ready, _, _ = select.select([fd], [], [], self.timeout)
        if not ready:
            return b""
        data = os.read(fd, n)
        if not data:
            raise EOFError("the unix firmware closed its output (it exited)")
        return data

    def write(self, data: bytes) -> None:
        self.proc.stdin.write(data)       # BrokenPipeError (an OSError) once the child is gone
        self.proc.stdin.flush()


class UnixTarget:
    """The unix firmware running the inference server in a child process."""

    name = "unix"

    def __init__(self, firmware: Path | None = None, timeout: float = 60.0, env: dict | None = None):
        """env: the child's environment (MICROPYPATH: where a firmware without the
        module finds micronn.mpy and device/)."""
        exe = Path(firmware) if firmware else firmware_path("unix")
        if not exe.exists():
            raise MicronnError(f"{exe} not found: build it with `micronn firmware build --board unix`"
                               " (or `make firmware`)")
        self.proc = subprocess.Popen([str(exe), "-c", SERVE], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        self.link = Link(_PipeStream(self.proc), name="unix", timeout=timeout)
        self.link.interrupt = self._interrupt
        try:
            check_firmware(self.link, "unix")
        except BaseException:
            self.close()
            raise

    def _interrupt(self) -> None:
        import signal

        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.link.timeout, self.link.retries = 5, 0
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


def _holders(port: str) -> list[str]:
    """Other processes that have the serial device open (Linux: /proc)."""
    try:
        dev = os.stat(port).st_rdev
    except OSError:
        return []
    me = os.getpid()
    found = []
    for pid in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not pid.isdigit() or int(pid) == me:
            continue
        fd_dir = f"/proc/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                st = os.stat(f"{fd_dir}/{fd}")
            except OSError:
                continue
            if st.st_rdev == dev and (st.st_mode & 0o170000) == 0o020000:
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
                except OSError:
                    cmd = "?"
                found.append(f"pid {pid}: {cmd[:80]}")
                break
    return found


def _check_port_free(port: str) -> None:
    """Two programs reading one serial port each get half of its bytes: refuse
    a port another process holds, and say which."""
    holders = _holders(port)
    if holders:
        raise MicronnError(f"{port} is in use by another process ({'; '.join(holders)}); close it first")


class SerialTarget:
    """A board on a serial port running micronn firmware: raw REPL, then the server."""

    def __init__(self, port: str, timeout: float = 60.0, name: str | None = None, board: str | None = None):
        from mpremote.transport import TransportError
        from mpremote.transport_serial import SerialTransport

        self.name = name or port
        self.port = port
        self.board = board
        _check_port_free(port)
        try:
            self.transport = SerialTransport(port, baudrate=115200, timeout=timeout)
        except TransportError as e:
            raise MicronnError(f"{self.name}: cannot open {port} ({e})") from None
        if not self._wake(tries=4):
            self._stop_server()         # left running by a session that ended without closing
            self._wake()
        for attempt in range(4):
            try:
                self.transport.enter_raw_repl(soft_reset=False, timeout_overall=5)
                break
            except TransportError as e:
                if attempt == 3:
                    self.transport.close()
                    raise MicronnError(f"{self.name}: no MicroPython raw REPL on {port} ({e})") from None
        self.timeout = timeout
        self.link = Link(self.transport.serial, name=self.name, timeout=timeout)
        self.serving = False

    def _wake(self, tries: int = 40) -> bool:
        """A board that is still booting drops what it is sent: interrupt until
        a prompt answers (a friendly or raw REPL), for up to ~20 s."""
        import time

        ser = self.transport.serial
        for _ in range(tries):
            ser.write(b"\r\x03")
            deadline = time.monotonic() + 0.5
            seen = b""
            while time.monotonic() < deadline:
                n = ser.in_waiting
                if n:
                    seen += ser.read(n)
                    if b">>> " in seen or b"raw REPL" in seen or seen.endswith(b">"):
                        return True
                else:
                    time.sleep(0.02)
        return False

    def _stop_server(self) -> None:
        """If the inference server answers on this port (an earlier session
        ended without quitting it, perhaps in the middle of a frame), bring it
        back into step and quit it: the raw REPL it ran from answers again."""
        ser = self.transport.serial
        old = ser.timeout
        ser.timeout = READ_SLICE
        link = Link(ser, name=self.name, timeout=2, retries=0)
        try:
            link.resync()
            link.quit()
        except MicronnError:
            pass                        # no server: a board still booting, or not micronn
        finally:
            ser.timeout = old

    def exec(self, code: str) -> str:
        """Run code in the raw REPL (before the server starts); its output."""
        from mpremote.transport import TransportError

        try:
            out, err = self.transport.exec_raw(code)
        except TransportError as e:
            raise MicronnError(f"{self.name}: {e}") from None
        if err:
            raise MicronnError(f"{self.name}: {err.decode(errors='replace').strip()}")
        return out.decode(errors="replace")

    def setup(self) -> dict:
        """Mount the board's ROMFS at /rom and, if it has no filesystem, a RAM one at /."""
        import ast

        return ast.literal_eval(self.exec("import mnboot\nprint(repr(mnboot.setup()))").strip())

    def serve(self) -> None:
        """Start the inference server; from here on the line carries frames."""
        from mpremote.transport import TransportError

        try:
            self.transport.exec_raw_no_follow("import mnserver\nmnserver.serve()")
        except TransportError as e:
            raise MicronnError(f"{self.name}: could not start the server ({e})") from None
        self.serving = True
        # From here the link keeps time: short reads, and a bound on writes to
        # a board that stopped reading.
        ser = self.transport.serial
        ser.timeout, ser.write_timeout = READ_SLICE, self.timeout
        self.link.interrupt = lambda: ser.write(b"\x03")
        self.link.on_reset = self._recover
        self.link.ping()
        check_firmware(self.link, self.board)

    def _recover(self) -> None:
        """After a reboot (the board sits at its REPL prompt): raw REPL, the
        board's set-up and the server again."""
        from mpremote.transport import TransportError

        self.serving = False
        ser = self.transport.serial
        ser.timeout, ser.write_timeout = self.timeout, None
        try:
            self.transport.enter_raw_repl(soft_reset=False, timeout_overall=10)
        except TransportError as e:
            raise MicronnError(f"{self.name}: no raw REPL after the reset ({e})") from None
        self.setup()
        self.serve()

    def close(self) -> None:
        if self.serving:
            self.serving = False
            self.link.timeout, self.link.retries = 5, 0
            try:
                self.link.quit()
                self.transport.serial.timeout = 5
                self.transport.follow(timeout=5)
                self.transport.serial.timeout, self.transport.serial.write_timeout = self.timeout, None
            except Exception:  # noqa: BLE001 - closing a link that may already be broken
                pass
        try:
            self.transport.exit_raw_repl()
        except Exception:  # noqa: BLE001 - the port may be gone (the board was reset or killed)
            pass
        try:
            self.transport.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _die_with_parent() -> None:
    """In the child: end when the process that started us ends (Linux), so no
    emulator outlives an interrupted test run."""
    try:
        import ctypes
        import signal

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)     # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def qemu_command(board: str, icount: bool = False, romfs_file: str | None = None, extra_args=(),
                 firmware: str | os.PathLike | None = None) -> list[str]:
    """The QEMU command line of a board of boards/: its UART on a pty, no
    monitor, no semihosting; ``romfs_file`` is loaded into its ROMFS region;
    ``firmware``: another build of the board's firmware (--ops-from)."""
    from .firmware import firmware_file, profile

    prof = profile(board)
    if prof["port"] != "qemu":
        raise MicronnError(f"{board} is not a QEMU board")
    elf = Path(firmware) if firmware else firmware_file(board)
    if not elf.exists():
        raise MicronnError(f"{elf} not found: build it with `micronn firmware build --board {board}`")
    q = prof["qemu"]
    args = list(q.get("args", [])) + list(extra_args)
    if any(a.startswith("-semihosting") for a in args):
        raise MicronnError(f"{board}: QEMU boards run without semihosting (board code could run host commands)")
    # Semihosting stays off: board code must not reach the host.
    cmd = [q["system"], "-machine", q["machine"], "-nographic", "-monitor", "none", "-serial", "pty",
           "-semihosting-config", "enable=off", "-kernel", str(elf), *args]
    if icount:
        cmd += ["-icount", "shift=0"]
    if romfs_file is not None:
        r = prof["romfs"]
        size = os.path.getsize(romfs_file)
        if size > r["size"]:
            raise MicronnError(f"ROMFS image of {size} bytes exceeds {board}'s {r['size']} bytes")
        cmd += ["-device", f"loader,file={romfs_file},addr={r['base']:#x},force-raw=on"]
    return cmd


class QemuBoard:
    """A QEMU board of boards/ with its UART on a pty."""

    def __init__(self, board: str, icount: bool = False, romfs: bytes | None = None, extra_args=(),
                 firmware: str | os.PathLike | None = None):
        import re
        import tempfile

        self.board = board
        self._romfs_file = None
        if romfs is not None:
            self._romfs_file = tempfile.NamedTemporaryFile(suffix=".romfs")
            self._romfs_file.write(romfs)
            self._romfs_file.flush()
        try:
            cmd = qemu_command(board, icount, self._romfs_file.name if self._romfs_file else None, extra_args,
                               firmware)
        except BaseException:
            if self._romfs_file:
                self._romfs_file.close()
            raise
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, preexec_fn=_die_with_parent)
        self.pty = None
        seen = []
        ready, _, _ = select.select([self.proc.stdout], [], [], 20)
        while ready:
            line = self.proc.stdout.readline()
            if not line:
                break
            seen.append(line)
            m = re.search(r"char device redirected to (\S+)", line)
            if m:
                self.pty = m.group(1)
                break
        if self.pty is None:
            self.kill()
            raise MicronnError(f"QEMU did not start {board}: {''.join(seen).strip()}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        if self._romfs_file:
            self._romfs_file.close()


class QemuTarget(SerialTarget):
    """A QEMU board started for this session, spoken to over its pty."""

    def __init__(self, board: str, icount: bool = False, romfs: bytes | None = None, timeout: float = 120.0,
                 firmware: str | os.PathLike | None = None, extra_args=()):
        """firmware: another build of the board's firmware (e.g. `firmware build --ops-from`);
        extra_args: more QEMU arguments (bench --cycles: the cycle-estimate plugin)."""
        self.qemu = QemuBoard(board, icount=icount, romfs=romfs, firmware=firmware, extra_args=extra_args)
        try:
            super().__init__(self.qemu.pty, timeout=timeout, name=board, board=board)
        except BaseException:
            self.qemu.kill()
            raise

    def close(self) -> None:
        super().close()
        self.qemu.kill()


def open_target(spec: str):
    """A running inference server: ``unix`` (or ``unix-asan``, its sanitizer build), a
    QEMU board name, or a serial device path."""
    if spec == "unix":
        return UnixTarget()
    if spec == "unix-asan":
        from .firmware import firmware_file

        return UnixTarget(firmware_file(spec))
    from .sessions import resolve

    port, session = resolve(spec)       # a QEMU board running in the background (`micronn board start`)
    if session is not None:
        t = SerialTarget(port, name=session["name"], board=session["target"])
    elif spec.startswith("qemu-"):
        t = QemuTarget(spec)
    elif spec.startswith("/dev/") or spec.upper().startswith("COM"):
        t = SerialTarget(spec)
    else:
        from .firmware import boards

        emulated = [b for b in boards() if b == "unix-asan" or b.startswith("qemu-")]
        if spec in boards():
            raise MicronnError(f"{spec} is a real board: connect it and give its serial port (--port /dev/ttyACM0);"
                               f" the targets micronn starts itself are unix, {', '.join(emulated)}")
        raise MicronnError(f"unknown target {spec!r} (available: unix, {', '.join(emulated)}, or a serial port)")
    try:
        t.setup()
        t.serve()
    except BaseException:
        t.close()
        raise
    return t
