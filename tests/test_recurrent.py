"""Recurrent layers (LSTM, GRU, SimpleRNN). TensorFlow 2.21's int8 converter fails on
their loop when the batch size is free and crashes the process (segmentation fault)
quantizing the fused LSTM when it is fixed; unrolled, with a fixed batch size, the
cell becomes ordinary operators (tests/opzoo/recurrent.py runs a SimpleRNN bit-exact;
an LSTM's or GRU's conversion sometimes keeps one SPLIT in float, which micronn does
not lower yet: see that file). micronn refuses the other forms before the converter runs, saying what to do."""

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
