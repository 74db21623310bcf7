"""`micronn bench`: instruction counts under qemu -icount. No test asserts a
speed; these check that the counts are consistent and the run is the real one."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from micronn import inspect, pack
from micronn.firmware import firmware_file
from micronn.run import sample_inputs

from .conftest import need_shared


@pytest.fixture(scope="module")
def speech():
    path = need_shared("models", "tflm_micro_speech_int8.tflite")
    return pack(str(path)), path


def test_bench_counts_add_up_and_outputs_match_unix(unix, speech, tmp_path):
    if not firmware_file("qemu-m4").exists():
        pytest.skip("qemu-m4 firmware not built: run `make firmware-all`")
    from micronn.bench import bench

    data, _ = speech
    x = sample_inputs(data, 1, seed=3)[0]
    r = bench(data, "qemu-m4", runs=2, x=x)
    info = inspect(data)
    assert r["macs"] == info["macs"] > 0
    assert [op["type"] for op in r["ops"]] == [op["type"] for op in info["ops"]]
    # The ops timed one at a time add up to the uninterrupted pass, within a
    # timer tick (40 instructions) per op for the timer reads themselves.
    per_op = sum(op["instructions"] for op in r["ops"])
    assert abs(per_op - r["kernel_instructions"]) <= 2 * 40 * len(r["ops"]) + 40
    assert 0 <= r["run_overhead_instructions"] < r["instructions"]
    # The board computed the real thing: the same output as the unix firmware.
    unix.link.load(data)
    y, _ = unix.link.run(x.tobytes())
    assert r["output"] == np.frombuffer(y, np.int8).tolist()


def test_bench_cli_json(speech, tmp_path):
    if not firmware_file("qemu-m3").exists():
        pytest.skip("qemu-m3 firmware not built: run `make firmware-all`")
    data, _ = speech
    (tmp_path / "m.mnb").write_bytes(data)
    out = subprocess.run([sys.executable, "-m", "micronn.cli", "bench", str(tmp_path / "m.mnb"), "--target",
                          "qemu-m3", "--json"], capture_output=True, text=True, check=True).stdout
    r = json.loads(out)
    assert r["board"] == "qemu-m3" and isinstance(r["instructions"], int) and r["instructions"] > r["macs"]


def test_bench_refuses_unix():
    from micronn.bench import bench
    from micronn.errors import MicronnError

    with pytest.raises(MicronnError, match="QEMU"):
        bench(b"", "unix")
