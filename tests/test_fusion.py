"""CONV_2D + MAX_POOL_2D fused into CONV_2D_MAXPOOL: when the packer fuses,
that the fused kernel (fast, portable and scratch-less variants) stays
bit-exact against TFLite Micro, and what the loader refuses."""

from __future__ import annotations

import copy

import keras  # noqa: F401  (required: a missing install is an error here, never a skip)
import numpy as np
import pytest

from micronn import blob, lower, tflite  # noqa: E402
from micronn.lower import Lowering, fuse_conv_maxpool  # noqa: E402
from micronn.packer import build_graph  # noqa: E402
from micronn.reference import tflm_run  # noqa: E402
from micronn.run import sample_inputs  # noqa: E402

from .test_blob_validation import _load_error  # noqa: E402
from .test_cmsis_vectors import _without_scratch  # noqa: E402
from .test_zoo import convert_case  # noqa: E402
from .zoo import seed  # noqa: E402

FUSED = ["mnist_cnn", "digits8x8_cnn", "maxpool_2x2", "conv_pool_same", "conv_pool_3x2"]
# overlapping windows (3x3 stride 2), pooling before the convolution, or kernels too large
NOT_FUSED = ["maxpool_3x3_s2", "cifar10_cmsis", "pool_nonsquare"]


@pytest.fixture(autouse=True)
def _any_window(monkeypatch):
    """The packer fuses 2x2 pooling only; the kernel takes any window, so the
    3x2 case is fused here to run its general path too."""
    monkeypatch.setattr(lower, "FUSE_POOLS", {(2, 2), (3, 2)})

_TFL: dict[str, bytes] = {}


def _tflite(name: str) -> bytes:
    if name not in _TFL:
        _TFL[name] = convert_case(name)
    return _TFL[name]


def _kinds(g) -> list[str]:
    return [op.kind for op in g.ops]


@pytest.mark.parametrize("name", FUSED + NOT_FUSED)
def test_fusion_decision(name):
    g = build_graph(_tflite(name))
    kinds = _kinds(g)
    if name in FUSED:
        assert "CONV_2D_MAXPOOL" in kinds and "MAX_POOL_2D" not in kinds, kinds
        op = next(op for op in g.ops if op.kind == "CONV_2D_MAXPOOL")
        out = g.tensors[op.outputs[0]].shape
        p = op.params
        assert out[1:] == (p["out_h"] // p["pool_h"], p["out_w"] // p["pool_w"], p["out_c"])
        assert op.scratch > 0
    else:
        assert "CONV_2D_MAXPOOL" not in kinds, kinds
    # no activation is left behind for the pooled-away convolution output
    used = {i for op in g.ops for i in op.inputs + op.outputs if i >= 0} | set(g.inputs + g.outputs)
    used |= {t.alias_of for t in g.tensors if t.alias_of is not None}
    assert {i for i, t in enumerate(g.tensors) if not t.is_const} <= used


def test_packer_fuses_2x2_windows_only(monkeypatch):
    monkeypatch.setattr(lower, "FUSE_POOLS", {(2, 2)})
    assert "CONV_2D_MAXPOOL" not in _kinds(build_graph(_tflite("conv_pool_3x2")))
    assert "CONV_2D_MAXPOOL" in _kinds(build_graph(_tflite("conv_pool_same")))


def test_no_fusion_with_a_left_shift():
    """Requantization with a left shift can wrap, so it is not monotonic: no fusion."""
    g = Lowering(tflite.load(_tflite("mnist_cnn"))).run()
    conv = next(op for op in g.ops if op.kind == "CONV_2D")
    h = copy.deepcopy(g)
    shift = h.tensors[conv.inputs[4]]
    shift.data = shift.data.copy()
    shift.data[3] = 1
    fuse_conv_maxpool(h)
    assert "CONV_2D_MAXPOOL" not in _kinds(h)
    fuse_conv_maxpool(g)
    assert "CONV_2D_MAXPOOL" in _kinds(g)


def _variants(name: str):
    """The packed graph with scratch (fast kernel) and without (direct loops)."""
    g = build_graph(_tflite(name), name=name)
    return {"with scratch": blob.write(g), "without scratch": blob.write(_without_scratch(g))}


def _check(target, name: str):
    tfl = _tflite(name)
    for kernel, data in _variants(name).items():
        x = sample_inputs(data, 12, seed(name))
        want = tflm_run(tfl, x)
        target.link.load(data)
        got = np.stack([np.frombuffer(target.link.run(s.tobytes())[0], want.dtype) for s in x]).reshape(want.shape)
        bad = np.flatnonzero(got != want)
        assert bad.size == 0, f"{name} ({kernel}): {bad.size} of {want.size} values differ"
        assert (got != got[:1]).any(), f"{name}: the output does not depend on the input"


@pytest.mark.parametrize("name", FUSED)
def test_fused_bit_exact_unix(unix, name):
    _check(unix, name)


@pytest.mark.parametrize("board", ["qemu-m4", "qemu-m3"])
def test_fused_bit_exact_on_board(board):
    """The DSP (M4) and portable (M3) variants of the fused kernel."""
    from micronn.firmware import firmware_file
    from micronn.targets import open_target

    if not firmware_file(board).exists():
        pytest.skip(f"{board} firmware not built: run `make firmware-all`")
    with open_target(board) as t:
        for name in FUSED:
            _check(t, name)


def _fused_graph():
    g = build_graph(_tflite("conv_pool_same"))
    return g, next(op for op in g.ops if op.kind == "CONV_2D_MAXPOOL")


@pytest.mark.parametrize("change, message", [
    (lambda g, op: op.params.update(pool_h=0), "pool height"),
    (lambda g, op: op.params.update(pool_w=op.params["out_w"] + 1), "pool width"),
    (lambda g, op: op.params.update(groups=2), "groups"),
    (lambda g, op: _set_const(g, op.inputs[4], 0, 2), "pooled shift"),
    (lambda g, op: _set_const(g, op.inputs[3], 1, -5), "pooled multiplier"),
])
def test_loader_refuses(unix, change, message):
    g, op = _fused_graph()
    change(g, op)
    assert message in _load_error(unix, blob.write(g))


def _set_const(g, i: int, k: int, value: int) -> None:
    t = g.tensors[i]
    t.data = t.data.copy()
    t.data.reshape(-1)[k] = value
