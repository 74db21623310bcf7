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


def add_params(s1: float, s2: float, s_out: float, left_shift: int = 20) -> dict:
    """TFLite int8 ADD: both inputs scaled to twice the larger input scale, left-shifted by 20
    (int16 ADD, TFLite Micro's general scaling: by 15)."""
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


# The 256 values TFLite Micro's int16 TANH and LOGISTIC interpolate (its sigmoid_table_uint16:
# sigmoid(i / 24) in 0.16 fixed point, tuned values that no rounding of the formula gives, so
# they are listed; tests/test_ops_s16.py checks every int16 input against TFLite Micro).
SIGMOID_TABLE_U16 = (
    32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498, 40149, 40794, 41432, 42064, 42688,
    43304, 43912, 44511, 45102, 45683, 46255, 46817, 47369, 47911, 48443, 48964, 49475, 49975, 50464, 50942, 51409,
    51865, 52311, 52745, 53169, 53581, 53983, 54374, 54755, 55125, 55485, 55834, 56174, 56503, 56823, 57133, 57433,
    57724, 58007, 58280, 58544, 58800, 59048, 59288, 59519, 59743, 59959, 60168, 60370, 60565, 60753, 60935, 61110,
    61279, 61441, 61599, 61750, 61896, 62036, 62172, 62302, 62428, 62549, 62666, 62778, 62886, 62990, 63090, 63186,
    63279, 63368, 63454, 63536, 63615, 63691, 63765, 63835, 63903, 63968, 64030, 64090, 64148, 64204, 64257, 64308,
    64357, 64405, 64450, 64494, 64536, 64576, 64614, 64652, 64687, 64721, 64754, 64786, 64816, 64845, 64873, 64900,
    64926, 64950, 64974, 64997, 65019, 65039, 65060, 65079, 65097, 65115, 65132, 65149, 65164, 65179, 65194, 65208,
    65221, 65234, 65246, 65258, 65269, 65280, 65291, 65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360, 65367,
    65374, 65381, 65387, 65393, 65399, 65404, 65410, 65415, 65420, 65425, 65429, 65433, 65438, 65442, 65445, 65449,
    65453, 65456, 65459, 65462, 65465, 65468, 65471, 65474, 65476, 65479, 65481, 65483, 65485, 65488, 65489, 65491,
    65493, 65495, 65497, 65498, 65500, 65501, 65503, 65504, 65505, 65507, 65508, 65509, 65510, 65511, 65512, 65513,
    65514, 65515, 65516, 65517, 65517, 65518, 65519, 65520, 65520, 65521, 65522, 65522, 65523, 65523, 65524, 65524,
    65525, 65525, 65526, 65526, 65526, 65527, 65527, 65528, 65528, 65528, 65529, 65529, 65529, 65529, 65530, 65530,
    65530, 65530, 65531, 65531, 65531, 65531, 65531, 65532, 65532, 65532, 65532, 65532, 65532, 65533, 65533, 65533,
    65533, 65533, 65533, 65533, 65533, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65535,
)
