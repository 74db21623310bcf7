"""Recurrent layers (LSTM, GRU, SimpleRNN). TensorFlow 2.21's int8 converter fails on
their loop when the batch size is free and crashes the process (segmentation fault)
quantizing Keras 3's loop (a WHILE) when it is fixed; unrolled, with a fixed batch size,
the cell becomes ordinary operators (tests/opzoo/recurrent.py runs a SimpleRNN, an LSTM,
a GRU, a stacked and a bidirectional model bit-exact; the gate SPLIT the converter
sometimes leaves in float is tests/test_float_regions.py's). micronn refuses the other
forms before the converter runs, saying what to do."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

keras = pytest.importorskip("keras")

from micronn.convert import keras_to_tflite  # noqa: E402
from micronn.errors import MicronnError  # noqa: E402

CALIB = np.random.default_rng(0).normal(size=(4, 6, 4)).astype(np.float32)


def _model(layer, batch):
    x = keras.Input((6, 4), batch_size=batch)
    return keras.Model(x, keras.layers.Dense(3)(layer(x)))


@pytest.mark.parametrize("make", [
    lambda: keras.layers.LSTM(8),
    lambda: keras.layers.GRU(8),
    lambda: keras.layers.SimpleRNN(8),
    lambda: keras.layers.Bidirectional(keras.layers.LSTM(8)),
], ids=["lstm", "gru", "simple_rnn", "bidirectional"])
def test_a_looping_recurrent_layer_is_refused_before_the_converter(make):
    with pytest.raises(MicronnError, match=r"loops over time steps.*unroll=True.*batch_size=1"):
        keras_to_tflite(_model(make(), 1), CALIB)


def test_an_unrolled_layer_needs_a_fixed_batch_size():
    with pytest.raises(MicronnError, match=r"lstm.*needs a fixed batch size: give the model's Input batch_size=1"):
        keras_to_tflite(_model(keras.layers.LSTM(8, unroll=True), None), CALIB)


def test_the_unrolled_lstm_converts_to_plain_operators():
    from micronn import tflite

    t = tflite.load(keras_to_tflite(_model(keras.layers.LSTM(8, unroll=True), 1), CALIB))
    ops = {op.opcode for op in t.operators}
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" not in ops
    assert {"FULLY_CONNECTED", "LOGISTIC", "TANH", "MUL", "ADD", "SPLIT", "UNPACK"} <= ops, ops


def test_a_keras2_lstm_is_the_fused_int8_lstm_tflite_micro_runs():
    """What TFLite Micro's int8 LSTM is: a Keras 2 (tf-keras) LSTM, looping, batch size 1,
    converts to one int8 UNIDIRECTIONAL_SEQUENCE_LSTM (int8 input, weights and hidden
    state, int32 biases, int16 cell state) that TFLite Micro runs (Keras 3's loop is a
    WHILE instead, whose int8 quantization crashes the converter). micronn packs it to
    its LSTM op (run bit-exact in tests/test_lstm.py)."""
    tf_keras = pytest.importorskip("tf_keras")
    import tensorflow as tf

    from micronn import blob, pack, tflite
    from micronn.reference import tflm_run

    tf.random.set_seed(2)
    x = tf_keras.Input((6, 4), batch_size=1)
    m = tf_keras.Model(x, tf_keras.layers.Dense(3)(tf_keras.layers.LSTM(8)(x)))
    conv = tf.lite.TFLiteConverter.from_keras_model(m)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([CALIB[i:i + 1]] for i in range(len(CALIB)))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = tf.int8
    tb = conv.convert()
    t = tflite.load(tb)
    lstm = [op for op in t.operators if op.opcode == "UNIDIRECTIONAL_SEQUENCE_LSTM"]
    assert len(lstm) == 1 and "WHILE" not in {op.opcode for op in t.operators}
    dtypes = [t.tensors[i].dtype if i >= 0 else None for i in lstm[0].inputs]
    assert dtypes[0] == "int8" and dtypes[1:9] == ["int8"] * 8 and dtypes[12:16] == ["int32"] * 4
    assert dtypes[18:20] == ["int8", "int16"]        # hidden and cell state (variables)
    xs = np.random.default_rng(1).integers(-128, 128, size=(8, 6, 4)).astype(np.int8)
    y = tflm_run(tb, xs)
    assert (y != y[:1]).any()
    assert [op["kind"] for op in blob.read(pack(tb))["ops"]][0] == "LSTM"
