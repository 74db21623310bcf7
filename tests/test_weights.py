"""int4 weights chosen per layer from an ordinary model (issue 14: `--weights int4`, `int4:LAYER,...`,
`auto:DB`): a CNN trained on scikit-learn's 8x8 digits is packed with int4 weights; the blob is at most
60% of the int8 one, the board runs it bit-exact with TFLite Micro (which runs the same .tflite with
INT4 weight tensors), `micronn report` gives the accuracy change, and the layer names are Keras's own
(TensorFlow renames them in its tensor names: dense -> dense_1)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from micronn import blob, tflite
from micronn import weights as wq
from micronn.errors import MicronnError
from micronn.reference import tflm_run
from micronn.report import sqnr_db

from .conftest import need_firmware

SAMPLES = 16


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """(folder, keras model): a digits CNN trained a few epochs (conv 16, dense 64, dense 10), its
    calibration and test samples as files."""
    import keras
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[..., None]
    y = d.target.astype(np.int64)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(x))
    x, y = x[order], y[order]
    keras.utils.set_random_seed(0)
    L = keras.layers
    # the names Keras gives a first model's layers, set here (its counters run on in a test session):
    # TensorFlow's tensor names call them conv2d_1, dense_1 and dense_1_2
    model = keras.Sequential([L.Input((8, 8, 1)), L.Conv2D(16, 3, activation="relu", name="conv2d"), L.Flatten(),
                              L.Dense(64, activation="relu", name="dense"), L.Dense(10, name="dense_1")],
                             name="digits_w4")
    model.compile(optimizer=keras.optimizers.Adam(0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x[:1200], y[:1200], epochs=6, batch_size=32, verbose=0)
    folder = tmp_path_factory.mktemp("weights")
    model.save(folder / "digits.keras")
    np.save(folder / "calib.npy", x[:200])
    np.savez(folder / "test.npz", x=x[1200:1500], y=y[1200:1500])
    return folder, model


def cli(*args, cwd):
    p = subprocess.run([sys.executable, "-m", "micronn.cli", *map(str, args)], capture_output=True, text=True,
                       cwd=cwd, timeout=600)
    return p.returncode, p.stdout + p.stderr


def _kinds(data: bytes) -> list[str]:
    return [o["kind"] for o in blob.read(data)["ops"]]


@pytest.fixture(scope="module")
def packed(digits):
    """{choice: (.tflite, blob)} for int8 and int4 weights, packed by the library from the .keras file."""
    from micronn import pack
    from micronn.packer import load_tflite

    folder, _ = digits
    out = {}
    for choice in ("int8", "int4", "int4:conv2d,dense_1"):
        tfl, _ = load_tflite(folder / "digits.keras", calib=folder / "calib.npy", weights=choice)
        out[choice] = tfl, pack(tfl)
    return out


def test_int4_blob_at_most_60_percent_of_int8(packed):
    b8, b4 = packed["int8"][1], packed["int4"][1]
    assert _kinds(b8) == ["CONV_2D", "FULLY_CONNECTED", "FULLY_CONNECTED"]
    assert _kinds(b4) == ["CONV_2D_S4", "FULLY_CONNECTED_S4", "FULLY_CONNECTED_S4"]
    assert len(b4) <= 0.6 * len(b8), (len(b4), len(b8))
    # the int4 .tflite keeps no int8 copy of the weights
    assert len(packed["int4"][0]) < 0.6 * len(packed["int8"][0])


def test_keras_layer_names_survive_tensorflow_renaming(packed, digits):
    """Keras calls its layers conv2d, dense, dense_1; TensorFlow's tensors say conv2d_1, dense_1,
    dense_1_2. int4:conv2d,dense_1 means the Keras layers: the conv and the last (10-output) dense."""
    tfl = packed["int4:conv2d,dense_1"][0]
    m = tflite.load(tfl)
    w = {op.opcode + str(m.tensors[op.inputs[1]].shape): m.tensors[op.inputs[1]].dtype
         for op in m.operators if op.opcode in wq.WEIGHTED}
    assert w == {"CONV_2D(16, 3, 3, 1)": "int4", "FULLY_CONNECTED(64, 576)": "int8",
                 "FULLY_CONNECTED(10, 64)": "int4"}, w
    found = wq.weighted_layers(packed["int8"][0], digits[1])
    assert [x.keras for x in found] == ["conv2d", "dense", "dense_1"]
    with pytest.raises(MicronnError, match="no layer with weights of that name.*conv2d, dense, dense_1"):
        wq.to_int4(packed["int8"][0], ["flatten"], keras_model=digits[1])


@pytest.mark.parametrize("choice", ["int4", "int4:conv2d,dense_1"])
def test_int4_bit_exact_with_tflite_micro_on_qemu_m4_and_unix(packed, digits, choice, unix):
    from micronn.targets import open_target

    tfl, data = packed[choice]
    test = np.load(digits[0] / "test.npz")
    m = tflite.load(tfl)
    t = m.tensors[m.inputs[0]]
    x = np.clip(np.round(test["x"][:SAMPLES] / t.scale[0]) + t.zero_point[0], -128, 127).astype(np.int8)
    x[0], x[1] = -128, 127          # the extremes, not digits
    want = tflm_run(tfl, x)
    assert len({tuple(r) for r in want.reshape(len(x), -1)}) > SAMPLES // 2, "outputs nearly constant"
    need_firmware("qemu-m4")
    for target in (unix, None):
        if target is None:
            with open_target("qemu-m4") as t4:
                got = _run(t4.link, data, x)
        else:
            got = _run(target.link, data, x)
        assert np.array_equal(got.reshape(want.shape), want), f"{choice}: differs from TFLite Micro"


def _run(link, data: bytes, x: np.ndarray) -> np.ndarray:
    link.load(data)
    return np.stack([np.frombuffer(link.run(s.tobytes())[0], np.int8) for s in x])


def test_int4_weights_follow_the_float_model(digits, packed):
    """Wrong scales or biases would wreck the outputs: the int4 model's output must still follow the
    float model's (SQNR well above noise), a little below the int8 model's."""
    from micronn.calibrate import float_tensors
    from micronn.convert import calibrated_tflite

    folder, model = digits
    x = np.load(folder / "test.npz")["x"][:100]
    cal = calibrated_tflite(model, np.load(folder / "calib.npy"))
    fm = tflite.load(cal)
    ref = float_tensors(cal, x, [fm.outputs[0]])[fm.outputs[0]]
    sq = {}
    for choice in ("int8", "int4"):
        tfl = packed[choice][0]
        sq[choice] = sqnr_db(ref, wq._outputs(tfl, x).ravel())
    assert sq["int8"] > sq["int4"] > 12, sq


def test_bias_correction_brings_the_outputs_closer(digits, packed):
    """Each bias takes away the mean change the weights' rounding makes to its sums over the
    calibration samples: on test digits, the output's SQNR against the float model rises."""
    from micronn.calibrate import float_tensors
    from micronn.convert import calibrated_tflite

    folder, model = digits
    calib = np.load(folder / "calib.npy")
    x = np.load(folder / "test.npz")["x"][:200]
    cal = calibrated_tflite(model, calib)
    fm = tflite.load(cal)
    ref = float_tensors(cal, x, [fm.outputs[0]])[fm.outputs[0]]
    int8 = packed["int8"][0]
    plain = wq.to_int4(int8, None, float_model=cal, keras_model=model)
    corrected = wq.to_int4(int8, None, float_model=cal, keras_model=model, calib=calib)
    assert packed["int4"][0] == corrected         # what pack makes
    gain = sqnr_db(ref, wq._outputs(corrected, x).ravel()) - sqnr_db(ref, wq._outputs(plain, x).ravel())
    assert gain > 1.0, gain
    # only the biases differ: the same int4 weights
    a, b = tflite.load(plain), tflite.load(corrected)
    for op_a, op_b in zip(a.operators, b.operators, strict=True):
        if op_a.opcode in wq.WEIGHTED:
            assert bytes(a.tensors[op_a.inputs[1]].data) == bytes(b.tensors[op_b.inputs[1]].data)


def test_clip_search_beats_the_largest_magnitude():
    """The scale with the least squared error: never worse than max|w| / 7, and better on weights
    with an outlier; values stay in [-7, 7]."""
    rng = np.random.default_rng(3)
    w = rng.normal(0, 0.1, (4, 3, 3, 8))
    w[0, 0, 0, 0] = 1.5         # an outlier in channel 0
    q, s = wq.quantize4(w, 0, per_channel=True)
    assert q.min() >= -7 and q.max() <= 7 and s.shape == (4,)
    for c in range(4):
        naive = np.abs(w[c]).max() / 7
        err = np.sum((q[c] * s[c] - w[c]) ** 2)
        err_naive = np.sum((np.clip(np.round(w[c] / naive), -7, 7) * naive - w[c]) ** 2)
        assert err <= err_naive + 1e-12
    q, s = wq.quantize4(w[:1], 0, per_channel=True)
    assert s[0] < np.abs(w[0]).max() / 7


def test_auto_keeps_the_sqnr_loss_under_the_limit(digits, packed):
    from micronn.convert import calibrated_tflite

    folder, model = digits
    x = np.load(folder / "calib.npy")
    cal = calibrated_tflite(model, x)
    int8 = packed["int8"][0]
    said = []
    everything, names_all, sq_all = wq.auto(int8, cal, x, 100.0, keras_model=model, log=said.append)
    assert sorted(names_all) == ["conv2d", "dense", "dense_1"] and len(said) == 3
    nothing, names_none, sq_none = wq.auto(int8, cal, x, 0.0, keras_model=model)
    assert names_none == [] and nothing == int8 and sq_none["int4"] == sq_none["int8"]
    # a limit just above the cheapest layer's own loss: that layer, not all; measured again here
    from micronn.calibrate import float_tensors

    fm = tflite.load(cal)
    xs = x[:wq.AUTO_SAMPLES]
    ref = float_tensors(cal, xs, [fm.outputs[0]])[fm.outputs[0]]
    alone = {n: sq_all["int8"] - sqnr_db(ref, wq._outputs(wq.to_int4(int8, [n], float_model=cal,
                                                                        keras_model=model, calib=x), xs).ravel())
             for n in names_all}
    cheapest = min(alone, key=alone.get)
    limit = alone[cheapest] + 0.01
    assert limit < sq_all["int8"] - sq_all["int4"]
    some, names, sq = wq.auto(int8, cal, x, limit, keras_model=model)
    assert cheapest in names and len(names) < 3 and sq["int8"] - sq["int4"] <= limit
    assert abs(sqnr_db(ref, wq._outputs(some, xs).ravel()) - sq["int4"]) < 1e-9


def test_parse():
    assert wq.parse("int8") == ("int8", None) and wq.parse("int4") == ("int4", None)
    assert wq.parse("int4:a, b") == ("int4", ["a", "b"]) and wq.parse("auto:1.5") == ("auto", 1.5)
    for bad in ("int5", "int4:", "auto", "auto:x", "auto:-1", "int8:a"):
        with pytest.raises(MicronnError, match="--weights"):
            wq.parse(bad)


def test_cli_pack_report_and_mistakes(digits):
    folder, _ = digits
    rc, out = cli("pack", "digits.keras", "--calib", "calib.npy", "--weights", "int4", "-o", "d4.mnb",
                  "--keep-tflite", "d4.tflite", cwd=folder)
    assert rc == 0, out
    d4 = (folder / "d4.mnb").read_bytes()
    assert _kinds(d4) == ["CONV_2D_S4", "FULLY_CONNECTED_S4", "FULLY_CONNECTED_S4"]
    # the blob records how it was quantized, so a Keras reference is converted again the same way
    assert blob.read(d4)["meta"]["RECIPE"] == "activations=int8 weights=int4 calib-method=minmax"
    rc, out = cli("verify", "d4.mnb", "--reference", "digits.keras", "--calib", "calib.npy", "--target", "unix",
                  "--samples", "8", cwd=folder)
    assert rc == 0 and "bit-exact" in out, out
    # a .tflite's int8 weights requantized; auto needs the float model
    rc, out = cli("pack", "d4.tflite", "--weights", "int4:dense_1", "-o", "again.mnb", cwd=folder)
    assert rc == 0, out         # already int4: nothing left to change, still packs
    rc, out = cli("pack", "d4.tflite", "--weights", "auto:1", cwd=folder)
    assert rc == 1 and "micronn: error: --weights auto:DB needs the Keras model" in out, out
    rc, out = cli("pack", "digits.keras", "--calib", "calib.npy", "--weights", "int4:nope", cwd=folder)
    assert rc == 1 and out.count("micronn: error:") == 1 and "conv2d, dense, dense_1" in out, out
    assert "Traceback" not in out
    rc, out = cli("pack", "digits.keras", "--calib", "calib.npy", "--weights", "int5", cwd=folder)
    assert rc == 1 and "micronn: error: --weights 'int5'" in out, out
    rc, out = cli("pack", "digits.keras", "--calib", "calib.npy", "--weights", "auto:2", "-o", "da.mnb",
                  cwd=folder)
    assert rc == 0 and "--weights auto:2: int4 weights for" in out and "lost alone" in out, out

    rc, out = cli("pack", "digits.keras", "--calib", "calib.npy", "--weights", "int4:dense", "-o", "dd.mnb",
                  "--report", "pack-report.html", cwd=folder)
    assert rc == 0 and "int4 weights (int4:dense): dense; blob" in out, out     # int8 against int4 weights
    rc, out = cli("report", "digits.keras", "--calib", "calib.npy", "--data", "test.npz", "--weights", "int4",
                  "--json", cwd=folder)
    assert rc == 0, out
    r = json.loads(out[out.index("{"):])
    acc, w = r["accuracy"], r["weights"]
    assert set(acc) == {"float", "int8", "int4"} and acc["int8"] > 0.8 and acc["int4"] > 0.5
    assert w["layers"] == ["conv2d", "dense", "dense_1"] and w["int4_blob"] <= 0.6 * w["int8_blob"]
    assert all("sqnr_db_w4" in row for row in r["layers"])
    rc, out = cli("report", "digits.keras", "--calib", "calib.npy", "--data", "test.npz", "--weights",
                  "int4:dense", cwd=folder)
    assert rc == 0, out
    assert "SQNR w4" in out and "int4 weights (int4:dense): dense; blob" in out
    assert "top-1 accuracy with int4 weights:" in out and "points against int8" in out, out
