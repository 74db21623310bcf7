"""Board sessions: QEMU boards that run in the background like a board on a USB
cable. This module owns them (start, find, list, save, stop); everything else
takes the serial port a session names.

A session is QEMU started detached (its own session, so it outlives the command
that started it) with its UART on a pty and a QMP socket, recorded as
``NAME.json`` in the state folder: ``$MICRONN_STATE_DIR``, else
``$XDG_RUNTIME_DIR/micronn/boards``, else ``~/.cache/micronn/boards``.

The board's filesystem (littlefs at /, mounted by the firmware at every reset)
lives in emulated memory. With ``flash=FILE`` that memory is the file: on the
MPS2 boards (qemu-m3, -m4, -m7) QEMU maps the file as the machine's PSRAM
(``memory-backend-file,share=on``), so every write reaches it at once; on the
others (qemu-stm32f405, qemu-rv32) QEMU loads the file at start and ``save``
(run by ``stop``) writes the memory back with QMP's ``pmemsave``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from .errors import MicronnError


def state_dir() -> Path:
    env = os.environ.get("MICRONN_STATE_DIR")
    if env:
        return Path(env)
    run = os.environ.get("XDG_RUNTIME_DIR")
    return (Path(run) / "micronn" if run else Path.home() / ".cache" / "micronn") / "boards"


def notice(text: str) -> None:
    """A line for the user about which board a command uses (stderr: stdout stays the command's)."""
    print(f"micronn: {text}", file=sys.stderr, flush=True)


def _alive(pid: int) -> bool:
    """The QEMU process is there (not a zombie, not a reused pid)."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)      # our own child (a library caller started it)
        if done:
            return False
    except ChildProcessError:
        pass
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rpartition(")")[2].split()[0]
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read()
    except OSError:
        return False
    return state != "Z" and b"qemu-system" in cmd


def _record_path(name: str) -> Path:
    return state_dir() / f"{name}.json"


def _forget(name: str) -> None:
    d = state_dir()
    for suffix in (".json", ".qmp", ".log", ".romfs"):
        try:
            (d / f"{name}{suffix}").unlink()
        except OSError:
            pass


def sessions() -> list[dict]:
    """The running boards, oldest first; records of boards that died are removed."""
    d = state_dir()
    found = []
    for p in sorted(d.glob("*.json")) if d.is_dir() else []:
        try:
            s = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        if _alive(s.get("pid", -1)) and os.path.exists(s.get("port", "")):
            found.append(s)
        else:
            _forget(p.stem)
    return sorted(found, key=lambda s: s.get("started", 0))


def find(spec: str) -> dict | None:
    """The running board named ``spec``, else the only running board of target ``spec``."""
    running = sessions()
    for s in running:
        if s["name"] == spec:
            return s
    of_target = [s for s in running if s["target"] == spec]
    if len(of_target) > 1:
        raise MicronnError(f"{len(of_target)} {spec} boards are running ({', '.join(s['name'] for s in of_target)}):"
                           " name one")
    return of_target[0] if of_target else None


def port_of(spec: str) -> str:
    """``--port`` accepts a running board's name (or target) as well as a device."""
    if spec.startswith("/") or spec.upper().startswith("COM"):
        return spec
    s = find(spec)
    if s is None:
        raise MicronnError(f"cannot open {spec}: not a serial device, and no board of that name is running"
                           f" (start one with `micronn board start --target {spec}`)"
                           if spec.startswith("qemu-") else f"cannot open {spec}: not a serial device")
    return s["port"]


def _flash_args(prof: dict, flash: Path) -> list[str]:
    fs = prof["filesystem"]
    if not fs.get("size"):
        raise MicronnError(f"{prof['name']} has no filesystem region for --flash")
    if not flash.exists():
        try:
            with open(flash, "wb") as f:
                f.truncate(fs["size"])
        except OSError as e:
            raise MicronnError(f"cannot create {flash}: {e.strerror}") from None
    elif not flash.is_file():
        raise MicronnError(f"{flash}: not a file")
    elif flash.stat().st_size != fs["size"]:
        raise MicronnError(f"{flash} holds {flash.stat().st_size:,} bytes; {prof['name']}'s flash is "
                           f"{fs['size']:,} bytes (a file made by `micronn board start --target {prof['name']}"
                           " --flash NEW_FILE` fits)")
    if fs.get("backing") == "memory-backend":
        return ["-object", f"memory-backend-file,id=mnflash,size={fs['size']},mem-path={flash},share=on",
                "-machine", "memory-backend=mnflash"]
    return ["-device", f"loader,file={flash},addr={fs['base']:#x},force-raw=on"]


def _wait_ready(port: str, timeout: float) -> bool:
    """Interrupt until the board's REPL prompt answers."""
    import serial

    deadline = time.monotonic() + timeout
    with serial.Serial(port, 115200, timeout=0.05) as ser:
        seen = b""
        while time.monotonic() < deadline:
            ser.write(b"\r\x03")
            until = time.monotonic() + 0.5
            while time.monotonic() < until:
                seen += ser.read(256)
                if b">>> " in seen:
                    return True
    return False


def start(target: str, flash: str | None = None, romfs: str | None = None, name: str | None = None,
          timeout: float = 20.0) -> dict:
    """Boot a QEMU board in the background; its session record (name, target, port, pid, flash, ...)."""
    from .firmware import profile
    from .targets import qemu_command

    if not target.startswith("qemu-"):
        raise MicronnError(f"{target}: only QEMU boards run in the background (a real board is already"
                           " running: use its --port)" if target != "unix" else
                           "unix: the unix firmware has no serial port; use --target unix directly")
    prof = profile(target)
    name = name or target
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise MicronnError(f"{name!r}: a board name is letters, digits, '.', '_' and '-'")
    running = find(name) if name else None
    if running and running["name"] == name:
        raise MicronnError(f"a board named {name} is running already on {running['port']}"
                           f" (`micronn board stop {name}`, or --name ANOTHER)")
    d = state_dir()
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise MicronnError(f"cannot make {d}: {e.strerror}") from None
    _forget(name)
    extra = []
    flash_path = None
    if flash:
        flash_path = Path(flash).resolve()
        extra += _flash_args(prof, flash_path)
    romfs_copy = None
    if romfs:
        romfs_copy = d / f"{name}.romfs"
        try:
            shutil.copyfile(romfs, romfs_copy)
        except OSError as e:
            raise MicronnError(f"{romfs}: {e.strerror}") from None
    qmp = d / f"{name}.qmp"
    extra += ["-qmp", f"unix:{qmp},server=on,wait=off"]
    cmd = qemu_command(target, romfs_file=str(romfs_copy) if romfs_copy else None, extra_args=extra)
    log = d / f"{name}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    port = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and port is None:
        m = re.search(r"char device redirected to (\S+)", log.read_text(errors="replace"))
        if m:
            port = m.group(1)
        elif proc.poll() is not None:
            break
        else:
            time.sleep(0.05)
    if port is None or not _wait_ready(port, max(5.0, deadline - time.monotonic())):
        text = log.read_text(errors="replace").strip()
        _kill(proc.pid)
        _forget(name)
        raise MicronnError(f"QEMU did not start {target}: {text or 'no REPL prompt on its UART'}")
    rec = {"name": name, "target": target, "pid": proc.pid, "port": port,
           "flash": str(flash_path) if flash_path else None,
           "flash_backing": prof["filesystem"].get("backing") if flash_path else None,
           "romfs": str(Path(romfs).resolve()) if romfs else None, "qmp": str(qmp), "started": time.time()}
    _record_path(name).write_text(json.dumps(rec, indent=1) + "\n")
    return rec


def _qmp(path: str, *commands: dict) -> list:
    """Run QMP commands on a board's QMP socket; their results."""
    results = []
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(path)
            f = s.makefile("rwb")
            json.loads(f.readline())                    # the greeting
            for cmd in ({"execute": "qmp_capabilities"}, *commands):
                f.write(json.dumps(cmd).encode() + b"\n")
                f.flush()
                while True:
                    line = f.readline()
                    if not line:
                        raise EOFError("QEMU closed its QMP socket")
                    r = json.loads(line)
                    if "return" in r or "error" in r:
                        break                           # (events in between are skipped)
                if "error" in r:
                    raise MicronnError(f"QEMU refused {cmd['execute']}: {r['error'].get('desc')}")
                results.append(r["return"])
    except (OSError, ValueError, EOFError) as e:
        raise MicronnError(f"cannot reach the board's QEMU monitor {path} ({e})") from None
    return results[1:]


def save(s: dict) -> bool:
    """Write a loader-backed board's filesystem memory back to its flash file (True if there was one)."""
    if not s.get("flash") or s.get("flash_backing") != "loader":
        return False
    from .firmware import profile

    fs = profile(s["target"])["filesystem"]
    tmp = s["flash"] + ".saving"
    _qmp(s["qmp"], {"execute": "pmemsave", "arguments": {"val": fs["base"], "size": fs["size"], "filename": tmp}})
    os.replace(tmp, s["flash"])
    return True


def _kill(pid: int, grace: float = 5.0) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if not _alive(pid):
                return
            time.sleep(0.05)


def stop(spec: str) -> dict:
    """Stop a running board (its flash file saved first); its record."""
    s = find(spec)
    if s is None:
        running = sessions()
        raise MicronnError(f"no board {spec!r} is running" + (
            f" (running: {', '.join(r['name'] for r in running)})" if running else ""))
    try:
        save(s)
        try:
            _qmp(s["qmp"], {"execute": "quit"})
        except MicronnError:
            pass                                # it may close the socket before answering
        deadline = time.monotonic() + 5
        while _alive(s["pid"]) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        _kill(s["pid"])
        _forget(s["name"])
    return s


def resolve(spec: str) -> tuple[str, dict | None]:
    """A ``--target``: a QEMU board name becomes the port of its running board if
    one runs (and says so); else unchanged."""
    if spec not in ("unix", "unix-asan") and not spec.startswith("/") and not spec.upper().startswith("COM"):
        s = find(spec)
        if s is not None:
            notice(f"using the running board {s['name']} ({s['target']}) on {s['port']}")
            return s["port"], s
    return spec, None
