"""Keras models as people save them (issue 13): a small CNN trained on the 8x8 digits
with quantization-aware training (tensorflow-model-optimization on tf_keras), saved as
.h5, .keras and SavedModel; the same CNN pruned to 50% (saved with its pruning
wrappers); models with a layer class no loader knows. Each is packed by the real
`micronn` command with nothing on stderr (TensorFlow's start-up lines and warnings
hidden unless --verbose) and runs bit-exact on qemu-m4 against the int8 .tflite kept
with --keep-tflite; `verify` takes the .keras file itself; `inspect` says float32 for a
--float-io blob and reads a .tflite.

The models are built in a child process (importing tfmot switches a process's tf.keras
to Keras 2), the commands run a few at a time, and one qemu-m4 board serves every run.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from micronn import blob, sessions
from micronn.packer import build_graph
from micronn.run import verify

from .conftest import ROOT, missing, need_firmware

MICRONN = Path(sys.executable).with_name("micronn")
# A child's environment without what would hide TensorFlow's noise for micronn.
ENV = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "PYTHONWARNINGS",
                                                          "TF_USE_LEGACY_KERAS")}

# id -> pack arguments ({d}: the models' folder). Each keeps its .tflite as {d}/ID.tflite.
PACKS = {
    "qat-h5": "{d}/qat.h5",
    "qat-keras": "{d}/qat.keras",
    "qat-savedmodel": "{d}/qat_saved",
    "pruned-h5": "{d}/pruned.h5",
    "qat-float-io": "{d}/qat.h5 --float-io --verbose",
    "custom-h5": "{d}/custom.h5",
    "custom-keras3": "{d}/custom3.keras",
}


def build_models(d: Path) -> None:
    """Train and save the models into d (run in a child process)."""
    import keras
    import tensorflow_model_optimization as tfmot
    import tf_keras as k
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images / 16).astype(np.float32)[..., None]
    y = digits.target
    k.utils.set_random_seed(13)
    base = k.Sequential([k.Input((8, 8, 1)), k.layers.Conv2D(8, 3, activation="relu"), k.layers.MaxPooling2D(),
                         k.layers.Conv2D(16, 3, padding="same", activation="relu"), k.layers.Flatten(),
                         k.layers.Dense(10)])

    def train(m, n, **kw):
        m.compile("adam", k.losses.SparseCategoricalCrossentropy(from_logits=True))
        m.fit(x[:n], y[:n], epochs=1, batch_size=32, verbose=0, **kw)

    train(base, 640)
    qat = tfmot.quantization.keras.quantize_model(base)
    train(qat, 640)
    qat.save(d / "qat.h5")
    qat.save(d / "qat.keras")
    qat.save(d / "qat_saved")
    pruned = tfmot.sparsity.keras.prune_low_magnitude(
        base, pruning_schedule=tfmot.sparsity.keras.ConstantSparsity(0.5, 0, frequency=1))
    train(pruned, 256, callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    pruned.save(d / "pruned.h5")

    class Doubler(k.layers.Layer):
        def call(self, t):
            return 2 * t

    k.Sequential([k.Input((8, 8, 1)), Doubler(), k.layers.Flatten(), k.layers.Dense(10)]).save(d / "custom.h5")

    class Halver(keras.layers.Layer):
        def call(self, t):
            return t / 2

    keras.Sequential([keras.Input((8, 8, 1)), Halver(), keras.layers.Flatten(),
                      keras.layers.Dense(10)]).save(d / "custom3.keras")
    np.save(d / "calib.npy", x[640:704])
    np.save(d / "x.npy", x[1000:1020])          # unseen digits to run


def micronn(*args) -> subprocess.CompletedProcess:
    return subprocess.run([str(MICRONN), *map(str, args)], capture_output=True, text=True, timeout=600, env=ENV)


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """(folder, id -> finished `micronn pack`), with a qemu-m4 board running in the background
    for the module's tests (MICRONN_STATE_DIR set until they end)."""
    for module in ("tensorflow", "tf_keras", "tensorflow_model_optimization", "sklearn"):
        if importlib.util.find_spec(module) is None:
            missing(f"{module} is not installed: run make setup")
    need_firmware("qemu-m4")
    d = tmp_path_factory.mktemp("keras_models")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MICRONN_STATE_DIR", str(d / "state"))
        sessions.start("qemu-m4")
        try:
            r = subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; from tests."
                                "test_keras_models import build_models; build_models(Path(sys.argv[1]))", str(d)],
                               cwd=ROOT, capture_output=True, text=True, timeout=600)
            assert r.returncode == 0, r.stderr[-3000:]

            def pack(item):
                name, args = item
                argv = args.format(d=d).split()
                return name, micronn("pack", *argv, "--calib", d / "calib.npy", "-o", d / f"{name}.mnb",
                                     "--keep-tflite", d / f"{name}.tflite")

            with ThreadPoolExecutor(max_workers=3) as pool:
                packs = dict(pool.map(pack, PACKS.items()))
            yield d, packs
        finally:
            for s in sessions.sessions():
                sessions.stop(s["name"])


@pytest.mark.parametrize("name", ["qat-h5", "qat-keras", "qat-savedmodel", "pruned-h5", "qat-float-io"])
def test_packs_quietly_and_runs_bit_exact_on_qemu_m4(made, name):
    d, packs = made
    p = packs[name]
    assert p.returncode == 0, p.stderr
    if "--verbose" in PACKS[name]:
        assert "tensorflow" in p.stderr.lower() or "oneDNN" in p.stderr, "--verbose shows TensorFlow's own lines"
    else:
        assert p.stderr == "", f"TensorFlow's noise reached stderr:\n{p.stderr}"
    data, tfl = (d / f"{name}.mnb").read_bytes(), (d / f"{name}.tflite").read_bytes()
    assert f"wrote {d / f'{name}.tflite'} ({len(tfl):,} bytes)" in p.stdout
    x = np.load(d / "x.npy")
    r = verify(data, tfl, "qemu-m4", x=x)
    assert r["bit_exact"] and r["warning"] is None, r
    assert r["values"] == 20 * 10


def test_qat_formats_load_to_the_same_model(made):
    """.h5 and .keras (which tf_keras cannot read back by itself) give the same .tflite,
    byte for byte (two conversions in two processes: the converter is deterministic);
    the SavedModel the same tensors (its signature names differ)."""
    d, packs = made
    h5, keras_, saved = ((d / f"{n}.tflite").read_bytes() for n in ("qat-h5", "qat-keras", "qat-savedmodel"))
    assert h5 == keras_
    a, b = build_graph(h5), build_graph(saved)
    assert [op.kind for op in a.ops] == [op.kind for op in b.ops]
    for s, t in zip(a.tensors, b.tensors, strict=True):
        assert s.shape == t.shape and s.scale == t.scale and s.zero_point == t.zero_point
        assert (s.data is None) == (t.data is None) and (s.data is None or np.array_equal(s.data, t.data))


def test_pruned_model_loses_its_wrappers(made):
    """Packed without the pruning wrappers' mask ops: the QAT model's ops, half the weights zero."""
    d, packs = made
    pruned, qat = build_graph((d / "pruned-h5.tflite").read_bytes()), build_graph((d / "qat-h5.tflite").read_bytes())
    assert [op.kind for op in pruned.ops] == [op.kind for op in qat.ops]
    weights = [t.data for t in pruned.tensors if t.is_const and t.dtype == "int8"]
    assert len(weights) == 3 and all(0.45 <= np.mean(w == 0) <= 0.6 for w in weights)
    assert not any("prune" in t.name for t in pruned.tensors)


@pytest.mark.parametrize("name, cls", [("custom-h5", "Doubler"), ("custom-keras3", "Halver")])
def test_an_unknown_layer_is_one_line_naming_it(made, name, cls):
    d, packs = made
    p = packs[name]
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert p.stderr.startswith("micronn: error: ") and f"layer class '{cls}' is unknown" in p.stderr
    assert not (d / f"{name}.mnb").exists()


def test_verify_against_the_keras_file(made):
    """The .keras converted again as pack did: the blob's source checksum matches, bit-exact."""
    d, _ = made
    env = {**ENV, "MICRONN_STATE_DIR": str(d / "state")}
    args = [str(MICRONN), "verify", d / "qat-keras.mnb", "--reference", d / "qat.keras", "--target", "qemu-m4"]
    p = subprocess.run([*args, "--calib", d / "calib.npy"], capture_output=True, text=True, timeout=600, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "bit-exact: 20 samples, 200 values equal to TFLite Micro on qemu-m4" in p.stdout
    assert "warning" not in p.stdout
    p = subprocess.run(args, capture_output=True, text=True, timeout=600, env=env)
    assert p.returncode == 1 and "needs calibration data (--calib" in p.stderr and "Traceback" not in p.stderr


def test_inspect_float_io_blob_and_a_tflite(made):
    d, _ = made
    p = micronn("inspect", d / "qat-float-io.mnb", "--json")
    info = json.loads(p.stdout)
    assert info["input"]["dtype"] == info["output"]["dtype"] == "float32"
    g = blob.read((d / "qat-float-io.mnb").read_bytes())
    assert g["tensors"][g["inputs"][0]]["dtype"] == "int8"     # inside, the graph stays int8
    text = micronn("inspect", d / "qat-float-io.mnb").stdout
    assert "input  (1, 8, 8, 1) float32" in text and "output (1, 10) float32" in text

    p = micronn("inspect", d / "qat-keras.tflite", "--json")
    assert p.returncode == 0, p.stderr
    from_tflite, from_blob = json.loads(p.stdout), json.loads(micronn("inspect", d / "qat-keras.mnb", "--json").stdout)
    assert from_tflite["name"] == "qat-keras" and from_tflite["input"]["dtype"] == "int8"
    for key in ("ops", "macs", "arena_bytes", "const_bytes", "source_bytes", "input", "output"):
        assert from_tflite[key] == from_blob[key], key
    p = micronn("inspect", d / "qat-keras.tflite")
    assert p.returncode == 0 and "CONV_2D" in p.stdout
