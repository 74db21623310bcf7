"""int16 activations (TFLite's 16x8 mode, issue 14) for ADD, MUL, MAX_POOL_2D,
AVERAGE_POOL_2D, SOFTMAX, TANH, LOGISTIC, QUANTIZE (requantization), RESHAPE, PAD and
CONCATENATION: models converted by TensorFlow in 16x8 mode (tests/s16x_models.py) run
bit-exact against TFLite Micro on the unix port (one test per model; TANH and LOGISTIC
on every int16 input) and on qemu-m4 and qemu-m3 (one boot, every blob from ROMFS);
REQUANT between int8 and int16 against TFLite's Requantize arithmetic; the loader's
refusals of corrupted records; the host's refusals."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from micronn import blob, pack, romfs
from micronn import format as fmt
from micronn import lower as _lower  # noqa: F401  (first: lower.py imports the group modules)
from micronn import tflite as tfl_reader
from micronn.errors import MicronnError
from micronn.firmware import firmware_file
from micronn.graph import Graph, Op, Tensor
from micronn.lower_s16x import SIGMOID_TABLE_U16, softmax_tables
from micronn.lut import _mbqm
from micronn.quant import quantize_multiplier
from micronn.reference import tflm_run
from micronn.targets import QemuTarget

from . import s16x_models as models
from .blobtools import fix_crc, load_error
from .conftest import SUMMARY

NAMES = sorted(models.MODELS)
SAMPLES = 8


def _samples(name: str) -> int:
    """8, or enough to hold every int16 value (TANH and LOGISTIC models)."""
    size = int(np.prod(models.MODELS[name].shape))
    return max(SAMPLES, 65536 // size) if 65536 % size == 0 and size >= 1024 else SAMPLES


def _converted(name: str) -> tuple[bytes, bytes]:
    tfl = models.tflite(name)
    ops = [op.opcode for op in tfl_reader.load(tfl).operators]
    for want in models.MODELS[name].ops.split():
        assert want in ops, f"{want} not in the converted model: {ops}"
    return tfl, pack(tfl, name=name)


def _run(link, x: np.ndarray, like: np.ndarray) -> np.ndarray:
    ys = [np.frombuffer(link.run(x[i].tobytes())[0], dtype=like.dtype) for i in range(len(x))]
    return np.stack(ys).reshape(like.shape)


def _compare(got: np.ndarray, want: np.ndarray) -> str:
    if not np.array_equal(got, want):
        return f"DIFF {np.count_nonzero(got != want)} of {want.size}"
    if len(np.unique(want)) < min(16, want.size // 4):
        return f"FEW VALUES ({len(np.unique(want))}): the test does not exercise the op"
    return "exact"


def test_models_cover_the_ops():
    ops = " ".join(c.ops for c in models.MODELS.values()).split()
    for op in ("ADD", "MUL", "MAX_POOL_2D", "AVERAGE_POOL_2D", "SOFTMAX", "TANH", "LOGISTIC", "QUANTIZE",
               "RESHAPE", "PAD", "CONCATENATION"):
        assert op in ops or op == "QUANTIZE", op
    kinds = {op.kind for n in NAMES for op in _lower.lower(tfl_reader.load(models.tflite(n))).ops}
    assert kinds >= {"ADD_S16", "MUL_S16", "MAX_POOL_S16", "AVG_POOL_S16", "SOFTMAX_S16", "TANH_S16",
                     "LOGISTIC_S16", "REQUANT", "PAD_S16", "CONCATENATION_S16", "CONV_2D_S16",
                     "DEPTHWISE_CONV_2D_S16", "FULLY_CONNECTED_S16"}, kinds


@pytest.mark.parametrize("name", NAMES)
def test_s16_model_unix(unix, name):
    tfl, data = _converted(name)
    x = models.inputs(name, _samples(name))
    assert x.min() == -32768 and x.max() == 32767
    want = tflm_run(tfl, x)
    assert want.dtype == np.int16
    unix.link.load(data)
    assert _compare(_run(unix.link, x, want), want) == "exact"


def test_tables_are_what_the_kernels_expect():
    """The softmax exp table is positive at its end (the loader's rule) and decreasing to exp(0) = 1;
    the reciprocal table goes from 1 to 1/2; the sigmoid table rises from 1/2 to 1 (0.16 fixed point)."""
    exp_t, recip_t = softmax_tables()
    assert exp_t.shape == recip_t.shape == (513,)
    assert exp_t.min() >= 0 and exp_t[-2:].min() >= 1 and exp_t[-1] == 32767
    assert (np.diff(exp_t.astype(int)) >= 0).all() and (np.diff(recip_t.astype(int)) <= 0).all()
    assert recip_t[0] == 32767 and recip_t[-1] == 16384
    s = np.array(SIGMOID_TABLE_U16)
    assert s.size == 256 and s[0] == 32768 and s[-1] == 65535 and (np.diff(s) >= 0).all()


# --- REQUANT between int8 and int16 (no converter model has one) -------------------

def _requant_graph(s_in, zp_in, s_mid, s_out, zp_out) -> tuple[Graph, list]:
    """int8 -> int16 -> int8 through two REQUANTs; returns the graph and the REQUANT parameters."""
    g = Graph()
    x = g.add(Tensor("x", "int8", (1, 256), s_in, zp_in))
    m = g.add(Tensor("m", "int16", (1, 256), s_mid, 0))
    y = g.add(Tensor("y", "int8", (1, 256), s_out, zp_out))
    ps = []
    for a, b in ((x, m), (m, y)):
        ta, tb = g.tensors[a], g.tensors[b]
        mult, shift = quantize_multiplier(float(np.float32(ta.scale)) / float(np.float32(tb.scale)))
        p = dict(count=256, input_zero_point=ta.zero_point, mult=mult, shift=shift, output_offset=tb.zero_point)
        g.ops.append(Op("REQUANT", [a], [b], p))
        ps.append(p)
    g.inputs, g.outputs = [x], [y]
    return g, ps


def _requantize(x, p, lo, hi):
    """TFLite's Requantize in Python integers."""
    return [min(max(_mbqm(int(v) - p["input_zero_point"], p["mult"], p["shift"]) + p["output_offset"], lo), hi)
            for v in x]


@pytest.mark.parametrize("scales", [(0.05, 3, 0.0004, 0.07, -5), (0.02, -128, 0.001, 0.03, -100),
                                    (0.5, 0, 2.0 ** -8, 0.5, 0)])
def test_requant_int8_int16(unix, scales):
    g, (p1, p2) = _requant_graph(*scales)
    unix.link.load(blob.write(g))
    x = np.arange(-128, 128, dtype=np.int8)
    got = np.frombuffer(unix.link.run(x.tobytes())[0], np.int8)
    mid = _requantize(x, p1, -32768, 32767)
    want = np.array(_requantize(mid, p2, -128, 127), np.int8)
    assert np.array_equal(got, want)
    assert len(np.unique(want)) > 16


# --- the loader's refusals ---------------------------------------------------------

def _op_at(data: bytes, kind: str) -> tuple[int, dict]:
    """Offset and header of the blob's first op of this kind."""
    h = fmt.HEADER.unpack(data)
    for k in range(h["section_count"]):
        s = fmt.SECTION.unpack(data, fmt.HEADER.size + k * fmt.SECTION.size)
        if s["id"] == fmt.SECTION_IDS["OPS"]:
            pos = s["offset"]
    for _ in range(h["op_count"]):
        op = fmt.OP.unpack(data, pos)
        if op["opcode"] == fmt.OPCODES[kind]:
            return pos, op
        pos += op["size"]
    raise AssertionError(f"no {kind} op")


def _op_params_at(data: bytes, kind: str) -> int:
    """Offset of the parameter record of the blob's first op of this kind."""
    pos, op = _op_at(data, kind)
    return pos + op["size"] - op["params_size"]


def _patch(data: bytes, kind: str, field: str, value: int, k: int = 0) -> bytes:
    b = bytearray(data)
    f = next(f for f in fmt.OP_PARAMS[kind].fields if f.name == field)
    at = _op_params_at(data, kind) + fmt.OP_PARAMS[kind].offsets[field] + 4 * k
    struct.pack_into("<I" if f.type == "u32" else "<i", b, at, value)
    return fix_crc(b)


def _const_at(data: bytes, kind: str, operand: int) -> int:
    """Blob offset of the constant data of operand k of the first op of this kind."""
    info = blob.read(data)
    op = next(o for o in info["ops"] if o["kind"] == kind)
    t = info["tensors"][op["inputs"][operand]]
    h = fmt.HEADER.unpack(data)
    for k in range(h["section_count"]):
        s = fmt.SECTION.unpack(data, fmt.HEADER.size + k * fmt.SECTION.size)
        if s["id"] == fmt.SECTION_IDS["CONST"]:
            return s["offset"] + t["offset"]
    raise AssertionError("no CONST section")


# (model, op, field, element, value, what the loader says)
REFUSALS = [
    ("s16_add", "ADD_S16", "input1_offset", 0, 1, "int16 offsets must be 0"),
    ("s16_add", "ADD_S16", "output_offset", 0, -3, "int16 offsets must be 0"),
    ("s16_add", "ADD_S16", "left_shift", 0, 16, "left shift"),
    ("s16_add", "ADD_S16", "act_max", 0, 32768, "activation range"),
    ("s16_add", "ADD_S16", "output_shift", 0, 31, "requantization shift"),
    ("s16_add", "ADD_S16", "dims", 3, 4, "broadcast strides reach past an input"),
    ("s16_mul_bcast", "MUL_S16", "stride2", 3, 2, "broadcast strides reach past an input"),
    ("s16_mul_bcast", "MUL_S16", "act_min", 0, -32769, "activation range"),
    ("s16_pools", "MAX_POOL_S16", "k_h", 0, 1 << 24, "geometry value"),
    ("s16_pools", "MAX_POOL_S16", "k_h", 0, 1 << 16, "pool window"),
    ("s16_pools", "AVG_POOL_S16", "k_w", 0, 22000, "pool window"),
    ("s16_pools", "AVG_POOL_S16", "out_c", 0, 5, "pool channels"),
    ("s16_softmax", "SOFTMAX_S16", "row_size", 0, 65536, "softmax row size"),
    ("s16_softmax", "SOFTMAX_S16", "input_shift", 0, 16, "softmax input shift"),
    ("s16_softmax", "SOFTMAX_S16", "rows", 0, 3, "input size"),
    ("s16_tanh", "TANH_S16", "input_mult", 0, 32768, "input multiplier"),
    ("s16_tanh", "TANH_S16", "input_shift", 0, 32, "input shift"),
    ("s16_logistic", "LOGISTIC_S16", "input_mult", 0, -1, "input multiplier"),
    ("s16_logistic", "LOGISTIC_S16", "count", 0, 1023, "input size"),
    ("s16_concat", "REQUANT", "shift", 0, 31, "requantization shift"),
    ("s16_concat", "REQUANT", "input_zero_point", 0, 32768, "input zero point"),
    ("s16_concat", "REQUANT", "count", 0, 16, "input size"),
    ("s16_concat", "CONCATENATION_S16", "outer", 0, 7, "input size not a multiple of outer"),
    ("s16_pad_reshape", "PAD_S16", "value", 0, 40000, "pad value"),
    ("s16_pad_reshape", "PAD_S16", "after", 3, 1, "output size"),
]


@pytest.mark.parametrize("case", REFUSALS, ids=[f"{c[1]}-{c[2]}-{c[4]}" for c in REFUSALS])
def test_corrupt_records_are_refused(unix, case):
    name, kind, field, k, value, expect = case
    _, data = _converted(name)
    msg = load_error(unix, _patch(data, kind, field, value, k))
    assert "bad op" in msg and expect in msg, msg


def test_every_new_op_has_a_refusal():
    kinds = {c[1] for c in REFUSALS}
    new = {k for k, v in fmt.OPCODES.items() if 64 <= v <= 79}
    assert new == kinds, new - kinds


def test_bad_tables_are_refused(unix):
    _, data = _converted("s16_softmax")
    at = _const_at(data, "SOFTMAX_S16", 1)
    for j, v in ((512, 0), (511, 0), (7, -1)):
        b = bytearray(data)
        struct.pack_into("<h", b, at + 2 * j, v)
        assert "softmax exp table" in load_error(unix, fix_crc(b))
    # operand 1 (the exp table) set to the input tensor: arena storage, another size
    pos, _ = _op_at(data, "SOFTMAX_S16")
    b = bytearray(data)
    b[pos + fmt.OP.size + 2:pos + fmt.OP.size + 4] = b[pos + fmt.OP.size:pos + fmt.OP.size + 2]
    assert "exp table" in load_error(unix, fix_crc(b))


def test_misaligned_int16_constant_is_refused(unix):
    """ADD_S16 reads a constant input as int16_t: its offset in the constant data must be even."""
    _, data = _converted("s16_add_const")
    info = blob.read(data)
    op = next(o for o in info["ops"] if o["kind"] == "ADD_S16")
    k = next(i for i in op["inputs"] if info["tensors"][i]["storage"] == "CONST")
    h = fmt.HEADER.unpack(data)
    for j in range(h["section_count"]):
        sec = fmt.SECTION.unpack(data, fmt.HEADER.size + j * fmt.SECTION.size)
        if sec["id"] == fmt.SECTION_IDS["TENSORS"]:
            at = sec["offset"] + k * fmt.TENSOR.size + fmt.TENSOR.offsets["offset"]
    b = bytearray(data)
    struct.pack_into("<I", b, at, struct.unpack_from("<I", b, at)[0] + 1)
    assert "int16 constant misaligned" in load_error(unix, fix_crc(b))


def test_int8_ops_refuse_int16_tensors():
    """An int8 lowering given an int16 activation refuses it naming the op (it is not run as int8)."""
    m = tfl_reader.load(models.tflite("s16_add"))
    low = _lower.Lowering(m)
    low.run()
    add = next(op for op in m.operators if op.opcode == "ADD")
    with pytest.raises(MicronnError, match="is int16; micronn runs ADD on int8 activations"):
        _lower.lower_binary(low, add)


def test_float_interface_runs(unix):
    """A 16x8 model with a float interface (QUANTIZE to int16 first, DEQUANTIZE of int16 last): the
    board converts the floats (the blob's FLOAT_INPUT/FLOAT_OUTPUT flags), bit-exact with TFLite Micro
    (more: tests/test_float16.py)."""
    tfl = models.tflite("s16_add", float_io=True)
    ops = [op.opcode for op in tfl_reader.load(tfl).operators]
    assert ops[0] == "QUANTIZE" and ops[-1] == "DEQUANTIZE"
    data = pack(tfl)
    assert "REQUANT" not in [op["kind"] for op in blob.read(data)["ops"]]
    x = np.random.default_rng(1).normal(size=(SAMPLES, *models.MODELS["s16_add"].shape)).astype(np.float32) * 3
    want = tflm_run(tfl, x)
    assert want.dtype == np.float32
    info = unix.link.load(data)
    assert info["input_dtype"] == info["output_dtype"] == "float32"
    assert np.array_equal(_run(unix.link, x, want).view(np.uint32), want.view(np.uint32))


def test_int16_softmax_scale_is_checked():
    tfl = models.tflite("s16_softmax")
    m = tfl_reader.load(tfl)
    out = m.tensors[m.operators[-1].outputs[0]]
    out.scale = np.array([1 / 256], np.float32)
    with pytest.raises(MicronnError, match="scale 1/32768"):
        _lower.lower(m)


@pytest.mark.parametrize("board", ["qemu-m4", "qemu-m3"])
def test_s16_models_qemu(board):
    if not firmware_file(board).exists():
        pytest.skip(f"{board} firmware not built: run `make firmware-all`")
    models_ = {n: _converted(n) for n in NAMES}
    row = {}
    with QemuTarget(board, romfs=romfs.build({f"{n}.mnb": b for n, (_, b) in models_.items()})) as t:
        t.setup()
        t.serve()
        for name, (tfl, _) in models_.items():
            x = models.inputs(name, _samples(name))
            want = tflm_run(tfl, x)
            t.link.open(f"/rom/{name}.mnb")
            row[name] = _compare(_run(t.link, x, want), want)
    bad = {n: v for n, v in row.items() if v != "exact"}
    SUMMARY.append(f"int16 (16x8) models of ADD/MUL/pooling/softmax/tanh/logistic/requant on {board}: "
                   f"{len(row) - len(bad)} of {len(row)} bit-exact")
    assert not bad, f"{board}: {bad}"


def test_pack_keras_with_int16_activations(unix, tmp_path):
    """`micronn pack MODEL.keras --calib C.npy --activations int16`: TensorFlow Lite's 16x8
    conversion, then the S16 and S16X ops, bit-exact with TFLite Micro; the option is refused
    for a .tflite and with another calibration method."""
    import subprocess
    import sys

    from micronn.convert import keras_to_tflite

    name = "s16_cnn"
    model = models.keras_model(name)
    model.save(tmp_path / "cnn.keras")
    np.save(tmp_path / "calib.npy", np.concatenate(models.calibration(name)))

    def cli(*args):
        p = subprocess.run([sys.executable, "-m", "micronn.cli", *map(str, args)], capture_output=True, text=True,
                           cwd=tmp_path, timeout=600)
        return p.returncode, p.stdout + p.stderr

    rc, out = cli("pack", "cnn.keras", "--calib", "calib.npy", "--activations", "int16", "-o", "cnn.mnb",
                  "--keep-tflite", "cnn.tflite")
    assert rc == 0, out
    data = (tmp_path / "cnn.mnb").read_bytes()
    kinds = {o["kind"] for o in blob.read(data)["ops"]}
    assert {"CONV_2D_S16", "DEPTHWISE_CONV_2D_S16", "FULLY_CONNECTED_S16", "SOFTMAX_S16"} <= kinds, kinds
    tfl = (tmp_path / "cnn.tflite").read_bytes()
    assert tfl == keras_to_tflite(tmp_path / "cnn.keras", tmp_path / "calib.npy", activations="int16")
    x = models.inputs(name, SAMPLES)
    want = tflm_run(tfl, x)
    unix.link.load(data)
    assert _compare(_run(unix.link, x, want), want) == "exact"
    rc, out = cli("pack", "cnn.tflite", "--activations", "int16")
    assert rc == 1 and "micronn: error: cnn.tflite: --activations is for Keras models" in out, out
    rc, out = cli("pack", "cnn.keras", "--calib", "calib.npy", "--activations", "int16", "--calib-method", "mse")
    assert rc == 1 and "micronn: error:" in out and "minmax" in out, out
