"""`micronn eval` explains its accuracy: a small digits CNN (scikit-learn's 8x8
digits, Keras Conv2D + MaxPool + Dense, trained for one epoch here), converted to
int8 and packed with micronn, streamed through a QEMU board by the real command
with its output in pipes. Everything it reports is checked against figures the
test works out itself: TFLite Micro's outputs on the same samples, the Keras
model's float predictions, a confusion matrix counted here."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from micronn import blob as blobmod
from micronn import pack
from micronn.packer import build_graph
from micronn.reference import tflm_run
from micronn.run import evaluate, run

from .conftest import missing, need_firmware

BOARD = "qemu-m4"
SAMPLES = 160
WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def eval_cli(*args, every: str | None = None):
    """`micronn eval ...` with stdout and stderr as pipes (not a terminal)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("MICRONN_PROGRESS_EVERY", None)
    if every is not None:
        env["MICRONN_PROGRESS_EVERY"] = every
    p = subprocess.run([sys.executable, "-m", "micronn.cli", "eval", *map(str, args)], capture_output=True,
                       text=True, env=env, timeout=300)
    return p.returncode, p.stdout, p.stderr


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """The model (.keras, int8 .tflite, blob with the digits' names as labels), the test set
    (.npz of float images and labels), and TFLite Micro's outputs for it, worked out here."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        missing("scikit-learn is not installed (pip install scikit-learn)")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    from micronn.convert import keras_to_tflite

    d = tmp_path_factory.mktemp("digits")
    data = load_digits()
    x = (data.images / 16.0).astype(np.float32)[..., None]          # (1797, 8, 8, 1) in [0, 1]
    y = data.target.astype(np.int64)
    keras.utils.set_random_seed(13)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(8, 3, activation="relu"),
                              keras.layers.MaxPooling2D(2), keras.layers.Flatten(), keras.layers.Dense(10)])
    model.compile(optimizer=keras.optimizers.Adam(0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x[:1000], y[:1000], epochs=1, batch_size=32, verbose=0)     # about 70%: mistakes to count
    model.save(d / "digits.keras")
    tfl = keras_to_tflite(model, x[:200])
    (d / "digits.tflite").write_bytes(tfl)
    (d / "digits.mnb").write_bytes(pack(tfl, name="digits", labels=WORDS))
    xt, yt = x[1000:1000 + SAMPLES], y[1000:1000 + SAMPLES]
    np.savez(d / "test.npz", x=xt, y=yt)

    # The test's own int8 input: TFLite's rounding (half away from zero) with the scale
    # and zero point desktop TFLite reads from the model.
    it = tf.lite.Interpreter(model_content=tfl)
    scale, zero = it.get_input_details()[0]["quantization"]
    r = xt / np.float32(scale)
    xq = np.clip(np.trunc(r + np.copysign(np.float32(0.5), r)) + zero, -128, 127).astype(np.int8)
    tflm = tflm_run(tfl, xq).reshape(SAMPLES, -1)
    floats = np.asarray(model.predict(xt, batch_size=256, verbose=0)).argmax(axis=1)
    return {"dir": d, "blob": d / "digits.mnb", "tflite": d / "digits.tflite", "keras": d / "digits.keras",
            "npz": d / "test.npz", "y": yt, "xq": xq, "tflm": tflm, "tflm_pred": tflm.argmax(axis=1),
            "float_pred": floats}


def counted_confusion(labels, predictions) -> list[list[int]]:
    m = [[0] * 10 for _ in range(10)]
    for t, p in zip(labels, predictions, strict=True):
        m[int(t)][int(p)] += 1
    return m


def text_confusion(out: str) -> list[list[int]]:
    """The confusion matrix printed by `micronn eval`: the rows after its header and column line."""
    lines = out.splitlines()
    start = next(i for i, s in enumerate(lines) if s.startswith("confusion matrix (rows: true class"))
    rows = lines[start + 2:start + 12]
    assert [r.split()[0] for r in rows] == WORDS, rows
    return [[int(v) for v in r.split()[1:]] for r in rows]


def test_eval_json_matches_tflite_micro_and_the_float_model(digits):
    """Board accuracy equals TFLite Micro's worked out here; predictions, per-class counts and
    the confusion matrix are those of TFLite Micro's outputs; no sample disagrees; the float
    model's figures are Keras's; through a pipe, a progress line per sample with its rate."""
    need_firmware(BOARD)
    rc, so, se = eval_cli(digits["blob"], "--data", digits["npz"], "--reference", digits["tflite"],
                          "--reference", digits["keras"], "--target", BOARD, "--json", every="0")
    assert rc == 0, se
    r = json.loads(so)
    y, want = digits["y"], digits["tflm_pred"]
    correct = int((want == y).sum())
    assert r["samples"] == SAMPLES
    assert r["predictions"] == want.tolist()
    assert r["correct"] == correct and r["accuracy"] == correct / SAMPLES
    assert r["reference"]["oracle"] == "tflm" and r["reference"]["oracle_note"] is None
    assert r["reference"]["correct"] == correct and r["reference"]["predictions"] == want.tolist()
    assert r["disagreements"] == {"outputs": [], "predictions": []}
    assert r["warning"] is None

    m = counted_confusion(y, want)
    assert r["confusion"] == m
    assert sum(map(sum, r["confusion"])) == SAMPLES
    assert sum(r["confusion"][i][i] for i in range(10)) == r["correct"]
    assert sum(m[i][j] for i in range(10) for j in range(10) if i != j) > 0      # the matrix has mistakes to show
    assert r["classes"] == WORDS
    assert [c["label"] for c in r["per_class"]] == WORDS
    assert [c["samples"] for c in r["per_class"]] == np.bincount(y, minlength=10).tolist()
    assert sum(c["samples"] for c in r["per_class"]) == SAMPLES
    assert [c["correct"] for c in r["per_class"]] == [m[i][i] for i in range(10)]
    assert [c["predicted"] for c in r["per_class"]] == np.bincount(want, minlength=10).tolist()

    floats = digits["float_pred"]
    assert r["float_model"]["predictions"] == floats.tolist()
    assert r["float_model"]["correct"] == int((floats == y).sum())

    # MICRONN_PROGRESS_EVERY=0: a line after every sample, each with the rate once it can be measured.
    lines = [s for s in se.splitlines() if s.startswith(f"running on {BOARD}: ")]
    assert len(lines) == SAMPLES, se[-2000:]
    for k, s in enumerate(lines[1:-1], start=2):
        assert re.fullmatch(rf"running on {BOARD}: {k}/{SAMPLES} \(\d+%\), [\d.]+ samples/s, ETA \d+:\d\d", s), s
    assert re.fullmatch(rf"running on {BOARD}: {SAMPLES}/{SAMPLES} \(100%\), [\d.]+ samples/s, done in \d+:\d\d",
                        lines[-1]), lines[-1]
    assert not any(s in so for s in ("samples/s", "ETA"))        # progress goes to stderr, results to stdout


def test_eval_text_and_plot(digits, tmp_path):
    """The text: both accuracies, bit-exact, per-class lines and a confusion matrix whose rows
    add up to the samples; --plot writes a PNG made by matplotlib."""
    need_firmware(BOARD)
    png = tmp_path / "confusion.png"
    rc, so, se = eval_cli(digits["blob"], "--data", digits["npz"], "--reference", digits["tflite"],
                          "--target", BOARD, "--plot", png)
    assert rc == 0, se
    correct = int((digits["tflm_pred"] == digits["y"]).sum())
    assert re.search(rf"^accuracy on {BOARD} +[\d.]+% \({correct}/{SAMPLES}\), median \d+ us", so, re.M), so
    assert re.search(rf"^accuracy in TFLite Micro +[\d.]+% \({correct}/{SAMPLES}\), on the host", so, re.M), so
    assert f"board and TFLite Micro: bit-exact, the same output bytes on all {SAMPLES} samples" in so
    m = text_confusion(so)
    assert m == counted_confusion(digits["y"], digits["tflm_pred"])
    assert sum(map(sum, m)) == SAMPLES
    counts = np.bincount(digits["y"], minlength=10)
    for word, row, n in zip(WORDS, m, counts, strict=True):
        assert sum(row) == n
        assert re.search(rf"^{word} +{n} +{row[WORDS.index(word)]} ", so, re.M), f"no per-class line for {word}"
    assert f"wrote {png}" in so
    data = png.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and b"matplotlib" in data


def test_eval_lists_the_samples_that_disagree(digits):
    """A blob with damaged weights: eval names exactly the samples whose output bytes differ
    from TFLite Micro's and those whose prediction differs, and exits 1. Without --reference it
    says what the host comparison needs and still gives per-class figures and the matrix."""
    need_firmware("unix")
    tfl = digits["tflite"].read_bytes()
    g = build_graph(tfl)
    w = next(t for t in g.tensors if t.is_const and t.dtype == "int8" and t.data.size == 720)   # the Dense layer
    flat = w.data.reshape(-1).copy()
    flat[:36] = 127                     # class zero's weights on half the features: "zero" wins more often
    w.data = flat.reshape(w.data.shape)
    bad = digits["dir"] / "damaged.mnb"
    bad.write_bytes(blobmod.write(g))
    got, _ = run(bad.read_bytes(), digits["xq"], "unix")
    got = got.reshape(SAMPLES, -1)
    outputs = np.flatnonzero((got != digits["tflm"]).any(axis=1)).tolist()
    predictions = np.flatnonzero(got.argmax(axis=1) != digits["tflm_pred"]).tolist()
    assert outputs and 0 < len(predictions) < SAMPLES and set(predictions) <= set(outputs)

    test = np.load(digits["npz"])
    r = evaluate(bad.read_bytes(), test["x"], test["y"], "unix", reference=tfl)       # the library, in-process
    assert r["disagreements"] == {"outputs": outputs, "predictions": predictions}
    assert r["reference"]["predictions"] == digits["tflm_pred"].tolist()
    assert r["predictions"] == got.argmax(axis=1).tolist()

    rc, so, se = eval_cli(bad, "--data", digits["npz"], "--reference", digits["tflite"], "--target", "unix")
    assert rc == 1, se
    shown = ", ".join(map(str, outputs[:20]))
    assert f"MISMATCH: outputs differ from TFLite Micro's on {len(outputs)} samples: {shown}" in so, so

    rc, so, se = eval_cli(digits["blob"], "--data", digits["npz"], "--target", "unix")
    assert rc == 0, se
    assert "needs --reference MODEL.tflite" in so
    assert sum(map(sum, text_confusion(so))) == SAMPLES
    assert "accuracy in TFLite Micro" not in so
