"""Shared fixtures: the ../shared data folder and a running unix firmware.

Under `make test` (MICRONN_STRICT=1) everything the suite needs must be there: a
missing shared folder, data file or firmware fails the test instead of skipping it.
A developer running one test file without ../shared gets a skip that says why.
"""

from __future__ import annotations

import os
import shutil
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


# The module's two builds: the firmware's user C module ("built-in", boards/unix)
# and the native module micronn-x64.mpy on firmware without it ("native",
# boards/unix-stock, `make natmod`). Tests that take `impl` run on both.
IMPLS = ["built-in", "native"]


def native_module(arch: str = "x64") -> Path:
    from micronn.natmod import mpy_file

    p = mpy_file(arch)
    if not p.exists():
        missing(f"{p} not built: run `make natmod`")
    return p


def impl_firmware(impl: str) -> Path:
    return need_firmware("unix" if impl == "built-in" else "unix-stock")


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


@pytest.fixture(scope="session")
def unix_native(tmp_path_factory):
    """The inference server on the unix firmware without micronn: micronn.mpy and
    device/ imported from files (MICROPYPATH)."""
    t = native_unix_target(tmp_path_factory.mktemp("natmod"))
    yield t
    t.close()


def native_unix_target(d: Path) -> UnixTarget:
    """The inference server on boards/unix-stock, micronn.mpy copied into d."""
    exe = need_firmware("unix-stock")
    shutil.copyfile(native_module(), d / "micronn.mpy")
    return UnixTarget(exe, env={**os.environ, "MICROPYPATH": f"{d}:{ROOT / 'device'}"})


@pytest.fixture(params=IMPLS)
def unix_impl(request):
    """The inference server with the built-in module, then with the native one."""
    return request.getfixturevalue("unix" if request.param == "built-in" else "unix_native")


def micropython(script: str, cwd: Path, timeout: float = 60, impl: str = "built-in") -> str:
    """Run a script on the unix firmware in cwd; return stdout, fail on a crash.
    impl "native": the firmware without the module, micronn.mpy copied into cwd."""
    import subprocess

    exe = impl_firmware(impl)
    if impl == "native":
        shutil.copyfile(native_module(), Path(cwd) / "micronn.mpy")
    p = subprocess.run([str(exe), "-c", script], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, f"firmware exited {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}"
    return p.stdout
