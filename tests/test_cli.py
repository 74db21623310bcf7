"""The micronn command, end to end on the unix firmware."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from micronn import blob
from micronn.packer import build_graph
from micronn.reference import tflm_run

from .conftest import need_shared


def cli(*args, cwd=None):
    p = subprocess.run([sys.executable, "-m", "micronn.cli", *map(str, args)], capture_output=True, text=True,
                       cwd=cwd, timeout=300)
    return p.returncode, p.stdout, p.stderr


def test_hello_world_pack_inspect_verify_run(tmp_path, unix):
    model = need_shared("models", "tflm_hello_world_int8.tflite")
    out = tmp_path / "hello.mnb"
    rc, so, se = cli("pack", model, "-o", out, "--name", "hello")
    assert rc == 0, se
    assert out.exists() and f"{out.stat().st_size:,} bytes" in so

    rc, so, _ = cli("inspect", out, "--json")
    info = json.loads(so)
    assert rc == 0 and info["name"] == "hello" and info["macs"] == 288
    assert [o["type"] for o in info["ops"]] == ["FULLY_CONNECTED"] * 3
    assert info["arena_bytes"] >= info["arena_lower_bound"] > 0
    assert info["source_bytes"] == model.stat().st_size
    rc, so, _ = cli("inspect", out)
    assert rc == 0 and "FULLY_CONNECTED" in so and "arena lower bound" in so

    rc, so, se = cli("verify", out, "--reference", model, "--target", "unix")
    assert rc == 0, so + se
    assert "bit-exact: 256 samples, 256 values equal to TFLite Micro" in so

    x = np.arange(-128, 128, dtype=np.int8).reshape(256, 1)
    np.save(tmp_path / "x.npy", x)
    rc, so, se = cli("run", out, "--input", tmp_path / "x.npy", "-o", tmp_path / "y.npy", "--target", "unix")
    assert rc == 0, se
    y = np.load(tmp_path / "y.npy")
    assert y.shape == (256, 1) and y.dtype == np.int8
    assert np.array_equal(y, tflm_run(model.read_bytes(), x))


def test_verify_reports_mismatches(tmp_path, unix):
    model = need_shared("models", "tflm_hello_world_int8.tflite")
    g = build_graph(model.read_bytes())
    w = next(t for t in g.tensors if t.is_const and t.dtype == "int8" and t.data.size == 256)
    w.data = np.where(w.data > 0, w.data - 5, w.data).astype(np.int8)     # damage one layer
    (tmp_path / "bad.mnb").write_bytes(blob.write(g))
    rc, so, _ = cli("verify", tmp_path / "bad.mnb", "--reference", model, "--trace")
    assert rc == 1
    assert "MISMATCH:" in so and "got" in so and "TFLite Micro" in so
    # the trace runs the reference's own ops: the damaged blob is not traced, the model is (all equal)
    assert "trace of sample" in so and "DIFFERS" not in so


def test_errors_are_one_line(tmp_path):
    rc, _, se = cli("inspect", tmp_path / "missing.mnb")
    assert rc == 1 and se.startswith("micronn: error:") and "Traceback" not in se
    (tmp_path / "junk.tflite").write_bytes(b"\x00" * 64)
    rc, _, se = cli("pack", tmp_path / "junk.tflite")
    assert rc == 1 and se.startswith("micronn: error: tflite:") and "Traceback" not in se
    (tmp_path / "junk.mnb").write_bytes(b"MNNB" + bytes(100))
    rc, _, se = cli("inspect", tmp_path / "junk.mnb")
    assert rc == 1 and "version" in se


def test_float_model_is_refused_on_the_host(tmp_path):
    tf = __import__("pytest").importorskip("tensorflow")
    keras = tf.keras
    m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    data = tf.lite.TFLiteConverter.from_keras_model(m).convert()
    (tmp_path / "float.tflite").write_bytes(data)
    rc, _, se = cli("pack", tmp_path / "float.tflite")
    assert rc == 1 and "float32; micronn runs int8 activations" in se


def test_unsupported_op_fails_on_the_host(tmp_path):
    tf = __import__("pytest").importorskip("tensorflow")
    from micronn.convert import keras_to_tflite

    keras = tf.keras
    m = keras.Sequential([keras.Input((4, 4, 2)), keras.layers.Conv2D(3, 3),
                          keras.layers.Lambda(lambda t: keras.ops.sort(t, axis=-1))])
    calib = np.random.default_rng(0).normal(size=(16, 4, 4, 2)).astype(np.float32)
    (tmp_path / "sort.tflite").write_bytes(keras_to_tflite(m, calib))
    rc, _, se = cli("pack", tmp_path / "sort.tflite")
    assert rc == 1 and "Traceback" not in se
    assert "(TOPK_V2): not supported by micronn" in se and se.startswith("micronn: error: op "), se


def test_pack_keras_file_with_calibration_labels_and_float_io(tmp_path, unix):
    tf = __import__("pytest").importorskip("tensorflow")
    keras = tf.keras
    keras.utils.set_random_seed(5)
    m = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3, activation="relu"),
                          keras.layers.Flatten(), keras.layers.Dense(3), keras.layers.Softmax()])
    m.save(tmp_path / "m.keras")
    rng = np.random.default_rng(1)
    np.save(tmp_path / "calib.npy", rng.uniform(0, 1, (32, 8, 8, 1)).astype(np.float32))
    (tmp_path / "labels.txt").write_text("cat\ndog\nbird\n")
    for extra in ([], ["--float-io"]):
        out = tmp_path / f"m{len(extra)}.mnb"
        rc, _, se = cli("pack", tmp_path / "m.keras", "--calib", tmp_path / "calib.npy", "--labels",
                        tmp_path / "labels.txt", "-o", out, *extra)
        assert rc == 0, se
        info = unix.link.load(out.read_bytes())
        assert info["input_dtype"] == ("float32" if extra else "int8")
        assert info["output_dtype"] == ("float32" if extra else "int8")
        rc, so, se = cli("inspect", out, "--json")
        assert rc == 0 and json.loads(so)["labels"] == ["cat", "dog", "bird"]
    rc, _, se = cli("pack", tmp_path / "m.keras", "-o", tmp_path / "x.mnb")
    assert rc == 1 and "needs calibration data" in se


def _precision_blob(tmp_path, kind: str):
    """A 16x8 blob (s16_cnn: every 16x8 op family) or an int4-weights one (two int4 layers), packed to a file."""
    from micronn import pack

    from . import s4_models, s16x_models

    tfl = s16x_models.tflite("s16_cnn") if kind == "16x8" else s4_models.make_tflite("conv_dense")
    out = tmp_path / f"{kind}.mnb"
    out.write_bytes(pack(tfl))
    return out, tfl


def _want_precision(op: dict, tensors: list) -> str:
    """The precision an op should show, from the blob's own tensors: its output's dtype, and the dtype of
    the weights operand of the ops that have one."""
    bits = {"int8": "8", "int16": "16", "int4": "4"}
    text = "a" + bits[tensors[op["outputs"][0]]["dtype"]]
    if op["kind"].split("_S")[0] in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
        text += " w" + bits[tensors[op["inputs"][1]]["dtype"]]
    return text


def test_inspect_shows_precision_and_int4_savings(tmp_path):
    """inspect of an int4-weights blob: "a8 w4" on its int4 layers, each layer's saving is its weights' values
    minus their packed bytes, the total the sum over the blob's int4 tensors; the text says so."""
    out, _ = _precision_blob(tmp_path, "int4")
    b = blob.read(out.read_bytes())
    t = b["tensors"]
    rc, so, se = cli("inspect", out, "--json")
    assert rc == 0, se
    info = json.loads(so)
    int4 = [i for i, x in enumerate(t) if x["dtype"] == "int4"]
    assert len(int4) == 2
    for op, o in zip(b["ops"], info["ops"], strict=True):
        assert o["precision"] == _want_precision(op, t), o
        w = op["inputs"][1] if o["precision"].endswith("w4") else None
        count = int(np.prod(t[w]["shape"])) if w is not None else 0
        assert o["int4_saved_bytes"] == count - (count + 1) // 2
        assert o["int16_extra_tensor_bytes"] == 0
    assert [o["precision"] for o in info["ops"]].count("a8 w4") == 2
    saved = sum(int(np.prod(t[i]["shape"])) - t[i]["nbytes"] for i in int4)
    assert info["int4_saved_bytes"] == saved > 0 and info["int16_extra_arena_bytes"] == 0
    rc, so, _ = cli("inspect", out)
    assert rc == 0 and f"int4 weights      save {saved:,} B" in so and "a8 w4" in so and "int16" not in so


def test_inspect_shows_precision_and_int16_arena_cost(tmp_path):
    """inspect of a 16x8 blob: "a16 w8" on its weighted layers, "a16" on the others; each op's cost is half its
    int16 arena tensors' bytes; the total arena cost equals what the packer's own planner finds for the same
    graph with its int16 activations made int8 (the largest set of tensors live at once)."""
    from micronn.graph import plan_arena
    from micronn.packer import build_graph

    out, tfl = _precision_blob(tmp_path, "16x8")
    b = blob.read(out.read_bytes())
    t = b["tensors"]
    rc, so, se = cli("inspect", out, "--json")
    assert rc == 0, se
    info = json.loads(so)
    for op, o in zip(b["ops"], info["ops"], strict=True):
        assert o["precision"] == _want_precision(op, t), o
        mine = {i for i in op["inputs"] + op["outputs"] if i < len(t) and t[i]["storage"] == "ARENA"}
        assert o["int16_extra_tensor_bytes"] == sum(t[i]["nbytes"] // 2 for i in mine if t[i]["dtype"] == "int16")
        assert o["int4_saved_bytes"] == 0
    kinds = {o["precision"] for o in info["ops"]}
    assert {"a16 w8", "a16"} <= kinds and not any("w4" in k or "a8" in k for k in kinds)
    g = build_graph(tfl)
    lower16 = plan_arena(g).lower_bound
    assert lower16 == b["meta"]["ARENA_LOWER_BOUND"]
    for x in g.tensors:
        if x.in_arena and x.dtype == "int16":
            x.dtype = "int8"
    cost = lower16 - plan_arena(g).lower_bound
    assert info["int16_extra_arena_bytes"] == cost > 0
    assert info["int16_extra_tensor_bytes"] >= cost
    rc, so, _ = cli("inspect", out)
    assert rc == 0 and f"int16 activations cost {cost:,} B of arena" in so and "a16 w8" in so
