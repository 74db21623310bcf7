"""Lowerings of the reduce operators (issue 18); lower.py merges the tables below
into its own (LOWERINGS, LIMITS, OPERANDS have the same meaning there).

ARG_MAX / ARG_MIN, SUM, REDUCE_MAX / REDUCE_MIN, L2_NORMALIZATION and
LOG_SOFTMAX, with TFLite Micro's integer parameters:

- SUM: TFLite Micro's int8 SUM (QuantizedMeanOrSum with compute_sum) subtracts
  zero point * count from the int32 sum and requantizes it with
  QuantizeMultiplier(double(input scale) / double(output scale)), double
  rounding, then adds the output zero point: the device's MEAN in SCALED mode
  with that multiplier (MEAN folds 1 / count into its multiplier; SUM does not).
- REDUCE_MAX / REDUCE_MIN keep the quantization (TFLite Micro requires it).
- ARG_MAX / ARG_MIN: the first index of the extreme value.
- L2_NORMALIZATION: TFLite Micro's reference_integer_ops::L2Normalization, output
  scale 1/128 and zero point 0; the kernel needs only the input zero point.
- LOG_SOFTMAX: PreprocessLogSoftmaxScalingExp with beta 1 and 5 integer bits:
  the softmax input multiplier, its left shift and diff_min, plus the reverse
  scaling divisor QuantizeMultiplier((1 << (31 - left_shift)) / multiplier).
"""

from __future__ import annotations

import numpy as np

from . import quant
from .graph import Op, Tensor
from .lower import GEOM_MAX, _arith, _check_shifts, _int_value

# The loader's limits (cmodule/loader.c): the MEAN kernel's int32 sum
# (check_mean), an L2 row's sum of squares (L2NORM_DEPTH_MAX) and a log-softmax
# row's sum of exponentials (LOG_SOFTMAX_ROW_MAX).
SUM_MAX = 1 << 22
L2NORM_DEPTH_MAX = 1 << 14
LOG_SOFTMAX_ROW_MAX = 4096


def _split(low, op, x, axes):
    """[outer, reduce, inner] of a reduction of graph tensor x over adjacent axes."""
    shape = low.g.tensors[x].shape
    nd = len(shape)
    axes = np.asarray(axes).reshape(-1)
    if not axes.size or axes.min() < -nd or axes.max() >= nd:
        raise low.fail(op, f"axes {axes.tolist()} do not fit the {nd}-D input {shape}")
    axes = sorted({int(a) % nd for a in axes})
    if axes != list(range(axes[0], axes[-1] + 1)):
        raise low.fail(op, f"{op.opcode} over non-adjacent axes {axes} is not supported")
    outer = int(np.prod(shape[:axes[0]]))
    reduce = int(np.prod([shape[a] for a in axes]))
    inner = int(np.prod(shape[axes[-1] + 1:]))
    if max(outer, reduce, inner) >= GEOM_MAX:
        raise low.fail(op, f"[outer, reduced, inner] sizes {outer}, {reduce}, {inner}: micronn's limit is "
                           f"{GEOM_MAX - 1} each")
    return axes, outer, reduce, inner


def _reduced_shape(shape, axes, keep):
    if keep:
        return tuple(1 if d in axes else s for d, s in enumerate(shape))
    return tuple(s for d, s in enumerate(shape) if d not in axes) or (1,)


def lower_arg_minmax(low, op) -> None:
    g = low.g
    x = low.act(op.inputs[0], op)
    axis = _int_value(low, op, 1, "axis").reshape(-1)
    if axis.size != 1:
        raise low.fail(op, f"axis {axis.tolist()}: expected one axis")
    axes, outer, reduce, inner = _split(low, op, x, axis)
    i = op.outputs[0]
    t = low.tensor(i)
    if t.dtype not in ("int32", "int64"):
        raise low.fail(op, f"output type {t.dtype}; expected int32 or int64")
    shape = low._shape(_reduced_shape(g.tensors[x].shape, axes, False),
                       f"output 0 of op {op.index} ({op.opcode})")
    y = g.add(Tensor(t.name, t.dtype, shape, source=i))
    low.map[i] = y
    g.ops.append(Op(op.opcode, [x], [y], dict(outer=outer, reduce=reduce, inner=inner),
                    source=f"op {op.index} {op.opcode}"))


def lower_sum(low, op) -> None:
    g = low.g
    x = low.act(op.inputs[0], op)
    xin = g.tensors[x]
    axes, outer, reduce, inner = _split(low, op, x, _int_value(low, op, 1, "axes"))
    if reduce >= SUM_MAX:
        raise low.fail(op, f"a sum of {reduce} values; micronn's limit is {SUM_MAX - 1}")
    y = low.out(op, 0, _reduced_shape(xin.shape, axes, op.options.get("keep_dims", False)))
    yout = g.tensors[y]
    mult, shift = _arith(low, op, quant.quantize_multiplier,
                         float(np.float32(xin.scale)) / float(np.float32(yout.scale)))
    _check_shifts(low, op, shift)
    p = dict(outer=outer, reduce=reduce, inner=inner, mode=2, input_offset=-xin.zero_point, mult=mult,
             shift=shift, output_offset=yout.zero_point)
    g.ops.append(Op("MEAN", [x], [y], p, scratch=4 * inner, source=f"op {op.index} SUM"))


def lower_reduce_minmax(low, op) -> None:
    g = low.g
    x = low.act(op.inputs[0], op)
    xin = g.tensors[x]
    axes, outer, reduce, inner = _split(low, op, x, _int_value(low, op, 1, "axes"))
    y = low.out(op, 0, _reduced_shape(xin.shape, axes, op.options.get("keep_dims", False)))
    yout = g.tensors[y]
    if (xin.scale, xin.zero_point) != (yout.scale, yout.zero_point):
        raise low.fail(op, "input and output must share the quantization (TFLite Micro's requirement)")
    g.ops.append(Op(op.opcode, [x], [y], dict(outer=outer, reduce=reduce, inner=inner),
                    source=f"op {op.index} {op.opcode}"))


def lower_l2norm(low, op) -> None:
    g = low.g
    x = low.act(op.inputs[0], op)
    xin = g.tensors[x]
    y = low.out(op, 0, xin.shape)
    yout = g.tensors[y]
    if yout.zero_point != 0 or yout.scale != 1 / 128:
        raise low.fail(op, f"int8 L2_NORMALIZATION output must have scale 1/128 and zero point 0 "
                           f"(has {yout.scale}, {yout.zero_point})")
    if op.options.get("fused_activation_function", "NONE") != "NONE":
        raise low.fail(op, "a fused activation on L2_NORMALIZATION is not supported")
    depth = xin.shape[-1]
    if depth > L2NORM_DEPTH_MAX:
        raise low.fail(op, f"rows of {depth} values; micronn normalises at most {L2NORM_DEPTH_MAX}")
    g.ops.append(Op("L2_NORMALIZATION", [x], [y], dict(rows=xin.nbytes // depth, depth=depth,
                                                        input_offset=-xin.zero_point),
                    source=f"op {op.index} L2_NORMALIZATION"))


def log_softmax_params(input_scale: float) -> dict:
    """TFLite's PreprocessLogSoftmaxScalingExp(beta 1, input scale, 5 integer bits)."""
    mult, shift, diff_min = quant.softmax_params(1.0, input_scale)
    if not 1 <= shift <= 30:
        raise ValueError(f"input scale {input_scale} gives a log-softmax input shift of {shift}; "
                         "expected 1 to 30")
    rmult, rshift = quant.quantize_multiplier((1 << (31 - shift)) / float(mult))
    if rshift > 0:
        raise ValueError("the log-softmax reverse scaling is not below one")
    if rshift < -31:
        rmult, rshift = 0, 0
    return dict(input_mult=mult, input_left_shift=shift, reverse_mult=rmult, reverse_shift=rshift,
                diff_min=diff_min)


def lower_log_softmax(low, op) -> None:
    g = low.g
    x = low.act(op.inputs[0], op)
    xin = g.tensors[x]
    y = low.out(op, 0, xin.shape)
    yout = g.tensors[y]
    if yout.zero_point != 127 or yout.scale != 16 / 256:
        raise low.fail(op, f"int8 LOG_SOFTMAX output must have scale 16/256 and zero point 127 "
                           f"(has {yout.scale}, {yout.zero_point})")
    row = xin.shape[-1]
    if row >= LOG_SOFTMAX_ROW_MAX:
        raise low.fail(op, f"rows of {row} values; micronn's limit is {LOG_SOFTMAX_ROW_MAX - 1} (TFLite's "
                           "sum of exponentials overflows from 4096)")
    p = _arith(low, op, log_softmax_params, xin.scale)
    g.ops.append(Op("LOG_SOFTMAX", [x], [y], dict(p, rows=xin.nbytes // row, row_size=row),
                    source=f"op {op.index} LOG_SOFTMAX"))


LOWERINGS: dict = {
    "ARG_MAX": lower_arg_minmax,
    "ARG_MIN": lower_arg_minmax,
    "SUM": lower_sum,
    "REDUCE_MAX": lower_reduce_minmax,
    "REDUCE_MIN": lower_reduce_minmax,
    "L2_NORMALIZATION": lower_l2norm,
    "LOG_SOFTMAX": lower_log_softmax,
}

_AXES = f"constant axes that are adjacent; keep_dims or not; fewer than {GEOM_MAX} values in each of the outer, " \
        "reduced and inner sizes"
LIMITS: dict = {
    "ARG_MAX": ("ARG_MAX", f"one constant axis (negative counts from the end); int32 or int64 output (TFLite Micro "
                f"itself runs only int32); the first index on ties; fewer than {GEOM_MAX} values per size"),
    "ARG_MIN": ("ARG_MIN", "as ARG_MAX"),
    "SUM": ("MEAN (SCALED: the sum requantized by input scale / output scale)",
            f"{_AXES}; fewer than {SUM_MAX} values per sum; rescaling factor below 2**30"),
    "REDUCE_MAX": ("REDUCE_MAX", f"{_AXES}; same quantization in and out"),
    "REDUCE_MIN": ("REDUCE_MIN", f"{_AXES}; same quantization in and out"),
    "L2_NORMALIZATION": ("L2_NORMALIZATION", f"over the last axis; output scale 1/128 and zero point 0; rows of "
                         f"at most {L2NORM_DEPTH_MAX} values; no fused activation"),
    "LOG_SOFTMAX": ("LOG_SOFTMAX", f"over the last axis; output scale 16/256 and zero point 127; rows of fewer than "
                    f"{LOG_SOFTMAX_ROW_MAX} values; input scale from 2**-30 to 8 (an input left shift of 1 to 30)"),
}
OPERANDS: dict = {"ARG_MAX": 2, "ARG_MIN": 2, "SUM": 2, "REDUCE_MAX": 2, "REDUCE_MIN": 2}


# lower.py (the hub) takes this group's tables in; this call does it when this module is imported first
from .lower import _merge_groups  # noqa: E402

_merge_groups()
