"""Elementwise operators (issue 18, group ELEMENTWISE): SUB, SQUARED_DIFFERENCE,
MAXIMUM, MINIMUM, PRELU, the RSQRT and ABS tables, float islands and a
LayerNormalization block."""

from __future__ import annotations

from . import Case


def _layers():
    import keras

    return keras, keras.layers


def _sub(xs):
    keras, L = _layers()
    return L.Subtract()([L.Dense(8)(xs[0]), L.Dense(1)(xs[0])])      # broadcast over the last axis


def _sub_image(xs):
    keras, L = _layers()
    a = L.Conv2D(4, 3, padding="same")(xs[0])
    b = L.Conv2D(1, 1)(xs[0])
    return L.Subtract()([b, a])                                      # input 1 broadcast over channels


def _sqd(xs):
    import tensorflow as tf

    keras, L = _layers()
    return L.Lambda(lambda t: tf.math.squared_difference(t[0], t[1]))([L.Dense(8)(xs[0]), L.Dense(8)(xs[0])])


def _sqd_square(xs):
    keras, L = _layers()
    return keras.ops.square(L.Dense(6)(xs[0]) - L.Dense(1)(xs[0]))  # converted to SQUARED_DIFFERENCE


def _maximum(xs):
    keras, L = _layers()
    return L.Maximum()([L.Dense(8)(xs[0]), L.Dense(8)(xs[0])])


def _minimum(xs):
    keras, L = _layers()
    return L.Minimum()([L.Dense(8)(xs[0]), L.Dense(1)(xs[0])])


def _prelu(xs):
    keras, L = _layers()
    alpha = keras.initializers.RandomUniform(-0.5, 0.6)
    return L.Dense(4)(L.PReLU(alpha_initializer=alpha)(L.Dense(12)(xs[0])))


def _prelu_conv(xs):
    keras, L = _layers()
    alpha = keras.initializers.RandomUniform(0.05, 0.4)
    return L.PReLU(alpha_initializer=alpha, shared_axes=[1, 2])(L.Conv2D(6, 3)(xs[0]))   # alpha [1, 1, 6]


def _rsqrt(xs):
    keras, L = _layers()
    return keras.ops.rsqrt(L.Dense(8, activation="relu")(xs[0]) + 0.5)


def _abs(xs):
    keras, L = _layers()
    return L.Dense(3)(keras.ops.abs(L.Dense(10)(xs[0])))


def _layernorm(xs):
    keras, L = _layers()
    ln = L.LayerNormalization(gamma_initializer=keras.initializers.RandomUniform(0.5, 1.5),
                              beta_initializer=keras.initializers.RandomUniform(-0.3, 0.3))
    return L.Dense(4)(ln(L.Dense(16)(xs[0])))


def _layernorm_image(xs):
    keras, L = _layers()
    ln = L.LayerNormalization(gamma_initializer=keras.initializers.RandomUniform(0.5, 1.5),
                              beta_initializer=keras.initializers.RandomUniform(-0.3, 0.3))
    return ln(L.Conv2D(8, 3, padding="same")(xs[0]))


def _island(xs):
    keras, L = _layers()
    return L.Dense(5)(keras.ops.negative(L.Dense(8)(xs[0])))       # DEQUANTIZE -> NEG -> QUANTIZE


def _manual_norm(xs):
    keras, L = _layers()
    K = keras.ops
    d = L.Dense(8)(xs[0])
    c = d - K.mean(d, axis=-1, keepdims=True)
    return c * K.rsqrt(K.mean(K.square(c), axis=-1, keepdims=True) + 1e-3)


def _clip_consts(xs):
    keras, L = _layers()
    return keras.ops.minimum(keras.ops.maximum(L.Dense(8)(xs[0]), 0.25), 1.5)    # int8 constant operands


def _one_minus(xs):
    keras, L = _layers()
    return 1.0 - L.Dense(8)(xs[0])                                  # SUB with a constant input 1


def _sub_const(xs):
    import numpy as np

    keras, L = _layers()
    return L.Dense(8)(xs[0]) - np.linspace(-1, 1, 8).astype(np.float32)


def _sub_relu(xs):
    keras, L = _layers()
    return keras.ops.relu(L.Dense(8)(xs[0]) - L.Dense(8)(xs[0]))    # SUB with a fused RELU


def _minimum_image(xs):
    keras, L = _layers()
    # 75 values, not broadcast: the DSP path's four-lane words and its tail
    return L.Minimum()([L.Conv2D(3, 3)(xs[0]), L.Conv2D(3, 3)(xs[0])])


def _layernorm_seq(xs):
    keras, L = _layers()
    ln = L.LayerNormalization(gamma_initializer=keras.initializers.RandomUniform(0.5, 1.5),
                              beta_initializer=keras.initializers.RandomUniform(-0.3, 0.3))
    return ln(L.Reshape((4, 6))(L.Dense(24)(xs[0])))                 # per token of a sequence


MODELS = {
    "ew_sub": Case(_sub, ((12,),), "SUB"),
    "ew_sub_image": Case(_sub_image, ((6, 6, 2),), "SUB", data="image"),
    "ew_squared_difference": Case(_sqd, ((10,),), "SQUARED_DIFFERENCE"),
    "ew_square_of_difference": Case(_sqd_square, ((8,),), "SQUARED_DIFFERENCE"),
    "ew_maximum": Case(_maximum, ((8,),), "MAXIMUM"),
    "ew_minimum": Case(_minimum, ((8,),), "MINIMUM"),
    "ew_minimum_image": Case(_minimum_image, ((7, 7, 2),), "MINIMUM", data="image"),
    "ew_prelu": Case(_prelu, ((10,),), "PRELU"),
    "ew_prelu_conv": Case(_prelu_conv, ((7, 7, 3),), "PRELU", data="image"),
    "ew_rsqrt": Case(_rsqrt, ((8,),), "RSQRT"),
    "ew_abs": Case(_abs, ((8,),), "ABS"),
    "ew_layernorm": Case(_layernorm, ((12,),), "MEAN SQUARED_DIFFERENCE RSQRT MUL"),
    "ew_layernorm_image": Case(_layernorm_image, ((4, 4, 3),), "SQUARED_DIFFERENCE RSQRT", data="image"),
    "ew_layernorm_seq": Case(_layernorm_seq, ((10,),), "MEAN SQUARED_DIFFERENCE RSQRT MUL"),
    "ew_float_island": Case(_island, ((8,),), "DEQUANTIZE NEG QUANTIZE"),
    "ew_manual_norm": Case(_manual_norm, ((10,),), "MEAN SUB RSQRT MUL"),
    "ew_clip_consts": Case(_clip_consts, ((8,),), "MAXIMUM MINIMUM"),
    "ew_one_minus": Case(_one_minus, ((8,),), "SUB"),
    "ew_sub_const": Case(_sub_const, ((8,),), "SUB"),
    "ew_sub_relu": Case(_sub_relu, ((8,),), "SUB"),
}
