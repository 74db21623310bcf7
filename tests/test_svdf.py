"""SVDF (issue 18): int8 SVDF models written as flatbuffers (tests/svdf_models.py),
packed, and run as sequences of calls with a reset in the middle, bit-exact with
TFLite Micro on the unix port, qemu-m3 and qemu-m4; the state lives in the model's
state memory and matters (the outputs change from call to call, reset brings the
first ones back). TFLite Micro cannot run an SVDF without bias (its Prepare reads
the bias's scale): that model's oracle is desktop TFLite's reference kernels, which
equal TFLite Micro on the models with bias. Loader refusals of damaged SVDF records."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from micronn import blob, pack, romfs
from micronn import format as fmt
from micronn.errors import MicronnError
from micronn.firmware import firmware_file
from micronn.lower import lower
from micronn.targets import QemuTarget
from micronn.tflite import load

from . import svdf_models as sm
from .blobtools import fix_crc, load_error, params_at, tensor_at

CALLS = 8
RESET_AT = 4
NAMES = sorted(sm.MODELS)


def _tflite(name: str) -> bytes:
    return _cache("tfl", name, lambda: sm.make_tflite(name))


def _blob(name: str) -> bytes:
    return _cache("mnb", name, lambda: pack(_tflite(name), name=name))


_CACHE: dict = {}


def _cache(kind: str, name: str, make):
    if (kind, name) not in _CACHE:
        _CACHE[kind, name] = make()
    return _CACHE[kind, name]


def _calls(name: str) -> np.ndarray:
    """CALLS inputs; the call after the reset repeats the first (so its output must too)."""
    xs = sm.int8_inputs(name, CALLS, salt=7)
    xs[RESET_AT] = xs[0]
    return xs


def _extreme(name: str) -> np.ndarray:
    """Inputs of -128 and 127 only: feature sums beyond the state's int16 range (clamped)."""
    c = sm.MODELS[name]
    return np.random.default_rng(sm.seed(name)).choice(np.array([-128, 127], np.int8),
                                                        size=(CALLS, c.batch, c.input_size))


def _reference(name: str, xs: np.ndarray, reset_at=(RESET_AT,)) -> np.ndarray:
    if sm.MODELS[name].bias:
        return sm.tflm_sequence(_tflite(name), xs, reset_at)
    return _ref_sequence(_tflite(name), xs, reset_at)


def _ref_sequence(tfl: bytes, xs: np.ndarray, reset_at=()) -> np.ndarray:
    """Desktop TFLite's reference kernels (BUILTIN_REF) over a sequence of calls."""
    from micronn.reference import _builtin_ref

    it = _builtin_ref(tfl)
    ind, outd = it.get_input_details()[0], it.get_output_details()[0]
    ys = []
    for i, x in enumerate(xs):
        if i in reset_at:
            it.reset_all_variables()
        it.set_tensor(ind["index"], x)
        it.invoke()
        ys.append(it.get_tensor(outd["index"]).copy())
    return np.array(ys)


def _board(link, name: str, xs: np.ndarray, reset_at=(RESET_AT,)) -> np.ndarray:
    c = sm.MODELS[name]
    ys = []
    for i, x in enumerate(xs):
        if i in reset_at:
            link.reset()
        y, _ = link.run(np.ascontiguousarray(x).tobytes())
        ys.append(np.frombuffer(y, np.int8).reshape(c.batch, c.units))
    return np.array(ys)


def _check_sequence(name: str, got: np.ndarray, want: np.ndarray) -> None:
    assert got.shape == want.shape
    bad = np.argwhere(got != want)
    assert not len(bad), f"{name}: {len(bad)} values differ, first at call/batch/unit {bad[0].tolist()}"
    # the state matters: consecutive calls differ, and the reset gives the first output again
    assert all(not np.array_equal(want[i], want[i + 1]) for i in range(CALLS - 1)), "outputs do not change"
    assert np.array_equal(want[RESET_AT], want[0])
    assert not np.array_equal(want[RESET_AT], want[RESET_AT - 1])


# --- the oracle ---------------------------------------------------------------

def test_models_are_svdf():
    for name in NAMES:
        m = load(_tflite(name))
        assert [op.opcode for op in m.operators] == ["SVDF"]
        st = m.tensors[m.operators[0].inputs[4]]
        assert st.is_variable and st.dtype == "int16" and int(st.zero_point[0]) == 0


def test_reference_kernels_equal_tflm_with_bias():
    """Where TFLite Micro runs SVDF (with bias; desktop TFLite's integer SVDF wants RELU),
    its outputs and BUILTIN_REF's are the same: BUILTIN_REF can stand in without bias."""
    name = "svdf_r2_b2_relu"
    xs = _calls(name)
    assert np.array_equal(sm.tflm_sequence(_tflite(name), xs, (RESET_AT,)), _ref_sequence(_tflite(name), xs,
                                                                                           (RESET_AT,)))


def test_tflm_cannot_run_svdf_without_bias(tmp_path):
    """TFLite Micro's SVDF Prepare reads the bias's scale: without bias the process dies."""
    path = tmp_path / "nobias.tflite"
    path.write_bytes(_tflite("svdf_r2_nobias"))
    code = ("import sys, numpy as np\n"
            "from tflite_micro.python.tflite_micro import runtime\n"
            f"it = runtime.Interpreter.from_bytes(open({str(path)!r}, 'rb').read())\n"
            "it.set_input(np.zeros((1, 16), np.int8), 0)\n"
            "it.invoke()\n"
            "print('ran')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and "ran" not in r.stdout


# --- on the boards ------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_svdf_unix(unix, name):
    xs = _calls(name)
    want = _reference(name, xs)
    info = unix.link.load(_blob(name))
    c = sm.MODELS[name]
    assert info.get("state_size", 0) >= c.batch * c.num_filters * c.memory * 2
    _check_sequence(name, _board(unix.link, name, xs), want)
    # one input over and over: the outputs move only through the state
    same = np.repeat(xs[:1], 3, axis=0)
    unix.link.reset()
    got = _board(unix.link, name, same, reset_at=())
    assert np.array_equal(got, _reference(name, same, reset_at=()))
    assert not np.array_equal(got[0], got[1]) and not np.array_equal(got[1], got[2])
    # the int16 clamp of the state
    ext = _extreme(name)
    unix.link.reset()
    assert np.array_equal(_board(unix.link, name, ext, reset_at=()), _reference(name, ext, reset_at=()))


@pytest.mark.parametrize("board, variant", [("qemu-m3", "SVDF"), ("qemu-m4", "SVDF_DSP")])
def test_svdf_qemu(board, variant):
    """Every model on the portable kernel (Cortex-M3) and the SMLAD one (Cortex-M4)."""
    if not firmware_file(board).exists():
        pytest.skip(f"{board} firmware not built: run `make firmware-all`")
    files = {f"{n}.mnb": _blob(n) for n in NAMES}
    with QemuTarget(board, romfs=romfs.build(files)) as t:
        t.setup()
        t.serve()
        t.link.info()                       # variant counts start from here
        for name in NAMES:
            xs = _calls(name)
            t.link.open(f"/rom/{name}.mnb")
            _check_sequence(name, _board(t.link, name, xs), _reference(name, xs))
            ext = _extreme(name)
            t.link.reset()
            assert np.array_equal(_board(t.link, name, ext, reset_at=()), _reference(name, ext, reset_at=()))
        assert t.link.info()["variants"] == {variant: 2 * CALLS * len(NAMES)}


def test_model_reset_in_a_script(unix, tmp_path):
    """Model.reset() on the board itself: the same input after a reset gives the first output again."""
    from .conftest import micropython

    name = "svdf_r1"
    (tmp_path / "m.mnb").write_bytes(_blob(name))
    x = bytes(np.ascontiguousarray(_calls(name)[0]).tobytes())
    script = (
        "import micronn\n"
        "m = micronn.Model(open('m.mnb', 'rb').read())\n"
        f"x = {x!r}\n"
        "a = bytes(m.run(x)); b = bytes(m.run(x)); m.reset(); c = bytes(m.run(x))\n"
        "print('state', m.state_size, a != b, a == c)\n")
    out = micropython(script, tmp_path)
    c = sm.MODELS[name]
    assert f"state {c.batch * c.num_filters * c.memory * 2} True True" in out


# --- lowering refusals ----------------------------------------------------------

def _modified(name: str, edit) -> bytes:
    import flatbuffers
    from tensorflow.lite.python import schema_py_generated as s

    m = s.ModelT.InitFromPackedBuf(bytearray(_tflite(name)), 0)
    edit(m, s)
    fb = flatbuffers.Builder(1024)
    fb.Finish(m.Pack(fb), file_identifier=b"TFL3")
    return bytes(fb.Output())


def _refusal(tfl: bytes) -> str:
    with pytest.raises(MicronnError) as e:
        lower(load(tfl))
    return str(e.value)


def test_lowering_refuses_what_it_does_not_run():
    def opt(field, value):
        def edit(m, s):
            setattr(m.subgraphs[0].operators[0].builtinOptions, field, value)
        return edit

    def state_type(m, s):
        m.subgraphs[0].tensors[m.subgraphs[0].operators[0].inputs[4]].type = s.TensorType.INT8

    def not_variable(m, s):
        m.subgraphs[0].tensors[m.subgraphs[0].operators[0].inputs[4]].isVariable = False

    cases = [
        (opt("asymmetricQuantizeInputs", True), "asymmetric_quantize_inputs"),
        (opt("fusedActivationFunction", 3), "fused activation RELU6"),
        (opt("rank", 3), "rank 3 does not divide"),
        (state_type, "int8"),
        (not_variable, "variable tensor"),
    ]
    for edit, says in cases:
        msg = _refusal(_modified("svdf_r1", edit))
        assert "SVDF" in msg and says in msg, msg


# --- loader refusals ------------------------------------------------------------

def _svdf_params_at(data: bytes) -> int:
    return params_at(data, "SVDF")


def _state_index(data: bytes) -> int:
    info = blob.read(data)
    return next(i for i, t in enumerate(info["tensors"]) if t["storage"] == "STATE")


def _set_param(data: bytes, **fields) -> bytes:
    b = bytearray(data)
    rec = fmt.OP_PARAMS["SVDF"]
    for field, value in fields.items():
        f = next(f for f in rec.fields if f.name == field)
        struct.pack_into("<" + {"u32": "I", "i32": "i"}[f.type], b, _svdf_params_at(data) + rec.offsets[field], value)
    return fix_crc(b)


def _set_state(data: bytes, **fields) -> bytes:
    b = bytearray(data)
    at = tensor_at(data, _state_index(data))
    for field, value in fields.items():
        f = next(f for f in fmt.TENSOR.fields if f.name == field)
        if f.count > 1:
            struct.pack_into(f"<{f.count}I", b, at + fmt.TENSOR.offsets[field], *value)
        else:
            struct.pack_into("<" + {"u8": "B", "u32": "I", "i32": "i", "f32": "f"}[f.type], b,
                             at + fmt.TENSOR.offsets[field], value)
    return fix_crc(b)


def test_loader_refuses_bad_svdf(unix):
    good = _blob("svdf_r2_b2_relu")        # batch 2, 12 filters, memory 4, rank 2
    unix.link.load(good)
    n = 2 * 12 * 4
    cases = [
        (_set_state(good, dtype=fmt.DTYPES["int8"], dims=(2, 96, 1, 1), nbytes=2 * n), "svdf state"),
        (_set_state(good, dims=(2, 40, 1, 1), nbytes=160), "svdf state"),
        (_set_state(good, storage=fmt.STORAGE["CONST"]), "svdf state"),
        (_set_state(good, zero_point=3), "svdf state zero point"),
        (_set_param(good, feature_shift=31), "requantization shift"),
        (_set_param(good, time_shift=-32), "requantization shift"),
        (_set_param(good, rank=5), "rank does not divide"),
        (_set_param(good, rank=0), "svdf size"),
        (_set_param(good, memory=5), "weights_time size"),
        (_set_param(good, memory=1 << 24), "svdf size"),
        (_set_param(good, num_filters=0xfffffe, memory=0xffffff), "dimensions overflow"),
        (_set_param(good, batches=3), "input size"),
        (_set_param(good, input_offset=300), "input offset"),
        (_set_param(good, output_offset=128), "output offset"),
    ]
    for data, says in cases:
        msg = load_error(unix, data)
        assert says in msg, (says, msg)
    unix.link.load(good)    # and the good blob still loads


def test_ops_table_names_svdf():
    from micronn.lower import LIMITS

    assert "SVDF" in LIMITS and "Model.reset()" in LIMITS["SVDF"][1]
    text = Path(__file__).resolve().parents[1].joinpath("docs", "ops.md").read_text()
    assert "SVDF" in text
