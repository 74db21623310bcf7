"""Shared fixtures: the ../shared data folder and a running unix firmware."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from micronn.targets import UnixTarget, firmware_path

ROOT = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    return Path(os.environ.get("MICRONN_SHARED", ROOT.parent / "shared"))


def need_shared(*parts: str) -> Path:
    p = shared_dir().joinpath(*parts)
    if not p.exists():
        pytest.skip(f"{p} is absent (set MICRONN_SHARED to the shared data folder)")
    return p


@pytest.fixture(scope="session")
def unix():
    """One unix firmware process running the inference server."""
    if not firmware_path("unix").exists():
        pytest.skip("unix firmware not built: run `make firmware`")
    t = UnixTarget()
    yield t
    t.close()


def micropython(script: str, cwd: Path, timeout: float = 60) -> str:
    """Run a script on the unix firmware in cwd; return stdout, fail on a crash."""
    import subprocess

    exe = firmware_path("unix")
    if not exe.exists():
        pytest.skip("unix firmware not built: run `make firmware`")
    p = subprocess.run([str(exe), "-c", script], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, f"firmware exited {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}"
    return p.stdout
