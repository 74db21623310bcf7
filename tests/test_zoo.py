"""A zoo of small Keras CNNs (tests/zoo.py), converted by TensorFlow to int8 TFLite,
packed and run on the unix firmware, bit-exact with TensorFlow Lite Micro.

Each case names the TFLite ops (upper case) and properties (lower case, see
FEATURES) its converted model must have, so the zoo keeps covering what it is for.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras  # noqa: E402, F401  (required: a missing install is an error here, never a skip)

from micronn import pack, tflite  # noqa: E402
from micronn.convert import keras_to_tflite  # noqa: E402
from micronn.reference import tflm_run  # noqa: E402
from micronn.run import sample_inputs  # noqa: E402

from .zoo import ZOO, build, seed  # noqa: E402

SAMPLES = 10
CONVS = ("CONV_2D", "DEPTHWISE_CONV_2D")
POOLS = ("MAX_POOL_2D", "AVERAGE_POOL_2D")


def _ops(m, *names):
    return [op for op in m.operators if op.opcode in names]


def _shape(m, i):
    return m.tensors[i].shape


def _window(m, op):
    """(height, width) of a convolution's kernel or a pooling window."""
    if op.opcode in POOLS:
        return op.options["filter_height"], op.options["filter_width"]
    return _shape(m, op.inputs[1])[1:3]


def _quant(m, i):
    t = m.tensors[i]
    return float(t.scale[0]), int(t.zero_point[0])


def _mean_same_quant(m):
    return [_quant(m, op.inputs[0]) == _quant(m, op.outputs[0]) for op in _ops(m, "MEAN")]


FEATURES = {
    "dilated": lambda m: any(op.opcode == "SPACE_TO_BATCH_ND" or op.options.get("dilation_h_factor", 1) > 1
                             or op.options.get("dilation_w_factor", 1) > 1 for op in m.operators),
    "grouped": lambda m: any(_shape(m, op.inputs[1])[3] < _shape(m, op.inputs[0])[3] for op in _ops(m, "CONV_2D")),
    "no_bias": lambda m: any(len(op.inputs) < 3 or op.inputs[2] < 0 or not m.tensors[op.inputs[2]].array().any()
                             for op in _ops(m, *CONVS)),
    "nonsquare": lambda m: any(_window(m, op)[0] != _window(m, op)[1] for op in _ops(m, *CONVS, *POOLS)),
    "strided": lambda m: any(op.options.get("stride_h", 1) > 1 or op.options.get("stride_w", 1) > 1
                             for op in _ops(m, *CONVS, *POOLS)),
    "valid": lambda m: any(op.options.get("padding") == "VALID" for op in m.operators),
    "same": lambda m: any(op.options.get("padding") == "SAME" for op in m.operators),
    "mult2": lambda m: any(_shape(m, op.outputs[0])[3] == 2 * _shape(m, op.inputs[0])[3]
                           for op in _ops(m, "DEPTHWISE_CONV_2D")),
    "mult8_1ch": lambda m: any(_shape(m, op.inputs[0])[3] == 1 and _shape(m, op.outputs[0])[3] == 8
                               for op in _ops(m, "DEPTHWISE_CONV_2D")),
    "fused_relu": lambda m: any(op.options.get("fused_activation_function") == "RELU" for op in m.operators),
    "fused_relu6": lambda m: any(op.options.get("fused_activation_function") == "RELU6" for op in m.operators),
    "keep_dims": lambda m: any(op.options.get("keep_dims") for op in _ops(m, "MEAN")),
    "mean_requant": lambda m: not all(_mean_same_quant(m)),
    "mean_same_quant": lambda m: any(_mean_same_quant(m)),
    "broadcast": lambda m: any(_shape(m, op.inputs[0]) != _shape(m, op.inputs[1]) for op in _ops(m, "ADD", "MUL")),
    "elementwise": lambda m: any(_shape(m, op.inputs[0]) == _shape(m, op.inputs[1]) for op in _ops(m, "ADD", "MUL")),
    "concat_inner": lambda m: any(op.options.get("axis", 0) % len(_shape(m, op.outputs[0])) != 3
                                  for op in _ops(m, "CONCATENATION")),
    "concat_channels": lambda m: any(op.options.get("axis", 0) % 4 == 3 for op in _ops(m, "CONCATENATION")),
    "float_io": lambda m: m.tensors[m.inputs[0]].dtype == m.tensors[m.outputs[0]].dtype == "float32",
    "int8_io": lambda m: m.tensors[m.inputs[0]].dtype == m.tensors[m.outputs[0]].dtype == "int8",
}

# name -> what the converted model must contain
EXPECT = {
    "conv_1x1": "CONV_2D fused_relu",
    "conv_3x3_same_relu6": "CONV_2D same fused_relu6",
    "conv_3x3_valid_s2": "CONV_2D valid strided",
    "conv_5x5_same_s2": "CONV_2D same valid strided",
    "conv_3x1_1x5": "CONV_2D nonsquare fused_relu6",
    "conv_2x3_strides_2x1": "CONV_2D nonsquare strided same valid",
    "conv_dilation_2_same": "CONV_2D dilated same fused_relu",
    "conv_dilation_2x3_valid": "CONV_2D dilated valid",
    "conv_dilation_no_bias": "CONV_2D dilated no_bias",
    "conv_groups": "CONV_2D grouped",
    "conv_no_bias": "CONV_2D no_bias",
    "conv_single_channel": "CONV_2D strided fused_relu6",
    "dw_mult1_same": "DEPTHWISE_CONV_2D CONV_2D same",
    "dw_mult2_valid_s2": "DEPTHWISE_CONV_2D mult2 strided valid",
    "dw_mult8_single_channel": "DEPTHWISE_CONV_2D mult8_1ch fused_relu6",
    "dw_nonsquare": "DEPTHWISE_CONV_2D nonsquare strided",
    "dw_5x5_s2_same": "DEPTHWISE_CONV_2D mult2 strided same",
    "dw_dilation_2": "DEPTHWISE_CONV_2D dilated",
    "dw_dilation_2x3_valid": "DEPTHWISE_CONV_2D dilated mult2 valid",
    "dw_dilation_no_bias": "DEPTHWISE_CONV_2D dilated no_bias",
    "maxpool_2x2": "MAX_POOL_2D",
    "conv_pool_same": "CONV_2D MAX_POOL_2D same fused_relu",
    "conv_pool_3x2": "CONV_2D MAX_POOL_2D strided valid nonsquare",
    "maxpool_3x3_s2": "MAX_POOL_2D same valid strided",
    "avgpool_3x3_s2": "AVERAGE_POOL_2D same valid strided",
    "pool_nonsquare": "MAX_POOL_2D AVERAGE_POOL_2D nonsquare",
    "pool_large": "AVERAGE_POOL_2D MAX_POOL_2D nonsquare",
    "pool_large_same": "AVERAGE_POOL_2D MAX_POOL_2D nonsquare same",
    "gap": "MEAN FULLY_CONNECTED",
    "gap_keepdims": "MEAN keep_dims CONCATENATION",
    "gap_output": "MEAN",
    "mean_1d": "MEAN EXPAND_DIMS mean_requant",
    "mean_same_quant": "MEAN CONCATENATION mean_same_quant",
    "residual_add": "ADD elementwise fused_relu",
    "add_broadcast": "ADD MAX_POOL_2D broadcast",
    "multiply": "MUL elementwise broadcast",
    "gates": "MUL LOGISTIC TANH elementwise",
    "se_block": "MUL LOGISTIC MEAN broadcast",
    "fire_modules": "CONCATENATION concat_channels MAX_POOL_2D MEAN",
    "concat_hw": "CONCATENATION concat_inner",
    "zero_padding": "PAD",
    "conv1d": "EXPAND_DIMS CONV_2D RESHAPE PAD",
    "conv1d_dilated_causal": "CONV_2D PAD dilated",
    "flatten_dense": "SHAPE STRIDED_SLICE PACK RESHAPE FULLY_CONNECTED",
    "reshape": "RESHAPE FULLY_CONNECTED CONV_2D",
    "dense_3d_input": "FULLY_CONNECTED",
    "head_sigmoid": "LOGISTIC",
    "head_tanh": "TANH",
    "head_relu6": "FULLY_CONNECTED fused_relu6",
    "head_softmax": "SOFTMAX",
    "relu_standalone": "RELU",
    "leaky_relu": "LEAKY_RELU",
    "hard_silu": "HARD_SWISH",
    "hard_sigmoid_head": "MUL",
    "float_io_cnn": "QUANTIZE DEQUANTIZE DEPTHWISE_CONV_2D MAX_POOL_2D float_io",
    "float_io_mlp": "QUANTIZE DEQUANTIZE SOFTMAX float_io",
    "mnist_cnn": "CONV_2D MAX_POOL_2D FULLY_CONNECTED",
    "digits8x8_cnn": "CONV_2D MAX_POOL_2D FULLY_CONNECTED SOFTMAX",
    "cifar10_cmsis": "CONV_2D MAX_POOL_2D AVERAGE_POOL_2D FULLY_CONNECTED",
}

# Image-like calibration: uniform in [0, scale).
IMAGES = {"conv_single_channel": 1, "dw_mult8_single_channel": 1, "fire_modules": 1, "mnist_cnn": 1,
          "digits8x8_cnn": 16, "cifar10_cmsis": 1, "float_io_cnn": 1}


def _data(name: str, rng: np.random.Generator, n: int) -> np.ndarray:
    shape = (n, *ZOO[name][1])
    if name in IMAGES:
        return (rng.uniform(size=shape) * IMAGES[name]).astype(np.float32)
    return (rng.normal(size=shape) * rng.uniform(0.5, 3)).astype(np.float32)


def test_zoo_table():
    assert EXPECT.keys() == ZOO.keys() and len(ZOO) >= 40
    assert {"mnist_cnn", "digits8x8_cnn", "cifar10_cmsis"} <= ZOO.keys()


def convert_case(name: str) -> bytes:
    """The zoo model ``name`` calibrated and converted to .tflite (as the test does)."""
    rng = np.random.default_rng(seed(name))
    return keras_to_tflite(build(name), _data(name, rng, 64), float_io=name.startswith("float_io"))


@pytest.mark.parametrize("name", list(ZOO))
def test_zoo_bit_exact(unix, name):
    rng = np.random.default_rng(seed(name))
    float_io = name.startswith("float_io")
    tfl = keras_to_tflite(build(name), _data(name, rng, 64), float_io=float_io)
    m = tflite.load(tfl)
    ops = [op.opcode for op in m.operators]
    for want in [*EXPECT[name].split(), "float_io" if float_io else "int8_io"]:
        assert want in ops if want.isupper() else FEATURES[want](m), f"{want} not in the converted model: {ops}"
    try:
        data = pack(tfl, name=name)
    except Exception as e:  # any packer failure (not only MicronnError) is the finding: name the ops
        pytest.fail(f"pack failed: {type(e).__name__}: {e}\nops: {ops}")
    x = _data(name, rng, SAMPLES) if float_io else sample_inputs(data, SAMPLES, seed(name))
    want = tflm_run(tfl, x)
    info = unix.link.load(data)
    assert tuple(info["input_shape"][1:]) == ZOO[name][1]
    got = np.stack([np.frombuffer(unix.link.run(s.tobytes())[0], want.dtype) for s in x]).reshape(want.shape)
    diff = got != want
    assert not diff.any(), (f"{diff.sum()} of {diff.size} values differ, max abs diff "
                            f"{np.abs(got.astype(float) - want.astype(float)).max()}; ops: {ops}")
    # Identical outputs for every input would make the comparison meaningless.
    assert (got != got[:1]).any(), f"the output does not depend on the input: {got[0]}"
