"""Builders of one-op blobs for CMSIS-NN's s16 cases (int16 activations, int8 weights: TFLite's 16x8 mode),
used by tests/test_cmsis_vectors.py: FULLY_CONNECTED_S16, CONV_2D_S16 and DEPTHWISE_CONV_2D_S16, with an int64
bias (acc64 1, TFLite's 64-bit requantization) or an int32 one (acc64 0, the `int16xint8xint32_*` cases), as
each case's `bias_dtype` says."""

from __future__ import annotations

import numpy as np

from micronn.graph import Graph, Op, Tensor


def _bias(g: Graph, p, a) -> tuple[int, int]:
    """(bias tensor or -1, acc64) of a case."""
    acc64 = int(p["bias_dtype"] == "int64")
    if p.get("bias_is_null"):
        return -1, acc64
    return g.const("bias", a["bias"].astype(np.int64 if acc64 else np.int32).reshape(-1)), acc64


def _fully_connected(p, a):
    g = Graph()
    n, depth, outs = p["input_n"], p["accumulation_depth"], p["output_c"]
    x = g.add(Tensor("input", "int16", (n, depth), 1.0, 0))
    w = g.const("weights", a["weights"].astype(np.int8).reshape(outs, depth))
    b, acc64 = _bias(g, p, a)
    if p["quantization"] == "per_channel":
        mult, shift = a["output_mult"].astype(np.int32), a["output_shift"].astype(np.int32)
    else:
        mult = np.array([p["output_multiplier"]], np.int32)
        shift = np.array([p["output_shift"]], np.int32)
    y = g.add(Tensor("output", "int16", (n, outs), 1.0, 0))
    g.ops.append(Op("FULLY_CONNECTED_S16", [x, w, b, g.const("mult", mult), g.const("shift", shift)], [y], dict(
        input_offset=p["input_offset"], filter_offset=p["filter_offset"], output_offset=p["output_offset"],
        act_min=p["activation_min"], act_max=p["activation_max"], batches=n, accum_depth=depth,
        out_depth=outs, acc64=acc64)))
    g.inputs, g.outputs = [x], [y]
    return g, a["input"]


def _conv_like(p, a, kind):
    g = Graph()
    out_c = p["output_c"]
    x = g.add(Tensor("input", "int16", (p["input_n"], p["input_h"], p["input_w"], p["input_c"]), 1.0, 0))
    w = g.const("weights", a["weights"].astype(np.int8))
    b, acc64 = _bias(g, p, a)
    y = g.add(Tensor("output", "int16", (p["output_n"], p["output_h"], p["output_w"], out_c), 1.0, 0))
    params = dict(batches=p["input_n"], in_h=p["input_h"], in_w=p["input_w"], in_c=p["input_c"],
                  out_h=p["output_h"], out_w=p["output_w"], out_c=out_c, k_h=p["filter_h"], k_w=p["filter_w"],
                  stride_h=p["stride_y"], stride_w=p["stride_x"], dil_h=p.get("dilation_y", 1),
                  dil_w=p.get("dilation_x", 1), pad_top=p["pad_y"], pad_left=p["pad_x"],
                  input_offset=p["input_offset"], output_offset=p["output_offset"], act_min=p["activation_min"],
                  act_max=p["activation_max"], acc64=acc64)
    if kind == "CONV_2D_S16":
        params["groups"] = p.get("groups", 1)
    else:
        params["depth_mult"] = p.get("ch_mult", 1)
    mult, shift = a["output_mult"].astype(np.int32), a["output_shift"].astype(np.int32)
    g.ops.append(Op(kind, [x, w, b, g.const("mult", mult), g.const("shift", shift)], [y], params))
    g.inputs, g.outputs = [x], [y]
    return g, a["input"]


BUILD = {
    "fully_connected": _fully_connected,
    "convolve": lambda p, a: _conv_like(p, a, "CONV_2D_S16"),
    "depthwise_conv": lambda p, a: _conv_like(p, a, "DEPTHWISE_CONV_2D_S16"),
}


def samples() -> list[tuple[str, bytes, np.ndarray, np.ndarray]]:
    """(name, blob, input, CMSIS-NN's output) of every s16 case index.json lists: for the malformed-blob and
    fuzz-corpus seeds."""
    import json

    from micronn import blob

    from .conftest import need_shared

    vec = need_shared("vectors", "cmsis-nn")
    out = []
    for c in json.loads((vec / "index.json").read_text())["cases"]:
        if c["group"] != "s16":
            continue
        p = json.loads((vec / c["json"]).read_text())["parameters"]
        arrays = np.load(vec / c["npz"])
        a = {k: arrays[k] for k in arrays.files}
        g, x = BUILD[c["family"]](p, a)
        out.append((f"{c['family']}/{c['case']}", blob.write(g), x, a["output_ref"]))
    return out
