"""Movement operators (issue 18): slices, splits, pack/unpack, transpose, gather,
depth/space rearrangements and mirror padding, each between real layers."""

from __future__ import annotations

from . import Case


def _k():
    import keras

    return keras


def _conv(t, c=4):
    return _k().layers.Conv2D(c, 3, padding="same", activation="relu")(t)


def _head(t, n=6):
    k = _k()
    return k.layers.Dense(n)(k.layers.Flatten()(t))


def _lambda(fn):
    return _k().layers.Lambda(fn)


def _tf():
    import tensorflow as tf

    return tf


def strided(xs):
    t = _conv(xs[0])
    t = _lambda(lambda v: v[:, 1:6, ::2, :])(t)
    return _head(_conv(t))


def neg_stride(xs):
    t = _conv(xs[0], 5)
    t = _lambda(lambda v: v[:, ::-2, 6:0:-1, ::-1])(t)
    return _head(_conv(t))


def shrink(xs):
    t = _conv(xs[0], 5)
    t = _lambda(lambda v: v[:, 2, -2:, 1:4])(t)      # shrinks the height axis (3-D output)
    return _head(t)


def clamped(xs):
    t = _conv(xs[0], 5)
    t = _lambda(lambda v: v[:, -3:100, 10:-10:-2, -2::-2])(t)    # bounds beyond the axes, clamped
    return _head(_conv(t))


def slice_(xs):
    t = _conv(xs[0])
    t = _lambda(lambda v: _tf().slice(v, [0, 1, 2, 1], [-1, 5, 4, 2]))(t)
    return _head(_conv(t))


def split(xs):
    k = _k()
    t = k.layers.Dense(12, activation="relu")(xs[0])
    a, b, c = _lambda(lambda v: k.ops.split(v, 3, axis=-1))(t)
    t = k.layers.Concatenate()([c, a, b])
    return k.layers.Dense(5)(t)


def split_v(xs):
    k = _k()
    t = _conv(xs[0], 7)
    a, b, c = _lambda(lambda v: _tf().split(v, [2, 4, 1], axis=-1))(t)
    t = k.layers.Concatenate()([c, a, b])
    return _head(_conv(t))


def stack(xs):
    k = _k()
    a = k.layers.Dense(6, activation="relu")(xs[0])
    b = k.layers.Dense(6, activation="relu")(xs[0])
    t = _lambda(lambda v: k.ops.stack(v, axis=1))([a, b])
    return _head(t, 4)


def unstack(xs):
    k = _k()
    t = k.layers.Dense(12, activation="relu")(xs[0])
    t = k.layers.Reshape((4, 3))(t)
    parts = _lambda(lambda v: k.ops.unstack(v, axis=2))(t)     # three [batch, 4], each a strided column
    t = k.layers.Concatenate()([parts[2], parts[0], parts[1]])
    return k.layers.Dense(5)(t)


def permute(xs):
    k = _k()
    t = _conv(xs[0])
    t = k.layers.Permute((2, 1, 3))(t)
    return _head(_conv(t))


def transpose(xs):
    k = _k()
    t = _conv(xs[0], 3)
    t = _lambda(lambda v: k.ops.transpose(v, (0, 3, 1, 2)))(t)
    return _head(t)


def take(xs):
    k = _k()
    t = k.layers.Dense(8, activation="relu")(xs[0])
    t = _lambda(lambda v: k.ops.take(v, [3, 0, 5, 5, 7, 1], axis=1))(t)
    return k.layers.Dense(5)(t)


def take_channels(xs):
    k = _k()
    t = _conv(xs[0], 6)
    t = _lambda(lambda v: k.ops.take(v, [4, 1, 1], axis=3))(t)
    return _head(_conv(t))


def depth_to_space(xs):
    t = _conv(xs[0], 8)
    t = _lambda(lambda v: _tf().nn.depth_to_space(v, 2))(t)
    return _head(_conv(t))


def space_to_depth(xs):
    t = _conv(xs[0], 3)
    t = _lambda(lambda v: _tf().nn.space_to_depth(v, 2))(t)
    return _head(_conv(t))


def reflect(xs):
    t = _conv(xs[0])
    t = _lambda(lambda v: _tf().pad(v, [[0, 0], [2, 1], [1, 3], [1, 2]], mode="REFLECT"))(t)
    return _head(_conv(t))


def symmetric(xs):
    t = _conv(xs[0])
    t = _lambda(lambda v: _tf().pad(v, [[0, 0], [3, 0], [2, 4], [4, 1]], mode="SYMMETRIC"))(t)
    return _head(_conv(t))


def stack_last(xs):
    k = _k()
    a = k.layers.Dense(5, activation="relu")(xs[0])
    b = k.layers.Dense(5)(xs[0])
    c = k.layers.Dense(5, activation="relu")(xs[0])
    t = _lambda(lambda v: k.ops.stack(v, axis=-1))([a, b, c])      # [batch, 5, 3]: interleaved
    return _head(t, 4)


def split_rows(xs):
    k = _k()
    t = _conv(xs[0], 4)
    a, b = _lambda(lambda v: k.ops.split(v, 2, axis=1))(t)
    t = k.layers.Concatenate(axis=2)([b, a])
    return _head(_conv(t))


def take_2d(xs):
    k = _k()
    t = k.layers.Dense(7, activation="relu")(xs[0])
    t = _lambda(lambda v: k.ops.take(v, [[6, 0, 2], [2, 5, 1]], axis=1))(t)      # [batch, 2, 3]
    return _head(t, 4)


MODELS = {
    "mv_strided_slice": Case(strided, ((8, 8, 3),), "STRIDED_SLICE"),
    "mv_neg_stride": Case(neg_stride, ((7, 8, 3),), "STRIDED_SLICE"),
    "mv_shrink": Case(shrink, ((6, 6, 3),), "STRIDED_SLICE"),
    "mv_clamped": Case(clamped, ((6, 8, 3),), "STRIDED_SLICE"),
    "mv_slice": Case(slice_, ((8, 8, 3),), "SLICE"),
    "mv_split": Case(split, ((10,),), "SPLIT"),
    "mv_split_v": Case(split_v, ((5, 6, 2),), "SPLIT_V"),
    "mv_stack": Case(stack, ((5,),), "PACK"),
    "mv_unstack": Case(unstack, ((7,),), "UNPACK"),
    "mv_permute": Case(permute, ((6, 8, 3),), "TRANSPOSE"),
    "mv_transpose": Case(transpose, ((5, 6, 2),), "TRANSPOSE"),
    "mv_take": Case(take, ((9,),), "GATHER"),
    "mv_take_channels": Case(take_channels, ((6, 6, 2),), "GATHER"),
    "mv_depth_to_space": Case(depth_to_space, ((4, 6, 3),), "DEPTH_TO_SPACE"),
    "mv_space_to_depth": Case(space_to_depth, ((8, 6, 3),), "SPACE_TO_DEPTH"),
    "mv_reflect": Case(reflect, ((6, 7, 3),), "MIRROR_PAD"),
    "mv_symmetric": Case(symmetric, ((5, 6, 4),), "MIRROR_PAD"),
    "mv_stack_last": Case(stack_last, ((6,),), "PACK"),
    "mv_split_rows": Case(split_rows, ((6, 5, 2),), "SPLIT"),
    "mv_take_2d": Case(take_2d, ((6,),), "GATHER"),
}


# --- repetition: TILE and Keras UpSampling2D (nearest) --------------------------
# These end in a convolution, not a Dense head: TFLite Micro has no TILE kernel, so
# their oracle is desktop TFLite, whose FULLY_CONNECTED rounds differently.

def _out(t, c=4):
    return _k().layers.Conv2D(c, 3, padding="same")(t)


def up2(xs):
    k = _k()
    t = _conv(xs[0], 3)
    t = k.layers.UpSampling2D(2)(t)       # EXPAND_DIMS -> TILE -> RESHAPE through 5-D: one copy
    return _out(t)


def up23(xs):
    k = _k()
    t = _conv(xs[0], 4)
    t = k.layers.UpSampling2D((2, 3))(t)
    return _out(t, 3)


def unet(xs):
    k = _k()
    a = _conv(xs[0], 4)
    t = k.layers.MaxPooling2D(2)(a)
    t = _conv(t, 6)
    t = k.layers.UpSampling2D(2)(t)
    t = k.layers.Concatenate()([t, a])          # the skip connection
    return _out(t, 3)


def tile_3d(xs):
    k = _k()
    t = k.layers.Conv1D(4, 3, padding="same", activation="relu")(xs[0])     # EXPAND_DIMS -> CONV_2D -> RESHAPE
    t = _lambda(lambda v: k.ops.tile(v, (1, 2, 3)))(t)       # [batch, 10, 12]
    return k.layers.Conv1D(3, 3)(t)


def tile_4d(xs):
    k = _k()
    t = _conv(xs[0], 3)
    t = _lambda(lambda v: k.ops.tile(v, (1, 3, 1, 2)))(t)    # [batch, 3h, w, 6]
    return _out(t)


MODELS.update({
    "mv_up_2": Case(up2, ((5, 6, 2),), "EXPAND_DIMS TILE RESHAPE", data="image", oracle="builtin_ref"),
    "mv_up_2x3": Case(up23, ((4, 5, 3),), "EXPAND_DIMS TILE RESHAPE", data="image", oracle="builtin_ref"),
    "mv_up_unet": Case(unet, ((8, 8, 3),), "MAX_POOL_2D TILE CONCATENATION", data="image", oracle="builtin_ref"),
    "mv_tile_3d": Case(tile_3d, ((5, 4),), "EXPAND_DIMS TILE", oracle="builtin_ref"),
    "mv_tile_4d": Case(tile_4d, ((4, 5, 2),), "TILE", data="image", oracle="builtin_ref"),
})
