"""`micronn ops` and the listing of every operator micronn cannot run.

A Keras model with unsupported operators at several positions (two cumulative sums,
CUMSUM, which the converter leaves in float between DEQUANTIZE and QUANTIZE; a
keras.ops.sort, TOPK_V2 in int8) between supported ones: `pack` and `inspect` of it
fail with one error that names all of them (position, operator, tensors, reason),
not only the first;
`micronn ops MODEL` marks exactly those; `micronn ops` lists every operator the
lowering knows, and docs/ops.md is its Markdown, generated."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from micronn import lower, ops
from micronn.errors import MicronnError

MICRONN = Path(sys.executable).with_name("micronn")
DOC = Path(__file__).resolve().parents[1] / "docs" / "ops.md"


def run(*args, cwd=None):
    p = subprocess.run([str(MICRONN), *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=300,
                       env={**os.environ, "PYTHONWARNINGS": "ignore"})
    return p.returncode, p.stdout, p.stderr


@pytest.fixture(scope="module")
def bad(tmp_path_factory):
    """(folder, model path, the op indices micronn cannot run by opcode)."""
    keras = pytest.importorskip("keras")
    from micronn.convert import keras_to_tflite
    from micronn.tflite import load

    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((6, 6, 2)), keras.layers.Conv2D(4, 3, padding="same", name="conv_a"),
                          keras.layers.Lambda(lambda t: keras.ops.cumsum(t, axis=2), name="cumsum_a"),
                          keras.layers.Conv2D(4, 3, name="conv_b"),
                          keras.layers.Lambda(lambda t: keras.ops.sort(t, axis=-1), name="sort_b"),
                          keras.layers.Conv2D(3, 1, name="conv_c"),
                          keras.layers.Lambda(lambda t: keras.ops.cumsum(t, axis=1), name="cumsum_c"),
                          keras.layers.Flatten(), keras.layers.Dense(3, name="dense")])
    calib = np.random.default_rng(0).normal(size=(16, 6, 6, 2)).astype(np.float32)
    d = tmp_path_factory.mktemp("ops")
    path = d / "bad.tflite"
    path.write_bytes(keras_to_tflite(m, calib))
    by_code: dict[str, list[int]] = {}
    for op in load(path).operators:
        by_code.setdefault(op.opcode, []).append(op.index)
    return d, path, by_code


def _listed(err: str) -> dict[int, str]:
    """The error's listing: op index -> its line."""
    lines = err.splitlines()[1:]
    assert all(s.startswith("  op ") for s in lines), err
    return {int(re.match(r"  op (\d+) ", s).group(1)): s for s in lines}


def test_pack_and_inspect_list_every_unsupported_operator(bad):
    d, path, by_code = bad
    expected = ops.check(path.read_bytes())
    want = {p["index"] for p in expected["problems"]}
    cumsums, (topk,) = by_code["CUMSUM"], by_code["TOPK_V2"]
    assert set(cumsums) | {topk} <= want and len(cumsums) == 2 and min(cumsums) < topk < max(cumsums)  # positions
    for cmd in ("pack", "inspect"):
        rc, so, err = run(cmd, path, cwd=d)
        assert rc == 1 and "Traceback" not in err, err
        first = err.splitlines()[0]
        assert first == f"micronn: error: {path}: {len(want)} operators micronn cannot run:", err
        listed = _listed(err)
        assert set(listed) == want, err
        assert "(TOPK_V2)" in listed[topk] and "sort_b" in listed[topk]       # op and tensor names
        assert "not supported by micronn" in listed[topk]
        for i, name in zip(sorted(cumsums), ("cumsum_a", "cumsum_c"), strict=True):
            assert "(CUMSUM)" in listed[i] and name in listed[i] and "not supported by micronn" in listed[i]
        assert not (d / "bad.mnb").exists()


def test_ops_model_marks_exactly_the_unsupported_ones(bad):
    d, path, by_code = bad
    rc, so, err = run("ops", path, "--json", cwd=d)
    assert rc == 1 and err == "", err          # a check that failed: the answer is on stdout
    r = json.loads(so)
    unsupported = {o["index"] for o in r["ops"] if o["status"] == "unsupported"}
    assert unsupported == {p["index"] for p in r["problems"]}
    assert set(by_code["CUMSUM"] + by_code["TOPK_V2"]) <= unsupported
    assert not set(by_code["CONV_2D"] + by_code["FULLY_CONNECTED"]) & unsupported     # those lower
    assert all(o["reason"] for o in r["ops"] if o["status"] == "unsupported")
    assert all(o["reason"] is None for o in r["ops"] if o["status"] != "unsupported")
    rc, so, _ = run("ops", path, cwd=d)
    rows = {int(s.split()[0]): s for s in so.splitlines()[1:] if s.split() and s.split()[0].isdigit()}
    assert {i for i, s in rows.items() if s.split()[1] == "no"} == unsupported
    assert f"{len(unsupported)} micronn cannot run" in so.splitlines()[0]


def test_ops_model_of_a_supported_model(tmp_path):
    keras = pytest.importorskip("keras")
    from micronn.convert import keras_to_tflite

    keras.utils.set_random_seed(1)
    m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="relu"), keras.layers.Dense(2)])
    (tmp_path / "ok.tflite").write_bytes(keras_to_tflite(m, np.random.default_rng(0).normal(size=(16, 4))))
    rc, so, err = run("ops", tmp_path / "ok.tflite", "--json")
    assert rc == 0, err
    r = json.loads(so)
    assert r["supported"] and r["problems"] == [] and {o["status"] for o in r["ops"]} == {"lowered"}


def test_one_problem_stays_the_one_line_error():
    """A lone problem keeps lowering's own message (position and reason), one line."""
    from micronn.tflite import Model, Operator, Tensor

    t = [Tensor(index=i, name=n, shape=(1, 4), shape_signature=None, dtype="int8", buffer=0, data=None,
                scale=np.array([0.1], np.float32), zero_point=np.array([0]), quantized_dimension=0,
                is_variable=False) for i, n in enumerate(("x", "y", "z"))]
    model = Model(3, "", t, [Operator(0, "NON_MAX_SUPPRESSION_V5", 1, None, [0], [1], [], {})], [0], [1], 1, {}, 0)
    first = MicronnError("op 0 (NON_MAX_SUPPRESSION_V5): not supported by micronn (version 1)")
    assert ops.listing_error(model, first, "m.tflite") is first
    # two: listed, in order, with tensor names; the second op's input has a stand-in, so it is checked on its own
    model.operators.append(Operator(1, "CUMSUM", 1, None, [1], [2], [], {}))
    model.outputs = [2]
    e = ops.listing_error(model, first, "m.tflite")
    assert str(e).splitlines() == ["m.tflite: 2 operators micronn cannot run:",
                                   "  op 0 (NON_MAX_SUPPRESSION_V5) x -> y: not supported by micronn (version 1)",
                                   "  op 1 (CUMSUM) y -> z: not supported by micronn (version 1)"]


def test_ops_lists_every_lowering_with_its_limits():
    assert set(lower.LIMITS) == set(lower.LOWERINGS)        # no lowering without its limits, none extra
    rc, so, err = run("ops", "--json")
    assert rc == 0, err
    info = json.loads(so)
    assert [o["op"] for o in info["ops"]] == list(lower.LOWERINGS)
    assert all(o["limits"] and o["becomes"] for o in info["ops"])
    assert info["host_evaluated"] == sorted(lower.FOLDERS)
    conv = next(o for o in info["ops"] if o["op"] == "CONV_2D")
    assert str(lower.GEOM_MAX - 1) in conv["limits"]            # the limits come from the lowering's constants
    assert set(info["lut_ops"]) == {o["op"] for o in info["ops"] if o["becomes"] == "LUT"}
    assert "LOGISTIC" in info["lut_ops"] and "RELU_N1_TO_1" not in info["lut_ops"]
    rc, text, _ = run("ops")
    assert rc == 0 and all(re.search(rf"^{name}\s+->", text, re.M) for name in lower.LOWERINGS)


def test_docs_ops_md_is_generated():
    rc, so, err = run("ops", "--markdown")
    assert rc == 0, err
    assert DOC.read_text() == so, "docs/ops.md is stale: run `micronn ops --markdown > docs/ops.md`"
    for name in lower.LOWERINGS:
        assert f"| `{name}` |" in so
    assert "## Where micronn differs from TFLite Micro" in so and "BUILTIN_REF" in so


def test_every_device_op_has_a_dsp_note():
    """Issue 18: each device op has a DSP path on Cortex-M4/M7 or a note on why the portable
    loop is enough; `micronn ops`, its JSON and docs/ops.md show every one."""
    from micronn import format as fmt

    assert set(ops.DSP_NOTES) == set(fmt.OPCODES), "ops.DSP_NOTES and format.OPCODES differ"
    for name, note in ops.DSP_NOTES.items():
        assert len(note) >= 10 and "TODO" not in note and "no note" not in note, name
        # the variant names it gives are real ones (or op codes)
        names = set(re.findall(r"\b([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)\b", note))
        assert names <= KERNEL_VARIANTS | set(fmt.OPCODES), (name, names - KERNEL_VARIANTS - set(fmt.OPCODES))
    rc, so, err = run("ops", "--json")
    assert rc == 0, err
    assert json.loads(so)["dsp_paths"] == {name: ops.DSP_NOTES[name] for name in fmt.OPCODES}
    rc, text, _ = run("ops")
    assert rc == 0 and all(re.search(rf"^{name}\s+\S", text, re.M) for name in fmt.OPCODES)
    md = ops.markdown()
    assert all(f"| `{name}` | " in md for name in fmt.OPCODES)


def _kernel_variants() -> set[str]:
    """The variant names of cmodule/kernels/mnn_kernels.h's MNN_VARIANTS."""
    text = (Path(__file__).resolve().parents[1] / "cmodule" / "kernels" / "mnn_kernels.h").read_text()
    body = text[text.index("#define MNN_VARIANTS(X)"):]
    body = body[:body.index("#define MNN_VARIANT_ENUM")]
    return set(re.findall(r"X\((\w+)\)", body))


KERNEL_VARIANTS = _kernel_variants()
