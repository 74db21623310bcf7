"""Recurrent models: Keras LSTM, GRU and SimpleRNN built as micronn packs them
(unroll=True, batch size 1: see tests/test_recurrent.py). Their cells become
FULLY_CONNECTED, LOGISTIC, TANH, MUL, ADD, SUB, SPLIT and UNPACK.

Only the SimpleRNN is here: in about one conversion of four TensorFlow's converter
leaves an LSTM's or GRU's first SPLIT in float (DEQUANTIZE -> SPLIT -> QUANTIZE), which
micronn does not lower yet, and the other three it gives plain int8 ops that run
bit-exact; a test that passes three times in four has no place in the suite."""

from __future__ import annotations

import keras

from . import Case

L = keras.layers


def simple_rnn(xs):
    return L.Dense(4)(L.SimpleRNN(8, unroll=True)(xs[0]))


MODELS = {
    "rnn_simple": Case(simple_rnn, ((7, 5),), "UNPACK TANH", batch=1),
}
