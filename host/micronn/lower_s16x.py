"""Lowerings of TFLite's 16x8 mode (int16 activations, issue 14) for the operators without
weights: ADD, MUL, MAX_POOL_2D, AVERAGE_POOL_2D, SOFTMAX, TANH, LOGISTIC, QUANTIZE between
integer types, RESHAPE, PAD/PADV2 and CONCATENATION; lower.py merges the tables below into
its own (LOWERINGS, LIMITS, OPERANDS have the same meaning there).

Each entry takes the op's int16 form and hands the int8 form to lower.py's own lowering,
so an int8 model lowers exactly as before. The integers are TFLite Micro's preparation
arithmetic for int16 (its kernels' Prepare functions):

* ADD: the int8 scheme (inputs rescaled to twice the larger input scale) with left shift
  15 instead of 20, TFLite Micro's general int16 scaling (it never takes the power-of-two
  path desktop TFLite has); MUL: one multiplier in1 * in2 / out, as int8. Zero points 0.
* Pooling: the int8 arithmetic on int16 values, same quantization in and out.
* SOFTMAX: input_scale * beta / (10 / 65535) as a multiplier, and the two 513-entry int16
  tables TFLite Micro builds at Prepare (gen_lut over exp on [-10, 0] and 1 / (1 + x) on
  [0, 1], in float32 with the C library's expf): computed here, stored in the blob.
* TANH, LOGISTIC: the input multiplier and shift of TFLite Micro's int16 kernels (power-of-two
  input scales 2^-12 (and 2^-11 for TANH) take 3 << shift with no shift, written here in that
  normalised form), and the 256-entry sigmoid table those kernels interpolate, stored in the blob.
* QUANTIZE int8/int16 -> int8/int16: TFLite's Requantize with QuantizeMultiplier(in / out).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import math

import numpy as np

from . import quant
from . import tflite as tfl
from .graph import Op
from .lower import (
    _FUSED,
    _GEOM,
    _REQUANT,
    CONCAT_MAX_INPUTS,
    GEOM_MAX,
    Lowering,
    _arith,
    _broadcast,
    _check_geom,
    _check_shifts,
    _geom,
    _int_value,
    _nhwc,
    _out_size,
    lower_binary,
    lower_concat,
    lower_lut,
    lower_pad,
    lower_pool,
    lower_quantize,
    lower_reshape,
    lower_softmax,
)
from .quant import SIGMOID_TABLE_U16

INT16_MIN, INT16_MAX = -(1 << 15), (1 << 15) - 1
# AVG_POOL_S16: a window's sum of int16 values must fit an int32 (the loader's limit)
POOL16_WINDOW_MAX = 1 << 16
# SOFTMAX_S16: a row's sum of exponentials (each up to 32767) must fit an int32
SOFTMAX16_ROW_MAX = 65535
# ... and differences (down to -65535) shifted left by the input shift must fit too
SOFTMAX16_MAX_SHIFT = 15


# --- TFLite Micro's Prepare arithmetic -------------------------------------------

@functools.lru_cache(maxsize=1)
def _expf():
    """The C library's expf, which TFLite Micro's softmax table calls (numpy's float32 exp may
    differ in the last bit)."""
    name = ctypes.util.find_library("m")
    try:
        f = ctypes.CDLL(name).expf
    except (OSError, AttributeError, TypeError):
        return lambda x: np.float32(np.exp(np.float32(x)))
    f.restype, f.argtypes = ctypes.c_float, [ctypes.c_float]
    return lambda x: np.float32(f(float(x)))


def _roundf(x) -> np.float32:
    """roundf: half away from zero, of a float32 value."""
    x = float(x)
    return np.float32(math.copysign(math.floor(abs(x) + 0.5), x))


def gen_lut16(func, in_min: float, in_max: float) -> np.ndarray:
    """TFLite's gen_lut for int16 in and out over output range [-1, 1]: 512 interpolation steps plus
    one end value, each sample corrected by half its midpoint error, in float32."""
    f32 = np.float32
    steps = 512
    lo, hi = f32(in_min), f32(in_max)
    step = (hi - lo) / f32(steps)
    half = step / f32(2)
    inv = f32(65536) / (f32(1) - f32(-1))
    out = []
    for i in range(steps):
        x = lo + f32(i) * step
        val, mid, nxt = func(x), func(x + half), func(lo + f32(i + 1) * step)
        sample = _roundf(val * inv)
        interp = _roundf((nxt * inv + _roundf(val * inv)) / f32(2))
        bias = _roundf((interp - _roundf(mid * inv)) / f32(2))
        out.append(min(max(float(sample - bias), INT16_MIN), INT16_MAX))
    out.append(min(max(float(_roundf(func(hi) * inv)), INT16_MIN), INT16_MAX))
    return np.array(out, dtype=np.int16)


@functools.lru_cache(maxsize=1)
def softmax_tables() -> tuple[np.ndarray, np.ndarray]:
    """SOFTMAX_S16's exp table (exp on [-10, 0]) and reciprocal table (1 / (1 + x) on [0, 1])."""
    expf = _expf()
    recip = gen_lut16(lambda x: np.float32(1) / (np.float32(1) + np.float32(x)), 0.0, 1.0)
    return gen_lut16(expf, -10.0, 0.0), recip


def softmax16_params(beta: float, input_scale: float) -> tuple[int, int]:
    return quant.quantize_multiplier(float(np.float32(input_scale)) * float(np.float32(beta)) / (10.0 / 65535.0))


def _checked_log2(x: float) -> tuple[bool, int]:
    """TFLite's CheckedLog2 (float32): whether x is a power of two (within 1e-3 in log2), and the log."""
    f32 = np.float32
    lg = f32(np.log(f32(x))) * (f32(1) / f32(np.log(f32(2))))
    r = _roundf(lg)
    return bool(abs(float(lg - r)) < 1e-3), int(r)


def sigmoid16_params(input_scale: float, tanh: bool) -> tuple[int, int]:
    """(input_mult, input_shift) of TFLite Micro's int16 TANH (tanh=True) or LOGISTIC, with its
    power-of-two case written as multiplier 3 << shift and shift 0."""
    pot, log2 = _checked_log2(input_scale)
    left = (15 - 3) + log2
    if pot and (left == 0 or (tanh and left == 1)):
        return 3 << left, 0
    m = float(np.float32(input_scale)) * 4096.0 * 3.0
    shift = 0
    while m <= 32767.0 / 2.0 and shift <= 30:
        shift += 1
        m *= 2.0
    if m > 32767:
        raise ValueError(f"an input scale of {input_scale} is too large for TFLite Micro's int16 "
                         f"{'TANH' if tanh else 'LOGISTIC'} (its multiplier must stay below 32768)")
    return int(m), shift


# --- operands --------------------------------------------------------------------

def _int16(low: Lowering, op: tfl.Operator) -> bool:
    """Whether op works on int16 activations (its first input or first output is int16)."""
    ts = [low.tensor(i) for i in op.inputs[:1] + op.outputs[:1] if i >= 0]
    return any(t.dtype == "int16" for t in ts)


def _zero_zp(low: Lowering, op: tfl.Operator, *tensors) -> None:
    for t in tensors:
        if t.zero_point != 0:
            raise low.fail(op, f"int16 tensor {t.name} has zero point {t.zero_point}; TFLite's int16 "
                               f"{op.opcode} needs 0")


def _operand16(low: Lowering, op: tfl.Operator, i: int) -> int:
    """An int16 activation, or an int16 constant stored in the blob with its quantization."""
    v = low.value(i)
    if v is None:
        return low.act(i, op, "int16")
    t = low.tensor(i)
    scale, zp = low._quant(i, f"constant operand {i} ({t.name}) of op {op.index} ({op.opcode})", "int16")
    k = low.g.const(t.name, v.astype(np.int16).reshape(tuple(v.shape) or (1,)))
    low.g.tensors[k].scale, low.g.tensors[k].zero_point = scale, zp
    return k


def _activation16(low: Lowering, op: tfl.Operator, out) -> tuple[int, int]:
    act = op.options.get("fused_activation_function", "NONE")
    try:
        return quant.activation_range(act, out.scale, out.zero_point, INT16_MIN, INT16_MAX)
    except ValueError:
        raise low.fail(op, f"fused activation {act} is not supported") from None
    except OverflowError:
        raise low.fail(op, f"output scale {out.scale} is too small for the fused {act}") from None


# --- lowerings -------------------------------------------------------------------

def lower_binary16(low: Lowering, op: tfl.Operator) -> None:
    if not _int16(low, op):
        return lower_binary(low, op)
    g = low.g
    x1, x2 = _operand16(low, op, op.inputs[0]), _operand16(low, op, op.inputs[1])
    t1, t2 = g.tensors[x1], g.tensors[x2]
    shape, (dims, s1, s2), _ = _broadcast(low, op, t1.shape, t2.shape)
    y = low.out(op, 0, shape, "int16")
    yout = g.tensors[y]
    _zero_zp(low, op, t1, t2, yout)
    lo, hi = _activation16(low, op, yout)
    p = dict(dims=dims, stride1=s1, stride2=s2, input1_offset=0, input2_offset=0, output_offset=0, act_min=lo,
             act_max=hi)
    if op.opcode == "ADD":
        p.update(_arith(low, op, quant.add_params, t1.scale, t2.scale, yout.scale, left_shift=15))
        _check_shifts(low, op, p["input1_shift"], p["input2_shift"], p["output_shift"])
    else:
        m, sh = _arith(low, op, quant.mul_params, t1.scale, t2.scale, yout.scale)
        _check_shifts(low, op, sh)
        p.update(output_mult=m, output_shift=sh)
    g.ops.append(Op(f"{op.opcode}_S16", [x1, x2], [y], p, source=f"op {op.index} {op.opcode}"))


def lower_pool16(low: Lowering, op: tfl.Operator) -> None:
    if not _int16(low, op):
        return lower_pool(low, op)
    g = low.g
    x = low.act(op.inputs[0], op, "int16")
    n, in_h, in_w, c = _nhwc(low, op, x)
    o = op.options
    k_h, k_w = o.get("filter_height", 0), o.get("filter_width", 0)
    s_h, s_w = o.get("stride_h", 0), o.get("stride_w", 0)
    if min(k_h, k_w, s_h, s_w) < 1 or max(k_h, k_w, s_h, s_w) >= GEOM_MAX:
        raise low.fail(op, f"filter {k_h}x{k_w} and strides {s_h}x{s_w} must be from 1 to {GEOM_MAX - 1}")
    if k_h * k_w >= POOL16_WINDOW_MAX:
        raise low.fail(op, f"a {k_h}x{k_w} window has more than {POOL16_WINDOW_MAX - 1} taps")
    out_h, pad_t = _out_size(in_h, k_h, s_h, 1, o.get("padding", "SAME"))
    out_w, pad_l = _out_size(in_w, k_w, s_w, 1, o.get("padding", "SAME"))
    if out_h <= 0 or out_w <= 0:
        raise low.fail(op, f"the window {k_h}x{k_w} does not fit the input {in_h}x{in_w}")
    y = low.out(op, 0, (n, out_h, out_w, c), "int16")
    xin, yout = g.tensors[x], g.tensors[y]
    if (xin.scale, xin.zero_point) != (yout.scale, yout.zero_point):
        raise low.fail(op, "pooling must keep the quantization of its input")
    _zero_zp(low, op, xin)
    lo, hi = _activation16(low, op, yout)
    kind = "MAX_POOL_S16" if op.opcode == "MAX_POOL_2D" else "AVG_POOL_S16"
    params = dict(_geom(n, in_h, in_w, c, out_h, out_w, c, k_h, k_w, s_h, s_w, 1, 1, pad_t, pad_l),
                  act_min=lo, act_max=hi)
    _check_geom(low, op, params)
    g.ops.append(Op(kind, [x], [y], params, source=f"op {op.index} {op.opcode}"))


def lower_softmax16(low: Lowering, op: tfl.Operator) -> None:
    if not _int16(low, op):
        return lower_softmax(low, op)
    g = low.g
    if low.tensor(op.inputs[0]).dtype != "int16" or low.tensor(op.outputs[0]).dtype != "int16":
        raise low.fail(op, f"softmax from {low.tensor(op.inputs[0]).dtype} to {low.tensor(op.outputs[0]).dtype}; "
                           "micronn runs int8 -> int8 and int16 -> int16")
    x = low.act(op.inputs[0], op, "int16")
    y = low.out(op, 0, g.tensors[x].shape, "int16")
    xin, yout = g.tensors[x], g.tensors[y]
    _zero_zp(low, op, xin, yout)
    if abs(yout.scale - 1 / 32768) > 0.001 / 32768:
        raise low.fail(op, f"int16 softmax output must have scale 1/32768 (has {yout.scale})")
    beta = op.options.get("beta", 1.0)
    if not math.isfinite(beta):
        raise low.fail(op, f"beta {beta} is not a finite number")
    mult, shift = _arith(low, op, softmax16_params, beta, xin.scale)
    if shift > SOFTMAX16_MAX_SHIFT:
        raise low.fail(op, f"input scale {xin.scale} and beta {beta} need a shift of {shift}; micronn's int16 "
                           f"softmax takes at most {SOFTMAX16_MAX_SHIFT}")
    row = xin.shape[-1]
    if row > SOFTMAX16_ROW_MAX:
        raise low.fail(op, f"rows of {row} values; micronn's int16 softmax takes at most {SOFTMAX16_ROW_MAX}")
    exp_t, recip_t = softmax_tables()
    e, r = g.const("softmax16/exp_table", exp_t), g.const("softmax16/recip_table", recip_t)
    g.ops.append(Op("SOFTMAX_S16", [x, e, r], [y], dict(
        input_mult=mult, input_shift=shift, rows=xin.nbytes // 2 // row, row_size=row),
        source=f"op {op.index} SOFTMAX"))


def lower_sigmoid16(low: Lowering, op: tfl.Operator) -> None:
    if not _int16(low, op):
        return lower_lut(low, op)
    g = low.g
    x = low.act(op.inputs[0], op, "int16")
    xin = g.tensors[x]
    y = low.out(op, 0, xin.shape, "int16")
    yout = g.tensors[y]
    _zero_zp(low, op, xin, yout)
    pot, log2 = _checked_log2(yout.scale)
    if not pot or log2 != -15:
        raise low.fail(op, f"int16 {op.opcode} output must have scale 2^-15 (has {yout.scale})")
    mult, shift = _arith(low, op, sigmoid16_params, xin.scale, op.opcode == "TANH")
    t = g.const("sigmoid16/table", np.array(SIGMOID_TABLE_U16, dtype=np.uint16).view(np.int16))
    g.ops.append(Op(f"{op.opcode}_S16", [x, t], [y], dict(count=xin.nbytes // 2, input_mult=mult, input_shift=shift),
                    source=f"op {op.index} {op.opcode}"))


def lower_quantize16(low: Lowering, op: tfl.Operator) -> None:
    src, dst = low.tensor(op.inputs[0]).dtype, low.tensor(op.outputs[0]).dtype
    if dst == "int8" and src in ("int8", "float32"):
        return lower_quantize(low, op)
    if src not in ("int8", "int16") or dst not in ("int8", "int16"):
        if src == "float32":
            raise low.fail(op, f"float QUANTIZE to {dst} is supported only on the model input (to int8 or int16)")
        raise low.fail(op, f"QUANTIZE from {src} to {dst} is not supported (int8 and int16 are)")
    g = low.g
    x = low.act(op.inputs[0], op, src)
    xin = g.tensors[x]
    y = low.out(op, 0, xin.shape, dst)
    yout = g.tensors[y]
    mult, shift = _arith(low, op, quant.quantize_multiplier,
                         float(np.float32(xin.scale)) / float(np.float32(yout.scale)))
    _check_shifts(low, op, shift)
    g.ops.append(Op("REQUANT", [x], [y], dict(count=int(np.prod(xin.shape)), input_zero_point=xin.zero_point,
                                              mult=mult, shift=shift, output_offset=yout.zero_point),
                    source=f"op {op.index} QUANTIZE"))


def lower_reshape16(low: Lowering, op: tfl.Operator) -> None:
    if not _int16(low, op):
        return lower_reshape(low, op)
    x = low.act(op.inputs[0], op, "int16")
    xin = low.g.tensors[x]
    target = low.value(op.inputs[1]) if len(op.inputs) > 1 and op.inputs[1] >= 0 else None
    if target is None:
        target = op.options.get("new_shape")
    if target is None:
        target = low.tensor(op.outputs[0]).shape
    shape = [int(d) for d in np.asarray(target).reshape(-1)]
    n = int(np.prod(xin.shape))
    if shape.count(-1) == 1:
        rest = int(np.prod([d for d in shape if d != -1]))
        if rest <= 0 or n % rest:
            raise low.fail(op, f"cannot reshape {xin.shape} to {shape}")
        shape[shape.index(-1)] = n // rest
    if int(np.prod(shape)) != n or any(d <= 0 for d in shape):
        raise low.fail(op, f"reshape from {xin.shape} to {shape} changes the size")
    y = low.out(op, 0, tuple(shape), "int16")
    yout = low.g.tensors[y]
    if (xin.scale, xin.zero_point) != (yout.scale, yout.zero_point):
        raise low.fail(op, "reshape changes the quantization")
    yout.alias_of = x


def lower_pad16(low: Lowering, op: tfl.Operator) -> None:
    if not _int16(low, op):
        return lower_pad(low, op)
    g = low.g
    x = low.act(op.inputs[0], op, "int16")
    xin = g.tensors[x]
    pads = _int_value(low, op, 1, "paddings")
    nd = len(xin.shape)
    if nd > 4 or pads.size != 2 * nd or (pads < 0).any():
        raise low.fail(op, f"paddings {pads.reshape(-1).tolist()} do not fit the input {xin.shape}")
    pads = pads.reshape(nd, 2).astype(np.int64)
    out_shape = tuple(int(d + a + b) for d, (a, b) in zip(xin.shape, pads, strict=True))
    y = low.out(op, 0, out_shape, "int16")
    yout = g.tensors[y]
    if (xin.scale, xin.zero_point) != (yout.scale, yout.zero_point):
        raise low.fail(op, "padding must keep the quantization")
    value = yout.zero_point
    if op.opcode == "PADV2" and len(op.inputs) > 2 and op.inputs[2] >= 0:
        v = low.value(op.inputs[2])
        if v is None or low.tensor(op.inputs[2]).dtype != "int16" or v.size != 1:
            raise low.fail(op, "the pad value must be one constant int16")
        value = int(v.reshape(-1)[0])
    ext = 4 - nd
    g.ops.append(Op("PAD_S16", [x], [y], dict(in_dims=[1] * ext + list(xin.shape),
                                              before=[0] * ext + [int(a) for a, _ in pads],
                                              after=[0] * ext + [int(b) for _, b in pads], value=value),
                    source=f"op {op.index} {op.opcode}"))


def lower_concat16(low: Lowering, op: tfl.Operator) -> None:
    if not _int16(low, op):
        return lower_concat(low, op)
    g = low.g
    low.operands(op, len(op.inputs))
    xs = [low.act(i, op, "int16") for i in op.inputs]
    shapes = [g.tensors[x].shape for x in xs]
    nd = len(shapes[0])
    axis = op.options.get("axis", 0)
    if not -nd <= axis < nd:
        raise low.fail(op, f"axis {axis} is outside the {nd}-D inputs")
    axis %= nd
    if any(len(s) != nd or s[:axis] + s[axis + 1:] != shapes[0][:axis] + shapes[0][axis + 1:] for s in shapes):
        raise low.fail(op, f"shapes {shapes} do not concatenate on axis {axis}")
    if len(xs) > CONCAT_MAX_INPUTS:
        raise low.fail(op, f"{len(xs)} inputs; micronn concatenates at most {CONCAT_MAX_INPUTS}")
    out_shape = shapes[0][:axis] + (sum(s[axis] for s in shapes),) + shapes[0][axis + 1:]
    y = low.out(op, 0, out_shape, "int16")
    yout = g.tensors[y]
    for x in xs:
        if (g.tensors[x].scale, g.tensors[x].zero_point) != (yout.scale, yout.zero_point):
            raise low.fail(op, "inputs must share the output's quantization")
    if op.options.get("fused_activation_function", "NONE") != "NONE":
        raise low.fail(op, "a fused activation on CONCATENATION is not supported")
    outer = int(np.prod(out_shape[:axis]))
    g.ops.append(Op("CONCATENATION_S16", xs, [y], dict(outer=outer), source=f"op {op.index} CONCATENATION"))


OPERANDS: dict[str, int] = {}

LOWERINGS = {
    "ADD": lower_binary16,
    "MUL": lower_binary16,
    "MAX_POOL_2D": lower_pool16,
    "AVERAGE_POOL_2D": lower_pool16,
    "SOFTMAX": lower_softmax16,
    "TANH": lower_sigmoid16,
    "LOGISTIC": lower_sigmoid16,
    "QUANTIZE": lower_quantize16,
    "RESHAPE": lower_reshape16,
    "PAD": lower_pad16,
    "PADV2": lower_pad16,
    "CONCATENATION": lower_concat16,
}


def _limits() -> dict:
    """The int8 entries of lower.py's LIMITS with what the int16 form (16x8 models) accepts added."""
    from .lower import LIMITS

    z = "zero points 0 (TFLite's requirement)"
    extra = {
        "ADD": ("ADD_S16", f"{z}; TFLite Micro's general scaling (left shift 15); {_REQUANT}; {_FUSED}"),
        "MUL": ("MUL_S16", f"{z}; {_REQUANT}; {_FUSED}"),
        "MAX_POOL_2D": ("MAX_POOL_S16", f"{z}; {_GEOM}"),
        "AVERAGE_POOL_2D": ("AVG_POOL_S16", f"{z}; windows of fewer than {POOL16_WINDOW_MAX} taps"),
        "SOFTMAX": ("SOFTMAX_S16", f"int16 -> int16 only, output scale 1/32768; rows of at most "
                                   f"{SOFTMAX16_ROW_MAX} values; input scale * beta below 2**{SOFTMAX16_MAX_SHIFT} "
                                   "* 10 / 65535"),
        "TANH": ("TANH_S16", f"{z}; output scale 2^-15; input scales below about 2.67"),
        "LOGISTIC": ("LOGISTIC_S16", f"{z}; output scale 2^-15; input scales below about 2.67"),
        "QUANTIZE": ("REQUANT", f"int8 <-> int16 and int16 -> int16 (TFLite's Requantize); {_REQUANT}; float "
                                "to int16 only on the model input, where the board quantizes"),
        "RESHAPE": ("no op", "as int8"),
        "PAD": ("PAD_S16", "as int8"),
        "PADV2": ("PAD_S16", "as int8; the pad value one constant int16"),
        "CONCATENATION": ("CONCATENATION_S16", "as int8"),
    }
    out = {}
    for name, (dev, what) in extra.items():
        base_dev, base = LIMITS[name]
        out[name] = (base_dev, f"{base}. int16 activations (TFLite's 16x8 mode): {dev}; {what}")
    return out


LIMITS = _limits()


# lower.py (the hub) takes this group's tables in; this call does it when this module is imported first
from .lower import _merge_groups  # noqa: E402

_merge_groups()
