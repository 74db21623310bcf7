"""Keras MLPs built, calibrated and converted here with TensorFlow's converter
(int8 input and output), packed, and run bit-exact on the unix firmware."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras  # noqa: E402

from micronn import pack  # noqa: E402
from micronn.convert import keras_to_tflite  # noqa: E402
from micronn.reference import tflm_run  # noqa: E402
from micronn.run import sample_inputs  # noqa: E402


def _dense(units, act=None, **kw):
    return keras.layers.Dense(units, activation=act, **kw)


MLPS = {
    "20-32relu-16relu6-5softmax": ((20,), lambda: [_dense(32, "relu"), _dense(16, "relu6"), _dense(5),
                                                    keras.layers.Softmax()]),
    "sine-1-16-16-1": ((1,), lambda: [_dense(16, "relu"), _dense(16, "relu"), _dense(1)]),
    "linear-64-10": ((64,), lambda: [_dense(10)]),
    "mnist-784-128-10": ((784,), lambda: [_dense(128, "relu"), _dense(10, "softmax")]),
    "deep-13-100-50-25-3": ((13,), lambda: [_dense(100, "relu"), _dense(50, "relu"), _dense(25, "relu"),
                                            _dense(3)]),
    "no-bias-32-24-8": ((32,), lambda: [_dense(24, "relu", use_bias=False), _dense(8, use_bias=False)]),
    "wide-256-512-256-16": ((256,), lambda: [_dense(512, "relu"), _dense(256, "relu6"), _dense(16)]),
    "reshape-8x8-64-32-10": ((8, 8), lambda: [keras.layers.Reshape((64,)), _dense(32, "relu"), _dense(10),
                                              keras.layers.Softmax()]),
}


@pytest.mark.parametrize("name", list(MLPS))
def test_mlp_bit_exact(unix, name):
    shape, layers = MLPS[name]
    seed = sum(map(ord, name))
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input(shape), *layers()])
    rng = np.random.default_rng(seed)
    calib = rng.normal(size=(64, *shape)).astype(np.float32) * rng.uniform(0.5, 3)
    tfl = keras_to_tflite(model, calib)
    data = pack(tfl, name=name)
    x = sample_inputs(data, samples=16, seed=seed)
    want = tflm_run(tfl, x)
    info = unix.link.load(data)
    assert info["input_shape"][1:] == shape
    got = np.stack([np.frombuffer(unix.link.run(s.tobytes())[0], np.int8) for s in x]).reshape(want.shape)
    assert np.array_equal(got, want), f"{np.count_nonzero(got != want)} values differ"
    # The test means something only if the outputs vary.
    assert len(np.unique(got)) > 1 or want.size == len(x)
