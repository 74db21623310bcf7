"""Builders of one-op blobs for CMSIS-NN's s4 cases (int8 activations, int4 weights), used by
tests/test_cmsis_vectors.py: FULLY_CONNECTED_S4, CONV_2D_S4 and DEPTHWISE_CONV_2D_S4 with the weights
packed here from the vectors' unpacked values (and checked against CMSIS-NN's own packed bytes)."""

from __future__ import annotations

import json

import numpy as np

from micronn import blob
from micronn import format as fmt
from micronn.graph import Graph, Op, Tensor


def _weights(g: Graph, a, shape) -> int:
    w = a["weights"].astype(np.int8).reshape(shape)
    i = g.const_int4("weights", w)
    # the blob's packing is CMSIS-NN's (and TFLite's): the same bytes
    assert bytes(g.tensors[i].data) == a["weights_packed_s4"].astype(np.int8).tobytes(), "int4 packing differs"
    return i


def _fully_connected(p, a):
    g = Graph()
    n, depth, outs = p["input_n"], p["accumulation_depth"], p["output_c"]
    x = g.add(Tensor("input", "int8", (n, depth), 1.0, 0))
    w = _weights(g, a, (outs, depth))
    b = -1 if p.get("bias_is_null") else g.const("bias", a["bias"].astype(np.int32))
    if p["quantization"] == "per_channel":
        mult, shift = a["output_mult"].astype(np.int32), a["output_shift"].astype(np.int32)
    else:
        mult = np.array([p["output_multiplier"]], np.int32)
        shift = np.array([p["output_shift"]], np.int32)
    y = g.add(Tensor("output", "int8", (n, outs), 1.0, 0))
    g.ops.append(Op("FULLY_CONNECTED_S4", [x, w, b, g.const("mult", mult), g.const("shift", shift)], [y], dict(
        input_offset=p["input_offset"], filter_offset=p["filter_offset"], output_offset=p["output_offset"],
        act_min=p["activation_min"], act_max=p["activation_max"], batches=n, accum_depth=depth,
        out_depth=outs)))
    g.inputs, g.outputs = [x], [y]
    return g, a["input"]


def _conv_like(p, a, kind):
    g = Graph()
    out_c = p["output_c"]
    x = g.add(Tensor("input", "int8", (p["input_n"], p["input_h"], p["input_w"], p["input_c"]), 1.0, 0))
    w = _weights(g, a, a["weights"].shape)
    b = -1 if p.get("bias_is_null") else g.const("bias", a["bias"].astype(np.int32).reshape(-1))
    y = g.add(Tensor("output", "int8", (p["output_n"], p["output_h"], p["output_w"], out_c), 1.0, 0))
    params = dict(batches=p["input_n"], in_h=p["input_h"], in_w=p["input_w"], in_c=p["input_c"],
                  out_h=p["output_h"], out_w=p["output_w"], out_c=out_c, k_h=p["filter_h"], k_w=p["filter_w"],
                  stride_h=p["stride_y"], stride_w=p["stride_x"], dil_h=p.get("dilation_y", 1),
                  dil_w=p.get("dilation_x", 1), pad_top=p["pad_y"], pad_left=p["pad_x"],
                  input_offset=p["input_offset"], output_offset=p["output_offset"], act_min=p["activation_min"],
                  act_max=p["activation_max"])
    if kind == "CONV_2D_S4":
        params["groups"] = p.get("groups", 1)
    else:
        params["depth_mult"] = p.get("ch_mult", 1)
    mult, shift = a["output_mult"].astype(np.int32), a["output_shift"].astype(np.int32)
    # as the packer would: the column of the fast convolution (test_cmsis_vectors runs it without too)
    scratch = fmt.conv_s4_scratch(p["filter_h"], p["filter_w"], p["input_c"] // params["groups"]) \
        if kind == "CONV_2D_S4" else 0
    g.ops.append(Op(kind, [x, w, b, g.const("mult", mult), g.const("shift", shift)], [y], params, scratch=scratch))
    g.inputs, g.outputs = [x], [y]
    return g, a["input"]


BUILD = {
    "fully_connected": _fully_connected,
    "convolve": lambda p, a: _conv_like(p, a, "CONV_2D_S4"),
    "depthwise_conv": lambda p, a: _conv_like(p, a, "DEPTHWISE_CONV_2D_S4"),
}


def samples() -> list[tuple[str, bytes, np.ndarray, np.ndarray, str]]:
    """(name, blob, input, CMSIS-NN's output, op kind) of the first s4 case of each family that index.json
    lists: the S4 ops' blobs for tests that need one of every op (tests/test_heap.py)."""
    from .conftest import need_shared

    vec = need_shared("vectors", "cmsis-nn")
    out, seen = [], set()
    for c in json.loads((vec / "index.json").read_text())["cases"]:
        if c["group"] != "s4" or c["family"] in seen:
            continue
        seen.add(c["family"])
        p = json.loads((vec / c["json"]).read_text())["parameters"]
        arrays = np.load(vec / c["npz"])
        g, x = BUILD[c["family"]](p, {k: arrays[k] for k in arrays.files})
        out.append((f"s4/{c['family']}/{c['case']}", blob.write(g), x.astype(np.int8),
                    arrays["output_ref"].astype(np.int8), g.ops[0].kind))
    return out
