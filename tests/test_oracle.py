"""The oracle where TensorFlow Lite Micro cannot be one (micronn.reference).

Dilated convolutions converted with the batch left open (SPACE_TO_BATCH_ND ->
conv -> BATCH_TO_SPACE_ND) make TFLite Micro read memory it never wrote: its
outputs change with its arena. There desktop TFLite's reference kernels
(BUILTIN_REF) are the oracle, and ``verify`` falls back to them and says so.
BUILTIN_REF is trusted for a reason: it equals TFLite Micro on well-formed zoo
models (fully connected layers excepted, where it rounds differently).
"""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
keras = pytest.importorskip("keras")

from micronn import pack, romfs, tflite  # noqa: E402
from micronn.convert import keras_to_tflite  # noqa: E402
from micronn.firmware import firmware_file  # noqa: E402
from micronn.reference import BUILTIN_REF, TFLM, builtin_ref_run, reference_run, tflm_doubt, tflm_run  # noqa: E402
from micronn.run import sample_inputs, trace, verify  # noqa: E402

from .test_cli import cli  # noqa: E402
from .zoo import DILATED, seed  # noqa: E402
from .zoo import build as build_model  # noqa: E402

SAMPLES = 8
OPEN = [n for n in DILATED if n.startswith("dil_open")]
FIXED = [n for n in DILATED if n.startswith("dil_fixed")]
CONVS = ("CONV_2D", "DEPTHWISE_CONV_2D")


def _convert(name: str) -> bytes:
    rng = np.random.default_rng(seed(name))
    calib = (rng.normal(size=(64, *DILATED[name][1])) * rng.uniform(0.5, 3)).astype(np.float32)
    return keras_to_tflite(build_model(name), calib)


@pytest.fixture(scope="module")
def dilated():
    """name -> (tflite, blob) of every DILATED model."""
    out = {}
    for name in DILATED:
        tfl = _convert(name)
        out[name] = (tfl, pack(tfl, name=name))
    return out


def _dilation(op):
    return op.options.get("dilation_h_factor", 1), op.options.get("dilation_w_factor", 1)


def test_converted_forms(dilated):
    """Open batch: SPACE_TO_BATCH_ND -> conv (dilation 1) -> BATCH_TO_SPACE_ND; fixed
    batch: the convolution itself dilated. Both dilation 2 and 3, conv and depthwise."""
    blocks = set()
    for name, (tfl, _) in dilated.items():
        m = tflite.load(tfl)
        ops = [op.opcode for op in m.operators]
        convs = [op for op in m.operators if op.opcode in CONVS]
        if name in OPEN:
            assert ops.count("SPACE_TO_BATCH_ND") == ops.count("BATCH_TO_SPACE_ND") == len(convs) >= 1, ops
            assert all(_dilation(op) == (1, 1) for op in convs)
            blocks |= {tuple(m.tensors[op.inputs[1]].array().tolist()) for op in m.operators
                       if op.opcode == "SPACE_TO_BATCH_ND"}
        else:
            assert "SPACE_TO_BATCH_ND" not in ops and all(max(_dilation(op)) == 3 for op in convs), ops
    assert {(2, 2), (3, 3), (2, 3)} <= blocks
    kinds = {op.opcode for n in OPEN for op in tflite.load(dilated[n][0]).operators}
    assert set(CONVS) <= kinds


@pytest.mark.parametrize("name", OPEN)
def test_tflm_is_not_the_oracle_on_open_batch_dilation(dilated, name):
    """The reason for the fallback, shown: the static shapes TFLite Micro allocates
    from are wrong, and its bytes differ from the reference kernels', which repeat."""
    tfl, blob = dilated[name]
    x = sample_inputs(blob, SAMPLES, seed(name))
    tflm = tflm_run(tfl, x)
    doubt = tflm_doubt(tfl, x, tflm)
    assert doubt.startswith("the model's static shapes, which TFLite Micro allocates from, are wrong"), doubt
    ref = builtin_ref_run(tfl, x)
    assert np.array_equal(ref, builtin_ref_run(tfl, x))
    assert not np.array_equal(ref, tflm.reshape(ref.shape))


@pytest.mark.parametrize("name", ["dil_open_d2_same", "dil_open_d3_valid"])
def test_tflm_changes_with_its_arena(dilated, name):
    """On these TFLite Micro reads memory it never wrote: another arena, other bytes."""
    tfl, blob = dilated[name]
    x = sample_inputs(blob, SAMPLES, seed(name))
    first, second = tflm_run(tfl, x), tflm_run(tfl, x, arena_size=40 * len(tfl) + 4096)
    assert not np.array_equal(first, second)
    assert "TFLite Micro is not deterministic on this model" in tflm_doubt(tfl, x, first)


@pytest.mark.parametrize("name", list(DILATED))
def test_dilated_bit_exact_on_unix(unix, dilated, name):
    tfl, blob = dilated[name]
    x = sample_inputs(blob, SAMPLES, seed(name))
    ref = reference_run(tfl, x)
    if name in OPEN:
        assert ref.oracle == BUILTIN_REF and "static shapes" in ref.note
    else:
        assert (ref.oracle, ref.note) == (TFLM, None)
        assert np.array_equal(ref.y, builtin_ref_run(tfl, x).reshape(ref.y.shape))
    unix.link.load(blob)
    got = np.stack([np.frombuffer(unix.link.run(s.tobytes())[0], np.int8) for s in x]).reshape(ref.y.shape)
    diff = got != ref.y
    assert not diff.any(), f"{diff.sum()} of {diff.size} values differ from {ref.oracle}"
    assert (got != got[:1]).any(), "the output does not depend on the input"


def test_open_batch_dilation_on_qemu_m4(dilated):
    """The same blobs from ROMFS on an emulated Cortex-M4 (the DSP kernels)."""
    from micronn.targets import QemuTarget

    if not firmware_file("qemu-m4").exists():
        pytest.skip("qemu-m4 firmware not built: run `make firmware-all`")
    image = romfs.build({f"{n}.mnb": dilated[n][1] for n in OPEN})
    with QemuTarget("qemu-m4", romfs=image) as t:
        t.setup()
        t.serve()
        for name in OPEN:
            tfl, blob = dilated[name]
            t.link.open(f"/rom/{name}.mnb")
            x = sample_inputs(blob, 4, seed(name))
            want = builtin_ref_run(tfl, x)
            got = np.stack([np.frombuffer(t.link.run(s.tobytes())[0], np.int8) for s in x]).reshape(want.shape)
            assert np.array_equal(got, want), f"{name}: {np.count_nonzero(got != want)} values differ"


# Zoo models without fully connected layers, over the operators the oracle would stand in for.
AGREE = ["conv_3x3_same_relu6", "conv_5x5_same_s2", "conv_dilation_2x3_valid", "conv_groups", "dw_mult1_same",
         "dw_mult2_valid_s2", "dw_dilation_no_bias", "conv_pool_same", "avgpool_3x3_s2", "pool_large_same",
         "gap_keepdims", "mean_1d", "mean_same_quant", "residual_add", "add_broadcast", "multiply", "gates",
         "fire_modules", "concat_hw", "zero_padding", "conv1d_dilated_causal", "leaky_relu", "hard_silu"]


@pytest.mark.parametrize("name", AGREE)
def test_builtin_ref_equals_tflm(name):
    from .test_zoo import convert_case

    tfl = convert_case(name)
    assert "FULLY_CONNECTED" not in {op.opcode for op in tflite.load(tfl).operators}
    x = sample_inputs(pack(tfl), 16, seed(name))
    want = tflm_run(tfl, x)
    assert tflm_doubt(tfl, x, want) is None
    assert np.array_equal(builtin_ref_run(tfl, x).reshape(want.shape), want)


def test_builtin_ref_rounds_fully_connected_differently():
    """Why fully connected layers are left out above: the reference kernels
    requantize them with one rounding, TFLite Micro (and micronn) with two; a few
    values come out a step or a few apart."""
    from .test_zoo import convert_case

    diffs = []
    for name in ("flatten_dense", "head_relu6"):
        tfl = convert_case(name)
        x = sample_inputs(pack(tfl), 64, seed(name))
        want = tflm_run(tfl, x)
        diffs.append(builtin_ref_run(tfl, x).reshape(want.shape).astype(int) - want)
    d = np.concatenate([v.ravel() for v in diffs])
    assert 0 < np.count_nonzero(d) < d.size / 50 and np.abs(d).max() <= 3


def test_verify_falls_back_and_says_so(dilated, tmp_path):
    name = "dil_open_stack_pool_gap"
    tfl, blob = dilated[name]
    r = verify(blob, tfl, "unix", samples=6)
    assert r["bit_exact"] and r["oracle"] == BUILTIN_REF
    assert r["oracle_note"].startswith("the model's static shapes, which TFLite Micro allocates from, are wrong")
    assert r["oracle_note"].endswith("compared with TFLite's reference kernels (BUILTIN_REF) instead")
    # TFLite Micro's own bytes, forced, are not the model's: verify would call them a mismatch
    forced = verify(blob, tfl, "unix", samples=6, oracle=TFLM)
    assert not forced["bit_exact"] and forced["oracle"] == TFLM and forced["oracle_note"] is None
    # every op's output equals the reference kernels' tensor
    x = sample_inputs(blob, 1, seed(name))
    rows = trace(tfl, x[0], "unix", oracle=BUILTIN_REF)
    assert rows and all(row["equal"] for row in rows), rows

    (tmp_path / "m.tflite").write_bytes(tfl)
    (tmp_path / "m.mnb").write_bytes(blob)
    rc, so, se = cli("verify", tmp_path / "m.mnb", "--reference", tmp_path / "m.tflite", "--samples", 4)
    assert rc == 0, so + se
    assert "note: the model's static shapes, which TFLite Micro allocates from, are wrong" in so
    assert "equal to TFLite's reference kernels (BUILTIN_REF) on unix" in so


def test_verify_keeps_tflm_where_it_is_deterministic(dilated):
    tfl, blob = dilated["dil_fixed_d3_same"]
    r = verify(blob, tfl, "unix", samples=4)
    assert r["bit_exact"] and (r["oracle"], r["oracle_note"]) == (TFLM, None)
