"""Issue 18's operator zoo (tests/opzoo/): every model converted by TensorFlow,
packed, and run bit-exact against TFLite Micro on the unix port (one test per
model) and on qemu-m3 and qemu-m4 (one boot per board, every model from ROMFS)."""

from __future__ import annotations

import numpy as np
import pytest

from micronn import pack, romfs
from micronn import tflite as tfl_reader
from micronn.firmware import firmware_file
from micronn.reference import tflm_run
from micronn.run import sample_inputs
from micronn.targets import QemuTarget

from . import opzoo
from .conftest import SUMMARY

SAMPLES = 8
NAMES = sorted(opzoo.cases())


def _converted(name: str) -> tuple[bytes, bytes]:
    """(tflite, blob) of a zoo model; fails naming the ops when packing fails."""
    tfl = opzoo.tflite(name)
    ops = [op.opcode for op in tfl_reader.load(tfl).operators]
    for want in opzoo.cases()[name].ops.split():
        assert want in ops, f"{want} not in the converted model: {ops}"
    try:
        return tfl, pack(tfl, name=name)
    except Exception as e:  # any packer failure is the finding: name the ops
        pytest.fail(f"pack failed: {type(e).__name__}: {e}\nops: {ops}")


def _inputs(name: str, blob: bytes) -> np.ndarray:
    if opzoo.cases()[name].float_io:
        return opzoo.data(name, SAMPLES, salt=1)[0]
    return sample_inputs(blob, SAMPLES, opzoo.seed(name))


def _compare(name: str, got: np.ndarray, want: np.ndarray) -> str:
    got = got.reshape(want.shape)
    if not np.array_equal(got, want):
        return f"DIFF {np.count_nonzero(got != want)} of {want.size}"
    if not (got != got[:1]).any():
        return "CONSTANT (the output does not depend on the input)"
    return "exact"


def _run(link, x: np.ndarray, dtype) -> np.ndarray:
    return np.stack([np.frombuffer(link.run(np.ascontiguousarray(s).tobytes())[0], dtype) for s in x])


def test_zoo_size():
    assert len(NAMES) >= 0
    SUMMARY.append(f"operator zoo (issue 18): {len(NAMES)} models")


@pytest.mark.parametrize("name", NAMES)
def test_op_zoo_unix(unix, name):
    tfl, blob = _converted(name)
    x = _inputs(name, blob)
    want = tflm_run(tfl, x)
    unix.link.load(blob)
    assert _compare(name, _run(unix.link, x, want.dtype), want) == "exact"


@pytest.mark.parametrize("board", ["qemu-m3", "qemu-m4"])
def test_op_zoo_qemu(board):
    if not NAMES:
        pytest.skip("the operator zoo is empty")
    if not firmware_file(board).exists():
        pytest.skip(f"{board} firmware not built: run `make firmware-all`")
    models = {n: _converted(n) for n in NAMES}
    row = {}
    files = {f"{n}.mnb": b for n, (_, b) in models.items()}
    with QemuTarget(board, romfs=romfs.build(files)) as t:
        t.setup()
        t.serve()
        for name, (tfl, blob) in models.items():
            t.link.open(f"/rom/{name}.mnb")
            x = _inputs(name, blob)
            want = tflm_run(tfl, x)
            row[name] = _compare(name, _run(t.link, x, want.dtype), want)
    bad = {n: v for n, v in row.items() if v != "exact"}
    SUMMARY.append(f"operator zoo on {board}: {len(row) - len(bad)} of {len(row)} models bit-exact")
    assert not bad, f"{board}: {bad}"
