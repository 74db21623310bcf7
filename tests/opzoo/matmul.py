"""Operator zoo, MATMUL group: BATCH_MATMUL of two activations (plain, with the
right operand transposed, batched 4-D with a broadcast and transposed left
operand, batched with a broadcast right operand, a constant batched right
operand) and a small multi-head-attention block (two BATCH_MATMULs)."""

from __future__ import annotations

import numpy as np

from . import Case


def _dense(units, rank=3):
    """A Dense layer as an EinsumDense: the converter writes one FULLY_CONNECTED
    (keep_num_dims) without the dynamic-shape ops (REDUCE_PROD, which TFLite
    Micro lacks) that keras.layers.Dense on a 3-D or 4-D input brings."""
    import keras

    eq = "abc,cd->abd" if rank == 3 else "abcx,xd->abcd"
    return keras.layers.EinsumDense(eq, output_shape=(None,) * (rank - 2) + (units,), bias_axes="d")


def _two_dense(xs):
    import keras

    x = xs[0]                                       # [7, 12]
    a = _dense(7)(x)                                # [7, 7]: rows 7, depth 7 (odd: the tails)
    b = _dense(5)(x)                                # [7, 5]: depth 7, columns 5
    return keras.ops.matmul(a, b)                   # [7, 5]


def _transposed(xs):
    import keras

    x = xs[0]                                       # [8, 16]
    q = _dense(6)(x)                                # [8, 6]
    k = _dense(6)(x)                                # [8, 6]
    return keras.ops.matmul(q, keras.ops.transpose(k, (0, 2, 1)))     # [8, 8], q k^T


def _batched(xs):
    import keras

    x = xs[0]                                       # [3, 6, 8]
    a = _dense(5, 4)(x)                             # [3, 6, 5]
    b = _dense(4, 4)(keras.ops.mean(x, axis=1, keepdims=True))     # [1, 6, 4]: broadcast over 3
    return keras.ops.matmul(keras.ops.transpose(b, (0, 1, 3, 2)), a)     # [3, 4, 5], b^T a (adj_x)


def _broadcast_rhs(xs):
    import keras

    x = xs[0]                                       # [3, 6, 8]
    a = _dense(6, 4)(x)                             # [3, 6, 6]
    b = _dense(4, 4)(keras.ops.mean(x, axis=1, keepdims=True))     # [1, 6, 4]: broadcast over 3
    return keras.ops.matmul(a, b)                   # [3, 6, 4]


def _const_rhs(xs):
    import keras

    x = xs[0]                                       # [3, 6, 8]
    w = np.random.default_rng(18).normal(size=(3, 8, 5)).astype(np.float32) * 0.5
    return keras.ops.matmul(_dense(8, 4)(x), w)      # [3, 6, 5], one matrix per batch


def _attention(xs):
    import keras

    x = xs[0]                                       # [8, 16]
    h = keras.layers.MultiHeadAttention(num_heads=2, key_dim=8)(x, x)
    return _dense(16)(keras.layers.Add()([x, h]))


MODELS = {
    "mm_two_dense": Case(_two_dense, ((7, 12),), "BATCH_MATMUL"),
    "mm_transposed": Case(_transposed, ((8, 16),), "BATCH_MATMUL"),
    "mm_batched": Case(_batched, ((3, 6, 8),), "BATCH_MATMUL"),
    "mm_broadcast_rhs": Case(_broadcast_rhs, ((3, 6, 8),), "BATCH_MATMUL"),
    "mm_const_rhs": Case(_const_rhs, ((3, 6, 8),), "BATCH_MATMUL"),
    "mm_attention": Case(_attention, ((8, 16),), "BATCH_MATMUL SOFTMAX"),
}
