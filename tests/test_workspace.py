"""The board as a workspace (issue 12): QEMU boards running in the background
(`micronn board start`) reached with plain mpremote and every --port command,
their filesystem in emulated flash that survives soft resets and restarts,
`micronn repl` and `micronn exec` through a real pty, profile() on unix."""

from __future__ import annotations

import fcntl
import os
import re
import select
import subprocess
import sys
import termios
import time
from pathlib import Path

import numpy as np
import pytest

from micronn import blob, sessions

from .conftest import need_firmware
from .test_format import GRAPH_KNOWN, _graph

BIN = Path(sys.executable).parent
MICRONN = [str(BIN / "micronn")]
MPREMOTE = [sys.executable, "-m", "mpremote"]
X = bytes(range(8))
Y = GRAPH_KNOWN[X]

CLASSIFY = f"""\
import micronn
m = micronn.Model(open("t.mnb", "rb").read())
print(m)
print("outputs", list(m.run({X!r})))
"""


@pytest.fixture
def state(tmp_path, monkeypatch):
    """A state folder of our own (no other run's boards), every board stopped at the end."""
    monkeypatch.setenv("MICRONN_STATE_DIR", str(tmp_path / "state"))
    (tmp_path / "t.mnb").write_bytes(blob.write(_graph()))
    (tmp_path / "classify.py").write_text(CLASSIFY)
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    for s in sessions.sessions():
        sessions.stop(s["name"])


def sh(cmd, timeout=60, check=True) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check:
        assert r.returncode == 0, f"{cmd}: {r.stdout}\n{r.stderr}"
    return r


def start(board: str, *args: str) -> str:
    r = sh(MICRONN + ["board", "start", "--target", board, *args])
    port = r.stdout.strip()
    assert port.startswith("/dev/pts/"), r.stdout
    return port


@pytest.mark.parametrize("board", ["qemu-m4", "qemu-stm32f405"])
def test_plain_mpremote_on_a_background_board(state, board):
    need_firmware(board)
    flash = state / "board.img"
    port = start(board, "--flash", str(flash))
    listed = sh(MICRONN + ["board", "list"]).stdout
    assert re.search(rf"^{board}\s+{board}\s+{port}\s", listed, re.M), listed

    # plain mpremote: copy, soft reset (mpremote's own, and an explicit one), both files still there
    sh(MPREMOTE + ["connect", port, "cp", "t.mnb", ":t.mnb", "+", "cp", "classify.py", ":classify.py"])
    r = sh(MPREMOTE + ["connect", port, "soft-reset", "+", "ls", ":", "+", "exec", "import classify"])
    assert re.search(r"^\s+\d+ t\.mnb$", r.stdout, re.M) and "classify.py" in r.stdout, r.stdout
    assert f"outputs {Y}" in r.stdout and "<Model 't'" in r.stdout, r.stdout
    r = sh(MPREMOTE + ["connect", port, "run", "classify.py"])       # a local script, the board's blob
    assert f"outputs {Y}" in r.stdout

    # micronn's --port commands against the same board, by port and by name
    (state / "u.mnb").write_bytes(blob.write(_graph()))
    r = sh(MICRONN + ["deploy", "u.mnb", "--port", board])
    assert f"copied to {board}:/u.mnb" in r.stdout
    np.save(state / "x.npy", np.frombuffer(X, np.int8).reshape(1, 8))
    for spec in (port, board):
        r = sh(MICRONN + ["run", ":u.mnb", "--port", spec, "--input", "x.npy"])
        assert [int(v) for v in re.findall(r"-?\d+", r.stdout)] == Y, r.stdout
    # --target uses the running board (the file is there) and says so
    r = sh(MICRONN + ["run", ":u.mnb", "--target", board, "--input", "x.npy"])
    assert [int(v) for v in re.findall(r"-?\d+", r.stdout)] == Y
    assert f"using the running board {board} ({board}) on {port}" in r.stderr

    # stop and start again from the same flash file: the files are still there
    r = sh(MICRONN + ["board", "stop", board])
    assert f"stopped {board}" in r.stdout
    assert sh(MICRONN + ["board", "list"]).stdout == ""
    port = start(board, "--flash", str(flash))
    r = sh(MPREMOTE + ["connect", port, "ls", ":"])
    assert all(n in r.stdout for n in ("t.mnb", "u.mnb", "classify.py")), r.stdout
    r = sh(MPREMOTE + ["connect", port, "exec", "import classify"])
    assert f"outputs {Y}" in r.stdout


def test_board_mistakes_are_one_line(state):
    need_firmware("qemu-m4")
    for cmd, want in [
        (["deploy", "t.mnb", "--port", "qemu-m4"], "no board of that name is running"),
        (["board", "stop", "qemu-m4"], "no board 'qemu-m4' is running"),
        (["board", "start", "--target", "qemu-m4", "--flash", "t.mnb"], "flash is 16,777,216 bytes"),
        (["board", "start", "--target", "unix"], "no serial port"),
    ]:
        r = sh(MICRONN + cmd, check=False)
        assert r.returncode == 1 and r.stderr.startswith("micronn: error: ") and want in r.stderr, (cmd, r.stderr)
        assert "Traceback" not in r.stderr
    port = start("qemu-m4")
    r = sh(MICRONN + ["board", "start", "--target", "qemu-m4"], check=False)
    assert r.returncode == 1 and f"running already on {port}" in r.stderr


def test_romfs_at_start_and_written_to_a_running_board(state):
    need_firmware("qemu-m4")
    sh(MICRONN + ["deploy", "t.mnb", "--romfs", "-o", "models.romfs"])
    port = start("qemu-m4", "--romfs", "models.romfs")
    r = sh(MPREMOTE + ["connect", port, "ls", ":/rom"])
    assert "t.mnb" in r.stdout
    (state / "v.mnb").write_bytes(blob.write(_graph()))
    r = sh(MICRONN + ["deploy", "v.mnb", "--romfs", "--port", "qemu-m4"])
    assert "mounted at /rom" in r.stdout
    r = sh(MPREMOTE + ["connect", port, "resume", "exec",
                       f"import os, micronn; print(os.listdir('/rom')); "
                       f"print(list(micronn.Model(open('/rom/v.mnb', 'rb')).run({X!r})))"])
    assert "['v.mnb']" in r.stdout and str(Y) in r.stdout, r.stdout


class Pty:
    """A command on a real pty (its controlling terminal: Ctrl-C is SIGINT)."""

    def __init__(self, cmd, cwd):
        self.master, slave = os.openpty()
        self.proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, cwd=cwd,
                                     start_new_session=True,
                                     preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
        os.close(slave)
        self.seen = b""

    def expect(self, pattern: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while not re.search(pattern.encode(), self.seen):
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.master], [], [], max(0, left))
            if not ready:
                raise AssertionError(f"no {pattern!r} within {timeout} s; seen:\n{self.seen.decode(errors='replace')}")
            try:
                self.seen += os.read(self.master, 4096)
            except OSError:         # the child closed the pty
                seen = self.seen.decode(errors="replace")
                raise AssertionError(f"no {pattern!r}; the command ended:\n{seen}") from None
        m = re.search(pattern.encode(), self.seen)
        out, self.seen = self.seen[:m.end()].decode(errors="replace"), self.seen[m.end():]
        return out

    def send(self, text: str) -> None:
        os.write(self.master, text.encode())

    def prompt(self, tries: int = 10) -> None:
        """Wait for mpremote's repl to show the prompt: it shows it at the first key, and
        a key sent before it has set up its terminal is flushed, so send until one shows."""
        for _ in range(tries):
            self.send("\r")
            try:
                self.expect(">>> ", timeout=2)
                return
            except AssertionError:
                continue
        raise AssertionError(f"no >>> after {tries} Enter keys; seen:\n{self.seen.decode(errors='replace')}")

    def close(self, timeout: float = 20) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            os.close(self.master)


@pytest.mark.parametrize("target", ["qemu-m4", "unix"])
def test_repl(state, target):
    need_firmware(target)
    if target != "unix":
        sh(MICRONN + ["board", "start", "--target", target])
        sh(MICRONN + ["deploy", "t.mnb", "--port", target])
    p = Pty(MICRONN + ["repl", "--target", target], state)
    banner = p.expect(r"micronn repl: [^\n]*\n")
    assert re.search(rf"micronn repl: {target}\b.* heap free [\d,]+ B, models: [^\n]*t\.mnb", banner), banner
    if target != "unix":
        p.expect("Use Ctrl-] or Ctrl-x to exit this shell")
        p.prompt()
    else:
        p.expect(">>> ")
    for line, want in [
        ("import micronn", ">>> "),
        ("m = micronn.Model(open('t.mnb', 'rb').read())", ">>> "),
        ("print(m)", r"<Model 't' 1 ops in \(1,8\) int8 out \(1,4\) int8[^\n]*\n[^>]*>>> "),
        (f"print(list(m.run({X!r})))", re.escape(str(Y)) + r"\s+>>> "),
        ("m.run(b'12')", r"ValueError: [^\n]*8[^\n]*\n[^>]*>>> "),
        ("m.run('12345678')", r"TypeError: [^\n]*\n[^>]*>>> "),
    ]:
        p.send(line + "\r")
        p.expect(want)
    if target == "unix":
        p.send("\x04")                  # Ctrl-D: the unix firmware ends
    else:
        p.send("\x1d")                  # Ctrl-]: mpremote leaves
    assert p.close() == 0


def test_exec_streams_and_ctrl_c_leaves_the_board_usable(state):
    need_firmware("qemu-m4")
    start("qemu-m4")
    sh(MICRONN + ["deploy", "t.mnb", "--port", "qemu-m4"])
    r = sh(MICRONN + ["exec", "classify.py", "--target", "qemu-m4"])
    assert f"outputs {Y}" in r.stdout and "using the running board qemu-m4" in r.stderr
    (state / "loop.py").write_text("import time\nprint('looping')\nwhile True:\n    time.sleep_ms(10)\n")
    p = Pty(MICRONN + ["exec", "loop.py", "--port", "qemu-m4"], state)
    p.expect("looping")
    time.sleep(0.5)
    p.send("\x03")
    p.expect("interrupted; qemu-m4 is back at its REPL")
    assert p.close() == 130
    r = sh(MICRONN + ["exec", "classify.py", "--port", "qemu-m4"])
    assert f"outputs {Y}" in r.stdout
    (state / "bad.py").write_text("print('before')\nraise ValueError('from the script')\n")
    r = sh(MICRONN + ["exec", "bad.py", "--port", "qemu-m4"], check=False)
    assert r.returncode == 1 and "before" in r.stdout and "ValueError: from the script" in r.stderr


def test_exec_on_a_board_booted_for_the_command(state):
    need_firmware("qemu-m4")
    (state / "hi.py").write_text("import sys\nprint('hello from', sys.platform)\n")
    r = sh(MICRONN + ["exec", "hi.py", "--target", "qemu-m4"])
    assert "hello from" in r.stdout and "booted qemu-m4" in r.stderr
    assert sessions.sessions() == []


def _wide_fc(n_in: int = 2048, n_out: int = 512) -> bytes:
    """One FULLY_CONNECTED of a million MACs: long enough for a microsecond clock."""
    from micronn.graph import Graph, Op, Tensor

    g = Graph()
    x = g.add(Tensor("x", "int8", (1, n_in), 0.1, 3))
    w = g.const("w", (np.arange(n_out * n_in) % 7 - 3).astype(np.int8).reshape(n_out, n_in))
    m = g.const("m", np.array([1 << 30], np.int32))
    s = g.const("s", np.array([-12], np.int32))
    y = g.add(Tensor("y", "int8", (1, n_out), 0.2, -1))
    g.ops.append(Op("FULLY_CONNECTED", [x, w, -1, m, s], [y], dict(
        input_offset=-3, filter_offset=0, output_offset=-1, act_min=-128, act_max=127,
        batches=1, accum_depth=n_in, out_depth=n_out)))
    g.inputs, g.outputs = [x], [y]
    g.meta = {"NAME": "wide"}
    return blob.write(g)


def test_profile_returns_real_ticks_on_unix(state):
    """The unix port's ticks_cpu() is always 0; profile() counts microseconds there."""
    need_firmware("unix")
    (state / "wide.mnb").write_bytes(_wide_fc())
    (state / "prof.py").write_text(
        "import micronn, time\nm = micronn.Model(open('wide.mnb', 'rb').read())\nx = bytes(range(256)) * 8\n"
        "t0 = time.ticks_us()\nfor _ in range(20):\n    m.run(x)\nrun = time.ticks_diff(time.ticks_us(), t0) / 20\n"
        "total, ops = m.profile(x)\nprint('profile', total, ops, run)\n")
    r = sh(MICRONN + ["exec", "prof.py", "--target", "unix"], timeout=30)
    m = re.search(r"profile (\d+) \((\d+),\) ([\d.]+)", r.stdout)
    assert m, r.stdout
    total, op, run = int(m[1]), int(m[2]), float(m[3])
    assert total > 0 and op > 0, r.stdout
    assert total < 20 * run + 1000, r.stdout      # microseconds, as run() takes


@pytest.mark.parametrize("board", ["qemu-m3", "qemu-m4", "qemu-m7", "qemu-stm32f405", "qemu-rv32"])
def test_the_documented_qemu_command_lines_are_the_launchers(board):
    """docs/boards.md shows each QEMU board's command line, without semihosting:
    the one the launcher runs."""
    from micronn.targets import ROOT, qemu_command

    need_firmware(board)
    documented = [line.split() for line in (ROOT / "docs" / "boards.md").read_text().splitlines()
                  if line.startswith("qemu-system-")]
    ours = [a.replace(str(ROOT) + "/", "") for a in qemu_command(board)]
    assert ours in documented
    assert "enable=off" in ours and not any(a.startswith("-semihosting") and a != "-semihosting-config" for a in ours)
