"""A QEMU board cannot touch the host (issue #17, item 10). With -semihosting,
board code (a REPL line, or a frame's way into one) could make the semihosting
call SYS_SYSTEM, which runs a shell command on the host as the user running
micronn. micronn's QEMU boards now run with semihosting off; their firmware no
longer needs it (board.c: no console set-up, exit() is a reset).

The same board code is first run on the same firmware under -semihosting, to
show that it does run a host command there: the test cannot pass because the
payload is broken."""

from __future__ import annotations

import subprocess
import time

import pytest

from micronn.firmware import firmware_file, profile
from micronn.targets import QemuBoard, SerialTarget

BOARD = "qemu-m4"

# SYS_SYSTEM (0x12) with r1 -> {command pointer, length}: BKPT 0xAB in Thumb.
PAYLOAD = """
import micropython
from array import array
@micropython.asm_thumb
def address(r0):
    pass
@micropython.asm_thumb
def semihost(r0, r1):
    data(2, 0xbeab)
cmd = b"touch {path}\\x00"
block = array('I', [address(cmd), len(cmd) - 1])
semihost(0x12, block)
print('after the call')
"""


def _firmware():
    elf = firmware_file(BOARD)
    if not elf.exists():
        pytest.skip(f"{BOARD} firmware not built")
    return elf


def _send(port: str, code: str) -> SerialTarget:
    t = SerialTarget(port, timeout=10, name=BOARD)
    t.transport.exec_raw_no_follow(code)
    return t


def _wait_for(path, seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if path.exists():
            return True
        time.sleep(0.1)
    return path.exists()


def test_the_payload_runs_a_host_command_under_semihosting(tmp_path):
    """The control: QEMU started by hand with -semihosting."""
    elf = _firmware()
    q = profile(BOARD)["qemu"]
    proc = subprocess.Popen([q["system"], "-machine", q["machine"], "-nographic", "-monitor", "none",
                             "-serial", "pty", "-semihosting", "-kernel", str(elf)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = proc.stdout.readline()
        port = line.split("redirected to ")[1].split()[0]
        marker = tmp_path / "ran"
        t = _send(port, PAYLOAD.format(path=marker))
        assert _wait_for(marker, 20), "the semihosting call did not run: the payload is broken"
        t.close()
    finally:
        proc.kill()
        proc.wait()


def test_micronn_qemu_board_cannot_run_host_commands(tmp_path):
    _firmware()
    board = QemuBoard(BOARD)
    try:
        marker = tmp_path / "ran"
        t = _send(board.pty, PAYLOAD.format(path=marker))
        assert not _wait_for(marker, 8)
        t.close()
    finally:
        board.kill()
    assert not marker.exists()


def test_semihosting_cannot_be_asked_for():
    from micronn.errors import MicronnError

    _firmware()
    with pytest.raises(MicronnError, match="without semihosting"):
        QemuBoard(BOARD, extra_args=["-semihosting"])


@pytest.mark.parametrize("board", ["qemu-m3", "qemu-m4", "qemu-m7", "qemu-stm32f405", "qemu-rv32"])
def test_boards_boot_and_reset_without_semihosting(board):
    """Every QEMU board boots with semihosting off (qemu-stm32f405 used to end
    in a HardFault), and machine.reset() resets it in place: the pty stays and
    the board answers again."""
    if not firmware_file(board).exists():
        pytest.skip(f"{board} firmware not built")
    qb = QemuBoard(board)
    try:
        t = SerialTarget(qb.pty, timeout=20, name=board)
        assert t.exec("print(6 * 7)").strip() == "42"
        t.transport.exec_raw_no_follow("import machine\nmachine.reset()")
        t.transport.serial.timeout = 20
        seen = t.transport.read_until(1, b"MicroPython v", timeout=20)
        assert seen.endswith(b"MicroPython v"), seen[-200:]
        assert qb.proc.poll() is None
        t.close()
        t = SerialTarget(qb.pty, timeout=20, name=board)
        assert t.exec("print(6 * 7)").strip() == "42"
        t.close()
    finally:
        qb.kill()
