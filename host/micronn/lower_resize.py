"""Lowerings of the resize operators (issue 18); lower.py merges the tables below
into its own (LOWERINGS, LIMITS, OPERANDS have the same meaning there).

RESIZE_NEAREST_NEIGHBOR and RESIZE_BILINEAR become RESIZE_NEAREST and
RESIZE_BILINEAR with per-row and per-column tables that the host computes the
way TensorFlow Lite Micro does at every run: nearest in float32 (its
GetNearestNeighbor), bilinear in 10-bit fixed point (its
ResizeBilinearInteger). TRANSPOSE_CONV becomes TRANSPOSE_CONV with TFLite
Micro's padding (computed from the output size) and per-channel multipliers.
"""

from __future__ import annotations

import numpy as np

from . import quant
from .graph import Op
from .lower import GEOM_MAX, MAX_SHIFT, Lowering, _activation, _arith, _check_shifts, _int_value, _weight_quant

# TFLite Micro's bilinear position fraction (position - 1024 * lower row) lies
# in [-512, 1023]; the loader accepts [-512, 1024] (check_resize_table).
BILINEAR_FRACTION = (-512, 1024)


def _ctrunc_div(a: int, b: int) -> int:
    """C's integer division (truncates toward zero), b > 0."""
    q = abs(a) // b
    return q if a >= 0 else -q


def nearest_index(out_size: int, in_size: int, align_corners: bool, half_pixel_centers: bool) -> np.ndarray:
    """TFLite Micro's GetNearestNeighbor for every output position, in float32 as it computes."""
    f32 = np.float32
    if align_corners and out_size > 1:
        scale = f32(in_size - 1) / f32(out_size - 1)
    else:
        scale = f32(in_size) / f32(out_size)
    offset = f32(0.5 if half_pixel_centers else 0.0)
    out = []
    for v in range(out_size):
        t = f32(f32(f32(v) + offset) * scale)
        i = int(quant.tflite_round(float(t))) if align_corners else int(np.floor(t))
        i = min(i, in_size - 1)
        if half_pixel_centers:
            i = max(0, i)
        out.append(i)
    return np.array(out, np.int32)


def bilinear_table(out_size: int, in_size: int, align_corners: bool, half_pixel_centers: bool) -> np.ndarray:
    """TFLite Micro's ResizeBilinearInteger positions: (lower, upper, position - 1024 * lower) per output."""
    scale = ((1 << 10) * in_size + out_size // 2) // out_size
    if align_corners and out_size > 1:
        scale = ((1 << 10) * (in_size - 1) + (out_size - 1) // 2) // (out_size - 1)
    rows = []
    for v in range(out_size):
        pos = v * scale + scale // 2 - (1 << 9) if half_pixel_centers else v * scale
        lo = max(_ctrunc_div(pos, 1 << 10), 0)
        hi = min(_ctrunc_div(pos + (1 << 10) - 1, 1 << 10), in_size - 1)
        rows.append((lo, hi, pos - (lo << 10)))
    return np.array(rows, np.int32).reshape(out_size, 3)


def _resize(low: Lowering, op) -> None:
    g = low.g
    x = low.act(op.inputs[0], op)
    xin = g.tensors[x]
    if len(xin.shape) != 4:
        raise low.fail(op, f"input of shape {xin.shape}; expected 4-D NHWC")
    n, in_h, in_w, c = xin.shape
    size = _int_value(low, op, 1, "the output size").reshape(-1)
    if size.size != 2 or size.min() < 1 or size.max() >= GEOM_MAX:
        raise low.fail(op, f"output size {size.tolist()}: expected two sizes from 1 to {GEOM_MAX - 1}")
    out_h, out_w = int(size[0]), int(size[1])
    align = bool(op.options.get("align_corners", False))
    half = bool(op.options.get("half_pixel_centers", False))
    if align and half:
        raise low.fail(op, "align_corners and half_pixel_centers together (TFLite Micro refuses them too)")
    y = low.out(op, 0, (n, out_h, out_w, c))
    yout = g.tensors[y]
    if (xin.scale, xin.zero_point) != (yout.scale, yout.zero_point):
        raise low.fail(op, "resizing must keep the quantization of its input (TFLite Micro does not rescale)")
    p = dict(batches=n, in_h=in_h, in_w=in_w, channels=c, out_h=out_h, out_w=out_w)
    name = g.tensors[y].name
    if op.opcode == "RESIZE_NEAREST_NEIGHBOR":
        ys = nearest_index(out_h, in_h, align, half)
        xs = nearest_index(out_w, in_w, align, half)
        kind = "RESIZE_NEAREST"
    else:
        ys = bilinear_table(out_h, in_h, align, half)
        xs = bilinear_table(out_w, in_w, align, half)
        for t, size_in, axis in ((ys, in_h, "rows"), (xs, in_w, "columns")):
            lo, hi = BILINEAR_FRACTION
            if t[:, 0].max() >= size_in or t[:, 2].min() < lo or t[:, 2].max() > hi:
                # TFLite Micro would read outside its input here
                raise low.fail(op, f"resizing {size_in} {axis} to {len(t)}: TFLite Micro's positions fall "
                                   "outside the input")
        kind = "RESIZE_BILINEAR"
    inputs = [x, g.const(f"{name}/rows", ys), g.const(f"{name}/columns", xs)]
    g.ops.append(Op(kind, inputs, [y], p, source=f"op {op.index} {op.opcode}"))


def _tconv_padding(out_size: int, k: int, stride: int, padding: str) -> int:
    """TFLite Micro's ComputePaddingHeightWidth with the output size as its input size."""
    if padding == "SAME":
        n = (out_size + stride - 1) // stride
    else:
        n = (out_size + stride - k) // stride
    total = max((n - 1) * stride + k - out_size, 0)
    return total // 2


def lower_transpose_conv(low: Lowering, op) -> None:
    g = low.g
    o = op.options
    s_h, s_w = o.get("stride_h", 0), o.get("stride_w", 0)
    if min(s_h, s_w) < 1 or max(s_h, s_w) >= GEOM_MAX:
        raise low.fail(op, f"strides {s_h}x{s_w} must be from 1 to {GEOM_MAX - 1}")
    padding = o.get("padding", "SAME")
    if padding not in ("SAME", "VALID"):
        raise low.fail(op, f"padding {padding} is not supported")
    shape = _int_value(low, op, 0, "the output shape").reshape(-1)
    x = low.act(op.inputs[2], op)
    xin = g.tensors[x]
    if len(xin.shape) != 4:
        raise low.fail(op, f"input of shape {xin.shape}; expected 4-D NHWC")
    n, in_h, in_w, in_c = xin.shape
    wt = low.const_of(op, 1, "int8")
    w = wt.array().astype(np.int8)
    if w.ndim != 4 or w.shape[3] != in_c:
        raise low.fail(op, f"weights of shape {w.shape}; expected [out_c, k_h, k_w, {in_c}]")
    out_c, k_h, k_w, _ = w.shape
    if shape.size != 4 or int(shape[0]) != n or int(shape[3]) != out_c or shape.min() < 1:
        raise low.fail(op, f"output shape {shape.tolist()} does not fit the input {xin.shape} and "
                           f"{out_c} output channels")
    out_h, out_w = int(shape[1]), int(shape[2])
    if max(k_h, k_w) >= GEOM_MAX or out_c >= GEOM_MAX // 4:
        raise low.fail(op, f"a {k_h}x{k_w} kernel with {out_c} output channels is beyond micronn's limits")
    y = low.out(op, 0, (n, out_h, out_w, out_c))
    yout = g.tensors[y]
    _weight_quant(low, op, wt)
    if wt.zero_point is not None and np.any(wt.zero_point != 0):
        raise low.fail(op, "weights must be symmetric (zero point 0)")
    scales = np.broadcast_to(np.asarray(wt.scale, np.float32), (out_c,)) if len(wt.scale) == 1 else wt.scale
    if len(scales) != out_c:
        raise low.fail(op, f"{len(scales)} weight scales for {out_c} output channels")
    mult, shift = _arith(low, op, quant.conv_multipliers, xin.scale, scales, yout.scale)
    _check_shifts(low, op, shift)
    b = -1
    if len(op.inputs) > 3 and op.inputs[3] >= 0:
        bias = low.const_of(op, 3, "int32").array().astype(np.int32).reshape(-1)
        if bias.size != out_c:
            raise low.fail(op, f"bias has {bias.size} values; expected {out_c}")
        b = g.const(f"{wt.name}/bias", bias)
    lo, hi = _activation(low, op, yout)
    p = dict(batches=n, in_h=in_h, in_w=in_w, in_c=in_c, out_h=out_h, out_w=out_w, out_c=out_c, k_h=k_h, k_w=k_w,
             stride_h=s_h, stride_w=s_w, pad_top=_tconv_padding(out_h, k_h, s_h, padding),
             pad_left=_tconv_padding(out_w, k_w, s_w, padding), input_offset=-xin.zero_point,
             output_offset=yout.zero_point, act_min=lo, act_max=hi)
    inputs = [x, g.const(wt.name, w), b, g.const(f"{wt.name}/mult", mult), g.const(f"{wt.name}/shift", shift)]
    g.ops.append(Op("TRANSPOSE_CONV", inputs, [y], p, source=f"op {op.index} TRANSPOSE_CONV"))


LOWERINGS: dict = {
    "RESIZE_NEAREST_NEIGHBOR": _resize,
    "RESIZE_BILINEAR": _resize,
    "TRANSPOSE_CONV": lower_transpose_conv,
}

_RESIZE = (f"4-D NHWC; a constant output size from 1 to {GEOM_MAX - 1}; align_corners or half_pixel_centers "
           "(not both) or neither; any integer or non-integer scale, up or down; same quantization in and out")
LIMITS: dict = {
    "RESIZE_NEAREST_NEIGHBOR": ("RESIZE_NEAREST", _RESIZE + " (indices computed on the host as TFLite Micro "
                                "computes them, in float32)"),
    "RESIZE_BILINEAR": ("RESIZE_BILINEAR", _RESIZE + " (TFLite Micro's 10-bit fixed-point positions, computed on "
                        "the host)"),
    "TRANSPOSE_CONV": ("TRANSPOSE_CONV", f"4-D NHWC; a constant output shape; int8 weights [out_c, k_h, k_w, in_c], "
                       f"symmetric, per-channel or per-tensor scales; optional int32 bias (the 4-input form); SAME "
                       f"or VALID; any stride; sizes from 1 to {GEOM_MAX - 1}; fewer than {GEOM_MAX // 4} output "
                       f"channels; fused activation NONE, RELU, RELU6 or RELU_N1_TO_1; rescaling factors below "
                       f"2**{MAX_SHIFT}; no scratch (the kernel gathers)"),
}
OPERANDS: dict = {"RESIZE_NEAREST_NEIGHBOR": 2, "RESIZE_BILINEAR": 2, "TRANSPOSE_CONV": 3}


# lower.py (the hub) takes this group's tables in; this call does it when this module is imported first
from .lower import _merge_groups  # noqa: E402

_merge_groups()
