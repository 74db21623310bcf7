"""Operator zoo, group REDUCE (issue 18): arg max/min, sum, reduce max/min,
L2 normalisation and log-softmax, each converted from a Keras layer or a
keras.ops / tf.nn call that the converter turns into the TFLite op."""

from __future__ import annotations

from . import Case


def _keras():
    import keras

    return keras


def _tf():
    import tensorflow as tf

    return tf


def _dense(x, n):
    return _keras().layers.Dense(n)(x)


def _conv(x, c):
    return _keras().layers.Conv2D(c, 3, padding="same")(x)


def _lambda(fn):
    return _keras().layers.Lambda(fn)


def argmax_head(xs):
    return _lambda(lambda t: _tf().math.argmax(t, axis=-1, output_type=_tf().int32))(_dense(xs[0], 10))


def argmax_i64(xs):
    return _lambda(lambda t: _tf().math.argmax(t, axis=-1))(_dense(xs[0], 6))


def argmin_spatial(xs):
    # over the width of a feature map: outer 1 * 5, inner 4 channels
    return _lambda(lambda t: _tf().math.argmin(t, axis=2, output_type=_tf().int32))(_conv(xs[0], 4))


def sum_hw(xs):
    return _lambda(lambda t: _keras().ops.sum(t, axis=(1, 2)))(_conv(xs[0], 6))


def sum_channels(xs):
    return _lambda(lambda t: _keras().ops.sum(t, axis=-1, keepdims=True))(_conv(xs[0], 5))


def max_spatial(xs):
    return _lambda(lambda t: _keras().ops.max(t, axis=(1, 2)))(_conv(xs[0], 6))


def min_channels(xs):
    return _lambda(lambda t: _tf().math.reduce_min(t, axis=-1))(_conv(xs[0], 5))


def global_max_pool(xs):
    return _keras().layers.GlobalMaxPooling2D()(_conv(xs[0], 16))


def min_height(xs):
    # over the height: inner = width * channels, the four-lane path on Cortex-M4
    return _lambda(lambda t: _tf().math.reduce_min(t, axis=1))(_conv(xs[0], 8))


def l2_embedding(xs):
    return _lambda(lambda t: _tf().math.l2_normalize(t, axis=-1))(_dense(xs[0], 16))


def log_softmax_head(xs):
    return _lambda(lambda t: _tf().nn.log_softmax(t, axis=-1))(_dense(xs[0], 10))


def log_softmax_rows(xs):
    return _lambda(lambda t: _tf().nn.log_softmax(t, axis=-1))(_conv(xs[0], 7))


MODELS = {
    "rd_argmax_head": Case(argmax_head, ((12,),), "ARG_MAX"),
    "rd_argmin_spatial": Case(argmin_spatial, ((5, 6, 3),), "ARG_MIN"),
    "rd_sum_hw": Case(sum_hw, ((6, 5, 3),), "SUM"),
    "rd_sum_channels": Case(sum_channels, ((4, 4, 3),), "SUM"),
    "rd_max_spatial": Case(max_spatial, ((6, 6, 3),), "REDUCE_MAX"),
    "rd_min_channels": Case(min_channels, ((4, 5, 3),), "REDUCE_MIN"),
    "rd_global_max_pool": Case(global_max_pool, ((7, 6, 3),), "REDUCE_MAX"),
    "rd_min_height": Case(min_height, ((5, 3, 2),), "REDUCE_MIN"),
    "rd_l2_embedding": Case(l2_embedding, ((20,),), "L2_NORMALIZATION"),
    "rd_log_softmax_head": Case(log_softmax_head, ((16,),), "LOG_SOFTMAX"),
    "rd_log_softmax_rows": Case(log_softmax_rows, ((3, 4, 2),), "LOG_SOFTMAX"),
}
