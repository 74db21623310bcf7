"""Integer quantization arithmetic exactly as TensorFlow Lite (Micro) does it.

The device only ever sees the integers computed here, so these functions
decide bit-exactness: float32 versus float64 steps and rounding modes follow
TFLite's kernel preparation code.
"""

from __future__ import annotations

import math

import numpy as np

INT8_MIN, INT8_MAX = -128, 127


def tflite_round(x: float) -> float:
    """std::round: half away from zero."""
    return math.copysign(math.floor(abs(x) + 0.5), x)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite QuantizeMultiplier: real ~= q * 2^(shift - 31), q in [2^30, 2^31)."""
    if real == 0.0:
        return 0, 0
    if not math.isfinite(real):
        raise ValueError(f"the quantization scales give a multiplier of {real}")
    mant, shift = math.frexp(real)
    q = int(tflite_round(mant * (1 << 31)))
    if q == 1 << 31:
        q //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return q, shift


def conv_multipliers(input_scale: float, filter_scales, output_scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Multipliers and shifts of a conv/depthwise/fully-connected layer.

    TensorFlow Lite Micro computes ``(double)in * (double)filter / (double)out``
    for every one of them, per-channel and per-tensor alike (the per-tensor
    fully connected layer included, checked against the installed interpreter
    by tests/test_fc_multiplier.py). Desktop TFLite's fully connected kernels
    multiply ``in * filter`` in float32 first; TFLM does not, so neither do we.
    A per-tensor scale is one entry of ``filter_scales``: the arithmetic is the same.
    """
    fs = np.asarray(filter_scales, dtype=np.float32).reshape(-1)
    s_in, s_out = np.float64(np.float32(input_scale)), np.float64(np.float32(output_scale))
    mults, shifts = [], []
    for s in fs:
        q, sh = quantize_multiplier(float(s_in * np.float64(s) / s_out))
        mults.append(q)
        shifts.append(sh)
    return np.array(mults, dtype=np.int32), np.array(shifts, dtype=np.int32)


def quantize_value(x: float, scale: float, zero_point: int) -> int:
    """TFLite's Quantize helper: round(x / scale) in float32, plus the zero point."""
    return int(tflite_round(float(np.float32(np.float32(x) / np.float32(scale))))) + int(zero_point)


def activation_range(activation: str, scale: float, zero_point: int,
                     qmin: int = INT8_MIN, qmax: int = INT8_MAX) -> tuple[int, int]:
    """CalculateActivationRangeQuantized for a fused activation name."""
    if activation in ("NONE", None):
        return qmin, qmax
    if activation == "RELU":
        return max(qmin, quantize_value(0.0, scale, zero_point)), qmax
    if activation == "RELU6":
        return (max(qmin, quantize_value(0.0, scale, zero_point)),
                min(qmax, quantize_value(6.0, scale, zero_point)))
    if activation == "RELU_N1_TO_1":
        return (max(qmin, quantize_value(-1.0, scale, zero_point)),
                min(qmax, quantize_value(1.0, scale, zero_point)))
    raise ValueError(f"fused activation {activation} has no integer range")


def softmax_params(beta: float, input_scale: float) -> tuple[int, int, int]:
    """(input_multiplier, input_left_shift, diff_min) of TFLite's int8 softmax."""
    scaled_diff_int_bits = 5
    real = min(float(beta) * float(np.float32(input_scale)) * (1 << (31 - scaled_diff_int_bits)),
               float((1 << 31) - 1))
    mult, shift = quantize_multiplier(real)
    if shift < 0:
        raise ValueError("softmax multiplier below one")
    radius = ((1 << scaled_diff_int_bits) - 1) * (1 << (31 - scaled_diff_int_bits)) / (1 << shift)
    diff_min = -int(math.floor(radius))
    return mult, shift, diff_min


def add_params(s1: float, s2: float, s_out: float) -> dict:
    """TFLite int8 ADD: both inputs scaled to twice the larger input scale, left-shifted by 20."""
    left_shift = 20
    s1, s2, s_out = (float(np.float32(v)) for v in (s1, s2, s_out))
    twice_max = 2.0 * max(s1, s2)
    m1, sh1 = quantize_multiplier(s1 / twice_max)
    m2, sh2 = quantize_multiplier(s2 / twice_max)
    mo, sho = quantize_multiplier(twice_max / ((1 << left_shift) * s_out))
    return dict(left_shift=left_shift, input1_mult=m1, input1_shift=sh1, input2_mult=m2, input2_shift=sh2,
                output_mult=mo, output_shift=sho)


def mul_params(s1: float, s2: float, s_out: float) -> tuple[int, int]:
    """TFLite int8 MUL: one multiplier for in1 * in2 / out, in double precision."""
    s1, s2, s_out = (float(np.float32(v)) for v in (s1, s2, s_out))
    return quantize_multiplier(s1 * s2 / s_out)


def mean_multiplier(in_scale: float, out_scale: float, n: int) -> tuple[int, int]:
    """TFLite's int8 MEAN rescale: the multiplier of in/out with 1/n folded in
    by an integer division after a left shift of floor(log2(n)) (capped)."""
    mult, shift = quantize_multiplier(float(np.float32(in_scale)) / float(np.float32(out_scale)))
    k = min(n.bit_length() - 1, 32, 31 + shift)
    return int((mult << k) // n), shift - k
