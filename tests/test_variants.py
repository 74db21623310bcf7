"""Which kernel variant runs is observable (issue #19): each op family's entry
point counts the variant it picks (``micronn.kernel_variants()``; the server's
INFO reply carries the counts since the last INFO). Every variant is made to
run here, bit-exact with TensorFlow Lite Micro, on unix, qemu-m4 (DSP) and
qemu-m3; and the blobs the packer writes must take the fast paths: a fast
path that silently falls back fails these tests."""

from __future__ import annotations

import copy
import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras  # noqa: E402

from micronn import blob  # noqa: E402
from micronn.convert import keras_to_tflite  # noqa: E402
from micronn.firmware import firmware_file  # noqa: E402
from micronn.packer import build_graph  # noqa: E402
from micronn.reference import tflm_run  # noqa: E402
from micronn.run import sample_inputs  # noqa: E402
from micronn.targets import QemuTarget  # noqa: E402

from .conftest import need_shared  # noqa: E402
from .test_cmsis_vectors import _without_scratch  # noqa: E402

L = keras.layers
SLOW_PATHS = {"CONV_DIRECT", "CONV_IM2COL_SLOW", "CONV_POOL_DIRECT", "DEPTHWISE_GENERIC", "ADD_DIRECT"}


def _model(name: str):
    keras.utils.set_random_seed(sum(map(ord, name)))
    bias = keras.initializers.RandomNormal(stddev=0.2)
    if name == "conv_w4":                   # in_c a multiple of 4: words of input into the columns
        inp = keras.Input((7, 9, 8))
        out = L.Conv2D(6, 3, padding="same", bias_initializer=bias)(inp)
    elif name == "conv_plain":              # odd channels, small window: the stack-buffered fill
        inp = keras.Input((9, 8, 3))
        out = L.Conv2D(5, 3, strides=2, padding="same", bias_initializer=bias)(inp)
    elif name == "conv_slow":               # odd channels, 11 x 11 x 3 = 363 taps: element by element
        inp = keras.Input((14, 13, 3))
        out = L.Conv2D(4, 11, padding="same", bias_initializer=bias)(inp)
    elif name == "depthwise":
        inp = keras.Input((8, 9, 8))
        out = L.DepthwiseConv2D(3, padding="same", bias_initializer=bias)(inp)
    elif name == "depthwise_mult2":
        inp = keras.Input((8, 7, 3))
        out = L.DepthwiseConv2D(3, depth_multiplier=2, padding="same", bias_initializer=bias)(inp)
    elif name == "conv_pool":               # CONV_2D_MAXPOOL
        inp = keras.Input((10, 10, 1))
        out = L.MaxPooling2D(2)(L.Conv2D(4, 3, activation="relu", bias_initializer=bias)(inp))
    elif name == "dense_add":               # 1,024 sums: enough for ADD's rescaling tables
        inp = keras.Input((24,))
        a = L.Dense(1024, bias_initializer=bias)(inp)
        out = L.Add()([a, L.Dense(1024, bias_initializer=bias)(inp)])
    else:
        raise KeyError(name)
    return keras.Model(inp, out)


def _tflite(name: str) -> bytes:
    m = _model(name)
    shape = (64,) + tuple(m.input_shape[1:])
    return keras_to_tflite(m, np.random.default_rng(1).normal(0, 1, shape).astype(np.float32))


def _native_depthwise(g):
    """Undo the packer's rewrite of a depth multiplier above 1 into a grouped
    convolution: the DEPTHWISE_CONV_2D op the blob format also has."""
    h = copy.deepcopy(g)
    for op in h.ops:
        if op.kind == "CONV_2D" and op.params["groups"] == op.params["in_c"] > 1:
            w = h.tensors[op.inputs[1]]
            w.data = np.ascontiguousarray(np.transpose(w.data, (3, 1, 2, 0)))
            w.shape = tuple(w.data.shape)
            op.kind = "DEPTHWISE_CONV_2D"
            op.params = {k: v for k, v in op.params.items() if k != "groups"}
            op.params["depth_mult"] = op.params["out_c"] // op.params["in_c"]
            op.scratch = 0
    return h


# name -> [(how the blob is made, the variants one run picks on a DSP core, elsewhere)]
CASES = {
    "conv_w4": [("packed", {"CONV_IM2COL_W4": 1}, None), ("no scratch", {"CONV_DIRECT": 1}, None)],
    "conv_plain": [("packed", {"CONV_IM2COL_PLAIN": 1}, None), ("no scratch", {"CONV_DIRECT": 1}, None)],
    "conv_slow": [("packed", {"CONV_IM2COL_SLOW": 1}, None)],
    "depthwise": [("packed", {"DEPTHWISE_MULT1": 1}, None)],
    "depthwise_mult2": [("packed", {"CONV_IM2COL_PLAIN": 1}, None),
                        ("native depthwise", {"DEPTHWISE_GENERIC": 1}, None)],
    "conv_pool": [("packed", {"CONV_POOL_FAST": 1}, None), ("no scratch", {"CONV_POOL_DIRECT": 1}, None)],
    "dense_add": [("packed", {"FC_DSP": 2, "ADD_TABLES": 1}, {"FC_PLAIN": 2, "ADD_TABLES": 1}),
                  ("no scratch", {"FC_DSP": 2, "ADD_DIRECT": 1}, {"FC_PLAIN": 2, "ADD_DIRECT": 1})],
}

_MADE: dict[str, tuple] = {}


def _made(name: str):
    if name not in _MADE:
        tfl = _tflite(name)
        g = build_graph(tfl, name=name)
        blobs = {"packed": blob.write(g), "no scratch": blob.write(_without_scratch(g)),
                 "native depthwise": blob.write(_native_depthwise(g))}
        x = sample_inputs(blobs["packed"], 6, 7)
        _MADE[name] = tfl, blobs, x, tflm_run(tfl, x)
    return _MADE[name]


def _check_cases(target, dsp: bool):
    target.link.info()                                  # counts start from here
    for name, cases in CASES.items():
        _, blobs, x, want = _made(name)
        for how, on_dsp, elsewhere in cases:
            target.link.load(blobs[how])
            got = np.stack([np.frombuffer(target.link.run(s.tobytes())[0], want.dtype) for s in x])
            np.testing.assert_array_equal(got.reshape(want.shape), want, err_msg=f"{name} ({how})")
            expect = on_dsp if dsp or elsewhere is None else elsewhere
            ran = target.link.info()["variants"]
            assert ran == {k: v * len(x) for k, v in expect.items()}, f"{name} ({how}): {ran}"


def test_variants_on_unix(unix):
    _check_cases(unix, dsp=False)


@pytest.mark.parametrize("board, dsp", [("qemu-m4", True), ("qemu-m3", False)])
def test_variants_on_qemu(board, dsp):
    if not firmware_file(board).exists():
        pytest.skip(f"{board} firmware not built")
    with QemuTarget(board) as t:
        t.setup()
        t.serve()
        _check_cases(t, dsp)


@pytest.mark.parametrize("model", ["resnet8", "dscnn"])
def test_real_models_take_the_fast_paths(unix, model):
    """Every convolution of MLPerf Tiny's ResNet-8 and DS-CNN runs im2col, every
    depthwise convolution the multiplier-1 kernel: no slow path at all."""
    from micronn import pack

    files = {"resnet8": "mlperf_tiny_ic_resnet8.tflite", "dscnn": "mlperf_tiny_kws_dscnn.tflite"}
    path = need_shared("models", files[model])
    data = pack(path.read_bytes())
    unix.link.info()
    unix.link.load(data)
    unix.link.run(sample_inputs(data, 1, 3)[0].tobytes())
    ran = unix.link.info()["variants"]
    assert not SLOW_PATHS & set(ran), ran
    assert ran.get("CONV_IM2COL_W4", 0) + ran.get("CONV_IM2COL_PLAIN", 0) >= 4, ran
    if model == "dscnn":
        assert ran.get("DEPTHWISE_MULT1", 0) >= 4, ran
