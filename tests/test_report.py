"""``micronn report`` and the calibration methods (issue 13, items 1 and 2).

The report's per-layer SQNR is checked against one computed here, independently:
float values from the Keras model itself, int8 values from TFLite's reference
kernels (which equal TFLite Micro on convolutions) and from TFLite Micro on the
model's output. A model fed by calibration data with a few large outliers shows
percentile clipping beating min/max on most layers, and the percentile model,
packed by the CLI, runs bit-exact with TFLite Micro on qemu-m4."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from .conftest import need_firmware

MICRONN = Path(sys.executable).with_name("micronn")
ENV = {**os.environ, "PYTHONWARNINGS": "ignore"}


def _model(seed: int):
    """8x8x1 -> conv 4@3x3 relu -> conv 4@3x3 relu -> dense 5: small, several layers."""
    import keras

    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Conv2D(4, 3, activation="relu"),
        keras.layers.Conv2D(4, 3, activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dense(5),
    ])


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """(folder, Keras model, calibration samples with outliers, clean test samples); the
    model saved as m.keras and the data as calib.npy and test.npz in the folder."""
    pytest.importorskip("tensorflow")
    d = tmp_path_factory.mktemp("report")
    rng = np.random.default_rng(0)
    m = _model(1)
    calib = rng.normal(size=(200, 8, 8, 1)).astype(np.float32)
    # a long tail: a few calibration samples with one huge pixel, which minmax stretches every range for
    calib[:3, 4, 4, 0] = [80.0, -70.0, 90.0]
    test = rng.normal(size=(100, 8, 8, 1)).astype(np.float32)
    m.save(d / "m.keras")
    np.save(d / "calib.npy", calib)
    np.savez(d / "test.npz", x=test, y=rng.integers(0, 5, 100))
    return d, m, calib, test


def _sqnr(f, deq) -> float:
    f, deq = np.asarray(f, np.float64).ravel(), np.asarray(deq, np.float64).ravel()
    return float(10 * np.log10(np.sum(f ** 2) / np.sum((f - deq) ** 2)))


def _builtin_ref_tensors(tfl: bytes, x: np.ndarray) -> tuple[dict, dict]:
    """({tensor name: int8 values stacked over samples}, {name: (scale, zero point)}) by
    TFLite's reference kernels with every tensor kept."""
    import tensorflow as tf

    it = tf.lite.Interpreter(model_content=tfl, experimental_preserve_all_tensors=True,
                             experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    ind = it.get_input_details()[0]
    s, zp = ind["quantization"]
    details = [t for t in it.get_tensor_details() if t["dtype"] == np.int8 and t["quantization"][0] > 0]
    values = {t["name"]: [] for t in details}
    for sample in x:
        q = np.clip(np.round(sample / s) + zp, -128, 127).astype(np.int8)
        it.set_tensor(ind["index"], q[None])
        it.invoke()
        for t in details:
            values[t["name"]].append(it.get_tensor(t["index"]).copy())
    return {k: np.stack(v) for k, v in values.items()}, {t["name"]: t["quantization"] for t in details}


def test_sqnr_matches_an_independent_computation(setup):
    import keras

    from micronn.convert import keras_to_tflite
    from micronn.reference import tflm_run
    from micronn.report import report

    d, m, calib, test = setup
    tfl = keras_to_tflite(m, calib)
    r = report(m, calib, data=test, int8=tfl)
    rows = {x["op"]: x for x in r["layers"] if x["op"] != "RESHAPE"}
    convs = [x for x in r["layers"] if x["op"] == "CONV_2D"]
    assert len(convs) == 2 and "input" in rows and "FULLY_CONNECTED" in rows

    q, qp = _builtin_ref_tensors(tfl, test)
    for k, row in enumerate(convs):       # the float side: the Keras model's own layer output
        f = keras.Model(m.inputs, m.layers[k].output)(test).numpy()
        s, zp = qp[row["name"]]
        deq = ((q[row["name"]].astype(np.float64) - zp) * s).reshape(f.shape)
        assert row["sqnr_db"] == pytest.approx(_sqnr(f, deq), abs=0.01)
        assert row["scale"] == pytest.approx(s) and row["zero_point"] == zp
        assert row["codes_used"] == len(np.unique(q[row["name"]]))
        assert row["max_abs_error_steps"] == pytest.approx(np.max(np.abs(f - deq)) / s, abs=1e-3)

    out = rows["FULLY_CONNECTED"]         # the output, by TFLite Micro itself
    s, zp = qp[out["name"]]
    xi = np.clip(np.round(test / qp[rows["input"]["name"]][0]) + qp[rows["input"]["name"]][1], -128, 127)
    y = tflm_run(tfl, xi.astype(np.int8))
    assert out["sqnr_db"] == pytest.approx(_sqnr(m(test).numpy(), (y.astype(np.float64) - zp) * s), abs=0.01)

    lowest = min(r["layers"], key=lambda x: x["sqnr_db"])
    assert r["worst"][0] == lowest["name"]
    by = {x["name"]: x["sqnr_db"] for x in r["layers"]}
    assert [by[n] for n in r["worst"]] == sorted(by.values())[:len(r["worst"])]


def test_cli_writes_html_pngs_and_json(setup):
    d, _, _, _ = setup
    p = subprocess.run([str(MICRONN), "report", "m.keras", "--calib", "calib.npy", "--data", "test.npz",
                        "-o", "out/r.html", "--json"], capture_output=True, text=True, cwd=d, env=ENV, timeout=600)
    assert p.returncode == 0 and p.stderr == "", p.stderr     # TensorFlow's log lines stay hidden
    r = json.loads(p.stdout)
    assert r["method"] == "minmax" and r["samples"] == 100 and set(r["accuracy"]) == {"float", "int8"}
    assert r["worst"][0] == min(r["layers"], key=lambda x: x["sqnr_db"])["name"]
    page = (d / "out" / "r.html").read_text()
    pngs = sorted((d / "out" / "r-png").glob("*.png"))
    assert len(pngs) == len(r["layers"])
    assert all(p.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") for p in pngs)
    assert page.count("data:image/png;base64,") == len(r["layers"])
    assert all(x["layer"] in page for x in r["layers"])


def test_percentile_beats_minmax_on_long_tailed_data(setup):
    from micronn import pack, tflite
    from micronn.convert import keras_to_tflite
    from micronn.report import compare

    d, m, calib, test = setup
    rs = compare(m, calib, ["minmax", "percentile:99.9", "mse"], data=test)
    mm, pc, mse = (rs[k]["layers"] for k in ("minmax", "percentile:99.9", "mse"))
    assert [x["name"] for x in mm] == [x["name"] for x in pc] == [x["name"] for x in mse]
    better = sum(b["sqnr_db"] > a["sqnr_db"] for a, b in zip(mm, pc, strict=True))
    assert better > len(mm) / 2, [(a["sqnr_db"], b["sqnr_db"]) for a, b in zip(mm, pc, strict=True)]
    # percentile narrows ranges: every layer's scale at most minmax's, the input's much smaller
    assert all(b["scale"] <= a["scale"] * 1.0001 for a, b in zip(mm, pc, strict=True))
    assert pc[0]["scale"] < mm[0]["scale"] / 4
    # mse: a standard fully-int8 model micronn packs; no layer worse than minmax by more than rounding
    tfl = keras_to_tflite(m, calib, calib_method="mse")
    model = tflite.load(tfl)
    assert model.tensors[model.inputs[0]].dtype == "int8" and model.tensors[model.outputs[0]].dtype == "int8"
    assert pack(tfl)
    assert all(np.isfinite(x["sqnr_db"]) and x["scale"] <= a["scale"] * 1.0001 for a, x in zip(mm, mse, strict=True))


def test_percentile_model_is_bit_exact_on_qemu(setup):
    need_firmware("qemu-m4")
    d, _, _, _ = setup
    p = subprocess.run([str(MICRONN), "pack", "m.keras", "--calib", "calib.npy", "--calib-method", "percentile:99.9",
                        "--keep-tflite", "p.tflite", "-o", "p.mnb", "--report", "p.html"], capture_output=True,
                       text=True, cwd=d, env=ENV, timeout=600)
    assert p.returncode == 0 and p.stderr == "", p.stderr
    assert "percentile:99.9 calibration" in p.stdout and "costing the most" in p.stdout
    assert (d / "p.html").read_text().count("data:image/png;base64,") == len(list((d / "p-png").glob("*.png"))) > 0
    np.save(d / "x.npy", np.load(d / "calib.npy")[:20])
    p = subprocess.run([str(MICRONN), "verify", "p.mnb", "--reference", "p.tflite", "--target", "qemu-m4",
                        "--input", "x.npy"], capture_output=True, text=True, cwd=d, env=ENV, timeout=600)
    assert p.returncode == 0 and "bit-exact: 20 samples" in p.stdout, p.stdout + p.stderr


@pytest.mark.parametrize("method, text", [
    ("percentile:101", "the percentile must be a number above 50 and at most 100"),
    ("percentile:x", "the percentile must be a number"),
    ("foo", "unknown calibration method 'foo'"),
])
def test_bad_method_is_one_line(setup, method, text):
    d, _, _, _ = setup
    for cmd in (["report", "m.keras", "--calib", "calib.npy"], ["pack", "m.keras", "--calib", "calib.npy"]):
        p = subprocess.run([str(MICRONN), *cmd, "--calib-method", method], capture_output=True, text=True, cwd=d,
                           env=ENV, timeout=600)
        assert p.returncode == 1 and p.stderr.startswith("micronn: error: ") and p.stderr.count("\n") == 1, p.stderr
        assert text in p.stderr


def test_choose_range():
    from micronn.calibrate import choose_range, int8_error

    rng = np.random.default_rng(3)
    v = np.concatenate([rng.normal(size=50_000), [400.0, -300.0]]).astype(np.float32)
    assert choose_range(v, "minmax") == (pytest.approx(-300.0), pytest.approx(400.0))
    lo, hi = choose_range(v, "percentile:99")
    assert lo == pytest.approx(np.percentile(v, 1)) and hi == pytest.approx(np.percentile(v, 99))
    lo, hi = choose_range(v, "mse")
    assert int8_error(v, lo, hi) < int8_error(v, -300.0, 400.0)
    assert choose_range(np.abs(v), "percentile:99.9")[0] == 0.0      # zero always inside the range


def test_float_tflite_reports_like_its_keras_model(setup):
    import tensorflow as tf

    from micronn.convert import _quiet
    from micronn.report import report

    _, m, calib, test = setup
    with _quiet():
        float_tflite = tf.lite.TFLiteConverter.from_keras_model(m).convert()
    a = report(m, calib, data=test, method="percentile:99.9")
    b = report(float_tflite, calib, data=test, method="percentile:99.9")
    assert [x["op"] for x in a["layers"]] == [x["op"] for x in b["layers"]]
    for x, y in zip(a["layers"], b["layers"], strict=True):
        assert y["sqnr_db"] == pytest.approx(x["sqnr_db"], abs=0.5)
