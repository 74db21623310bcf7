"""A zoo of small Keras models covering the int8 operators micronn runs.

``ZOO`` maps a name to ``(builder, input_shape)``: the builder takes the Keras
input tensor and returns the output tensor; ``DILATED`` holds more dilated
convolutions in the same form (tests/test_oracle.py). ``build(name)`` seeds Keras
from the name and returns the ``keras.Model``, so a name always gives the same weights.
"""

from __future__ import annotations

import os
import zlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

L = keras.layers


def _bias():
    """Biases drawn at random (Keras starts them at zero), so that they matter."""
    return keras.initializers.RandomNormal(stddev=0.2)


def conv(filters, kernel, act=None, **kw):
    kw.setdefault("padding", "same")
    if kw.get("use_bias", True):
        kw["bias_initializer"] = _bias()
    return L.Conv2D(filters, kernel, activation=act, **kw)


def dw(kernel, act=None, **kw):
    kw.setdefault("padding", "same")
    return L.DepthwiseConv2D(kernel, activation=act, bias_initializer=_bias(), **kw)


def dense(units, act=None, **kw):
    return L.Dense(units, activation=act, bias_initializer=_bias(), **kw)


def conv1d(filters, kernel, act=None, **kw):
    return L.Conv1D(filters, kernel, activation=act, bias_initializer=_bias(), **kw)


def chain(x, *layers):
    """Apply layers in order."""
    for layer in layers:
        x = layer(x)
    return x


def _fire(x, squeeze, expand):
    s = conv(squeeze, 1, "relu")(x)
    return L.Concatenate()([conv(expand, 1, "relu")(s), conv(expand, 3, "relu")(s)])


def fire_net(x):
    """SqueezeNet in miniature: conv, pool, two fire modules, 1x1 classifier conv, global mean."""
    x = conv(16, 3, "relu", strides=2)(x)
    x = L.MaxPooling2D(3, strides=2)(x)
    x = _fire(x, 4, 8)
    x = _fire(x, 6, 12)
    return L.GlobalAveragePooling2D()(conv(5, 1, "relu")(x))


def concat_hw(x):
    """Concatenations on the height axis, then on the width axis."""
    a, b = conv(4, 3, padding="valid")(x), conv(4, (1, 3), strides=(2, 1), padding="valid")(x)  # 5x7, 4x7
    hw = L.Concatenate(axis=1)([a, b])                                                       # 9x7
    return L.Concatenate(axis=2)([hw, conv(4, (1, 5), "relu", padding="valid")(hw)])          # 9x10


def residual(x):
    x = conv(8, 3, "relu")(x)
    y = conv(8, 3, "relu")(conv(8, 1, "relu")(x))
    x = L.ReLU()(L.Add()([x, y]))
    return L.Add()([x, conv(8, 3)(x)])


def _broadcasting(op, x):
    """(H, W, C) op (1, 1, C), then (H, W, C) op (H, W, 1), with keras.ops broadcasting."""
    g = conv(x.shape[-1], 1)(L.MaxPooling2D(x.shape[1:3])(x))
    y = L.Lambda(lambda t: op(t[0], t[1]))([x, g])
    return L.Lambda(lambda t: op(t[0], t[1]))([y, conv(1, 1)(y)])


def add_broadcast(x):
    return _broadcasting(keras.ops.add, conv(6, 3, "relu")(x))


def multiply(x):
    y = L.Multiply()([conv(6, 3)(x), conv(6, 3, "relu")(x)])
    return _broadcasting(keras.ops.multiply, y)


def gates(x):
    """Elementwise products with sigmoid and tanh gates (LOGISTIC, TANH, MUL)."""
    y = L.Multiply()([conv(6, 3)(x), conv(6, 3, "sigmoid")(x)])
    return L.Multiply()([y, conv(6, 1, "tanh")(x)])


def se_block(x):
    """Squeeze-and-excitation: GAP -> Dense -> relu -> Dense -> sigmoid -> channel-wise Multiply."""
    x = conv(16, 3, "relu")(x)
    s = dense(16, "sigmoid")(dense(4, "relu")(L.GlobalAveragePooling2D()(x)))
    return L.Multiply()([x, L.Reshape((1, 1, 16))(s)])


def mean_1d(x):
    """MEAN over the steps of a sequence (3-D, axis 1): the converter rescales it."""
    return L.GlobalAveragePooling1D()(conv1d(8, 3, "relu")(x))


def mean_same_quant(x):
    """MEAN over an axis of identical copies: the output keeps the input's quantization."""
    x = L.Reshape((63, 1, 6))(conv(6, 3, "relu")(x))
    x = L.Concatenate(axis=2)([x, x])               # (63, 2, 6): 2 copies
    return L.Lambda(lambda t: keras.ops.mean(t, axis=2))(x)


def gap_keepdims(x):
    """A global mean that keeps its (1, 1, C) shape, concatenated with a 1x1 conv of it."""
    x = L.GlobalAveragePooling2D(keepdims=True)(conv(8, 3, "relu", strides=2)(x))
    return L.Concatenate()([x, conv(4, 1)(x)])


def cifar10_cmsis(x):
    """The CMSIS-NN CIFAR-10 example network (arm_nnexamples_cifar10)."""
    x = conv(32, 5, "relu")(x)
    x = L.MaxPooling2D(3, strides=2, padding="same")(x)
    x = conv(32, 5, "relu")(x)
    x = L.AveragePooling2D(3, strides=2, padding="same")(x)
    x = conv(64, 5, "relu")(x)
    x = L.AveragePooling2D(3, strides=2, padding="same")(x)
    return dense(10)(L.Flatten()(x))


def _seq(make):
    """A builder for a plain stack: make() gives the layers (created per build)."""
    return lambda x: chain(x, *make())


ZOO = {
    # ---- CONV_2D: kernels, strides, padding on odd sizes, dilation, groups, bias, fused relu / relu6
    "conv_1x1": (_seq(lambda: [conv(8, 1, "relu"), conv(5, 1)]), (7, 9, 3)),
    "conv_3x3_same_relu6": (_seq(lambda: [conv(8, 3, "relu6"), conv(4, 3)]), (7, 9, 3)),
    "conv_3x3_valid_s2": (_seq(lambda: [conv(6, 3, "relu", strides=2, padding="valid")]), (13, 11, 4)),
    "conv_5x5_same_s2": (_seq(lambda: [conv(6, 5, "relu", strides=2), conv(4, 5, padding="valid")]), (13, 11, 2)),
    "conv_3x1_1x5": (_seq(lambda: [conv(6, (3, 1), "relu"), conv(5, (1, 5), "relu6", padding="valid")]), (9, 7, 3)),
    "conv_2x3_strides_2x1": (_seq(lambda: [conv(8, (2, 3), "relu", strides=(2, 1)),
                                           conv(4, (3, 2), strides=(1, 2), padding="valid")]), (13, 11, 3)),
    "conv_dilation_2_same": (_seq(lambda: [conv(6, 3, "relu", dilation_rate=2)]), (13, 11, 3)),
    "conv_dilation_2x3_valid": (_seq(lambda: [conv(6, 3, dilation_rate=(2, 3), padding="valid")]), (13, 11, 3)),
    "conv_dilation_no_bias": (_seq(lambda: [conv(6, 3, dilation_rate=2, use_bias=False),
                                            conv(4, (3, 2), dilation_rate=(2, 3), padding="valid", use_bias=False)]),
                              (13, 11, 3)),
    "conv_groups": (_seq(lambda: [conv(8, 3, "relu", groups=4), conv(12, 1, groups=2)]), (7, 9, 8)),
    "conv_no_bias": (_seq(lambda: [conv(8, 3, "relu", use_bias=False), conv(4, 3, use_bias=False, padding="valid")]),
                     (7, 9, 3)),
    "conv_single_channel": (_seq(lambda: [conv(8, 5, "relu6", strides=2, padding="valid"), conv(4, 3, strides=2)]),
                            (28, 28, 1)),
    # ---- DEPTHWISE_CONV_2D
    "dw_mult1_same": (_seq(lambda: [dw(3, "relu"), conv(6, 1)]), (7, 9, 6)),
    "dw_mult2_valid_s2": (_seq(lambda: [dw(3, strides=2, depth_multiplier=2, padding="valid")]), (13, 11, 4)),
    "dw_mult8_single_channel": (_seq(lambda: [dw(3, "relu6", depth_multiplier=8)]), (12, 10, 1)),
    "dw_nonsquare": (_seq(lambda: [dw((1, 5), "relu"), dw((3, 1), strides=2), dw((2, 3), padding="valid")]),
                     (9, 13, 5)),
    "dw_5x5_s2_same": (_seq(lambda: [dw(5, "relu", strides=2, depth_multiplier=2)]), (13, 11, 3)),
    "dw_dilation_2": (_seq(lambda: [dw(3, "relu", dilation_rate=2)]), (13, 11, 4)),
    "dw_dilation_2x3_valid": (_seq(lambda: [dw(3, dilation_rate=(2, 3), padding="valid", depth_multiplier=2)]),
                              (13, 11, 3)),
    "dw_dilation_no_bias": (_seq(lambda: [dw(3, dilation_rate=2, use_bias=False),
                                          dw((2, 3), dilation_rate=(3, 2), padding="valid", use_bias=False)]),
                            (13, 11, 3)),
    # ---- MAX_POOL_2D, AVERAGE_POOL_2D
    "maxpool_2x2": (_seq(lambda: [conv(4, 1, "relu"), L.MaxPooling2D(2)]), (8, 10, 4)),
    # CONV_2D_MAXPOOL with windows in the padding and rows/columns the pooling drops
    "conv_pool_same": (_seq(lambda: [conv(6, 3, "relu", padding="same"), L.MaxPooling2D(2)]), (9, 11, 1)),
    "conv_pool_3x2": (_seq(lambda: [conv(5, 2, strides=2, padding="valid"), L.MaxPooling2D((3, 2))]), (14, 11, 2)),
    "maxpool_3x3_s2": (_seq(lambda: [L.MaxPooling2D(3, strides=2, padding="same"), conv(4, 1),
                                     L.MaxPooling2D(3, strides=2)]), (13, 11, 3)),
    "avgpool_3x3_s2": (_seq(lambda: [L.AveragePooling2D(3, strides=2, padding="same"), conv(4, 1),
                                     L.AveragePooling2D(3, strides=2)]), (13, 11, 3)),
    "pool_nonsquare": (_seq(lambda: [L.MaxPooling2D((2, 3), strides=(2, 1)), conv(5, 1),
                                     L.AveragePooling2D((3, 2), strides=(1, 2), padding="same")]), (13, 11, 3)),
    "pool_large": (_seq(lambda: [L.AveragePooling2D(7, strides=1), conv(4, 1), L.MaxPooling2D((5, 3), strides=1)]),
                   (13, 11, 3)),
    "pool_large_same": (_seq(lambda: [L.AveragePooling2D((5, 3), strides=1, padding="same"), conv(4, 3),
                                      L.MaxPooling2D(7, strides=2, padding="same")]), (13, 11, 2)),
    # ---- MEAN
    "gap": (_seq(lambda: [conv(8, 3, "relu"), L.GlobalAveragePooling2D(), dense(6)]), (9, 7, 3)),
    "gap_keepdims": (gap_keepdims, (9, 7, 3)),
    "gap_output": (_seq(lambda: [conv(8, 3, "relu", strides=2), L.GlobalAveragePooling2D()]), (9, 7, 3)),
    "mean_1d": (mean_1d, (20, 4)),
    "mean_same_quant": (mean_same_quant, (7, 9, 3)),
    # ---- ADD, MUL
    "residual_add": (residual, (8, 8, 3)),
    "add_broadcast": (add_broadcast, (7, 9, 3)),
    "multiply": (multiply, (7, 9, 3)),
    "gates": (gates, (7, 9, 3)),
    "se_block": (se_block, (8, 8, 3)),
    # ---- CONCATENATION, PAD
    "fire_modules": (fire_net, (33, 33, 3)),
    "concat_hw": (concat_hw, (7, 9, 3)),
    "zero_padding": (_seq(lambda: [L.ZeroPadding2D(((1, 2), (0, 3))), conv(6, 3, "relu", padding="valid"),
                                   L.ZeroPadding2D(1), conv(4, 3, strides=2, padding="valid")]), (7, 9, 3)),
    # ---- Conv1D (EXPAND_DIMS, CONV_2D, RESHAPE), Flatten, Reshape, Dense
    "conv1d": (_seq(lambda: [conv1d(8, 5, "relu", strides=2), conv1d(6, 3, "relu6", padding="causal"),
                             conv1d(4, 3, padding="same", use_bias=False), L.Flatten(), dense(5)]), (32, 4)),
    "conv1d_dilated_causal": (_seq(lambda: [conv1d(6, 3, "relu", padding="causal", dilation_rate=2),
                                            conv1d(4, 3, dilation_rate=3)]), (24, 3)),
    "flatten_dense": (_seq(lambda: [conv(4, 3, "relu", strides=2), L.Flatten(), dense(16, "relu"), dense(4)]),
                      (9, 7, 2)),
    "reshape": (_seq(lambda: [dense(32, "relu"), L.Reshape((4, 4, 2)), conv(4, 3, "relu"), L.Reshape((8, 8, 1)),
                              conv(2, (8, 1), padding="valid"), L.Reshape((16,)), dense(3)]), (12,)),
    "dense_3d_input": (_seq(lambda: [dense(6, "relu"), L.Flatten(), dense(3)]), (5, 4)),
    # ---- heads and standalone activations
    "head_sigmoid": (_seq(lambda: [conv(4, 3, "relu", strides=2), L.Flatten(), dense(3), L.Activation("sigmoid")]),
                     (9, 7, 2)),
    "head_tanh": (_seq(lambda: [conv(4, 3), L.Activation("tanh"), L.Flatten(), dense(3), L.Activation("tanh")]),
                  (9, 7, 2)),
    "head_relu6": (_seq(lambda: [dense(16), L.Activation("relu6"), dense(4), L.Activation("relu6")]), (10,)),
    "head_softmax": (_seq(lambda: [conv(8, 3, "relu"), L.GlobalAveragePooling2D(), dense(5), L.Softmax()]),
                     (9, 7, 3)),
    "relu_standalone": (_seq(lambda: [L.ReLU(), L.Flatten(), dense(4)]), (6, 5, 2)),
    "leaky_relu": (_seq(lambda: [conv(6, 3), L.LeakyReLU(negative_slope=0.2), conv(4, 1)]), (7, 9, 3)),
    "hard_silu": (_seq(lambda: [conv(6, 3), L.Activation("hard_silu"), conv(4, 1)]), (7, 9, 3)),
    "hard_sigmoid_head": (_seq(lambda: [L.Flatten(), dense(8), L.Activation("hard_sigmoid")]), (4, 4)),
    # ---- float input and output (the board quantizes the input and dequantizes the output)
    "float_io_cnn": (_seq(lambda: [conv(6, 3, "relu", strides=2), dw(3), L.MaxPooling2D(2), L.Flatten(), dense(4)]),
                     (9, 11, 3)),
    "float_io_mlp": (_seq(lambda: [dense(16, "relu"), dense(3), L.Softmax()]), (8,)),
    # ---- reference networks, reused by the benchmarks
    "mnist_cnn": (_seq(lambda: [conv(12, 3, padding="valid"), L.ReLU(), L.MaxPooling2D(2), L.Flatten(), dense(10)]),
                  (28, 28, 1)),
    "digits8x8_cnn": (_seq(lambda: [conv(8, 3, "relu", padding="valid"), L.MaxPooling2D(2), L.Flatten(),
                                    dense(10, "softmax")]), (8, 8, 1)),
    "cifar10_cmsis": (cifar10_cmsis, (32, 32, 3)),
}


# Dilated convolutions checked against the oracle that can run them (tests/test_oracle.py).
# "dil_open_*" leave the batch open: the converter writes SPACE_TO_BATCH_ND ->
# CONV_2D / DEPTHWISE_CONV_2D -> BATCH_TO_SPACE_ND, whose static shapes TFLite
# Micro cannot run (see FIXED_BATCH), so their oracle is TFLite's reference kernels
# (BUILTIN_REF). "dil_fixed_*" fix the batch at 1: a dilated convolution op, TFLite Micro.
DILATED = {
    "dil_open_d2_same": (_seq(lambda: [conv(6, 3, "relu", dilation_rate=2)]), (13, 11, 3)),
    "dil_open_d3_valid": (_seq(lambda: [conv(6, 3, dilation_rate=3, padding="valid")]), (16, 14, 2)),
    "dil_open_d3_same_odd": (_seq(lambda: [conv(5, 3, "relu6", dilation_rate=3)]), (14, 17, 3)),
    "dil_open_2x3_nonsquare": (_seq(lambda: [conv(5, (3, 2), dilation_rate=(2, 3))]), (12, 13, 3)),
    "dil_open_dw_d2": (_seq(lambda: [dw(3, "relu", dilation_rate=2)]), (12, 10, 4)),
    "dil_open_dw_d3_mult2_valid": (_seq(lambda: [dw(3, dilation_rate=3, padding="valid", depth_multiplier=2)]),
                                   (13, 11, 3)),
    "dil_open_stack_pool_gap": (_seq(lambda: [conv(8, 3, "relu", dilation_rate=2), L.MaxPooling2D(2),
                                              conv(6, 3, "relu", dilation_rate=3, padding="valid"),
                                              L.GlobalAveragePooling2D()]), (20, 18, 2)),
    "dil_fixed_d3_same": (_seq(lambda: [conv(6, 3, "relu", dilation_rate=3)]), (14, 17, 3)),
    "dil_fixed_d3_valid": (_seq(lambda: [conv(6, 3, dilation_rate=3, padding="valid")]), (16, 14, 2)),
    "dil_fixed_dw_d3": (_seq(lambda: [dw(3, "relu6", dilation_rate=3)]), (13, 11, 4)),
}

# Keras leaves the batch size open. For a dilated convolution the converter then
# writes SPACE_TO_BATCH_ND / BATCH_TO_SPACE_ND with batch 1 as their static shape
# (really 4 for dilation 2) and TFLite Micro, which trusts static shapes, computes
# nonsense; a Dense on a 3-D input becomes a dynamic-shape chain (GATHER,
# REDUCE_PROD, ...) TFLite Micro cannot allocate. These models fix the batch at 1.
FIXED_BATCH = ({name for name in ZOO if "dilat" in name} | {"dense_3d_input"}
               | {name for name in DILATED if name.startswith("dil_fixed")})


def seed(name: str) -> int:
    return zlib.crc32(name.encode())


def build(name: str) -> keras.Model:
    """The zoo model ``name``, with weights drawn from a seed fixed by the name."""
    builder, shape = ZOO[name] if name in ZOO else DILATED[name]
    keras.utils.set_random_seed(seed(name) % 2**31)
    x = keras.Input(shape, batch_size=1 if name in FIXED_BATCH else None)
    return keras.Model(x, builder(x), name=name)
