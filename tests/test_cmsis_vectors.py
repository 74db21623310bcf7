"""CMSIS-NN's own reference vectors, each run as a single-op blob on the unix
firmware and compared byte for byte. Cases are discovered from index.json: every
case listed runs, or is excluded by a rule below that says why; the counts per
family must come out exact and are printed at the end of the run."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from micronn import blob
from micronn import format as fmt
from micronn.graph import Graph, Op, Tensor

from . import cmsis_s4, cmsis_s16
from .conftest import SUMMARY, need_firmware, need_shared, shared_dir

VEC = shared_dir() / "vectors" / "cmsis-nn"


def _exclusion(case) -> str | None:
    """Why micronn does not run a case, or None. These rules are the only exclusions."""
    return None


def _index():
    """(cases to run, [(case, reason)] excluded, cases neither runnable nor excluded)."""
    index = VEC / "index.json"
    if not index.exists():
        return [], [], []
    run, excluded, unknown = [], [], []
    for c in json.loads(index.read_text())["cases"]:
        reason = _exclusion(c)
        if reason:
            excluded.append((c, reason))
        elif c["family"] in BUILD:
            run.append(c)
        else:
            unknown.append(c)
    return run, excluded, unknown


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
    g = Graph()
    shape = (p["num_rows"], p["row_size"])
    x = g.add(Tensor("input", "int8", shape, 1.0, 0))
    if p["output_dtype"] == "int16":       # TFLite's int8 -> int16 softmax
        y = g.add(Tensor("output", "int16", shape, 1 / 65536, -32768))
    else:
        y = g.add(Tensor("output", "int8", shape, 1 / 256, -128))
    kind = "SOFTMAX_S8_S16" if p["output_dtype"] == "int16" else "SOFTMAX"
    g.ops.append(Op(kind, [x], [y], dict(
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
    taps = params["k_h"] * params["k_w"] * p["input_c"] // params["groups"] if kind == "CONV_2D" else 0
    scratch = fmt.CONV_SCRATCH_PER_TAP * taps
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


CASES, EXCLUDED, UNKNOWN = _index()
EXPECTED = Counter(f"{c['group']}/{c['family']}" for c in CASES)     # per group and family


@pytest.mark.parametrize("case", CASES, ids=[f"{c['family']}/{c['case']}" for c in CASES])
def test_cmsis_case(unix, case):
    _check(unix, case)
    RAN[f"{case['group']}/{case['family']}"] += 1


def _check(target, case):
    p, a = _load(case)
    g, x = {"s4": cmsis_s4.BUILD, "s16": cmsis_s16.BUILD}.get(case["group"], BUILD)[case["family"]](p, a)
    dtype_in = np.dtype("<i2") if case["group"] == "s16" else np.dtype(np.int8)      # s16: int16 in and out
    dtype = np.dtype("<i2") if a["output_ref"].dtype == np.int16 else np.dtype(np.int8)     # and softmax_s8_s16
    want = a["output_ref"].astype(dtype).reshape(-1)
    # Convolution and ADD twice: the fast kernels, and the loops a blob without scratch gets.
    variants = [g] + [_without_scratch(g)] * any(op.scratch for op in g.ops)
    for v in variants:
        target.link.load(blob.write(v))
        y, _ = target.link.run(np.ascontiguousarray(x, dtype=dtype_in).tobytes())
        got = np.frombuffer(y, dtype=dtype)
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


def _counts(ran: Counter) -> str:
    return ", ".join(f"{f} {ran[f]}/{EXPECTED[f]}" for f in sorted(EXPECTED))


def test_every_indexed_case_runs_or_is_excluded():
    """A case index.json lists is either run or excluded by a rule: a new family fails here."""
    cases = json.loads(need_shared("vectors", "cmsis-nn", "index.json").read_text())["cases"]
    assert len(CASES) + len(EXCLUDED) == len(cases)
    assert not UNKNOWN, "cases of a family this test cannot build: " + ", ".join(
        f"{c['group']}/{c['family']}/{c['case']}" for c in UNKNOWN)
    assert CASES, "index.json lists no case micronn runs"


@pytest.mark.parametrize("board", ["qemu-m4", "qemu-m3"])
def test_cmsis_cases_on_board(board):
    """Every case on a board with the DSP kernels (M4) and one without (M3)."""
    from micronn.targets import open_target

    need_shared("vectors", "cmsis-nn", "index.json")
    need_firmware(board)
    done: Counter = Counter()
    with open_target(board) as t:
        for case in CASES:
            _check(t, case)
            done[f"{case['group']}/{case['family']}"] += 1
    SUMMARY.append(f"CMSIS-NN cases bit-exact on {board}: {_counts(done)}")
    assert done == EXPECTED


def test_cmsis_case_count(request):
    """Per-family counts of the unix run against index.json; runs last in this module."""
    need_shared("vectors", "cmsis-nn", "index.json")
    selected = sum("::test_cmsis_case[" in item.nodeid for item in request.session.items)
    if selected < len(CASES):
        pytest.skip(f"{selected} of {len(CASES)} cases selected: the counts need every case")
    reasons = Counter(reason for _, reason in EXCLUDED)
    SUMMARY.append(f"CMSIS-NN cases bit-exact on unix (of index.json): {_counts(RAN)}; "
                   f"{sum(RAN.values())} of {len(CASES)} run")
    for reason, n in sorted(reasons.items()):
        names = [f"{c['group']}/{c['family']}/{c['case']}" for c, r in EXCLUDED if r == reason]
        SUMMARY.append(f"  excluded {n}: {reason}" + (f" ({', '.join(names)})" if n <= 3 else ""))
    short = {f: f"{RAN[f]} of {n}" for f, n in EXPECTED.items() if RAN[f] != n}
    assert not short, f"families that ran fewer cases than index.json lists: {short}"
