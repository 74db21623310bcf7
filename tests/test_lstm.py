"""The fused int8 LSTM (issue 18): tf-keras LSTMs converted to one UNIDIRECTIONAL_SEQUENCE_LSTM
(tests/opzoo/lstm.py), packed to the LSTM op and run as sequences of calls with a reset in the
middle, bit-exact with TFLite Micro (the only oracle: desktop TFLite differs by up to 1). The
hidden and cell states are the model's state: the outputs move from call to call, and a reset
gives the first output again."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from micronn import blob, pack, romfs
from micronn import format as fmt
from micronn.errors import MicronnError
from micronn.firmware import firmware_file
from micronn.lower import lower
from micronn.reference import tflm_run
from micronn.run import io
from micronn.targets import QemuTarget
from micronn.tflite import load

from . import opzoo
from .blobtools import fix_crc, load_error, params_at, tensor_at

CALLS = 8
RESET_AT = 4
NAMES = sorted(n for n in opzoo.cases() if n.startswith("lstm_fused"))
_CACHE: dict = {}


def _tflite(name: str) -> bytes:
    return opzoo.tflite(name)


def _blob(name: str) -> bytes:
    if name not in _CACHE:
        _CACHE[name] = pack(_tflite(name), name=name)
    return _CACHE[name]


def _shape(name: str) -> tuple[int, ...]:
    return tuple(io(_blob(name))["inputs"][0]["shape"])


def _calls(name: str, extreme: bool = False) -> np.ndarray:
    """CALLS inputs of one sample each; the call after the reset repeats the first. extreme:
    -128 and 127 only (gate sums beyond int16, saturated activations, the cell clipped)."""
    rng = np.random.default_rng(opzoo.seed(name) + 7)
    shape = (CALLS, *_shape(name)[1:])
    if extreme:
        xs = rng.choice(np.array([-128, 127], np.int8), size=shape)
    else:
        xs = rng.integers(-128, 128, size=shape).astype(np.int8)
    xs[RESET_AT] = xs[0]
    return xs


def _board(link, xs: np.ndarray, reset_at=(RESET_AT,)) -> np.ndarray:
    ys = []
    for i, x in enumerate(xs):
        if i in reset_at:
            link.reset()
        y, _ = link.run(np.ascontiguousarray(x).tobytes())
        ys.append(np.frombuffer(y, np.int8))
    return np.array(ys)


def _check(name: str, got: np.ndarray, want: np.ndarray) -> None:
    want = want.reshape(len(want), -1)
    assert got.shape == want.shape
    bad = np.argwhere(got != want)
    assert not len(bad), f"{name}: {len(bad)} values differ, first at call/value {bad[0].tolist()}"


def _check_state(want: np.ndarray) -> None:
    # the state matters: consecutive calls differ, and the reset gives the first output again
    assert all(not np.array_equal(want[i], want[i + 1]) for i in range(CALLS - 1)), "outputs do not change"
    assert np.array_equal(want[RESET_AT], want[0])
    assert not np.array_equal(want[RESET_AT], want[RESET_AT - 1])


def test_models_are_one_fused_lstm():
    for name in NAMES:
        ops = [op.opcode for op in load(_tflite(name)).operators]
        assert ops.count("UNIDIRECTIONAL_SEQUENCE_LSTM") == 1 and "WHILE" not in ops, (name, ops)
        info = blob.read(_blob(name))
        assert [op["kind"] for op in info["ops"]].count("LSTM") == 1
        # the hidden (int8) and the cell state (int16, zero point 0) are the model's state
        states = [(t["dtype"], t["zero_point"] if t["dtype"] == "int16" else None)
                  for t in info["tensors"] if t["storage"] == "STATE"]
        assert states == [("int8", None), ("int16", 0)], (name, states)


@pytest.mark.parametrize("name", NAMES)
def test_lstm_unix(unix, name):
    xs = _calls(name)
    want = tflm_run(_tflite(name), xs, reset_at=(RESET_AT,))
    info = unix.link.load(_blob(name))
    units = blob.read(_blob(name))["ops"][0]["params"]["units"]
    assert info.get("state_size", 0) >= 3 * units      # int8 hidden and int16 cell state
    _check(name, _board(unix.link, xs), want)
    _check_state(want.reshape(CALLS, -1))
    # one input over and over: the outputs move only through the state
    same = np.repeat(xs[:1], 3, axis=0)
    unix.link.reset()
    got = _board(unix.link, same, reset_at=())
    _check(name, got, tflm_run(_tflite(name), same))
    assert not np.array_equal(got[0], got[1])
    # saturated gates and the cell clip
    ext = _calls(name, extreme=True)
    unix.link.reset()
    _check(name, _board(unix.link, ext), tflm_run(_tflite(name), ext, reset_at=(RESET_AT,)))


def _batch2_tflite() -> bytes:
    if "batch2" not in _CACHE:
        import tensorflow as tf
        import tf_keras

        tf_keras.utils.set_random_seed(5)
        x = tf_keras.Input((4, 3), batch_size=2)
        m = tf_keras.Model(x, tf_keras.layers.LSTM(6, return_sequences=True)(x))
        calib = np.random.default_rng(0).normal(size=(32, 4, 3)).astype(np.float32)
        conv = tf.lite.TFLiteConverter.from_keras_model(m)
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = lambda: ([calib[i:i + 2]] for i in range(0, len(calib), 2))
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = conv.inference_output_type = tf.int8
        _CACHE["batch2"] = conv.convert()
    return _CACHE["batch2"]


def test_lstm_batch2_unix(unix):
    """Two sequences side by side (Input batch_size=2): two rows of state, run one after the other."""
    from tflite_micro.python.tflite_micro import runtime

    tb = _batch2_tflite()
    xs = np.random.default_rng(1).integers(-128, 128, size=(CALLS, 2, 4, 3)).astype(np.int8)
    xs[RESET_AT] = xs[0]
    it = runtime.Interpreter.from_bytes(tb)
    want = []
    for i, x in enumerate(xs):
        if i == RESET_AT:
            it.reset()
        it.set_input(x, 0)
        it.invoke()
        want.append(np.array(it.get_output(0)).reshape(-1))
    want = np.array(want)
    unix.link.load(pack(tb))
    _check("batch2", _board(unix.link, xs), want)
    _check_state(want)
    assert not np.array_equal(want[:, :24], want[:, 24:])       # the two rows differ


@pytest.mark.parametrize("board, variant", [("qemu-m3", "LSTM"), ("qemu-m4", "LSTM_DSP")])
def test_lstm_qemu(board, variant):
    """Every model on the portable kernel (Cortex-M3) and the SMLAD one (Cortex-M4)."""
    if not firmware_file(board).exists():
        pytest.skip(f"{board} firmware not built: run `make firmware-all`")
    files = {f"{n}.mnb": _blob(n) for n in NAMES}
    with QemuTarget(board, romfs=romfs.build(files)) as t:
        t.setup()
        t.serve()
        t.link.info()                       # variant counts start from here
        for name in NAMES:
            t.link.open(f"/rom/{name}.mnb")
            for extreme in (False, True):
                xs = _calls(name, extreme)
                t.link.reset()
                _check(name, _board(t.link, xs), tflm_run(_tflite(name), xs, reset_at=(RESET_AT,)))
        assert t.link.info()["variants"].get(variant) == 2 * CALLS * len(NAMES)


# --- lowering refusals ----------------------------------------------------------

def _modified(name: str, edit) -> bytes:
    import flatbuffers
    from tensorflow.lite.python import schema_py_generated as s

    m = s.ModelT.InitFromPackedBuf(bytearray(_tflite(name)), 0)
    edit(m, s)
    fb = flatbuffers.Builder(1024)
    fb.Finish(m.Pack(fb), file_identifier=b"TFL3")
    return bytes(fb.Output())


def _lstm_op(m, s):
    sg = m.subgraphs[0]
    return next(op for op in sg.operators
                if m.operatorCodes[op.opcodeIndex].builtinCode == s.BuiltinOperator.UNIDIRECTIONAL_SEQUENCE_LSTM)


def test_lowering_refuses_what_it_does_not_run():
    def opt(field, value):
        def edit(m, s):
            setattr(_lstm_op(m, s).builtinOptions, field, value)
        return edit

    def not_variable(k):
        def edit(m, s):
            m.subgraphs[0].tensors[_lstm_op(m, s).inputs[k]].isVariable = False
        return edit

    def cell_int8(m, s):
        m.subgraphs[0].tensors[_lstm_op(m, s).inputs[19]].type = s.TensorType.INT8

    def peephole(m, s):
        op = _lstm_op(m, s)
        op.inputs[10] = op.inputs[13]       # any tensor where the forget peephole goes

    def cifg(m, s):
        op = _lstm_op(m, s)
        op.inputs[1] = op.inputs[5] = op.inputs[12] = -1

    def per_channel(m, s):
        q = m.subgraphs[0].tensors[_lstm_op(m, s).inputs[2]].quantization
        n = len(q.scale) if q.scale is not None else 1
        q.scale = [float(q.scale[0])] * 8 if n == 1 else q.scale
        q.zeroPoint = [0] * 8
        q.quantizedDimension = 0

    cases = [
        (opt("timeMajor", True), "time-major"),
        (opt("fusedActivationFunction", 1), "cell gate activation RELU"),
        (not_variable(18), "variable tensor"),
        (not_variable(19), "variable tensor"),
        (cell_int8, "int8 cell state"),
        (peephole, "peephole"),
        (cifg, "CIFG"),
        (per_channel, "per-tensor scale"),
    ]
    for edit, says in cases:
        with pytest.raises(MicronnError) as e:
            lower(load(_modified("lstm_fused", edit)))
        msg = str(e.value)
        assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in msg and says in msg, (says, msg)


# --- loader refusals ------------------------------------------------------------

def _params_at(data: bytes) -> int:
    return params_at(data, "LSTM")


def _set_param(data: bytes, **fields) -> bytes:
    b = bytearray(data)
    rec = fmt.OP_PARAMS["LSTM"]
    for field, value in fields.items():
        name, _, k = field.partition("__")
        f = next(f for f in rec.fields if f.name == name)
        at = _params_at(data) + rec.offsets[name] + 4 * int(k or 0)
        struct.pack_into("<" + {"u32": "I", "i32": "i"}[f.type], b, at, value)
    return fix_crc(b)


def _set_state(data: bytes, which: int, **fields) -> bytes:
    """Change STATE tensor `which` (0: the hidden state, 1: the cell state)."""
    b = bytearray(data)
    info = blob.read(data)
    i = [k for k, t in enumerate(info["tensors"]) if t["storage"] == "STATE"][which]
    at = tensor_at(data, i)
    for field, value in fields.items():
        f = next(f for f in fmt.TENSOR.fields if f.name == field)
        if f.count > 1:
            struct.pack_into(f"<{f.count}I", b, at + fmt.TENSOR.offsets[field], *value)
        else:
            struct.pack_into("<" + {"u8": "B", "u32": "I", "i32": "i", "f32": "f"}[f.type], b,
                             at + fmt.TENSOR.offsets[field], value)
    return fix_crc(b)


def test_loader_refuses_bad_lstm(unix):
    good = _blob("lstm_fused_seq")         # batch 1, 3 steps, 2 inputs, 4 units
    unix.link.load(good)
    hidden_zp = fmt.OP_PARAMS["LSTM"].unpack(good, _params_at(good))["hidden_zero_point"]
    cases = [
        (_set_param(good, units=5), "input weights size"),
        (_set_param(good, units=0), "lstm size"),
        (_set_param(good, steps=1 << 24), "lstm size"),
        (_set_param(good, batches=0xffffff, steps=0xffffff), "dimensions overflow"),
        (_set_param(good, input_size=3), "input size"),
        (_set_param(good, time_major=2), "lstm time_major"),
        (_set_param(good, input_shift__2=31), "requantization shift"),
        (_set_param(good, recurrent_shift__3=-32), "requantization shift"),
        (_set_param(good, hidden_mult=-5), "requantization multiplier"),
        (_set_param(good, cell_clip=-1), "lstm cell clip"),
        (_set_param(good, cell_clip=32768), "lstm cell clip"),
        (_set_param(good, cell_tanh_mult=0), "lstm cell tanh multiplier"),
        (_set_param(good, cell_tanh_mult=40000), "lstm cell tanh multiplier"),
        (_set_param(good, cell_tanh_shift=32), "lstm cell tanh shift"),
        (_set_param(good, input_offset=300), "input offset"),
        (_set_param(good, hidden_zero_point=hidden_zp + 1), "lstm hidden state zero point"),
        (_set_param(good, hidden_zero_point=200), "hidden zero point"),
        (_set_state(good, 1, zero_point=3), "lstm cell state zero point"),
        (_set_state(good, 1, storage=fmt.STORAGE["CONST"]), "lstm cell state"),
        (_set_state(good, 0, dims=(1, 5, 1, 1), nbytes=5), "lstm hidden state"),
    ]
    for data, says in cases:
        msg = load_error(unix, data)
        assert says in msg, (says, msg)
    unix.link.load(good)    # and the good blob still loads
