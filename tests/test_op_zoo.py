"""Issue 18's operator zoo (tests/opzoo/): every model converted by TensorFlow,
packed, and run bit-exact against TFLite Micro on the unix port (one test per
model) and on qemu-m3 and qemu-m4 (one boot per board, every model from ROMFS).
Models TFLite Micro cannot run at all (Keras' UpSampling2D needs TILE, which it
lacks) are compared with desktop TFLite's reference kernels instead, after a check
that TFLite Micro still cannot run them."""

from __future__ import annotations

import numpy as np
import pytest

from micronn import pack, romfs
from micronn import tflite as tfl_reader
from micronn.firmware import firmware_file
from micronn.reference import builtin_ref_run, tflm_run
from micronn.run import pack_sample, sample_inputs, split_result
from micronn.targets import QemuTarget

from . import opzoo
from .conftest import SUMMARY

SAMPLES = 8
NAMES = sorted(opzoo.cases())
# a model with state runs its samples as one sequence, reset before this one (TFLite
# Micro's Reset(); Model.reset() on the board)
RESET_AT = SAMPLES // 2


def _resets(name: str) -> tuple[int, ...]:
    return (RESET_AT,) if opzoo.cases()[name].stateful else ()


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


def _inputs(name: str, blob: bytes):
    """Test samples: one array, or for a model with several inputs a list in the blob's order."""
    if opzoo.cases()[name].float_io:
        xs = opzoo.data(name, SAMPLES, salt=1)
        xs = [xs[k] for k in opzoo.tflite_order(name)]
        return xs[0] if len(xs) == 1 else xs
    return sample_inputs(blob, SAMPLES, opzoo.seed(name))


def _reference(name: str, tfl: bytes, x):
    """TFLite Micro's outputs, or for a case that says so (TFLite Micro lacks one of its
    operators) the reference kernels' of desktop TFLite, after checking that TFLite
    Micro really cannot run it."""
    if opzoo.cases()[name].oracle == "tflm":
        return tflm_run(tfl, x, reset_at=_resets(name))
    try:
        tflm_run(tfl, x)
    except RuntimeError:
        return builtin_ref_run(tfl, x)
    raise AssertionError(f"{name}: TFLite Micro runs it now: make it the oracle (Case.oracle)")


def _compare(name: str, got, want) -> str:
    """got, want: one array, or a list of them (several outputs: each must be exact and
    depend on the input)."""
    if isinstance(want, list):
        rows = [_compare(name, g, w) for g, w in zip(got, want, strict=True)]
        bad = [f"output {k}: {r}" for k, r in enumerate(rows) if r != "exact"]
        return "; ".join(bad) or "exact"
    got = got.reshape(want.shape)
    if not np.array_equal(got, want):
        return f"DIFF {np.count_nonzero(got != want)} of {want.size}"
    if not (got != got[:1]).any():
        return "CONSTANT (the output does not depend on the input)"
    return "exact"


def _run(link, x, want, resets=()):
    """Every sample through the board: outputs shaped like want (an array or a list);
    the model's state reset before the samples in resets."""
    wants = want if isinstance(want, list) else [want]
    xs = x if isinstance(x, list) else [x]
    outs = [{"shape": (1, *w.shape[1:]), "dtype": w.dtype.name} for w in wants]
    ys: list[list] = [[] for _ in wants]
    for i in range(len(xs[0])):
        if i in resets:
            link.reset()
        y, _ = link.run(pack_sample(xs, i))
        for k, a in enumerate(split_result(y, outs)):
            ys[k].append(a)
    got = [np.stack(yk) for yk in ys]
    return got if isinstance(want, list) else got[0]


def test_zoo_size():
    assert len(NAMES) >= 30
    SUMMARY.append(f"operator zoo (issue 18): {len(NAMES)} models")


@pytest.mark.parametrize("name", NAMES)
def test_op_zoo_unix(unix, name):
    tfl, blob = _converted(name)
    x = _inputs(name, blob)
    want = _reference(name, tfl, x)
    unix.link.load(blob)
    assert _compare(name, _run(unix.link, x, want, _resets(name)), want) == "exact"
    if opzoo.cases()[name].stateful:
        _check_stateful(tfl, x)


def _check_stateful(tfl: bytes, x) -> None:
    """The state matters: one input given three times in a row gives different outputs,
    and two resets (the state zeroed, not set to its initial value again) give the same."""
    xs = x if isinstance(x, list) else [x]
    same = [np.repeat(xk[:1], 5, axis=0) for xk in xs]
    ys = tflm_run(tfl, same if isinstance(x, list) else same[0], reset_at=(1, 4))
    ys = ys if isinstance(ys, list) else [ys]
    assert any(not np.array_equal(y[1], y[2]) or not np.array_equal(y[2], y[3]) for y in ys), \
        "the outputs do not depend on the state"
    assert all(np.array_equal(y[1], y[4]) for y in ys), "two resets do not give the same output"


@pytest.mark.parametrize("board", ["qemu-m3", "qemu-m4"])
def test_op_zoo_qemu(board):
    if not NAMES:
        pytest.skip("the operator zoo is empty")
    if not firmware_file(board).exists():
        pytest.skip(f"{board} firmware not built: run `make firmware-all`")
    # one model's failure (its conversion, TFLite Micro, the board) is that model's row:
    # the other models still run, so each group can judge its own
    models, row = {}, {}
    for n in NAMES:
        try:
            models[n] = _converted(n)
        except (Exception, pytest.fail.Exception) as e:
            row[n] = f"ERROR {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    files = {f"{n}.mnb": b for n, (_, b) in models.items()}
    with QemuTarget(board, romfs=romfs.build(files)) as t:
        t.setup()
        t.serve()
        for name, (tfl, blob) in models.items():
            try:
                x = _inputs(name, blob)
                want = _reference(name, tfl, x)
                t.link.open(f"/rom/{name}.mnb")
                row[name] = _compare(name, _run(t.link, x, want, _resets(name)), want)
            except Exception as e:  # noqa: BLE001 - reported per model below
                row[name] = f"ERROR {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    bad = {n: v for n, v in row.items() if v != "exact"}
    SUMMARY.append(f"operator zoo on {board}: {len(row) - len(bad)} of {len(row)} models bit-exact")
    assert not bad, f"{board}: {bad}"
