"""The kernels' one-step requantization against TFLite's two roundings,
compiled for the host: edge values, every shift, 5 million random cases."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_requantize_equals_reference(tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        pytest.skip("no C compiler")
    exe = tmp_path / "test_requant"
    subprocess.run([cc, "-O2", "-Wall", "-Wextra", "-Werror", "-fsanitize=undefined", "-fno-sanitize-recover",
                    f"-I{ROOT / 'cmodule' / 'kernels'}", "-o", str(exe), str(ROOT / "tests" / "c" / "test_requant.c")],
                   check=True)
    r = subprocess.run([str(exe), "5000000"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip().endswith("0 differ"), r.stdout
