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

from .conftest import ROOT, need_firmware, need_shared
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


def test_make_bench_precision_rows(tmp_path):
    """tools/bench.py's rows of one network in int8, 16x8 and int4 weights on qemu-m4: all three are
    produced (each output checked against TFLite Micro's before it is kept), with the same MACs, the
    16x8 blob's activations int16 and the int4 one's weights int4 and its blob smaller; the section
    of docs/benchmarks.md shows each row's count and replaces itself in place."""
    import importlib.util

    need_firmware("qemu-m4")
    root = ROOT
    spec = importlib.util.spec_from_file_location("tools_bench", root / "tools" / "bench.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    rows = tool.precision_rows(out=tmp_path)
    assert list(rows) == ["int8", "16x8", "int4"]
    assert all(r["bit_exact"] and r["board"] == "qemu-m4" for r in rows.values())
    assert len({r["macs"] for r in rows.values()}) == 1 and rows["int8"]["macs"] > 0
    dtypes = {p: {t["dtype"] for t in blob.read((tmp_path / f"dscnn_small_{p}.mnb").read_bytes())["tensors"]}
              for p in rows}
    assert "int16" in dtypes["16x8"] and "int4" not in dtypes["16x8"]
    assert "int4" in dtypes["int4"] and "int16" not in dtypes["int8"] | dtypes["int4"]
    assert rows["int4"]["blob_bytes"] < rows["int8"]["blob_bytes"] and rows["int4"]["int4_saved_bytes"] > 0
    assert rows["16x8"]["arena_bytes"] > rows["int8"]["arena_bytes"] and rows["16x8"]["int16_extra_arena_bytes"] > 0
    section = tool.precision_section(rows)
    for r in rows.values():
        assert sum(f"| {r['instructions']:,} | {r['instructions_per_mac']:.3f} |" in line for line in section) == 1
    doc = (root / "docs" / "benchmarks.md").read_text()
    once = tool.splice_precision(doc, section)
    assert tool.splice_precision(once, section) == once and once.count(tool.PRECISION_TITLE) == 1
    assert "\n".join(section[1:]) in once
    def head(d: str) -> str:
        return d[:d.index(tool.PRECISION_TITLE if tool.PRECISION_TITLE in d else "## Memory")]

    assert head(once) == head(doc) and once[once.index("## Memory"):] == doc[doc.index("## Memory"):]
