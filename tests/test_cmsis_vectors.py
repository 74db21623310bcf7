"""CMSIS-NN's own reference vectors, each run as a single-op blob on the unix
firmware and compared byte for byte. Cases are discovered from index.json."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from micronn import blob
from micronn import format as fmt
from micronn.graph import Graph, Op, Tensor

from .conftest import shared_dir

VEC = shared_dir() / "vectors" / "cmsis-nn"
FAMILIES = ("fully_connected", "softmax", "convolve", "depthwise_conv", "avgpool", "maxpool", "elementwise_add",
            "elementwise_mul")


def _cases():
    index = VEC / "index.json"
    if not index.exists():
        return []
    cases = json.loads(index.read_text())["cases"]
    return [c for c in cases if c["group"] == "s8" and c["family"] in FAMILIES]


CASES = _cases()
RAN: Counter = Counter()


def _load(case):
    meta = json.loads((VEC / case["json"]).read_text())
    arrays = np.load(VEC / case["npz"])
    return meta["parameters"], {k: arrays[k] for k in arrays.files}


def _fully_connected(p, a):
    g = Graph()
    n, depth, outs = p["input_n"], p["accumulation_depth"], p["output_c"]
    x = g.add(Tensor("input", "int8", (n, depth), 1.0, 0))
    w = g.const("weights", a["weights"].astype(np.int8).reshape(outs, depth))
    b = -1 if p.get("bias_is_null") else g.const("bias", a["bias"].astype(np.int32))
    if p["quantization"] == "per_channel":
        mult, shift = a["output_mult"].astype(np.int32), a["output_shift"].astype(np.int32)
    else:
        mult = np.array([p["output_multiplier"]], np.int32)
        shift = np.array([p["output_shift"]], np.int32)
    y = g.add(Tensor("output", "int8", (n, outs), 1.0, 0))
    g.ops.append(Op("FULLY_CONNECTED", [x, w, b, g.const("mult", mult), g.const("shift", shift)], [y], dict(
        input_offset=p["input_offset"], filter_offset=p["filter_offset"], output_offset=p["output_offset"],
        act_min=p["activation_min"], act_max=p["activation_max"], batches=n, accum_depth=depth,
        out_depth=outs)))
    g.inputs, g.outputs = [x], [y]
    return g, a["input"]


def _softmax(p, a):
    if p["output_dtype"] != "int8":
        pytest.skip("int8 -> int16 softmax waits for int16 support")
    g = Graph()
    shape = (p["num_rows"], p["row_size"])
    x = g.add(Tensor("input", "int8", shape, 1.0, 0))
    y = g.add(Tensor("output", "int8", shape, 1 / 256, -128))
    g.ops.append(Op("SOFTMAX", [x], [y], dict(
        input_mult=p["input_multiplier"], input_left_shift=p["input_left_shift"], diff_min=p["diff_min"],
        rows=shape[0], row_size=shape[1])))
    g.inputs, g.outputs = [x], [y]
    return g, a["input"]


def _geom(p, out_c):
    return dict(batches=p["input_n"], in_h=p["input_h"], in_w=p["input_w"], in_c=p["input_c"], out_h=p["output_h"],
                out_w=p["output_w"], out_c=out_c, k_h=p["filter_h"], k_w=p["filter_w"], stride_h=p["stride_y"],
                stride_w=p["stride_x"], dil_h=p.get("dilation_y", 1), dil_w=p.get("dilation_x", 1),
                pad_top=p["pad_y"], pad_left=p["pad_x"])


def _conv_like(p, a, kind):
    g = Graph()
    out_c = p["output_c"]
    x = g.add(Tensor("input", "int8", (p["input_n"], p["input_h"], p["input_w"], p["input_c"]), 1.0, 0))
    w = g.const("weights", a["weights"].astype(np.int8))
    b = -1 if p.get("bias_is_null") else g.const("bias", a["bias"].astype(np.int32).reshape(-1))
    y = g.add(Tensor("output", "int8", (p["output_n"], p["output_h"], p["output_w"], out_c), 1.0, 0))
    params = dict(_geom(p, out_c), input_offset=p["input_offset"], output_offset=p["output_offset"],
                  act_min=p["activation_min"], act_max=p["activation_max"])
    if kind == "CONV_2D":
        params["groups"] = p.get("groups", 1)
    else:
        params["depth_mult"] = p.get("ch_mult", 1)
    mult, shift = a["output_mult"].astype(np.int32), a["output_shift"].astype(np.int32)
    # as the packer does: room for the im2col columns of the fast convolution
    scratch = 4 * params["k_h"] * params["k_w"] * p["input_c"] // params["groups"] if kind == "CONV_2D" else 0
    g.ops.append(Op(kind, [x, w, b, g.const("mult", mult), g.const("shift", shift)], [y], params, scratch=scratch))
    g.inputs, g.outputs = [x], [y]
    return g, a["input"]


def _pool(p, a, kind):
    g = Graph()
    shape_in = (p["input_n"], p["input_h"], p["input_w"], p["input_c"])
    x = g.add(Tensor("input", "int8", shape_in, 1.0, 0))
    y = g.add(Tensor("output", "int8", (p["output_n"], p["output_h"], p["output_w"], p["output_c"]), 1.0, 0))
    g.ops.append(Op(kind, [x], [y], dict(_geom(p, p["output_c"]), act_min=p["activation_min"],
                                         act_max=p["activation_max"])))
    g.inputs, g.outputs = [x], [y]
    return g, a["input"]


def _elementwise(p, a, kind):
    g = Graph()
    n = p["block_size"]
    x1 = g.add(Tensor("input1", "int8", (1, n), 1.0, 0))
    x2 = g.const("input2", a["input2"].astype(np.int8).reshape(1, n))   # a constant operand in the blob
    y = g.add(Tensor("output", "int8", (1, n), 1.0, 0))
    params = dict(dims=[1, 1, 1, n], stride1=[0, 0, 0, 1], stride2=[0, 0, 0, 1],
                  input1_offset=p["input1_offset"], input2_offset=p["input2_offset"],
                  output_offset=p["output_offset"], act_min=p["activation_min"], act_max=p["activation_max"],
                  output_mult=p["output_multiplier"], output_shift=p["output_shift"])
    if kind == "ADD":
        params.update(left_shift=p["left_shift"], input1_mult=p["input1_multiplier"],
                      input1_shift=p["input1_shift"], input2_mult=p["input2_multiplier"],
                      input2_shift=p["input2_shift"])
    scratch = fmt.ADD_SCRATCH if kind == "ADD" else 0     # the rescaling tables, as the packer gives large ADDs
    g.ops.append(Op(kind, [x1, x2], [y], params, scratch=scratch))
    g.inputs, g.outputs = [x1], [y]
    return g, a["input1"]


BUILD = {
    "fully_connected": _fully_connected,
    "softmax": _softmax,
    "convolve": lambda p, a: _conv_like(p, a, "CONV_2D"),
    "depthwise_conv": lambda p, a: _conv_like(p, a, "DEPTHWISE_CONV_2D"),
    "avgpool": lambda p, a: _pool(p, a, "AVERAGE_POOL_2D"),
    "maxpool": lambda p, a: _pool(p, a, "MAX_POOL_2D"),
    "elementwise_add": lambda p, a: _elementwise(p, a, "ADD"),
    "elementwise_mul": lambda p, a: _elementwise(p, a, "MUL"),
}


@pytest.mark.skipif(not CASES, reason=f"no CMSIS-NN vectors under {VEC}")
@pytest.mark.parametrize("case", CASES, ids=[f"{c['family']}/{c['case']}" for c in CASES])
def test_cmsis_case(unix, case):
    _check(unix, case)
    RAN[case["family"]] += 1


def _check(target, case):
    p, a = _load(case)
    g, x = BUILD[case["family"]](p, a)
    want = a["output_ref"].astype(np.int8).reshape(-1)
    # Convolution and ADD twice: the fast kernels, and the loops a blob without scratch gets.
    variants = [g] + [_without_scratch(g)] * any(op.scratch for op in g.ops)
    for v in variants:
        target.link.load(blob.write(v))
        y, _ = target.link.run(np.ascontiguousarray(x, dtype=np.int8).tobytes())
        got = np.frombuffer(y, dtype=np.int8)
        bad = np.flatnonzero(got != want)
        kernel = "with scratch" if any(op.scratch for op in v.ops) else "without scratch"
        assert bad.size == 0, (f"{case['family']}/{case['case']} ({kernel}): {bad.size} of {want.size} outputs "
                               f"differ, first at {bad[:5]}: {got[bad[:5]]} != {want[bad[:5]]}")


def _without_scratch(g):
    import copy

    h = copy.deepcopy(g)
    for op in h.ops:
        op.scratch = 0
    return h


@pytest.mark.skipif(not CASES, reason=f"no CMSIS-NN vectors under {VEC}")
@pytest.mark.parametrize("board", ["qemu-m4", "qemu-m3"])
def test_cmsis_cases_on_board(board):
    """Every case on a board with the DSP kernels (M4) and one without (M3)."""
    from micronn.firmware import firmware_file
    from micronn.targets import open_target

    if not firmware_file(board).exists():
        pytest.skip(f"{board} firmware not built: run `make firmware-all`")
    done = 0
    with open_target(board) as t:
        for case in CASES:
            try:
                _check(t, case)
            except pytest.skip.Exception:
                continue            # a case the unix run reports as skipped
            done += 1
    print(f"\n{board}: {done} CMSIS-NN s8 cases bit-exact")
    assert done >= len(CASES) - 1


def test_cmsis_case_count():
    """Print what ran; runs last in this module."""
    if not CASES:
        pytest.skip(f"no CMSIS-NN vectors under {VEC}")
    print(f"\nCMSIS-NN s8 cases bit-exact: {dict(RAN)} of {dict(Counter(c['family'] for c in CASES))}")
    assert sum(RAN.values()) > 0
