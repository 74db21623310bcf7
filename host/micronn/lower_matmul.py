"""Lowerings of the matmul operators (issue 18); lower.py merges the tables below
into its own (LOWERINGS, LIMITS, OPERANDS have the same meaning there).

BATCH_MATMUL -> BATCH_MATMUL. TFLite Micro's int8 kernel (batch_matmul.cc)
sums (lhs + -lhs_zp) * (rhs + -rhs_zp) in int32 and requantizes with one
multiplier from GetQuantizedConvolutionMultipler: the scale product is taken in
float32 (``lhs_scale * rhs_scale``), then divided by the output scale in double.
There is no fused activation: the output is clamped to [-128, 127].
"""

from __future__ import annotations

import numpy as np

from . import format as fmt
from . import quant
from . import tflite as tfl
from .graph import Op
from .lower import GEOM_MAX, MAX_SHIFT, Lowering, _arith, _check_shifts, _operand

# Ranks TFLite Micro accepts are 2 to 5; the blob holds at most 4 dimensions.
MATMUL_MAX_RANK = fmt.MAX_DIMS


def matmul_multiplier(lhs_scale: float, rhs_scale: float, out_scale: float) -> tuple[int, int]:
    """TFLite Micro's BATCH_MATMUL multiplier: (double)(float lhs * float rhs) / (double)out."""
    product = np.float32(lhs_scale) * np.float32(rhs_scale)     # float32, as the C++ does
    return quant.quantize_multiplier(float(np.float64(product) / np.float64(np.float32(out_scale))))


def matmul_scratch(depth: int, cols: int) -> int:
    """Scratch bytes of the kernel: rhs as int16 rows [cols][K2] plus two lhs rows (K2 = depth rounded up to even)."""
    return 2 * (depth + (depth & 1)) * (cols + 2)


def lower_batch_matmul(low: Lowering, op: tfl.Operator) -> None:
    g = low.g
    o = op.options
    if o.get("asymmetric_quantize_inputs"):
        raise low.fail(op, "hybrid BATCH_MATMUL (asymmetric_quantize_inputs) is not supported")
    x1, x2 = _operand(low, op, op.inputs[0]), _operand(low, op, op.inputs[1])
    t1, t2 = g.tensors[x1], g.tensors[x2]
    s1, s2 = tuple(t1.shape), tuple(t2.shape)
    if not (2 <= len(s1) <= MATMUL_MAX_RANK and 2 <= len(s2) <= MATMUL_MAX_RANK):
        raise low.fail(op, f"operands of shapes {s1} and {s2}; micronn multiplies operands of rank 2 to "
                           f"{MATMUL_MAX_RANK}")
    adj_x, adj_y = bool(o.get("adj_x", False)), bool(o.get("adj_y", False))
    rows, depth = (s1[-1], s1[-2]) if adj_x else (s1[-2], s1[-1])
    depth_r, cols = (s2[-1], s2[-2]) if adj_y else (s2[-2], s2[-1])
    if depth != depth_r:
        raise low.fail(op, f"shapes {s1} (adj_x {adj_x}) and {s2} (adj_y {adj_y}) do not multiply: "
                           f"depth {depth} against {depth_r}")
    lb = (1,) * (4 - len(s1)) + s1[:-2]
    rb = (1,) * (4 - len(s2)) + s2[:-2]
    lb, rb = lb[-2:], rb[-2:]
    if any(a != b and 1 not in (a, b) for a, b in zip(lb, rb, strict=True)):
        raise low.fail(op, f"batch dimensions of {s1} and {s2} do not broadcast")
    rank = max(len(s1), len(s2))
    batch = tuple(max(a, b) for a, b in zip(lb, rb, strict=True))
    out_shape = batch[4 - rank:] + (rows, cols)
    y = low.out(op, 0, out_shape)
    yout = g.tensors[y]
    scratch = matmul_scratch(depth, cols)
    if scratch >= 2**31:
        raise low.fail(op, f"depth {depth} and {cols} columns need {scratch} bytes of scratch")
    mult, shift = _arith(low, op, matmul_multiplier, t1.scale, t2.scale, yout.scale)
    _check_shifts(low, op, shift)
    p = dict(lhs_batch=list(lb), rhs_batch=list(rb), rows=rows, depth=depth, cols=cols, adj_x=int(adj_x),
             adj_y=int(adj_y), lhs_offset=-t1.zero_point, rhs_offset=-t2.zero_point, output_mult=mult,
             output_shift=shift, output_offset=yout.zero_point, act_min=quant.INT8_MIN, act_max=quant.INT8_MAX)
    g.ops.append(Op("BATCH_MATMUL", [x1, x2], [y], p, scratch=scratch, source=f"op {op.index} BATCH_MATMUL"))


LOWERINGS: dict = {"BATCH_MATMUL": lower_batch_matmul}
LIMITS: dict = {
    "BATCH_MATMUL": ("BATCH_MATMUL", f"int8 operands of rank 2 to {MATMUL_MAX_RANK} (activations, or int8 constants "
                     f"with per-tensor quantization), adj_x / adj_y, batch dimensions broadcast (equal or 1); every "
                     f"size below {GEOM_MAX}; no hybrid (asymmetric_quantize_inputs); rescaling factor (lhs x rhs / "
                     f"output scale) below 2**{MAX_SHIFT}; scratch 2 * depth (rounded up to even) * (columns + 2) "
                     "bytes"),
}
OPERANDS: dict = {"BATCH_MATMUL": 2}


# lower.py (the hub) takes this group's tables in; this call does it when this module is imported first
from .lower import _merge_groups  # noqa: E402

_merge_groups()
