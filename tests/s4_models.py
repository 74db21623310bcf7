"""Models with int4 weights as TensorFlow's converter writes them (issue 14): fake quantization of the
weights to 4 bits (narrow range) in a tf.function, converted with the converter's low-bit QAT mode
(`_experimental_low_bit_qat`, TF 2.21), which stores INT4 weight tensors packed two per byte. TensorFlow
Lite Micro runs them (FULLY_CONNECTED, CONV_2D, DEPTHWISE_CONV_2D), so it is their oracle."""

from __future__ import annotations

import os

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _fq(v, lo, hi, bits=8):
    import tensorflow as tf

    return tf.quantization.fake_quant_with_min_max_vars(v, lo, hi, num_bits=bits, narrow_range=bits == 4)


def _fq4_per_channel(w):
    import tensorflow as tf

    m = np.abs(w.reshape(-1, w.shape[-1])).max(axis=0).astype(np.float32)
    return tf.quantization.fake_quant_with_min_max_vars_per_channel(w, -m, m, num_bits=4, narrow_range=True)


def _model(name: str, rng):
    import tensorflow as tf

    if name == "dense":                     # per-tensor int4 weights, odd depth
        w = rng.normal(0, 0.4, (23, 10)).astype(np.float32)
        b = rng.normal(0, 0.2, 10).astype(np.float32)
        shape = (1, 23)

        def f(x):
            x = _fq(x, -3.0, 3.0)
            return _fq(tf.nn.relu(tf.matmul(x, _fq(w, -1.2, 1.2, 4)) + b), 0.0, 6.0)
    elif name == "conv":                    # per-channel, even channels: the DSP pairs
        w = rng.normal(0, 0.4, (3, 3, 8, 12)).astype(np.float32)
        b = rng.normal(0, 0.2, 12).astype(np.float32)
        shape = (1, 9, 7, 8)

        def f(x):
            x = _fq(x, -2.0, 2.0)
            return _fq(tf.nn.conv2d(x, _fq4_per_channel(w), 2, "SAME") + b, -8.0, 8.0)
    elif name == "conv_dense":              # two int4 layers, odd input channels
        w = rng.normal(0, 0.4, (3, 3, 3, 5)).astype(np.float32)
        w2 = rng.normal(0, 0.3, (5 * 6 * 6, 7)).astype(np.float32)
        shape = (1, 6, 6, 3)

        def f(x):
            x = _fq(x, -2.0, 2.0)
            h = _fq(tf.nn.relu(tf.nn.conv2d(x, _fq4_per_channel(w), 1, "SAME")), 0.0, 6.0)
            return _fq(tf.matmul(tf.reshape(h, (1, -1)), _fq(w2, -1.0, 1.0, 4)), -10.0, 10.0)
    elif name == "depthwise":
        w = rng.normal(0, 0.4, (3, 3, 6, 1)).astype(np.float32)
        shape = (1, 7, 8, 6)

        def f(x):
            x = _fq(x, -2.0, 2.0)
            return _fq(tf.nn.depthwise_conv2d(x, _fq(w, -1.0, 1.0, 4), [1, 1, 1, 1], "SAME"), -6.0, 6.0)
    else:
        raise KeyError(name)
    return tf.function(f, input_signature=[tf.TensorSpec(shape, tf.float32)]), shape


MODELS = ("dense", "conv", "conv_dense", "depthwise")


def make_tflite(name: str) -> bytes:
    import tensorflow as tf

    fn, _ = _model(name, np.random.default_rng(sum(map(ord, name))))
    conv = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()])
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv._experimental_low_bit_qat = True     # 4-bit fake quantization -> INT4 weight tensors
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    return conv.convert()
