"""Models with several inputs and outputs (issue 18, item 1): each runs bit-exact
against TFLite Micro through the zoo harness (tests/test_op_zoo.py), whose run
frames carry every input and return every output."""

from __future__ import annotations

from . import Case


def _two_heads(xs):
    """Class head and box head from one Conv2D trunk."""
    import keras

    t = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(xs[0])
    t = keras.layers.Conv2D(8, 3, activation="relu")(t)
    t = keras.layers.GlobalAveragePooling2D()(t)
    cls = keras.layers.Dense(5, name="cls")(t)
    box = keras.layers.Dense(4, name="box")(t)
    return [cls, box]


def _two_inputs(xs):
    """Image and feature vector, concatenated."""
    import keras

    img, feat = xs
    t = keras.layers.Conv2D(6, 3, activation="relu")(img)
    t = keras.layers.GlobalAveragePooling2D()(t)
    f = keras.layers.Dense(6, activation="relu")(feat)
    t = keras.layers.Concatenate()([t, f])
    return keras.layers.Dense(4)(t)


def _two_by_two(xs):
    """Two inputs, two outputs: a sum of both and a head of the second only."""
    import keras

    a, b = xs
    y1 = keras.layers.Add()([keras.layers.Dense(6)(a), keras.layers.Dense(6)(b)])
    y2 = keras.layers.Dense(3, activation="relu")(b)
    return [y1, y2]


def _three_inputs(xs):
    """Three inputs of different sizes and two outputs."""
    import keras

    a, b, c = xs
    t = keras.layers.Concatenate()([keras.layers.Dense(4)(a), keras.layers.Dense(4)(b), keras.layers.Dense(4)(c)])
    return [keras.layers.Dense(3)(t), keras.layers.Dense(2)(c)]


MODELS = {
    "mio_two_heads": Case(_two_heads, ((12, 12, 3),), "CONV_2D FULLY_CONNECTED", data="image"),
    "mio_two_inputs": Case(_two_inputs, ((10, 10, 3), (6,)), "CONV_2D CONCATENATION FULLY_CONNECTED"),
    "mio_two_by_two": Case(_two_by_two, ((16,), (8,)), "FULLY_CONNECTED ADD"),
    "mio_three_inputs": Case(_three_inputs, ((5,), (7,), (3,)), "FULLY_CONNECTED CONCATENATION"),
    "mio_float_two_by_two": Case(_two_by_two, ((16,), (8,)), "FULLY_CONNECTED ADD", float_io=True),
}
