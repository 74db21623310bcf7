"""docs/getting-started.md runs as written (issue 12, part 5).

The page's fenced blocks carry their role in the info string:

``sh setup``  the once-only set-up: ``make setup`` and ``make firmware BOARD=qemu-m4``
              are not run here (they take minutes): the test needs the firmware they
              build and skips (fails under MICRONN_STRICT=1) without it; the rest of
              the block (activating .venv, making the work folder) runs
``sh``        commands, run in order in one bash process (a user's terminal: $PORT
              and the current folder carry over), each block stopping at its first
              failing command
``text``      what the ``sh`` block before it prints: each line, ``...`` matching
              anything, must be a line of that output, in order
``python F``  a file the user saves as F in the work folder
``sh repl``   a REPL command, run on a real pty; the ``pycon`` block after it is the
              session: the lines before the first ``>>>`` are the banner, then each
              ``>>>`` line is typed and what the board answers must be the lines
              below it (``...`` matching anything)
``sh usb``    real-board commands, not run: exactly the blocks of the page's
              "On a real board on USB" section

The work folder and the boards' state folder are temporary (HOME and
MICRONN_STATE_DIR point there); every board the page starts is stopped at the end.
"""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import time
import uuid
from pathlib import Path

from micronn import sessions

from .conftest import ROOT, need_firmware
from .test_workspace import Pty

PAGE = ROOT / "docs" / "getting-started.md"
USB_SECTION = "On a real board on USB"
ROLES = {"sh setup", "sh", "text", "sh repl", "pycon", "sh usb"}
# The set-up lines that take minutes, and what stands in for them here.
SLOW_SETUP = {"make setup": "the .venv this test runs in", "make firmware BOARD=qemu-m4": "build/qemu-m4"}


class Block:
    def __init__(self, info: str, text: str, section: str, line: int):
        self.info, self.text, self.section, self.line = info, text, section, line

    @property
    def role(self) -> str:
        return "python" if self.info.startswith("python ") else self.info

    def __repr__(self) -> str:
        return f"```{self.info} block at {PAGE.name}:{self.line}"


def blocks() -> list[Block]:
    """The page's fenced blocks, with the ## section each is in."""
    found, section, fence = [], "", None
    for n, line in enumerate(PAGE.read_text().splitlines(), 1):
        if fence is None:
            if line.startswith("## "):
                section = line[3:].strip()
            elif line.startswith("```"):
                fence, body = (line[3:].strip(), n), []
        elif line.startswith("```"):
            found.append(Block(fence[0], "\n".join(body), section, fence[1]))
            fence = None
        else:
            body.append(line)
    assert fence is None, f"unclosed block at line {fence[1]}"
    return found


def commands(text: str) -> list[str]:
    """A shell block's commands, without comments and blank lines."""
    return [c for c in (re.sub(r"\s+#.*$", "", s).strip() for s in text.splitlines()) if c and c[0] != "#"]


def matches(want: str, got: str) -> bool:
    """A line of the page against a line of output: `...` matches anything."""
    pattern = ".*".join(re.escape(p) for p in want.rstrip().split("..."))
    return re.fullmatch(pattern, got.rstrip()) is not None


def check_output(want: str, got: str, where) -> None:
    """Every line of the page's output block is a line of the output, in order."""
    lines = got.splitlines()
    i = 0
    for w in want.splitlines():
        while i < len(lines) and not matches(w, lines[i]):
            i += 1
        assert i < len(lines), f"{where}: no line {w!r} (in order) in the output:\n{got}"
        i += 1


class Shell:
    """One bash process, like the user's terminal: each block runs with `set -e` in it."""

    def __init__(self, cwd: Path, env: dict):
        self.dir = Path(env["HOME"])
        self.proc = subprocess.Popen(["bash", "--noprofile", "--norc"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=cwd, env=env,
                                     start_new_session=True)
        self.n = 0

    def run(self, script: str, timeout: float = 120) -> str:
        self.n += 1
        path = self.dir / f".block{self.n}.sh"
        path.write_text(script + "\n")
        marker = f"@@{uuid.uuid4().hex}@@"
        self.proc.stdin.write(f"set -e\nsource {path}\nset +e\necho {marker}\n".encode())
        self.proc.stdin.flush()
        out, deadline = b"", time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while marker.encode() not in out:
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                self.close()
                raise AssertionError(f"no end within {timeout} s of:\n{script}\noutput:\n{out.decode()}")
            chunk = os.read(fd, 65536)
            if not chunk:
                raise AssertionError(f"a command failed in:\n{script}\noutput:\n{out.decode(errors='replace')}")
            out += chunk
        return out.decode(errors="replace").split(marker)[0]

    def cwd(self) -> Path:
        return Path(self.run("pwd").strip())

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 9)
        self.proc.wait()


def test_the_page_marks_exactly_the_usb_section_as_not_run():
    bs = blocks()
    assert {b.role for b in bs} <= ROLES | {"python"}, [b for b in bs if b.role not in ROLES | {"python"}]
    usb = [b for b in bs if b.info == "sh usb"]
    in_section = [b for b in bs if b.section == USB_SECTION]
    assert usb and usb == in_section, (usb, in_section)
    assert all("/dev/tty" in b.text for b in usb if "deploy" in b.text)
    setup = [b for b in bs if b.role == "sh setup"]
    assert len(setup) == 1 and set(SLOW_SETUP) <= set(commands(setup[0].text))
    for b, after in zip(bs, bs[1:], strict=False):         # a REPL session follows each REPL command
        assert (b.role == "sh repl") == (after.role == "pycon"), (b, after)


def repl_session(command: str, session: str, cwd: Path, env: dict) -> None:
    """Run the REPL command on a pty, type the session's >>> lines and compare the answers."""
    lines = session.splitlines()
    first = next(i for i, s in enumerate(lines) if s.startswith(">>> "))
    path = f"{Path(sys.executable).parent}:{env['PATH']}"      # as `. .venv/bin/activate` left the shell
    p = Pty(["env", f"PATH={path}", "bash", "-c", command], cwd)
    try:
        shown = p.expect(r"Use Ctrl-\] or Ctrl-x to exit this shell[^\n]*\n", timeout=60)
        check_output("\n".join(lines[:first]), shown.replace("\r", ""), "REPL banner")
        p.prompt()
        i = first
        while i < len(lines):
            typed = lines[i][4:]
            j = i + 1
            while j < len(lines) and not lines[j].startswith(">>> "):
                j += 1
            want = lines[i + 1:j]
            p.send(typed + "\r")
            got = p.expect(r"\n>>> ", timeout=30).replace("\r", "").split("\n")
            got = got[1:-1]                 # the echo of the typed line; the next prompt
            assert len(got) == len(want) and all(matches(w, g) for w, g in zip(want, got, strict=True)), \
                f"REPL: {typed!r} answered {got}, the page says {want}"
            i = j
        p.send("\x1d")                      # Ctrl-]: mpremote leaves, the board keeps running
        assert p.close() == 0
    finally:
        if p.proc.poll() is None:
            p.proc.kill()
            p.proc.wait()


def test_getting_started_runs_as_written(tmp_path, monkeypatch):
    need_firmware("qemu-m4")                # what `make firmware BOARD=qemu-m4` builds
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env.update(HOME=str(home), MICRONN_STATE_DIR=str(tmp_path / "state"), TF_CPP_MIN_LOG_LEVEL="2")
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    shell = Shell(ROOT, env)
    skipped, last_output, repl_command = [], None, None
    try:
        for b in blocks():
            t0 = time.monotonic()
            if b.info == "sh setup":
                cmds = commands(b.text)
                skipped = [c for c in cmds if c in SLOW_SETUP]
                # the firmware is built (need_firmware above) and .venv is the interpreter running this test
                assert Path(sys.executable).parent.parent.resolve() == (ROOT / ".venv").resolve() or \
                    not (ROOT / ".venv").exists(), "run this test with the checkout's .venv"
                shell.run("\n".join(c for c in cmds if c not in SLOW_SETUP))
            elif b.info == "sh":
                last_output = shell.run(b.text)
            elif b.info == "text":
                assert last_output is not None, b
                check_output(b.text, last_output, b)
            elif b.role == "python":
                (shell.cwd() / b.info.split()[1]).write_text(b.text + "\n")
            elif b.info == "sh repl":
                (repl_command,) = commands(b.text)
            elif b.info == "pycon":
                repl_session(repl_command, b.text, shell.cwd(), env)
            print(f"{b!r}: {time.monotonic() - t0:.1f} s")
        assert skipped == list(SLOW_SETUP), skipped
        print(f"not run (their results are here already): {', '.join(skipped)}")
    finally:
        shell.close()
        for s in sessions.sessions():
            sessions.stop(s["name"])
