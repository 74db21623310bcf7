"""Lowerings of the elementwise operators (issue 18); lower.py merges the tables below
into its own (LOWERINGS, LIMITS, OPERANDS have the same meaning there).

* SUB, SQUARED_DIFFERENCE, MAXIMUM, MINIMUM and PRELU become device ops of their own
  over ADD's parameter record (format.py), with TFLite Micro's preparation arithmetic:
  SUB takes ADD's multipliers (left shift 20, inputs rescaled to twice the larger input
  scale, divisions in double) and subtracts the rescaled inputs; SQUARED_DIFFERENCE the
  same with left shift 7 and an output multiplier of (twice the larger scale)**2 /
  (2**14 * output scale); MAXIMUM and MINIMUM compare the stored int8 values whatever
  their quantization; PRELU has two multipliers, input / output for x >= 0 and
  input * alpha / output (in double) for x < 0.
* RSQRT and ABS are LUT ops (lower.py's LUT_OPS, tables in lut.py).
* A float island: DEQUANTIZE -> float elementwise ops of that one value -> QUANTIZE,
  which the converter leaves in full-int8 models (LayerNormalization's NEG), is one
  int8 -> int8 function: a LUT whose table is the float32 arithmetic of TFLite Micro's
  float kernels on all 256 inputs (see island_table).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

import numpy as np

from . import quant
from . import tflite as tfl
from .graph import Op
from .lower import _FUSED, _REQUANT, GEOM_MAX, Lowering, _activation, _arith, _broadcast, _check_shifts, _operand


def _binary(low: Lowering, op: tfl.Operator):
    g = low.g
    x1, x2 = _operand(low, op, op.inputs[0]), _operand(low, op, op.inputs[1])
    t1, t2 = g.tensors[x1], g.tensors[x2]
    shape, (dims, s1, s2), _ = _broadcast(low, op, t1.shape, t2.shape)
    y = low.out(op, 0, shape)
    return x1, x2, t1, t2, y, g.tensors[y], dict(dims=dims, stride1=s1, stride2=s2)


def _emit(low: Lowering, op: tfl.Operator, x1: int, x2: int, y: int, p: dict) -> None:
    low.g.ops.append(Op(op.opcode, [x1, x2], [y], p, source=f"op {op.index} {op.opcode}"))


def _smaller_than_one(low: Lowering, op: tfl.Operator, p: dict) -> None:
    """SUB and SQUARED_DIFFERENCE requantize with MultiplyByQuantizedMultiplierSmallerThanOneExp,
    which TFLite Micro defines for multipliers below one only (it would shift right by a
    negative amount); such scales are refused rather than guessed."""
    _check_shifts(low, op, p["input1_shift"], p["input2_shift"], p["output_shift"])
    if max(p["input1_shift"], p["input2_shift"], p["output_shift"]) > 0:
        raise low.fail(op, "the quantization scales need a rescaling factor of 1 or more (an output scale far "
                           "below the input scales), which TFLite Micro's arithmetic does not define")


def lower_sub(low: Lowering, op: tfl.Operator) -> None:
    """TFLite Micro's SUB: ADD's parameters, raw_sub = rescaled input 1 - rescaled input 2."""
    x1, x2, t1, t2, y, yout, p = _binary(low, op)
    lo, hi = _activation(low, op, yout)
    p.update(input1_offset=-t1.zero_point, input2_offset=-t2.zero_point, output_offset=yout.zero_point,
             act_min=lo, act_max=hi)
    p.update(_arith(low, op, quant.add_params, t1.scale, t2.scale, yout.scale))
    _smaller_than_one(low, op, p)
    _emit(low, op, x1, x2, y, p)


SQD_LEFT_SHIFT = 7      # TFLite Micro's: 255**2 * 2**14 stays below 2**31


def squared_difference_params(s1: float, s2: float, s_out: float) -> dict:
    """SquaredDifferencePrepare's int8 parameters (float32 scales, double arithmetic)."""
    s1, s2, s_out = (float(np.float32(v)) for v in (s1, s2, s_out))
    twice_max = 2.0 * max(s1, s2)
    m1, sh1 = quant.quantize_multiplier(s1 / twice_max)
    m2, sh2 = quant.quantize_multiplier(s2 / twice_max)
    # (1 << 14) * output scale is a float32 product (exact: a power of two)
    mo, sho = quant.quantize_multiplier(twice_max * twice_max / float((1 << 2 * SQD_LEFT_SHIFT) * s_out))
    return dict(left_shift=SQD_LEFT_SHIFT, input1_mult=m1, input1_shift=sh1, input2_mult=m2, input2_shift=sh2,
                output_mult=mo, output_shift=sho)


def lower_squared_difference(low: Lowering, op: tfl.Operator) -> None:
    x1, x2, t1, t2, y, yout, p = _binary(low, op)
    p.update(input1_offset=-t1.zero_point, input2_offset=-t2.zero_point, output_offset=yout.zero_point,
             act_min=-128, act_max=127)     # TFLite Micro clamps to int8 only
    p.update(_arith(low, op, squared_difference_params, t1.scale, t2.scale, yout.scale))
    _smaller_than_one(low, op, p)
    _emit(low, op, x1, x2, y, p)


def lower_minmax(low: Lowering, op: tfl.Operator) -> None:
    """TFLite Micro's MAXIMUM/MINIMUM compare the stored values (no requantization)."""
    x1, x2, t1, t2, y, yout, p = _binary(low, op)
    p.update(act_min=-128, act_max=127)
    _emit(low, op, x1, x2, y, p)


def prelu_params(s_in: float, s_alpha: float, s_out: float) -> dict:
    """CalculatePreluParams: input / output and input * alpha / output, in double."""
    s_in, s_alpha, s_out = (float(np.float32(v)) for v in (s_in, s_alpha, s_out))
    m1, sh1 = quant.quantize_multiplier(s_in / s_out)
    m2, sh2 = quant.quantize_multiplier(s_in * s_alpha / s_out)
    return dict(input1_mult=m1, input1_shift=sh1, output_mult=m2, output_shift=sh2)


def lower_prelu(low: Lowering, op: tfl.Operator) -> None:
    x1, x2, t1, t2, y, yout, p = _binary(low, op)
    if low.value(op.inputs[0]) is not None:
        raise low.fail(op, "the PRELU input is a constant; expected an activation")
    if tuple(yout.shape) != tuple(t1.shape):
        raise low.fail(op, f"alpha {t2.shape} broadcasts the input {t1.shape} to another shape")
    p.update(input1_offset=-t1.zero_point, input2_offset=-t2.zero_point, output_offset=yout.zero_point,
             act_min=-128, act_max=127)
    p.update(_arith(low, op, prelu_params, t1.scale, t2.scale, yout.scale))
    _check_shifts(low, op, p["input1_shift"], p["output_shift"])
    _emit(low, op, x1, x2, y, p)


def lower_no_int8_kernel(low: Lowering, op: tfl.Operator) -> None:
    if low.tensor(op.inputs[0]).dtype == "float32":
        raise low.fail(op, f"a float {op.opcode} runs only inside a float island (DEQUANTIZE -> float "
                           "elementwise ops -> QUANTIZE, which micronn turns into a table)")
    raise low.fail(op, f"int8 {op.opcode} has no TFLite Micro kernel (it runs float32 only), so there is "
                       "nothing to match; keep the op in float between DEQUANTIZE and QUANTIZE (a float "
                       "island micronn turns into a table)")


# --- float islands ----------------------------------------------------------

def _fmax(a, b):
    return np.where(a > b, a, b)        # TFLite's MaximumOp: el1 > el2 ? el1 : el2


def _fmin(a, b):
    return np.where(a < b, a, b)


def _clampf(v, lo, hi):
    """ActivationFunctionWithMinMax: std::min(std::max(v, lo), hi) (a NaN stays NaN)."""
    v = np.where(v < lo, np.float32(lo), v)
    return np.where(hi < v, np.float32(hi), v)


_F32_MAX = float(np.finfo(np.float32).max)
_FLOAT_ACT = {"NONE": (-_F32_MAX, _F32_MAX), "RELU": (0.0, _F32_MAX), "RELU6": (0.0, 6.0),
              "RELU_N1_TO_1": (-1.0, 1.0)}

@functools.cache
def _libm(name: str):
    """The C library's float function (expf, logf, sinf, cosf): what TFLite Micro's float
    kernels call through std::exp(float) etc. on the host it runs on. These are not
    correctly rounded, so numpy's float64 results rounded to float32 could differ."""
    fn = getattr(ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6"), name)
    fn.restype, fn.argtypes = ctypes.c_float, [ctypes.c_float]
    return np.vectorize(lambda v: np.float32(fn(float(v))), otypes=[np.float32])


# TFLite Micro's float kernels on float32 values: NEG ... SQUARE are correctly rounded
# IEEE operations, so numpy's float32 arithmetic is theirs bit for bit; EXP, LOG, SIN and
# COS are the C library's.
ISLAND_UNARY = {
    "EXP": lambda v: _libm("expf")(v),
    "LOG": lambda v: _libm("logf")(v),
    "SIN": lambda v: _libm("sinf")(v),
    "COS": lambda v: _libm("cosf")(v),
    "NEG": lambda v: -v,
    "ABS": np.abs,
    "SQRT": np.sqrt,
    "RSQRT": lambda v: np.float32(1) / np.sqrt(v),
    "SQUARE": lambda v: v * v,
    "RELU": lambda v: _clampf(v, 0.0, _F32_MAX),
    "RELU6": lambda v: _clampf(v, 0.0, 6.0),
}
ISLAND_BINARY = {
    "ADD": np.add,
    "SUB": np.subtract,
    "MUL": np.multiply,
    "DIV": np.divide,
    "MAXIMUM": _fmax,
    "MINIMUM": _fmin,
    "SQUARED_DIFFERENCE": lambda a, b: (a - b) * (a - b),
}
ISLAND_FUSED = ("ADD", "SUB", "MUL", "DIV")


def _quantize_f32(v: np.ndarray, scale: float, zp: int) -> np.ndarray:
    """TFLite Micro's AffineQuantize on the x86 host TFLite Micro runs on:
    static_cast<int32_t>(round(val / (double)scale)) + zero_point, clamped; a NaN or a
    value beyond int32 converts to INT32_MIN (cvttsd2si), and the addition wraps."""
    r = v.astype(np.float64) / np.float64(np.float32(scale))
    r = np.sign(r) * np.floor(np.abs(r) + 0.5)      # std::round, halves away from zero
    bad = ~(np.abs(r) < 2.0**31)                    # NaN included
    q = np.where(bad, 0.0, r).astype(np.int64)
    q[bad] = -(2**31)
    q = (q + int(zp) + 2**31) % 2**32 - 2**31
    return np.clip(q, -128, 127).astype(np.int8)


def island_table(in_scale: float, in_zp: int, steps, out_scale: float, out_zp: int) -> np.ndarray:
    """The int8 outputs of DEQUANTIZE -> steps -> QUANTIZE for every int8 input (index q + 128).
    steps: (opcode, fused activation, constant or None, constant first) in order."""
    q = np.arange(-128, 128, dtype=np.int32)
    # Dequantize: (float)(double scale * (q - zp)), the exact product rounded once = a float32 product
    v = np.float32(in_scale) * (q - int(in_zp)).astype(np.float32)
    with np.errstate(all="ignore"):
        for opcode, act, const, first in steps:
            if opcode in ISLAND_UNARY:
                v = ISLAND_UNARY[opcode](v).astype(np.float32)
                continue
            c = v if const is None else np.float32(const)
            a, b = (c, v) if first else (v, c)
            v = ISLAND_BINARY[opcode](a, b).astype(np.float32)
            if act != "NONE":
                v = _clampf(v, *_FLOAT_ACT[act]).astype(np.float32)
    return _quantize_f32(v, out_scale, out_zp)


ISLAND_MAX_OPS = 16


def lower_island(low: Lowering, op: tfl.Operator) -> None:
    """DEQUANTIZE inside the graph: the start of a float island, which must be a chain of
    float elementwise ops of this one value (constants of one value allowed) that ends in
    one QUANTIZE to int8. It becomes one LUT; the chain's ops are absorbed."""
    x = low.act(op.inputs[0], op)
    xin = low.g.tensors[x]
    t = op.outputs[0]
    steps, absorbed = [], []
    while True:
        if t in low.outputs:
            raise low.fail(op, "a float value inside the graph is a model output; micronn's outputs are int8 "
                               "(or float through a final DEQUANTIZE)")
        uses = {u.index: u for u in low.consumers.get(t, [])}
        if len(uses) != 1:
            raise low.fail(op, f"its float output feeds {len(uses)} ops; micronn turns a float island into a "
                               "table only when it is one chain of elementwise ops ending in QUANTIZE")
        nxt = next(iter(uses.values()))
        if len(absorbed) > ISLAND_MAX_OPS:
            raise low.fail(op, f"a float island of more than {ISLAND_MAX_OPS} ops")
        where = f"op {nxt.index} ({nxt.opcode}) of the float island after op {op.index} (DEQUANTIZE)"
        if nxt.opcode == "QUANTIZE":
            if not nxt.outputs or low.tensor(nxt.outputs[0]).dtype != "int8":
                raise low.fail(op, f"{where} does not quantize to int8")
            absorbed.append(nxt)
            break
        if len(nxt.outputs) != 1 or low.tensor(nxt.outputs[0]).dtype != "float32":
            raise low.fail(op, f"{where}: expected one float32 output")
        if nxt.opcode in ISLAND_UNARY:
            steps.append((nxt.opcode, "NONE", None, False))
        elif nxt.opcode in ISLAND_BINARY and len(nxt.inputs) == 2:
            const, first = None, False
            for k, i in enumerate(nxt.inputs):
                if i == t:
                    continue
                v = low.value(i)
                if v is None or low.tensor(i).dtype != "float32" or v.size != 1:
                    raise low.fail(op, f"{where}: its other operand must be one float32 constant value "
                                       "(a table maps one value)")
                const, first = float(np.asarray(v, np.float32).reshape(-1)[0]), k == 0
            act = nxt.options.get("fused_activation_function", "NONE") if nxt.opcode in ISLAND_FUSED else "NONE"
            if act not in _FLOAT_ACT:
                raise low.fail(op, f"{where}: fused activation {act} is not supported")
            steps.append((nxt.opcode, act, const, first))
        else:
            raise low.fail(op, f"{where}: micronn turns only the float elementwise ops "
                               f"{', '.join(sorted([*ISLAND_UNARY, *ISLAND_BINARY]))} (and a final QUANTIZE) "
                               "into a table")
        absorbed.append(nxt)
        t = nxt.outputs[0]
    quant_op = absorbed[-1]
    y = low.out(quant_op, 0, xin.shape)
    yout = low.g.tensors[y]
    table = island_table(xin.scale, xin.zero_point, steps, yout.scale, yout.zero_point)
    tab = low.g.const(f"island{op.index}/table", table)
    low.g.ops.append(Op("LUT", [x, tab], [y], dict(count=xin.nbytes),
                        source=f"ops {op.index}-{quant_op.index} DEQUANTIZE..QUANTIZE (float island)"))
    low.skip.update(o.index for o in absorbed)


# Unary ops whose TFLite Micro kernels take float32 only (an int8 one fails at Prepare or Invoke:
# tests/test_ops_elementwise.py); in a float island they are fine (those of ISLAND_UNARY).
FLOAT_ONLY = ("NEG", "SQRT", "SQUARE", "EXP", "LOG", "SIN", "COS")

# Inputs a lowering reads that must be present (default 1).
OPERANDS: dict = {"SUB": 2, "SQUARED_DIFFERENCE": 2, "MAXIMUM": 2, "MINIMUM": 2, "PRELU": 2}

LOWERINGS: dict = {
    "SUB": lower_sub,
    "SQUARED_DIFFERENCE": lower_squared_difference,
    "MAXIMUM": lower_minmax,
    "MINIMUM": lower_minmax,
    "PRELU": lower_prelu,
    "DEQUANTIZE": lower_island,
    **{name: lower_no_int8_kernel for name in FLOAT_ONLY},
}

_BCAST = (f"NumPy broadcasting over at most 4 dimensions, each axis stepping over fewer than {GEOM_MAX} values; "
          "either input may be an int8 constant")
LIMITS: dict = {
    "SUB": ("SUB", f"{_BCAST}; {_FUSED}; rescaling factors below 1 (TFLite Micro's requantization of SUB)"),
    "SQUARED_DIFFERENCE": ("SQUARED_DIFFERENCE", f"{_BCAST}; rescaling factors below 1 (output scale not far below "
                           "the squared input scales: TFLite Micro's requantization)"),
    "MAXIMUM": ("MAXIMUM", f"{_BCAST}; compares the stored int8 values, as TFLite Micro does (the converter gives "
                "inputs and output one quantization)"),
    "MINIMUM": ("MINIMUM", "as MAXIMUM"),
    "PRELU": ("PRELU", f"alpha (usually a constant) broadcast to the input's shape, at most 4-D, each axis stepping "
              f"over fewer than {GEOM_MAX} values; {_REQUANT}"),
    **{name: ("never", f"refused as int8: TFLite Micro's {name} runs float32 only"
              + (" (in a float island it is supported)" if name in ISLAND_UNARY else "")) for name in FLOAT_ONLY},
    "DEQUANTIZE": ("LUT (with the float ops after it)", "as the model's last op (float output, done by the board), "
                   "or starting a float island: a chain of float elementwise ops of that one int8 value ("
                   + ", ".join(sorted([*ISLAND_UNARY, *ISLAND_BINARY])) + f", at most {ISLAND_MAX_OPS}; the "
                   "other operand of a binary op one float constant; fused NONE, RELU, RELU6 or RELU_N1_TO_1) "
                   "ending in QUANTIZE to int8: a 256-entry table of TFLite Micro's float32 arithmetic"),
}


# lower.py (the hub) takes this group's tables in; this call does it when this module is imported first
from .lower import _merge_groups  # noqa: E402

_merge_groups()
