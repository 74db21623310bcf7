"""Shared fixtures: the ../shared data folder and a running unix firmware.

Under `make test` (MICRONN_STRICT=1) everything the suite needs must be there: a
missing shared folder, data file or firmware fails the test instead of skipping it.
A developer running one test file without ../shared gets a skip that says why.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from micronn.targets import UnixTarget, firmware_path

ROOT = Path(__file__).resolve().parents[1]
STRICT = os.environ.get("MICRONN_STRICT") == "1"

# Lines for the end of the run (pytest_terminal_summary): what ran, counted.
SUMMARY: list[str] = []


def shared_dir() -> Path:
    return Path(os.environ.get("MICRONN_SHARED", ROOT.parent / "shared"))


def missing(what: str) -> None:
    """Skip for `what` is missing; under make test (MICRONN_STRICT=1), fail."""
    if STRICT:
        pytest.fail(f"{what} (make test needs it: MICRONN_STRICT=1)", pytrace=False)
    pytest.skip(what)


def need_shared(*parts: str) -> Path:
    p = shared_dir().joinpath(*parts)
    if not p.exists():
        missing(f"{p} is absent (set MICRONN_SHARED to the shared data folder)")
    return p


def need_firmware(board: str) -> Path:
    """The firmware file of a board (unix: the executable)."""
    if board == "unix":
        p = firmware_path("unix")
    else:
        from micronn.firmware import firmware_file

        p = firmware_file(board)
    if not p.exists():
        missing(f"{board} firmware not built: run `make firmware-all`")
    return p


def pytest_sessionstart(session):
    if STRICT and not shared_dir().is_dir():
        pytest.exit(f"MICRONN_SHARED={shared_dir()} is missing: make test needs the shared test data "
                    "(CMSIS-NN vectors, real models)", returncode=1)


def pytest_terminal_summary(terminalreporter):
    if SUMMARY:
        terminalreporter.section("micronn: what ran")
        for line in SUMMARY:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def unix():
    """One unix firmware process running the inference server."""
    need_firmware("unix")
    t = UnixTarget()
    yield t
    t.close()


def micropython(script: str, cwd: Path, timeout: float = 60) -> str:
    """Run a script on the unix firmware in cwd; return stdout, fail on a crash."""
    import subprocess

    exe = need_firmware("unix")
    p = subprocess.run([str(exe), "-c", script], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, f"firmware exited {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}"
    return p.stdout
