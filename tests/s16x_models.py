"""Small Keras models converted by TensorFlow in 16x8 mode (int16 activations, int8 weights,
int16 inputs and outputs): ADD, MUL, pooling, SOFTMAX, TANH, LOGISTIC, QUANTIZE (int16 ->
int16 requantization), RESHAPE, PAD, CONCATENATION (the S16X ops), and whole networks with
CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED (the S16 ops, int64 biases).
``tflite(name)`` converts a model once per process; ``inputs(name, n)`` gives int16 test
samples spanning the whole int16 range (the extremes included)."""

from __future__ import annotations

import functools
import os
import zlib
from dataclasses import dataclass

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@dataclass(frozen=True)
class Case16:
    build: object           # keras input tensor -> output tensor
    shape: tuple            # input shape without the batch axis
    ops: str                # TFLite op codes the converted model must contain
    scale: float = 1.0      # calibration data: normal values times this
    input_scale: float | None = None    # the input tensor's scale set to this after conversion


def _k():
    import keras

    return keras


def _add(x):
    k = _k()
    return k.layers.Add()([x, k.layers.Activation("tanh")(x)])


def _add_const(x):
    k = _k()
    c = np.linspace(-1.5, 2.0, 6, dtype=np.float32)
    return k.layers.Lambda(lambda t: k.ops.add(t, c))(x)


def _mul(x):
    k = _k()
    return k.layers.Multiply()([x, k.layers.Activation("sigmoid")(x)])


def _mul_bcast(x):
    k = _k()
    c = np.array([0.5, -1.25, 2.0], dtype=np.float32)
    return k.layers.Lambda(lambda t: k.ops.multiply(t, c))(x)


def _pools(x):
    k = _k()
    a = k.layers.MaxPooling2D(3, strides=2, padding="same")(x)
    b = k.layers.AveragePooling2D(3, strides=2, padding="same")(x)
    return k.layers.Add()([a, b])


def _avg_valid(x):
    k = _k()
    return k.layers.AveragePooling2D((2, 3), strides=(1, 2), padding="valid")(x)


def _max_relu(x):
    k = _k()
    return k.layers.ReLU()(k.layers.MaxPooling2D(2)(x))


def _softmax(x):
    return _k().layers.Softmax()(x)


def _tanh(x):
    return _k().layers.Activation("tanh")(x)


def _sigmoid(x):
    return _k().layers.Activation("sigmoid")(x)


def _concat(x):
    k = _k()
    a = k.layers.Activation("tanh")(x)
    b = k.layers.Lambda(lambda t: t * 3.0)(x)
    return k.layers.Concatenate(axis=-1)([a, b])


def _pad_reshape(x):
    k = _k()
    y = k.layers.ZeroPadding2D(((1, 0), (2, 1)))(x)
    y = k.layers.MaxPooling2D(2)(y)
    return k.layers.Softmax()(k.layers.Flatten()(y))


def _chain(x):
    k = _k()
    a = k.layers.MaxPooling2D(2)(x)
    b = k.layers.AveragePooling2D(2)(x)
    y = k.layers.Add()([a, b])
    y = k.layers.Multiply()([y, y])
    y = k.layers.Activation("tanh")(y)
    y = k.layers.Flatten()(y)
    y = k.layers.Activation("sigmoid")(y)
    return k.layers.Softmax()(y)


def _conv(x):
    k = _k()
    y = k.layers.Conv2D(6, 3, activation="relu", bias_initializer="random_normal")(x)
    return k.layers.Conv2D(4, (1, 3), strides=(1, 2), padding="same", bias_initializer="random_normal")(y)


def _depthwise(x):
    k = _k()
    y = k.layers.DepthwiseConv2D(3, padding="same", bias_initializer="random_normal")(x)
    return k.layers.DepthwiseConv2D(3, strides=2, depth_multiplier=2, activation="relu6",
                                    bias_initializer="random_normal")(y)


def _dense(x):
    k = _k()
    y = k.layers.Dense(16, activation="relu", bias_initializer="random_normal")(x)
    y = k.layers.Dense(8, use_bias=False)(y)
    return k.layers.Softmax()(k.layers.Dense(5, bias_initializer="random_normal")(y))


def _dilated(x):
    k = _k()
    return k.layers.Conv2D(5, 3, dilation_rate=2, padding="same", bias_initializer="random_normal")(x)


def _cnn(x):
    """A small image classifier: every 16x8 op family in one model."""
    k = _k()
    y = k.layers.Conv2D(8, 3, activation="relu", bias_initializer="random_normal")(x)
    y = k.layers.DepthwiseConv2D(3, padding="same", bias_initializer="random_normal")(y)
    a = k.layers.AveragePooling2D(2)(y)
    y = k.layers.MaxPooling2D(2)(y)
    y = k.layers.Add()([y, a])
    y = k.layers.Multiply()([y, k.layers.Activation("sigmoid")(y)])
    y = k.layers.Activation("tanh")(y)
    y = k.layers.Dense(12, activation="relu", bias_initializer="random_normal")(k.layers.Flatten()(y))
    return k.layers.Softmax()(k.layers.Dense(10, bias_initializer="random_normal")(y))


MODELS: dict[str, Case16] = {
    "s16_conv": Case16(_conv, (9, 9, 3), "CONV_2D"),
    "s16_depthwise": Case16(_depthwise, (8, 8, 4), "DEPTHWISE_CONV_2D"),
    "s16_dense": Case16(_dense, (24,), "FULLY_CONNECTED SOFTMAX"),
    "s16_dilated": Case16(_dilated, (10, 10, 2), "CONV_2D"),
    "s16_cnn": Case16(_cnn, (12, 12, 1), "CONV_2D DEPTHWISE_CONV_2D AVERAGE_POOL_2D MAX_POOL_2D ADD MUL LOGISTIC "
                                         "TANH FULLY_CONNECTED SOFTMAX"),
    "s16_add": Case16(_add, (4, 4, 3), "ADD TANH"),
    "s16_add_const": Case16(_add_const, (3, 6), "ADD"),
    "s16_mul": Case16(_mul, (5, 7), "MUL LOGISTIC"),
    "s16_mul_bcast": Case16(_mul_bcast, (4, 3), "MUL"),
    "s16_pools": Case16(_pools, (7, 7, 4), "MAX_POOL_2D AVERAGE_POOL_2D ADD"),
    "s16_avg_valid": Case16(_avg_valid, (5, 8, 3), "AVERAGE_POOL_2D"),
    "s16_max_relu": Case16(_max_relu, (6, 6, 2), "MAX_POOL_2D"),
    "s16_softmax": Case16(_softmax, (2, 10), "SOFTMAX", scale=3.0),
    "s16_tanh": Case16(_tanh, (1024,), "TANH", scale=2.0),
    "s16_logistic": Case16(_sigmoid, (1024,), "LOGISTIC", scale=4.0),
    # power-of-two input scales: TFLite Micro's other path (multiplier 3 << shift)
    "s16_tanh_pot12": Case16(_tanh, (1024,), "TANH", input_scale=2.0 ** -12),
    "s16_tanh_pot11": Case16(_tanh, (1024,), "TANH", input_scale=2.0 ** -11),
    "s16_logistic_pot12": Case16(_sigmoid, (1024,), "LOGISTIC", input_scale=2.0 ** -12),
    "s16_concat": Case16(_concat, (3, 5), "CONCATENATION"),
    "s16_pad_reshape": Case16(_pad_reshape, (5, 4, 2), "PAD RESHAPE SOFTMAX"),
    "s16_chain": Case16(_chain, (6, 6, 3), "MAX_POOL_2D AVERAGE_POOL_2D ADD MUL TANH LOGISTIC SOFTMAX"),
}


def seed(name: str) -> int:
    return zlib.crc32(name.encode())


def keras_model(name: str):
    """The Keras model of a case, its weights drawn from the name."""
    k = _k()
    c = MODELS[name]
    k.utils.set_random_seed(seed(name) % 2**31)
    x = k.Input(c.shape, batch_size=1)
    return k.Model(x, c.build(x))


def calibration(name: str) -> list[np.ndarray]:
    c = MODELS[name]
    rng = np.random.default_rng(seed(name))
    return [(rng.normal(size=(1, *c.shape)) * c.scale).astype(np.float32) for _ in range(32)]


@functools.cache
def tflite(name: str, float_io: bool = False) -> bytes:
    """The converted model; float_io: with float input and output (QUANTIZE and DEQUANTIZE at the ends)."""
    import tensorflow as tf

    c = MODELS[name]
    model = keras_model(name)
    calib = calibration(name)
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([a] for a in calib)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    if not float_io:
        conv.inference_input_type = tf.int16
        conv.inference_output_type = tf.int16
    tfl = conv.convert()
    if c.input_scale is not None:
        tfl = _set_input_scale(tfl, c.input_scale)
    return tfl


def _set_input_scale(tfl: bytes, scale: float) -> bytes:
    """The model with its input tensor's scale (a float32 in the flatbuffer) replaced."""
    from micronn import tflite as reader

    m = reader.load(tfl)
    old = np.float32(m.tensors[m.inputs[0]].scale[0]).tobytes()
    assert tfl.count(old) == 1, "the input scale's bytes are not unique in the model"
    return tfl.replace(old, np.float32(scale).tobytes())


def inputs(name: str, n: int) -> np.ndarray:
    """n int16 samples over the whole range: the first holds -32768, 32767, 0, -1 and 1 where it
    has room; a model of 1024 values per sample gets all 65536 int16 values over 64 samples."""
    shape = MODELS[name].shape
    size = int(np.prod(shape))
    rng = np.random.default_rng(seed(name) + 1)
    if size * n >= 65536 and 65536 % size == 0:     # every int16 value, then random ones
        x = np.arange(-32768, 32768, dtype=np.int64)
        x = np.concatenate([x, rng.integers(-32768, 32768, size * n - 65536)])
    else:
        x = rng.integers(-32768, 32768, size * n)
        x[:5] = [-32768, 32767, 0, -1, 1][: min(5, size * n)]
    return x.astype(np.int16).reshape((n, *shape))
