"""`micronn bench`: instruction counts under qemu -icount. No test asserts a
speed; these check that the counts are consistent and the run is the real one."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from micronn import blob, inspect, pack
from micronn.bench import bench
from micronn.packer import build_graph
from micronn.run import sample_inputs

from .conftest import need_firmware, need_shared
from .test_cmsis_vectors import _without_scratch


@pytest.fixture(scope="module")
def speech():
    path = need_shared("models", "tflm_micro_speech_int8.tflite")
    return pack(str(path)), path


def test_bench_counts_add_up_and_outputs_match_unix(unix, speech, tmp_path):
    """On qemu-m4: per-op counts add up to the total, no op does its MACs in fewer instructions
    than the core can (SMLAD: two per instruction), the output is the unix firmware's, and the
    convolution runs its fast variant: without the scratch the packer reserves, the same blob's
    convolution costs more, the other ops the same, and the output does not change."""
    need_firmware("qemu-m4")
    data, path = speech
    x = sample_inputs(data, 1, seed=3)[0]
    r = bench(data, "qemu-m4", runs=2, x=x)
    info = inspect(data)
    assert r["macs"] == info["macs"] > 0
    assert [op["type"] for op in r["ops"]] == [op["type"] for op in info["ops"]]
    # The ops timed one at a time add up to the uninterrupted pass, within a
    # timer tick (40 instructions) per op for the timer reads themselves.
    tick = r["resolution_instructions"]
    per_op = sum(op["instructions"] for op in r["ops"])
    assert abs(per_op - r["kernel_instructions"]) <= 2 * tick * len(r["ops"]) + tick
    assert 0 <= r["run_overhead_instructions"] < r["instructions"]
    assert r["instructions"] == r["kernel_instructions"] + r["run_overhead_instructions"]
    for op in r["ops"]:
        assert op["instructions"] >= op["macs"] / 2, op
    # The board computed the real thing: the same output as the unix firmware.
    unix.link.load(data)
    y, _ = unix.link.run(x.tobytes())
    assert r["output"] == np.frombuffer(y, np.int8).tolist()

    slow = bench(blob.write(_without_scratch(build_graph(path.read_bytes()))), "qemu-m4", runs=1, x=x)
    assert slow["output"] == r["output"]
    for fast_op, slow_op in zip(r["ops"], slow["ops"], strict=True):
        if fast_op["type"] == "CONV_2D":
            assert fast_op["instructions"] < slow_op["instructions"], (fast_op, slow_op)
        else:
            assert abs(fast_op["instructions"] - slow_op["instructions"]) <= 2 * tick, (fast_op, slow_op)


def test_bench_cli_json(speech, tmp_path):
    """`micronn bench --json` on qemu-m3: the counts of a second boot (the library call) are the
    same within a tick per op, and no op does its MACs in fewer instructions than it has MACs
    (the M3 has no SIMD multiply-accumulate)."""
    need_firmware("qemu-m3")
    data, _ = speech
    (tmp_path / "m.mnb").write_bytes(data)
    out = subprocess.run([sys.executable, "-m", "micronn.cli", "bench", str(tmp_path / "m.mnb"), "--target",
                          "qemu-m3", "--json"], capture_output=True, text=True, check=True).stdout
    r = json.loads(out)
    assert r["board"] == "qemu-m3" and r["macs"] == inspect(data)["macs"]
    again = bench(data, "qemu-m3", runs=2)
    tick = again["resolution_instructions"]
    assert abs(r["instructions"] - again["instructions"]) <= tick
    assert r["output"] == again["output"]
    for op, op2 in zip(r["ops"], again["ops"], strict=True):
        assert abs(op["instructions"] - op2["instructions"]) <= tick, (op, op2)
        assert op["instructions"] >= op["macs"], op


def test_bench_refuses_unix():
    from micronn.errors import MicronnError

    with pytest.raises(MicronnError, match="QEMU"):
        bench(b"", "unix")
