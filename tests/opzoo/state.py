"""Stateful models (issue 18, item 3): tf.Module models whose variables keep their
values between calls, converted with resource variables to full int8 (VAR_HANDLE,
READ_VARIABLE, ASSIGN_VARIABLE, and CALL_ONCE with an init subgraph). The zoo runs
each as one sequence of calls with a reset in the middle, against TFLite Micro."""

from __future__ import annotations

import numpy as np

from . import Case, seed


def _convert(module, calib: list[np.ndarray]) -> bytes:
    import tensorflow as tf

    fn = module.__call__.get_concrete_function()
    conv = tf.lite.TFLiteConverter.from_concrete_functions([fn], module)
    conv.experimental_enable_resource_variables = True
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    xs = calib[0]

    def rep():
        for i in range(len(xs)):
            yield [xs[i:i + 1]]
    conv.representative_dataset = rep
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    return conv.convert()


def _weights(name: str, *shape: int, scale: float = 0.4) -> np.ndarray:
    return (np.random.default_rng(seed(name)).normal(size=shape) * scale).astype(np.float32)


def _recurrent(init: float):
    """s = tanh(x W + 0.5 s): an Elman cell whose state is its output."""
    def make(name: str, calib) -> bytes:
        import tensorflow as tf

        class Cell(tf.Module):
            def __init__(self):
                self.state = tf.Variable(tf.fill([1, 8], init), trainable=False)
                self.w = tf.constant(_weights(name, 8, 8))

            @tf.function(input_signature=[tf.TensorSpec([1, 8], tf.float32)])
            def __call__(self, x):
                s = tf.tanh(tf.matmul(x, self.w) + 0.5 * self.state)
                self.state.assign(s)
                return s
        return _convert(Cell(), calib)
    return make


def _stream(name: str, calib) -> bytes:
    """A streaming model: a ring of the last 4 frames (8 features each), a dense layer over it."""
    import tensorflow as tf

    class Stream(tf.Module):
        def __init__(self):
            self.frames = tf.Variable(tf.zeros([1, 4, 8]), trainable=False)
            self.w = tf.constant(_weights(name, 32, 6, scale=0.2))

        @tf.function(input_signature=[tf.TensorSpec([1, 8], tf.float32)])
        def __call__(self, x):
            frames = tf.concat([self.frames[:, 1:, :], tf.reshape(x, [1, 1, 8])], axis=1)
            self.frames.assign(frames)
            return tf.nn.relu(tf.matmul(tf.reshape(frames, [1, 32]), self.w))
    return _convert(Stream(), calib)


def _two(name: str, calib) -> bytes:
    """Two variables, both outputs: a slow and a fast leaky running mean of a dense layer.
    (A running maximum, tf.maximum(variable, h), is not an example: the converter leaves
    that MAXIMUM in float32, between two varying values, which no table can stand for.)"""
    import tensorflow as tf

    class Two(tf.Module):
        def __init__(self):
            self.mean = tf.Variable(tf.zeros([1, 6]), trainable=False)
            self.fast = tf.Variable(tf.zeros([1, 6]), trainable=False)
            self.w = tf.constant(_weights(name, 6, 6))

        @tf.function(input_signature=[tf.TensorSpec([1, 6], tf.float32)])
        def __call__(self, x):
            h = tf.matmul(x, self.w)
            mean = 0.75 * self.mean + 0.25 * h
            fast = 0.5 * self.fast + 0.5 * tf.nn.relu(h)
            self.mean.assign(mean)
            self.fast.assign(fast)
            return mean, fast
    return _convert(Two(), calib)


_OPS = "CALL_ONCE VAR_HANDLE READ_VARIABLE ASSIGN_VARIABLE"
MODELS = {
    "state_rnn": Case(None, ((8,),), _OPS, make_tflite=_recurrent(0.0), stateful=True,
                      notes={"what": "Elman cell, state = output, zero initial state"}),
    "state_rnn_init": Case(None, ((8,),), _OPS, make_tflite=_recurrent(0.75), stateful=True,
                           notes={"what": "the same with initial state 0.75 (a ONCE ASSIGN at load)"}),
    "state_stream": Case(None, ((8,),), _OPS, make_tflite=_stream, stateful=True,
                         notes={"what": "streaming: a ring of the last 4 frames"}),
    "state_two": Case(None, ((6,),), _OPS, make_tflite=_two, stateful=True,
                      notes={"what": "two variables, two outputs"}),
}
