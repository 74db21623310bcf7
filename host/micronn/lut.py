"""Bit-exact 256-entry lookup tables for TFLite Micro's int8 elementwise operators.

micronn runs every int8 -> int8 unary operator as a table: for each input value
``q`` in [-128, 127] the host computes the output TFLite Micro's integer kernel
produces, and the device only indexes ``table[q + 128]``. So this module redoes
TFLM's arithmetic exactly: the kernel's Prepare step (with its float32 and
float64 steps where TFLM has them) and its Eval step in integer arithmetic, using
Python ints with explicit int16/int32 wrap-around and saturation where the C++
relies on them.

Facts this follows (TFLM reference kernels, default double-rounding build):

* ``QuantizeMultiplier``: ``frexp``, then ``round(q * 2**31)`` half away from
  zero; a mantissa of exactly 2**31 is halved, shifts below -31 flush to zero.
* ``MultiplyByQuantizedMultiplier``: ``SaturatingRoundingDoublingHighMul`` (ties
  towards +inf) then ``RoundingDivideByPOT`` (ties away from zero).
* Prepare precision: RELU, LEAKY_RELU, HARD_SWISH, QUANTIZE and ABS divide the
  float32 scales in double; RELU6's upper bound is the float32 ``6.0f / scale``;
  ELU's table is float32 throughout and uses the C library's ``expf``. (Doing a
  division in the other precision changes some table entries for some scales.)
* LOGISTIC and TANH run gemmlowp's fixed-point ``logistic``/``tanh`` on a Q4.27
  input. TFLM only checks LOGISTIC's output zero point (-128) and writes 1/256
  steps whatever the output scale; TANH checks nothing and writes 1/128 steps
  around 0, ignoring the output scale and zero point.
* RELU6 clamps in the input's quantization and ignores the output's; RELU
  requantizes. LEAKY_RELU applies a negative alpha's sign after the multiply.
* HARD_SWISH works on int16 with 16-bit multipliers; TFLM rejects an output
  multiplier exponent above 0 (output scale at or below input scale / 128).
* TFLM has no RELU_N1_TO_1 kernel at all.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import math

import numpy as np

from micronn.errors import MicronnError

__all__ = ["OPS", "lut", "quantize_multiplier"]

I16_MIN, I16_MAX = -(1 << 15), (1 << 15) - 1
I32_MIN, I32_MAX = -(1 << 31), (1 << 31) - 1
Q = range(-128, 128)  # every int8 input value, in table order


# --------------------------------------------------------------------------
# C arithmetic on Python ints and floats
# --------------------------------------------------------------------------


def _f32(x: float) -> float:
    """Round to the nearest float32 (what a C ``float`` expression stores)."""
    return float(np.float32(x))


def _wrap(x: int, bits: int = 32) -> int:
    """Two's-complement wrap-around to a signed ``bits``-wide integer."""
    half = 1 << (bits - 1)
    return ((x + half) & ((1 << bits) - 1)) - half


def _cdiv(n: int, d: int) -> int:
    """C integer division (truncates towards zero), d > 0."""
    return n // d if n >= 0 else -(-n // d)


def _round(x: float) -> int:
    """std::round / TfLiteRound: nearest integer, halves away from zero."""
    a = abs(x)
    r = math.floor(a)
    if a - r >= 0.5:  # exact: a - floor(a) is representable
        r += 1
    return int(r) if x >= 0 else -int(r)


def _clamp(x: int, lo: int = -128, hi: int = 127) -> int:
    return min(max(x, lo), hi)


def _srdhm(a: int, b: int, bits: int = 32) -> int:
    """gemmlowp SaturatingRoundingDoublingHighMul (ARM VQRDMULH) at int32 or int16."""
    lo = -(1 << (bits - 1))
    if a == b == lo:
        return -lo - 1
    ab = a * b
    nudge = 1 << (bits - 2) if ab >= 0 else 1 - (1 << (bits - 2))
    return _wrap(_cdiv(ab + nudge, 1 << (bits - 1)), bits)


def _rdpot(x: int, exponent: int, bits: int = 32) -> int:
    """gemmlowp RoundingDivideByPOT: arithmetic shift right, ties away from zero."""
    mask = _wrap((1 << exponent) - 1, bits)
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return _wrap((x >> exponent) + (1 if (x & mask) > threshold else 0), bits)


def _sat_shl(x: int, exponent: int) -> int:
    """int32 SaturatingRoundingMultiplyByPOT<exponent> for exponent > 0."""
    threshold = (1 << (31 - exponent)) - 1
    return I32_MAX if x > threshold else I32_MIN if x < -threshold else x << exponent


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite QuantizeMultiplier: (int32 multiplier in Q0.31, shift), double-rounding build."""
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    fixed = _round(q * (1 << 31))  # exact product: q has 53 bits
    if fixed == 1 << 31:
        fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return fixed, shift


def _mbqm(x: int, multiplier: int, shift: int) -> int:
    """MultiplyByQuantizedMultiplier(int32 x, ...), TFLite's default double rounding."""
    left, right = max(shift, 0), max(-shift, 0)
    return _rdpot(_srdhm(_wrap(x * (1 << left)), multiplier), right)


# --------------------------------------------------------------------------
# gemmlowp fixed point (int32 raw values; FixedPoint<int32, k> has 31 - k
# fractional bits). "+" and "-" are plain wrapping int32 arithmetic.
# --------------------------------------------------------------------------


def _add(a: int, b: int) -> int:
    return _wrap(a + b)


def _exp_quarter(a: int) -> int:
    """exp(a) for a in [-1/4, 0), Q0.31 in and out (Taylor series around -1/8)."""
    const_term, one_third = 1895147668, 715827883  # exp(-1/8), 1/3
    x = _add(a, 1 << 28)
    x2 = _srdhm(x, x)
    x3 = _srdhm(x2, x)
    x4 = _srdhm(x2, x2)
    poly = _rdpot(_add(_srdhm(_add(_rdpot(x4, 2), x3), one_third), x2), 1)
    return _add(const_term, _srdhm(const_term, _add(x, poly)))


# exp(-2**e) in Q0.31, for the barrel shifter of exp_on_negative_values
_EXP_NEG_POT = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
                (2, 39332535), (3, 720401), (4, 242))


def _exp_on_negative_values(a: int, int_bits: int) -> int:
    """exp(a) for a <= 0 given with int_bits integer bits; Q0.31 result."""
    frac_bits = 31 - int_bits
    quarter = 1 << (frac_bits - 2)
    a_mod = _wrap((a & (quarter - 1)) - quarter)
    result = _exp_quarter(_sat_shl(a_mod, int_bits))  # Rescale<0>
    remainder = _wrap(a_mod - a)
    for exponent, multiplier in _EXP_NEG_POT:
        if int_bits > exponent and remainder & (1 << (frac_bits + exponent)):
            result = _srdhm(result, multiplier)
    if int_bits > 5 and a < -(1 << (36 - int_bits)):  # below -32
        result = 0
    return I32_MAX if a == 0 else result


def _newton_reciprocal(a: int) -> int:
    """x ~ 1 / ((1 + a) / 2) in Q2.29 for a in (0, 1) Q0.31: gemmlowp's Newton-Raphson."""
    s = a + I32_MAX  # RoundingHalfSum(a, One), computed in int64
    half_denominator = _cdiv(s + (1 if s >= 0 else -1), 2)
    x = _add(1515870810, _srdhm(half_denominator, -1010580540))  # 48/17 - 32/17 * d
    for _ in range(3):
        one_minus = _wrap((1 << 29) - _srdhm(half_denominator, x))
        x = _add(x, _sat_shl(_srdhm(x, one_minus), 2))  # Rescale<2> of a Q4.27
    return x


def _fx_logistic(a: int) -> int:
    """gemmlowp logistic of a Q4.27 value; Q0.31 result."""
    magnitude = a if a > 0 else _wrap(-a)
    # 1 / (1 + exp(-|a|)) = x / 2, Rescale<0> from Q1.30
    positive = _sat_shl(_newton_reciprocal(_exp_on_negative_values(_wrap(-magnitude), 4)), 1)
    if a == 0:
        return 1 << 30
    return positive if a > 0 else _wrap(I32_MAX - positive)


def _fx_tanh(a: int) -> int:
    """gemmlowp tanh of a Q4.27 value; Q0.31 result."""
    n = a if a < 0 else _wrap(-a)  # -|a|
    # -tanh(n) = (1 - exp(2n)) / (1 + exp(2n)); exp(2n) reads n's raw as Q5.26
    t = _sat_shl(_wrap(_newton_reciprocal(_exp_on_negative_values(n, 5)) - (1 << 29)), 2)
    if a == 0:
        return 0
    return _wrap(-t) if a < 0 else t


# --------------------------------------------------------------------------
# The operators: each returns the 256 outputs as a list of ints
# --------------------------------------------------------------------------


def _q4_input(in_scale: float):
    """LOGISTIC/TANH Prepare: input rescaled to Q4.27, and the saturation radius."""
    q, shift = math.frexp(in_scale * (1 << 27))
    multiplier = _round(q * (1 << 31))
    radius = math.floor(15.0 * (1 << 27) / 2.0**shift)
    return multiplier, shift, radius


def _logistic(in_scale, in_zp, out_scale, out_zp):
    if out_zp != -128:
        raise MicronnError(f"LOGISTIC: TFLM needs the int8 output zero point -128, got {out_zp}")
    multiplier, shift, radius = _q4_input(in_scale)

    def one(q):
        x = q - in_zp
        if x <= -radius:
            return -128
        if x >= radius:
            return 127
        return _clamp(_rdpot(_fx_logistic(_mbqm(x, multiplier, shift)), 23) - 128)

    return [one(q) for q in Q]


def _tanh(in_scale, in_zp, out_scale, out_zp):
    multiplier, shift, radius = _q4_input(in_scale)

    def one(q):
        x = q - in_zp
        if x <= -radius:
            return -128
        if x >= radius:
            return 127
        return _clamp(_rdpot(_fx_tanh(_mbqm(x, multiplier, shift)), 24))

    return [one(q) for q in Q]


def _relu(in_scale, in_zp, out_scale, out_zp):
    multiplier, shift = quantize_multiplier(in_scale / out_scale)  # double division
    lo = max(-128, out_zp)  # out_zp + round(0 / out_scale)
    return [_clamp(out_zp + _mbqm(q - in_zp, multiplier, shift), lo) for q in Q]


def _relu6(in_scale, in_zp, out_scale, out_zp):
    six = _clamp(_round(_f32(6.0 / in_scale)) + in_zp)  # FloatToQuantizedType<int8_t>
    return [six if q > six else in_zp if q < in_zp else q for q in Q]


def _relu_n1_to_1(in_scale, in_zp, out_scale, out_zp):
    raise MicronnError("RELU_N1_TO_1: TFLite Micro has no kernel for this operator")


def _leaky_relu(in_scale, in_zp, out_scale, out_zp, alpha):
    m_alpha, s_alpha = quantize_multiplier(in_scale * _f32(alpha) / out_scale)  # all double
    m_id, s_id = quantize_multiplier(in_scale / out_scale)

    def one(q):
        x = q - in_zp
        if x >= 0:
            return _clamp(out_zp + _mbqm(x, m_id, s_id))
        scaled = _mbqm(x, abs(m_alpha), s_alpha)  # sign applied after, as TFLM does
        return _clamp(out_zp + (-scaled if m_alpha < 0 else scaled))

    return [one(q) for q in Q]


def _int16_multiplier(real: float) -> tuple[int, int]:
    """QuantizeMultiplier then DownScaleInt32ToInt16Multiplier."""
    m, shift = quantize_multiplier(real)
    return (I16_MAX if m >= I32_MAX - (1 << 15) else (m + (1 << 15)) >> 16), shift


def _hard_swish(in_scale, in_zp, out_scale, out_zp):
    hires_scale = in_scale / 128.0  # exact
    m_out, e_out = _int16_multiplier(hires_scale / out_scale)  # double division
    if e_out > 0:
        raise MicronnError(
            f"HARD_SWISH: TFLM rejects output scale {out_scale:g} for input scale {in_scale:g} "
            "(output multiplier exponent > 0)"
        )
    m_relu, e_relu = _int16_multiplier(hires_scale / (3.0 / 32768.0))

    def shl16(x, n):  # SaturatingLeftShift
        return _clamp(x * (1 << n), I16_MIN, I16_MAX)

    def one(q):
        hires = _wrap((q - in_zp) * 128, 16)
        preshift_out = _srdhm(hires, m_out, 16)
        reluish = hires
        if e_relu > 0:
            reluish = shl16(reluish, e_relu - 1)
        reluish = _srdhm(reluish, m_relu, 16)
        if e_relu > 0:
            reluish = shl16(reluish, 1)
        if e_relu < 0:
            reluish = _rdpot(reluish, -e_relu, 16)
        reluish = (reluish + (1 << 15)) >> 1  # [-1, 1] -> [0, 1]
        # SaturatingDoublingHighMul: like _srdhm but truncating, no nudge
        product = I16_MAX if reluish == preshift_out == I16_MIN else _wrap(_cdiv(reluish * preshift_out, 1 << 15), 16)
        return _clamp(_wrap(_rdpot(product, -e_out, 16) + out_zp, 16))

    return [one(q) for q in Q]


def _quantize(in_scale, in_zp, out_scale, out_zp):
    multiplier, shift = quantize_multiplier(in_scale / out_scale)  # double division
    return [_clamp(_mbqm(q - in_zp, multiplier, shift) + out_zp) for q in Q]


def _abs(in_scale, in_zp, out_scale, out_zp):
    if in_scale == out_scale:
        return [_clamp(abs(q - in_zp) + out_zp) for q in Q]
    multiplier, shift = quantize_multiplier(in_scale / out_scale)  # double division
    return [_clamp(_mbqm(abs(q - in_zp), multiplier, shift) + out_zp) for q in Q]


def _inv_sqrt(x: int) -> tuple[int, int]:
    """GetInvSqrtQuantizedMultiplierExp(x, reverse_shift=-1): 1 / sqrt(x) as a Q0.31
    multiplier and a left shift, by gemmlowp Newton-Raphson on a FixedPoint<int32, 3>."""
    if x <= 1:
        return I32_MAX, 0
    shift = 11
    while x >= 1 << 29:
        x //= 4
        shift += 1
    pairs = (32 - x.bit_length() - 1) // 2 - 1       # CountLeadingZeros - 1, in bit pairs, less one
    shift -= pairs
    x <<= 2 * pairs
    half_input = _rdpot(x >> 1, 1)                   # SaturatingRoundingMultiplyByPOT<-1> of a Q3.28
    half_three = (1 << 28) + (1 << 27)               # 1.5 in Q3.28
    r = 1 << 28                                      # one
    for _ in range(5):
        r3 = _sat_shl(_srdhm(_srdhm(r, r), r), 6)    # Rescale<3> of a Q9.22
        r = _sat_shl(_wrap(_srdhm(half_three, r) - _srdhm(half_input, r3)), 3)   # Rescale<3> of a Q6.25
    r = _srdhm(r, 1518500250)                        # times sqrt(2) / 2 in Q0.31
    if shift < 0:
        r = _wrap(r << -shift)
        shift = 0
    return r, -shift


def _rsqrt(in_scale, in_zp, out_scale, out_zp):
    """TFLM's int8 RSQRT. Inputs below the zero point (negative values) make TFLM fail the
    whole inference ("Rsqrt is only defined for positive values"); the table gives 127
    there, as TFLM does for the zero point itself."""
    scale = 1.0 / _f32(_f32(math.sqrt(in_scale)) * out_scale)   # float sqrt and product, double division
    multiplier, shift = quantize_multiplier(scale)
    if not -31 <= shift - 20 <= 30:
        raise MicronnError(f"RSQRT: scales {in_scale:g} and {out_scale:g} give a multiplier of 2**{shift - 1} "
                           "that TFLM's arithmetic cannot apply")

    def one(q):
        value = q - in_zp
        if value <= 0:
            return 127
        inv, inv_shift = _inv_sqrt(value)
        data = _mbqm(1, inv, inv_shift + 20)
        return _clamp(_mbqm(data, multiplier, shift - 20) + out_zp)

    return [one(q) for q in Q]


@functools.cache
def _expf():
    """The C library's float exp, which TFLM's ELU calls (else exp rounded to float32).

    expf is not correctly rounded (glibc's is off by an ulp for ~0.06% of inputs), and
    now and then that ulp moves an ELU table entry, so use the same function as TFLM.
    """
    try:
        fn = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6").expf
        fn.restype, fn.argtypes = ctypes.c_float, [ctypes.c_float]
        return fn
    except (OSError, AttributeError):
        return lambda x: _f32(math.exp(x))


def _elu(in_scale, in_zp, out_scale, out_zp):
    """TFLM's own Prepare-time table, all in float32 (expf, roundf)."""
    inverse_scale = _f32(1.0 / out_scale)
    expf = _expf()

    def one(q):
        x = _f32(in_scale * _f32(q - in_zp))
        y = _f32(expf(x) - 1.0) if x < 0.0 else x
        r = _round(_f32(y * inverse_scale))
        return _clamp(int(_f32(r + out_zp)))

    return [one(q) for q in Q]


OPS = {
    "LOGISTIC": _logistic,
    "TANH": _tanh,
    "RELU": _relu,
    "RELU6": _relu6,
    "RELU_N1_TO_1": _relu_n1_to_1,
    "LEAKY_RELU": _leaky_relu,
    "HARD_SWISH": _hard_swish,
    "QUANTIZE": _quantize,
    "ABS": _abs,
    "ELU": _elu,
    "RSQRT": _rsqrt,
}
_OPTIONS = {"LEAKY_RELU": {"alpha"}}


def lut(op: str, in_scale: float, in_zp: int, out_scale: float, out_zp: int, **options) -> np.ndarray:
    """The int8 outputs of TFLM's int8 ``op`` for every int8 input; index = q + 128.

    Scales are taken as the float32 values stored in the .tflite file. Raises
    MicronnError for an unknown operator, wrong options, or a quantization that
    TFLM's Prepare rejects.
    """
    fn = OPS.get(op)
    if fn is None:
        raise MicronnError(f"no int8 lookup table for operator {op!r} (known: {', '.join(OPS)})")
    want = _OPTIONS.get(op, set())
    if set(options) != want:
        raise MicronnError(f"{op}: expected options {sorted(want)}, got {sorted(options)}")
    in_scale, out_scale = _f32(in_scale), _f32(out_scale)
    if not (in_scale > 0 and out_scale > 0 and math.isfinite(in_scale) and math.isfinite(out_scale)):
        raise MicronnError(f"{op}: scales must be positive and finite, got {in_scale} and {out_scale}")
    table = fn(in_scale, int(in_zp), out_scale, int(out_zp), **options)
    return np.array(table, dtype=np.int8)
