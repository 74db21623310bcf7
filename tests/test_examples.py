"""examples/: every examples/NAME/run.py runs end to end in its quick mode and ends
with the board's accuracy equal to TFLite Micro's on the same samples (the example
itself exits 1 when the board's outputs are not TFLite Micro's byte for byte, 2 when
something it needs, data or firmware, is missing: a skip here, a failure under make
test), and `make example` names the examples when NAME is missing or unknown."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT, missing

EXAMPLES = sorted(p.parent.name for p in (ROOT / "examples").glob("*/run.py"))
# The closing line every example prints (examples/README.md).
RESULT = re.compile(r"board accuracy (\d+(?:\.\d+)?)% on (\S+), "
                    r"TFLite Micro accuracy (\d+(?:\.\d+)?)% on the same (\d+) samples")


def test_examples_are_found():
    assert {"digits", "cifar10-cmsis", "fire-module"} <= set(EXAMPLES)


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_quick(name, tmp_path):
    for module in ("tensorflow", "keras", "sklearn", "tflite_micro"):
        if importlib.util.find_spec(module) is None:
            missing(f"the examples need {module} (pip install 'micronn[tf]')")
    out = tmp_path / "out"
    env = {**os.environ, "MICRONN_STATE_DIR": str(tmp_path / "state")}
    r = subprocess.run([sys.executable, str(ROOT / "examples" / name / "run.py"), "--quick", "--out", str(out)],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    tail = f"\nstdout (end):\n{r.stdout[-4000:]}\nstderr (end):\n{r.stderr[-3000:]}"
    if r.returncode == 2:       # the examples' status for "something it needs is missing" (data, firmware)
        missing(f"examples/{name}: {(r.stderr.strip().splitlines() or ['exit status 2'])[-1]}")
    assert r.returncode == 0, f"{name} exited {r.returncode}{tail}"
    last = r.stdout.strip().splitlines()[-1]
    m = RESULT.fullmatch(last)
    assert m, f"{name} did not end with the accuracy line{tail}"
    board_acc, board, tflm_acc, n = m.groups()
    assert board_acc == tflm_acc and int(n) > 0
    assert board.startswith("qemu-") or board in ("unix", "unix-asan"), board
    assert list(out.glob("*.mnb")), f"{name} wrote no blob into --out"
    # the background boards it started are stopped (their records: ours, or the example's own under --out)
    assert not list((tmp_path / "state").glob("*.json")) + list((out / "boards").glob("*.json"))


def _make_example(*args):
    return subprocess.run(["make", "--no-print-directory", "-s", "example", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("args", [(), ("NAME=no-such-example",)])
def test_make_example_names_the_examples(args):
    r = _make_example(*args)
    assert r.returncode != 0
    err = r.stderr.strip().splitlines()
    assert err and err[0].startswith("make example:"), r.stderr
    for name in EXAMPLES:
        assert name in err[0]
    if args:
        assert "no-such-example" in err[0]
