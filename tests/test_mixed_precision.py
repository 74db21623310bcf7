"""Models mixing int8 and int16 activations, chosen per Keras layer (issue 14):
`micronn pack MODEL.keras --activations int16:LAYER,LAYER` / keras_to_tflite(..., activations="int16:...")
splices TensorFlow's int8 and 16x8 conversions of one model into one .tflite with QUANTIZE ops
(int8 <-> int16) where a tensor crosses precisions (host/micronn/mixed.py); micronn lowers those
to REQUANT. Generated Keras models run bit-exact with TensorFlow Lite Micro on the unix port and
on qemu-m4 (one boot, every blob from ROMFS) over inputs spanning the whole input range; the blobs
hold int8 and int16 tensors and REQUANT ops; the CLI and the library refuse what they cannot do
in one line."""

from __future__ import annotations

import functools
import subprocess
import sys
from dataclasses import dataclass

import numpy as np
import pytest

from micronn import blob, pack, romfs
from micronn import tflite as tfl_reader
from micronn.errors import MicronnError
from micronn.reference import tflm_run
from micronn.targets import QemuTarget

from .conftest import SUMMARY, need_firmware

SAMPLES = 10


def _k():
    import keras

    return keras


def _conv_mid(x):
    """conv -> conv (int16) -> dense: int8 in and out, int16 in the middle."""
    k = _k()
    y = k.layers.Conv2D(6, 3, activation="relu", bias_initializer="random_normal", name="c1")(x)
    y = k.layers.Conv2D(8, 3, padding="same", bias_initializer="random_normal", name="c2")(y)
    y = k.layers.Dropout(0.2, name="drop")(y)
    y = k.layers.Flatten(name="fl")(y)
    return k.layers.Dense(7, bias_initializer="random_normal", name="d")(y)


def _island(x):
    """conv (int8) -> pooling, add (int16) -> dense (int8) -> softmax (int16): int16 output."""
    k = _k()
    y = k.layers.Conv2D(8, 3, bias_initializer="random_normal", name="c1")(x)
    a = k.layers.AveragePooling2D(2, name="ap")(y)
    b = k.layers.MaxPooling2D(2, name="mp")(y)
    y = k.layers.Add(name="add")([a, b])
    y = k.layers.Flatten(name="fl")(y)
    y = k.layers.Dense(10, bias_initializer="random_normal", name="d")(y)
    return k.layers.Softmax(name="sm")(y)


def _head(x):
    """dense (int16, so an int16 input) -> dense (int8) -> tanh (int16) -> dense (int8 output)."""
    k = _k()
    y = k.layers.Dense(16, activation="relu", bias_initializer="random_normal", name="d1")(x)
    y = k.layers.Dense(12, bias_initializer="random_normal", name="d2")(y)
    y = k.layers.Activation("tanh", name="t")(y)
    return k.layers.Dense(6, bias_initializer="random_normal", name="d3")(y)


@dataclass(frozen=True)
class Mixed:
    build: object
    shape: tuple
    spec: str               # the activations argument
    io: tuple               # (input dtype, output dtype)
    int16_kinds: str        # micronn op kinds the int16 layers must lower to
    int8_kinds: str         # ... and the int8 ones


MODELS = {
    "conv_mid": Mixed(_conv_mid, (8, 8, 2), "int16:c2", ("int8", "int8"), "CONV_2D_S16", "CONV_2D FULLY_CONNECTED"),
    "island": Mixed(_island, (8, 8, 3), "int16:ap,mp,add,sm", ("int8", "int16"),
                    "AVG_POOL_S16 MAX_POOL_S16 ADD_S16 SOFTMAX_S16", "CONV_2D FULLY_CONNECTED"),
    "head": Mixed(_head, (24,), "int16:d1,t", ("int16", "int8"), "FULLY_CONNECTED_S16 TANH_S16",
                  "FULLY_CONNECTED"),
}
NAMES = sorted(MODELS)


def keras_model(name: str):
    k = _k()
    k.utils.set_random_seed(len(name) * 7919 + 17)
    x = k.Input(MODELS[name].shape, batch_size=1)
    return k.Model(x, MODELS[name].build(x))


def calibration(name: str) -> np.ndarray:
    rng = np.random.default_rng(len(name))
    return rng.normal(size=(32, *MODELS[name].shape)).astype(np.float32)


@functools.cache
def converted(name: str, spec: str | None = None) -> bytes:
    from micronn.convert import keras_to_tflite

    return keras_to_tflite(keras_model(name), calibration(name), activations=spec or MODELS[name].spec)


def inputs(name: str, dtype: str, n: int = SAMPLES) -> np.ndarray:
    """n samples over the whole input range, its extremes, 0, -1 and 1 in the first."""
    info = np.iinfo(dtype)
    size = int(np.prod(MODELS[name].shape))
    x = np.random.default_rng(len(name) + 5).integers(info.min, info.max + 1, size * n)
    x[:5] = [info.min, info.max, 0, -1, 1]
    return x.astype(dtype).reshape((n, *MODELS[name].shape))


def _run(link, x: np.ndarray, like: np.ndarray) -> np.ndarray:
    ys = [np.frombuffer(link.run(x[i].tobytes())[0], dtype=like.dtype) for i in range(len(x))]
    return np.stack(ys).reshape(like.shape)


def _compare(got: np.ndarray, want: np.ndarray) -> str:
    if not np.array_equal(got, want):
        return f"DIFF {np.count_nonzero(got != want)} of {want.size}"
    if len(np.unique(want)) < min(16, want.size // 4):
        return f"FEW VALUES ({len(np.unique(want))}): the test does not exercise the model"
    return "exact"


def _activation_dtypes(tfl: bytes) -> list[str]:
    m = tfl_reader.load(tfl)
    return [m.tensors[i].dtype for op in m.operators for i in op.outputs]


@pytest.mark.parametrize("name", NAMES)
def test_mixed_model_unix(unix, name):
    """Both precisions in the .tflite and in the blob, REQUANT where they meet, the chosen layers on
    int16 kernels and the others on int8 ones; outputs bit-exact with TFLite Micro."""
    case = MODELS[name]
    tfl = converted(name)
    m = tfl_reader.load(tfl)
    quantizes = [op for op in m.operators if op.opcode == "QUANTIZE"]
    assert quantizes and {"int8", "int16"} <= set(_activation_dtypes(tfl))
    for op in quantizes:
        assert {m.tensors[op.inputs[0]].dtype, m.tensors[op.outputs[0]].dtype} == {"int8", "int16"}
    assert (m.tensors[m.inputs[0]].dtype, m.tensors[m.outputs[0]].dtype) == case.io

    data = pack(tfl, name=name)
    info = blob.read(data)
    kinds = [o["kind"] for o in info["ops"]]
    assert kinds.count("REQUANT") == len(quantizes), kinds
    assert set(case.int16_kinds.split()) <= set(kinds) and set(case.int8_kinds.split()) <= set(kinds), kinds
    acts = {t["dtype"] for t in info["tensors"] if t["storage"] != "CONST"}
    assert {"int8", "int16"} <= acts, acts
    assert [info["tensors"][i]["dtype"] for i in (info["inputs"][0], info["outputs"][0])] == list(case.io)

    x = inputs(name, case.io[0])
    want = tflm_run(tfl, x)
    assert want.dtype == np.dtype(case.io[1])
    unix.link.load(data)
    assert _compare(_run(unix.link, x, want), want) == "exact"


def test_mixed_models_qemu_m4():
    need_firmware("qemu-m4")
    blobs = {n: pack(converted(n), name=n) for n in NAMES}
    row = {}
    with QemuTarget("qemu-m4", romfs=romfs.build({f"{n}.mnb": b for n, b in blobs.items()})) as t:
        t.setup()
        t.serve()
        for name in NAMES:
            x = inputs(name, MODELS[name].io[0])
            want = tflm_run(converted(name), x)
            t.link.open(f"/rom/{name}.mnb")
            row[name] = _compare(_run(t.link, x, want), want)
    bad = {n: v for n, v in row.items() if v != "exact"}
    SUMMARY.append(f"models mixing int8 and int16 layers on qemu-m4: {len(row) - len(bad)} of {len(row)} bit-exact")
    assert not bad, bad


def test_all_or_no_layers_is_one_precision():
    """Every layer named: the 16x8 conversion's arithmetic (no QUANTIZE, the same outputs in TFLite
    Micro); the int16 layers' weights are the 16x8 conversion's, the int8 layers' the int8 one's."""
    name = "head"
    every = converted(name, "int16:d1,d2,t,d3")
    whole = converted(name, "int16")
    assert "QUANTIZE" not in [op.opcode for op in tfl_reader.load(every).operators]
    assert set(_activation_dtypes(every)) == {"int16"}
    x = inputs(name, "int16")
    assert np.array_equal(tflm_run(every, x), tflm_run(whole, x))

    def weights(tfl):
        m = tfl_reader.load(tfl)
        return [m.tensors[op.inputs[1]].array().tobytes() for op in m.operators if op.opcode == "FULLY_CONNECTED"]

    def biases(tfl):
        m = tfl_reader.load(tfl)
        return [m.tensors[op.inputs[2]].dtype for op in m.operators if op.opcode == "FULLY_CONNECTED"]

    mixed, i8 = converted(name), converted(name, "int8")
    assert weights(mixed)[0] == weights(whole)[0] and weights(mixed)[1:] == weights(i8)[1:]
    assert biases(mixed) == [biases(whole)[0], *biases(i8)[1:]]
    assert biases(whole)[0] != biases(i8)[0]        # int64 against int32: the test tells them apart


def test_library_refusals():
    from micronn.convert import keras_to_tflite

    model, calib = keras_model("conv_mid"), calibration("conv_mid")
    for spec, message in [("int16:", "name the layers"), ("int32", "expected int8, int16 or int16:LAYER"),
                          ("int16:c2", "minmax")]:
        with pytest.raises(MicronnError, match=message):
            keras_to_tflite(model, calib, activations=spec, calib_method="mse" if spec == "int16:c2" else "minmax")
    with pytest.raises(MicronnError, match="no layer named c3, nope in the model; its layers are: c1, c2, drop, fl, d"):
        keras_to_tflite(model, calib, activations="int16:c3,c2,nope")
    with pytest.raises(MicronnError, match="layer drop has no operator of its own"):
        keras_to_tflite(model, calib, activations="int16:drop")


def _cli(tmp_path, *args):
    p = subprocess.run([sys.executable, "-m", "micronn.cli", *map(str, args)], capture_output=True, text=True,
                       cwd=tmp_path, timeout=600)
    return p.returncode, p.stdout, p.stderr


def test_cli_pack_per_layer(unix, tmp_path):
    """`micronn pack MODEL.keras --calib C.npy --activations int16:NAME`: the model the library
    makes, bit-exact on the board; an unknown layer name is one `micronn: error:` line."""
    from micronn.convert import keras_to_tflite

    name = "island"
    keras_model(name).save(tmp_path / "m.keras")
    np.save(tmp_path / "calib.npy", calibration(name))
    rc, so, se = _cli(tmp_path, "pack", "m.keras", "--calib", "calib.npy", "--activations", MODELS[name].spec,
                      "-o", "m.mnb", "--keep-tflite", "m.tflite")
    assert rc == 0, se
    tfl = (tmp_path / "m.tflite").read_bytes()
    assert tfl == keras_to_tflite(tmp_path / "m.keras", tmp_path / "calib.npy", activations=MODELS[name].spec)
    data = (tmp_path / "m.mnb").read_bytes()
    assert "REQUANT" in [o["kind"] for o in blob.read(data)["ops"]]
    x = inputs(name, "int8", 8)
    want = tflm_run(tfl, x)
    unix.link.load(data)
    assert _compare(_run(unix.link, x, want), want) == "exact"
    # the blob's RECIPE: verify converts the Keras reference again, mixed as pack did
    assert blob.read(data)["meta"]["RECIPE"] == f"activations={MODELS[name].spec} weights=int8 calib-method=minmax"
    rc, so, se = _cli(tmp_path, "verify", "m.mnb", "--reference", "m.keras", "--calib", "calib.npy", "--target",
                      "unix", "--samples", "8")
    assert rc == 0 and "bit-exact" in so, so + se

    rc, so, se = _cli(tmp_path, "pack", "m.keras", "--calib", "calib.npy", "--activations", "int16:c1,dense")
    lines = (so + se).strip().splitlines()
    assert rc == 1 and len(lines) == 1, so + se
    assert lines[0] == "micronn: error: no layer named dense in the model; its layers are: c1, ap, mp, add, fl, d, sm"
    rc, so, se = _cli(tmp_path, "pack", "--help")
    assert "int16:LAYER" in so


def test_layer_scopes_in_tensor_names():
    """Each layer's name scope in the converter's tensor names: Keras 3 numbers every scope (layer
    conv2d's is conv2d_1, layer conv2d_1's conv2d_1_2), tf_keras keeps the names."""
    from micronn.mixed import _scopes

    keras3 = ["sequential_1/re_lu_1/Relu;sequential_1/conv2d_1/convolution", "sequential_1/conv2d_1_2/convolution1",
              "sequential_1/flatten_1/Reshape", "sequential_1/dense_1/MatMul"]
    assert _scopes(["conv2d", "batch_normalization", "re_lu", "conv2d_1", "flatten", "dense"], keras3) == {
        "conv2d_1": "conv2d", "re_lu_1": "re_lu", "conv2d_1_2": "conv2d_1", "flatten_1": "flatten", "dense_1": "dense"}
    keras2 = ["sequential/conv2d/Conv2D1", "sequential/conv2d_1/Relu;sequential/conv2d_1/Conv2D",
              "sequential/flatten/Reshape", "sequential/dense/MatMul"]
    assert _scopes(["conv2d", "conv2d_1", "flatten", "dense"], keras2) == {
        "conv2d": "conv2d", "conv2d_1": "conv2d_1", "flatten": "flatten", "dense": "dense"}
    # a layer with no operator (conv2d, say, removed) does not take another's scope
    assert _scopes(["conv2d", "conv2d_1", "dense"], keras2[1:]) == {"conv2d_1": "conv2d_1", "dense": "dense"}


def test_default_layer_names(unix):
    """A Sequential model with Keras's own layer names (conv2d, conv2d_1: the names the converter
    numbers again), a batch normalization folded into the first convolution: naming the second
    convolution makes it int16 and only it; naming the first or the folded layer, the first."""
    k = _k()
    k.utils.set_random_seed(5)
    model = k.Sequential([k.Input((7, 7, 2), batch_size=1), k.layers.Conv2D(5, 3, bias_initializer="random_normal"),
                          k.layers.BatchNormalization(beta_initializer="random_normal"), k.layers.ReLU(),
                          k.layers.Conv2D(4, 3, bias_initializer="random_normal"), k.layers.Flatten(),
                          k.layers.Dense(6, bias_initializer="random_normal")])
    from micronn.convert import keras_to_tflite

    calib = np.random.default_rng(9).normal(size=(32, 7, 7, 2)).astype(np.float32)
    conv1, bn, conv2 = (model.layers[i].name for i in (0, 1, 3))
    tfl = keras_to_tflite(model, calib, activations=f"int16:{conv2}")
    m = tfl_reader.load(tfl)
    convs = [m.tensors[op.outputs[0]].dtype for op in m.operators if op.opcode == "CONV_2D"]
    assert convs == ["int8", "int16"]
    assert [op.opcode for op in m.operators].count("QUANTIZE") == 2
    data = pack(tfl)
    assert [o["kind"] for o in blob.read(data)["ops"]].count("REQUANT") == 2
    x = np.random.default_rng(10).integers(-128, 128, (8, 7, 7, 2)).astype(np.int8)
    x[0, 0, 0, :2] = [-128, 127]
    want = tflm_run(tfl, x)
    unix.link.load(data)
    assert _compare(_run(unix.link, x, want), want) == "exact"
    # the batch normalization folded into the first convolution: naming either makes that op int16
    for name in (conv1, bn):
        m = tfl_reader.load(keras_to_tflite(model, calib, activations=f"int16:{name}"))
        assert [m.tensors[op.outputs[0]].dtype for op in m.operators if op.opcode == "CONV_2D"] == ["int16", "int8"]


@pytest.mark.parametrize("name", ["head", "island"])
def test_float_io(unix, name):
    """--float-io: the float input is quantized to int8 and the float output dequantized from int8
    (as in the int8 conversion), requantized to or from int16 where the first or last
    layer is int16; bit-exact with TFLite Micro on floats across (and beyond) the calibrated range."""
    from micronn.convert import keras_to_tflite

    case = MODELS[name]
    tfl = keras_to_tflite(keras_model(name), calibration(name), activations=case.spec, float_io=True)
    m = tfl_reader.load(tfl)
    assert [op.opcode for op in m.operators][0] == "QUANTIZE" and m.operators[-1].opcode == "DEQUANTIZE"
    assert m.tensors[m.operators[0].outputs[0]].dtype == m.tensors[m.operators[-1].inputs[0]].dtype == "int8"
    data = pack(tfl)
    info = blob.read(data)
    first16, last16 = case.io[0] == "int16", case.io[1] == "int16"
    kinds = [o["kind"] for o in info["ops"]]
    assert (kinds[0] == "REQUANT") == first16 and (kinds[-1] == "REQUANT") == last16, kinds
    x = np.random.default_rng(4).normal(size=(SAMPLES, *case.shape)).astype(np.float32) * 3
    want = tflm_run(tfl, x)
    assert want.dtype == np.float32
    loaded = unix.link.load(data)
    assert loaded["input_dtype"] == loaded["output_dtype"] == "float32"
    assert _compare(_run(unix.link, x, want), want) == "exact"


def test_tf_keras_h5(tmp_path):
    """A tf_keras (Keras 2) model from an .h5 file, whose tensor names keep the layer names."""
    import tf_keras

    from micronn.convert import keras_to_tflite

    tf_keras.utils.set_random_seed(6)
    model = tf_keras.Sequential([tf_keras.layers.Conv2D(4, 3, input_shape=(7, 7, 2)),
                                 tf_keras.layers.Conv2D(4, 3, activation="relu"), tf_keras.layers.Flatten(),
                                 tf_keras.layers.Dense(5)])
    model.save(tmp_path / "m.h5")
    calib = np.random.default_rng(11).normal(size=(16, 7, 7, 2)).astype(np.float32)
    for k, want in [(0, ["int16", "int8"]), (1, ["int8", "int16"])]:
        m = tfl_reader.load(keras_to_tflite(tmp_path / "m.h5", calib, activations=f"int16:{model.layers[k].name}"))
        assert [m.tensors[op.outputs[0]].dtype for op in m.operators if op.opcode == "CONV_2D"] == want
        assert m.tensors[m.inputs[0]].dtype == want[0]
