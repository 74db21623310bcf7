"""Recurrent models: Keras LSTM, GRU and SimpleRNN built as micronn packs them
(unroll=True, batch size 1: see tests/test_recurrent.py). Their cells become
FULLY_CONNECTED, LOGISTIC, TANH, MUL, ADD, SUB, SPLIT and UNPACK.

TensorFlow's converter leaves an LSTM's or GRU's first gate SPLIT in float
(DEQUANTIZE -> SPLIT -> QUANTIZE) in about one conversion of four, at random; micronn
lowers either form (host/micronn/lower_sequence.py: a strided copy per piece), so these
models pass whichever the converter writes (tests/test_float_regions.py makes the float
form on purpose)."""

from __future__ import annotations

import keras

from . import Case

L = keras.layers


def simple_rnn(xs):
    return L.Dense(4)(L.SimpleRNN(8, unroll=True)(xs[0]))


def lstm(xs):
    return L.Dense(4)(L.LSTM(12, unroll=True)(xs[0]))


def gru(xs):
    return L.Dense(4)(L.GRU(10, unroll=True)(xs[0]))


def stacked(xs):
    """An LSTM's whole sequence into a GRU."""
    h = L.LSTM(8, unroll=True, return_sequences=True)(xs[0])
    return L.Dense(3)(L.GRU(6, unroll=True)(h))


def bidirectional(xs):
    return L.Dense(3)(L.Bidirectional(L.LSTM(6, unroll=True))(xs[0]))


MODELS = {
    "rnn_simple": Case(simple_rnn, ((7, 5),), "UNPACK TANH", batch=1),
    "rnn_lstm": Case(lstm, ((8, 6),), "UNPACK FULLY_CONNECTED LOGISTIC TANH MUL ADD", batch=1),
    "rnn_gru": Case(gru, ((8, 6),), "UNPACK FULLY_CONNECTED LOGISTIC TANH MUL ADD SUB", batch=1),
    "rnn_stacked": Case(stacked, ((6, 4),), "UNPACK LOGISTIC TANH", batch=1),
    "rnn_bidirectional": Case(bidirectional, ((5, 4),), "UNPACK LOGISTIC TANH", batch=1),
}
