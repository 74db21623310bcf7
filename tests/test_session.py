"""Board sessions that say what happened (issue #17, item 11):

- a board that resets in the middle of a run (QEMU's system_reset keeps the
  pty, like a USB board's reset button) is reported at once as a reset, not
  after three timeouts as "does not answer", and the session comes back:
  server restarted, last model loaded again;
- a session starts with a handshake: firmware whose module, format or
  server is older than this micronn is named at once, with how to rebuild;
- a serial port that another process holds is refused, naming the process.
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time

import numpy as np
import pytest

from micronn import blob
from micronn.errors import MicronnError
from micronn.firmware import firmware_file
from micronn.link import BoardReset, Link
from micronn.targets import QemuBoard, SerialTarget, _PipeStream, check_firmware, firmware_path

from .test_format import GRAPH_KNOWN, _graph
from .test_interrupt import WIDE, hostile


def _qmp(path: str, command: str) -> None:
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    f = s.makefile("rwb")
    f.readline()                                        # the greeting
    for cmd in ("qmp_capabilities", command):
        f.write(json.dumps({"execute": cmd}).encode() + b"\n")
        f.flush()
        while b'"return"' not in f.readline():
            pass
    s.close()


def test_reset_in_the_middle_of_a_run_is_reported_and_recovered(tmp_path):
    board = "qemu-m4"
    if not firmware_file(board).exists():
        pytest.skip(f"{board} firmware not built")
    qmp = str(tmp_path / "qmp.sock")
    q = QemuBoard(board, extra_args=["-qmp", f"unix:{qmp},server=on,wait=off"])
    try:
        t = SerialTarget(q.pty, timeout=60, name=board, board=board)
        t.setup()
        t.serve()
        t.link.load(blob.write(_graph()))
        t.link.load(hostile(ops=64))                    # a run of minutes
        threading.Timer(2.0, _qmp, (qmp, "system_reset")).start()
        t0 = time.monotonic()
        with pytest.raises(BoardReset) as e:
            t.link.run(bytes(WIDE))
        assert time.monotonic() - t0 < 20
        msg = str(e.value)
        assert "the board reset" in msg and "the session is back" in msg and "model loaded again" in msg, msg
        assert t.link.info()["ops"][0] == "MAX_POOL_2D"  # the last model, loaded again
        t.link.load(blob.write(_graph()))
        for x, want in GRAPH_KNOWN.items():
            assert list(np.frombuffer(t.link.run(x)[0], np.int8)) == want
        t.close()
    finally:
        q.kill()


def _unix_server(patch: str):
    exe = firmware_path("unix")
    if not exe.exists():
        pytest.skip("unix firmware not built")
    proc = subprocess.Popen([str(exe), "-c", "import mnserver\n" + patch + "\nmnserver.serve()"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return proc, Link(_PipeStream(proc), name="unix", timeout=20)


@pytest.mark.parametrize("patch, why", [
    ("mnserver.firmware = lambda: None", "has no version handshake"),
    ("_f = mnserver.firmware\nmnserver.firmware = lambda: dict(_f(), protocol=1)", "speaks protocol 1"),
    ("_f = mnserver.firmware\nmnserver.firmware = lambda: dict(_f(), format=(0, 9))", "reads blob format (0, 9)"),
    ("_f = mnserver.firmware\nmnserver.firmware = lambda: dict(_f(), supported_ops="
     "[o for o in _f()['supported_ops'] if o != 'CONV_2D_MAXPOOL'])", "lacks the op CONV_2D_MAXPOOL"),
])
def test_stale_firmware_is_named_at_session_start(patch, why):
    proc, link = _unix_server(patch)
    try:
        with pytest.raises(MicronnError) as e:
            check_firmware(link, "qemu-m4")
        msg = str(e.value)
        assert msg.startswith("the firmware on unix is older than this micronn") and why in msg, msg
        assert "rebuild it with `micronn firmware build --board qemu-m4`" in msg
    finally:
        proc.kill()
        proc.wait()


def test_current_firmware_passes_the_handshake():
    from micronn import format as fmt

    proc, link = _unix_server("")
    try:
        fw = check_firmware(link, "unix")
        assert set(fw["supported_ops"]) == set(fmt.OPCODES)
        assert tuple(fw["format"]) == (fmt.VERSION_MAJOR, fmt.VERSION_MINOR)
    finally:
        proc.kill()
        proc.wait()


def test_a_port_held_by_another_process_is_refused():
    import os
    import pty

    master, slave = pty.openpty()
    name = os.ttyname(slave)
    holder = subprocess.Popen(["sleep", "30"], stdin=slave)
    try:
        end = time.monotonic() + 5
        while b"sleep" not in open(f"/proc/{holder.pid}/cmdline", "rb").read() and time.monotonic() < end:
            time.sleep(0.05)                            # until it has become `sleep`
        with pytest.raises(MicronnError, match=f"{name} is in use by another process \\(pid {holder.pid}: sleep 30"):
            SerialTarget(name, timeout=2)
    finally:
        holder.kill()
        holder.wait()
        os.close(master)
        os.close(slave)
