"""The elementwise group (issue 18): loader refusals of corrupted SUB, SQUARED_DIFFERENCE,
MAXIMUM, MINIMUM and PRELU records; the kernels' arithmetic on hand-made blobs; the RSQRT,
ABS and float-island tables against TFLite Micro on all 256 int8 inputs; lowering refusals."""

from __future__ import annotations

import os
import struct

import numpy as np
import pytest

from micronn import blob
from micronn import format as fmt
from micronn import lower as _lower  # noqa: F401  (first: lower.py imports the group modules)
from micronn.errors import MicronnError
from micronn.graph import Graph, Op, Tensor
from micronn.lower_elementwise import island_table, prelu_params, squared_difference_params
from micronn.lut import _mbqm, lut
from micronn.quant import add_params

from .blobtools import fix_crc as _fix_crc
from .blobtools import load_error as _load_error

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

CRC_AT = fmt.HEADER.offsets["crc32"]
NEW_OPS = ("SUB", "SQUARED_DIFFERENCE", "MAXIMUM", "MINIMUM", "PRELU")
X_SCALE, X_ZP, C_SCALE, C_ZP, Y_SCALE, Y_ZP = 0.05, 3, 0.03, -7, 0.04, -2
CONST = np.array([-128, -60, -7, 0, 5, 40, 99, 127], np.int8)


def _params(kind: str) -> dict:
    p = dict(dims=[1, 1, 1, 8], stride1=[0, 0, 0, 1], stride2=[0, 0, 0, 1], input1_offset=-X_ZP,
             input2_offset=-C_ZP, output_offset=Y_ZP, act_min=-128, act_max=127)
    if kind == "SUB":
        p.update(add_params(X_SCALE, C_SCALE, Y_SCALE))
    elif kind == "SQUARED_DIFFERENCE":
        p.update(squared_difference_params(X_SCALE, C_SCALE, Y_SCALE))
    elif kind == "PRELU":
        p.update(prelu_params(X_SCALE, C_SCALE, Y_SCALE))
    else:
        p.update(input1_offset=0, input2_offset=0, output_offset=0)
    return p


def _graph(kind: str) -> Graph:
    g = Graph()
    x = g.add(Tensor("x", "int8", (1, 8), X_SCALE, X_ZP))
    c = g.const("c", CONST)
    g.tensors[c].scale, g.tensors[c].zero_point = C_SCALE, C_ZP
    y = g.add(Tensor("y", "int8", (1, 8), Y_SCALE, Y_ZP))
    g.ops.append(Op(kind, [x, c], [y], _params(kind)))
    g.inputs, g.outputs = [x], [y]
    return g


def _want(kind: str, x: np.ndarray) -> np.ndarray:
    """TFLite Micro's int8 arithmetic (its reference kernels, in Python ints)."""
    p = _params(kind)
    out = []
    for a, b in zip(x.astype(int), CONST.astype(int), strict=True):
        if kind == "MAXIMUM":
            v = max(a, b)
        elif kind == "MINIMUM":
            v = min(a, b)
        elif kind == "PRELU":
            v = a - X_ZP
            v = _mbqm(v, p["input1_mult"], p["input1_shift"]) if v >= 0 else \
                _mbqm(v * (b - C_ZP), p["output_mult"], p["output_shift"])
            v += Y_ZP
        else:
            ls = p["left_shift"]
            s1 = _mbqm((a - X_ZP) << ls, p["input1_mult"], p["input1_shift"])
            s2 = _mbqm((b - C_ZP) << ls, p["input2_mult"], p["input2_shift"])
            d = s1 - s2 if kind == "SUB" else (s1 - s2) ** 2
            v = _mbqm(d, p["output_mult"], p["output_shift"]) + Y_ZP
        out.append(min(max(v, -128), 127))
    return np.array(out, np.int8)


def _op0(data: bytes) -> int:
    h = fmt.HEADER.unpack(data)
    for k in range(h["section_count"]):
        s = fmt.SECTION.unpack(data, fmt.HEADER.size + k * fmt.SECTION.size)
        if s["id"] == fmt.SECTION_IDS["OPS"]:
            return s["offset"]
    raise AssertionError("no OPS section")


def _patch(data: bytes, kind: str, field: str, value: int, k: int = 0) -> bytes:
    """The blob with parameter `field` (element k of an array) of op 0 set to value."""
    b = bytearray(data)
    at = _op0(data) + fmt.OP.size + 8 + fmt.OP_PARAMS[kind].offsets[field] + 4 * k    # 3 operands: 8 bytes
    f = next(f for f in fmt.OP_PARAMS[kind].fields if f.name == field)
    struct.pack_into("<I" if f.type == "u32" else "<i", b, at, value)
    return _fix_crc(b)


X = np.array([-128, -100, -1, 3, 4, 50, 120, 127], np.int8)


@pytest.mark.parametrize("kind", NEW_OPS)
def test_kernel_matches_tflite_arithmetic(unix, kind):
    unix.link.load(blob.write(_graph(kind)))
    for x in (X, X[::-1].copy(), np.full(8, X_ZP, np.int8)):
        got = np.frombuffer(unix.link.run(x.tobytes())[0], np.int8)
        assert np.array_equal(got, _want(kind, x)), (kind, x, got)


# (field, element, value, what the loader's message says); None: tolerated (any value is safe)
CASES = [
    ("dims", 0, 0, "broadcast shape"),
    ("dims", 3, 1 << 24, "broadcast shape"),
    ("dims", 3, 9, "broadcast strides reach past an input"),
    ("dims", 2, 2, "output size"),
    ("stride1", 3, 2, "broadcast strides reach past an input"),
    ("stride2", 3, 5, "broadcast strides reach past an input"),
    ("stride2", 0, 1 << 24, "broadcast shape"),
    ("input1_offset", 0, 256, "input 1 offset"),
    ("input2_offset", 0, -300, "input 2 offset"),
    ("output_offset", 0, 128, "output offset"),
    ("act_min", 0, -129, "activation range"),
    ("act_max", 0, 128, "activation range"),
    ("act_min", 0, 10, "activation range"),      # above act_max once act_max is 5 (below)
    ("left_shift", 0, 21, "left shift"),
    ("left_shift", 0, -1, "left shift"),
    ("input1_shift", 0, 31, "requantization shift"),
    ("input2_shift", 0, -32, "requantization shift"),
    ("output_shift", 0, 99, "requantization shift"),
    ("input1_mult", 0, -(1 << 31), None),
    ("input2_mult", 0, 12345, None),
    ("output_mult", 0, (1 << 31) - 1, None),
]


def test_every_field_has_a_case():
    assert {c[0] for c in CASES} == {f.name for f in fmt.OP_PARAMS["SUB"].fields}
    for kind in NEW_OPS:        # one record layout
        assert fmt.OP_PARAMS[kind].offsets == fmt.OP_PARAMS["ADD"].offsets


@pytest.mark.parametrize("kind", NEW_OPS)
def test_corrupt_parameters_are_refused(unix, kind):
    good = blob.write(_graph(kind))
    for field, k, value, expect in CASES:
        data = _patch(good, kind, field, value, k)
        if field == "act_min" and value == 10:
            data = _patch(data, kind, "act_max", 5)
        if expect is None:
            unix.link.load(data)
            out = unix.link.run(X.tobytes())[0]      # wrong numbers, but no crash
            assert len(out) == 8
            continue
        msg = _load_error(unix, data)
        assert f"bad op 0: {expect}" in msg, (field, value, msg)
    # MAXIMUM and MINIMUM clamp nothing: only the full int8 range; the others take a narrower one
    narrow = _patch(_patch(good, kind, "act_min", -100), kind, "act_max", 90)
    if kind in ("MAXIMUM", "MINIMUM"):
        assert "bad op 0: maximum/minimum activation range" in _load_error(unix, narrow)
    else:
        unix.link.load(narrow)
    # SUB and SQUARED_DIFFERENCE take only TFLite Micro's left shifts
    if kind in ("SUB", "SQUARED_DIFFERENCE"):
        other = 7 if kind == "SUB" else 20
        assert "bad op 0: left shift" in _load_error(unix, _patch(good, kind, "left_shift", other))
    unix.link.load(good)


@pytest.mark.parametrize("kind", NEW_OPS)
def test_bad_operands_are_refused(unix, kind):
    good = blob.write(_graph(kind))
    op0 = _op0(good)
    info = blob.read(good)
    for k, expect in ((1, "broadcast strides reach past an input"), (2, "output size")):
        b = bytearray(good)
        struct.pack_into("<H", b, op0 + fmt.OP.size + 2 * k, 77)        # no such tensor
        assert f"bad op 0: {expect}" in _load_error(unix, _fix_crc(b))
    # the constant as int32 (4 values of 4 bytes: the size still matches)
    c = info["ops"][0]["inputs"][1]
    t0 = next(fmt.SECTION.unpack(good, fmt.HEADER.size + j * fmt.SECTION.size)["offset"]
              for j in range(info["header"]["section_count"])
              if fmt.SECTION.unpack(good, fmt.HEADER.size + j * fmt.SECTION.size)["id"] == fmt.SECTION_IDS["TENSORS"])
    b = bytearray(good)
    at = t0 + c * fmt.TENSOR.size
    b[at + fmt.TENSOR.offsets["dtype"]] = fmt.DTYPES["int32"]
    struct.pack_into("<I", b, at + fmt.TENSOR.offsets["dims"] + 4 * (info["tensors"][c]["ndim"] - 1), 2)
    assert "bad op 0: input 2" in _load_error(unix, _fix_crc(b))
    # the output written exactly over the input: these ops run in place (each element
    # is read before it is written), so the loader accepts it and the result is right
    g = Graph()
    x = g.add(Tensor("x", "int8", (1, 8), Y_SCALE, Y_ZP))      # read as X_*, written as Y_*: same bytes
    c = g.const("c", CONST)
    g.tensors[c].scale, g.tensors[c].zero_point = C_SCALE, C_ZP
    g.ops.append(Op(kind, [x, c], [x], _params(kind)))
    g.inputs, g.outputs = [x], [x]
    unix.link.load(blob.write(g))
    for x in (X, X[::-1].copy()):
        got = np.frombuffer(unix.link.run(x.tobytes())[0], np.int8)
        assert np.array_equal(got, _want(kind, x)), (kind, x, got)


# --- tables against TFLite Micro on every int8 input ---------------------------------

def _convert(fn, calib):
    import keras

    from micronn.convert import keras_to_tflite

    x = keras.Input(calib.shape[1:])
    return keras_to_tflite(keras.Model(x, fn(x)), calib)


def _tflm_all_codes(tb: bytes, codes: np.ndarray) -> np.ndarray:
    from micronn.reference import tflm_run

    return tflm_run(tb, codes.astype(np.int8).reshape(1, 256)).reshape(-1)


def _only(tb: bytes, opcode: str):
    from micronn import tflite as tfl

    m = tfl.load(tb)
    op = next(o for o in m.operators if o.opcode == opcode)
    return m.tensors[op.inputs[0]], m.tensors[op.outputs[0]]


@pytest.mark.parametrize("seed", range(4))
def test_rsqrt_table_is_tflite_micro(seed):
    import keras

    rng = np.random.default_rng(seed)
    lo = [0.0, 0.3, 1.0, 5.0][seed]
    calib = rng.uniform(lo, lo + rng.uniform(0.5, 60), size=(32, 256)).astype(np.float32)
    tb = _convert(keras.ops.rsqrt, calib)
    ti, to = _only(tb, "RSQRT")
    zp = int(ti.zero_point[0])
    codes = np.maximum(np.arange(-128, 128), zp)         # TFLite Micro fails the run on codes below the zero point
    table = lut("RSQRT", ti.scale[0], zp, to.scale[0], int(to.zero_point[0]))
    assert np.array_equal(table[codes + 128], _tflm_all_codes(tb, codes))
    assert (table[:zp + 128] == 127).all()


@pytest.mark.parametrize("seed", range(3))
def test_abs_table_is_tflite_micro(seed):
    import keras

    rng = np.random.default_rng(seed)
    calib = (rng.normal(size=(32, 256)) * rng.uniform(0.2, 5) + rng.uniform(-2, 2)).astype(np.float32)
    tb = _convert(keras.ops.abs, calib)
    ti, to = _only(tb, "ABS")
    codes = np.arange(-128, 128)
    table = lut("ABS", ti.scale[0], int(ti.zero_point[0]), to.scale[0], int(to.zero_point[0]))
    assert np.array_equal(table, _tflm_all_codes(tb, codes))


def _islands():
    import keras

    K = keras.ops
    return {
        "neg": (K.negative, "NEG"),
        "neg_square": (lambda x: K.square(K.negative(x)), "SQUARE"),
        "neg_maximum": (lambda x: K.maximum(K.negative(x), -0.3), "MAXIMUM"),
    }


@pytest.mark.parametrize("name", ["neg", "neg_square", "neg_maximum"])
@pytest.mark.parametrize("seed", range(2))
def test_float_island_is_tflite_micro(unix, name, seed):
    """DEQUANTIZE -> float ops -> QUANTIZE packs to one LUT that equals TFLite Micro on
    all 256 inputs, on the host (island_table) and on the device."""
    from micronn import pack
    from micronn import tflite as tfl

    fn, opcode = _islands()[name]
    rng = np.random.default_rng(seed + 10)
    calib = (rng.normal(size=(32, 256)) * rng.uniform(0.3, 4) + rng.uniform(-1, 1)).astype(np.float32)
    tb = _convert(fn, calib)
    ops = [o.opcode for o in tfl.load(tb).operators]
    assert ops[0] == "DEQUANTIZE" and opcode in ops and ops[-1] == "QUANTIZE", ops
    codes = np.arange(-128, 128)
    want = _tflm_all_codes(tb, codes)
    data = pack(tb)
    info = blob.read(data)
    assert [o["kind"] for o in info["ops"]] == ["LUT"]
    unix.link.load(data)
    got = np.frombuffer(unix.link.run(codes.astype(np.int8).tobytes())[0], np.int8)
    assert np.array_equal(got, want)
    assert len(set(want.tolist())) > 8          # a real function of the input


def test_island_table_quantizes_like_tflite_micro():
    # NaN (sqrt of a negative) and values beyond int32 convert to INT32_MIN before the zero point is added
    t = island_table(0.1, 0, [("SQRT", "NONE", None, False)], 0.01, 5)
    assert t[128 - 1] == -128 and t[128] == 5 and t[128 + 4] == min(127, 5 + round(np.sqrt(0.4) / 0.01))
    t = island_table(1.0, 0, [("DIV", "RELU6", 0.0, True)], 0.1, -3)   # 0 / x: 0, NaN at 0, clamped by RELU6
    assert t[128 + 5] == -3


# --- lowering refusals ---------------------------------------------------------------

def test_int8_sqrt_is_refused_by_name():
    import keras

    from micronn import pack

    calib = np.random.default_rng(0).normal(size=(16, 8)).astype(np.float32)
    tb = _convert(lambda x: keras.ops.sqrt(keras.layers.Dense(8, activation="relu")(x)), calib)
    with pytest.raises(MicronnError, match=r"\(SQRT\): int8 SQRT has no TFLite Micro kernel"):
        pack(tb)


def test_island_with_an_unsupported_op_is_refused():
    import keras

    from micronn import tflite as tfl
    from micronn.lower import Lowering

    calib = np.random.default_rng(1).normal(size=(16, 256)).astype(np.float32)
    tb = _convert(lambda x: keras.ops.negative(x), calib)
    m = tfl.load(tb)
    neg = next(o for o in m.operators if o.opcode == "NEG")
    neg.opcode = "LOGISTIC"                 # a float op micronn does not tabulate
    with pytest.raises(MicronnError, match=r"op 1 \(LOGISTIC\) of the float island after op 0 \(DEQUANTIZE\)"):
        Lowering(m).run()


# --- flatbuffer edits: ops and quantizations the converter does not write -------------

def _edit(tb: bytes, fn) -> bytes:
    """The model with fn applied to its object tree (tflite_micro's schema)."""
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

    m = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(tb, 0))
    fn(m, fb)
    b = flatbuffers.Builder(0)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def _retype(tb: bytes, old: str, new: str) -> bytes:
    def fn(m, fb):
        for oc in m.operatorCodes:
            if oc.builtinCode == getattr(fb.BuiltinOperator, old):
                oc.builtinCode = getattr(fb.BuiltinOperator, new)
                oc.deprecatedBuiltinCode = min(127, oc.builtinCode)
    return _edit(tb, fn)


@pytest.mark.parametrize("opcode", ["NEG", "SQRT", "SQUARE", "EXP", "LOG", "SIN", "COS"])
def test_float_only_ops_are_refused_as_int8(opcode):
    """TFLite Micro has no int8 kernel for these: it fails, and micronn refuses by name."""
    import keras

    from micronn import pack
    from micronn.reference import tflm_run

    calib = np.random.default_rng(0).normal(size=(16, 8)).astype(np.float32)
    tb = _retype(_convert(lambda x: keras.ops.sqrt(keras.layers.Dense(8, activation="relu")(x)), calib), "SQRT",
                 opcode)
    with pytest.raises(RuntimeError):
        tflm_run(tb, np.zeros((1, 8), np.int8))
    with pytest.raises(MicronnError, match=rf"\({opcode}\): int8 {opcode} has no TFLite Micro kernel"):
        pack(tb)


@pytest.mark.parametrize("opcode", ["NEG", "ABS", "SQRT", "RSQRT", "SQUARE", "RELU", "RELU6", "EXP", "LOG", "SIN",
                                    "COS"])
def test_every_island_op_is_tflite_micro(unix, opcode):
    """DEQUANTIZE -> one float op -> QUANTIZE for each unary op a float island may hold, on
    all 256 inputs: NaN (SQRT, LOG of negative values), infinities (RSQRT of 0) and
    saturation included."""
    import keras

    from micronn import pack

    rng = np.random.default_rng(3)
    calib = (rng.normal(size=(32, 256)) * 2.5 + 0.5).astype(np.float32)
    tb = _retype(_convert(keras.ops.negative, calib), "NEG", opcode)
    codes = np.arange(-128, 128)
    want = _tflm_all_codes(tb, codes)
    data = pack(tb)
    assert [o["kind"] for o in blob.read(data)["ops"]] == ["LUT"]
    unix.link.load(data)
    got = np.frombuffer(unix.link.run(codes.astype(np.int8).tobytes())[0], np.int8)
    assert np.array_equal(got, want), np.nonzero(got != want)
    assert len(set(want.tolist())) > 4


@pytest.mark.parametrize("seed", range(3))
def test_rsqrt_random_quantizations(seed):
    """RSQRT's table against TFLite Micro for random input and output quantizations."""
    import keras

    from micronn import tflite as tfl

    rng = np.random.default_rng(100 + seed)
    calib = rng.uniform(0.0, 4.0, size=(16, 256)).astype(np.float32)
    base = _convert(keras.ops.rsqrt, calib)
    m0 = tfl.load(base)
    op = next(o for o in m0.operators if o.opcode == "RSQRT")
    for _ in range(8):
        q = (float(np.float32(10 ** rng.uniform(-3, 0.5))), int(rng.integers(-128, 100)),
             float(np.float32(10 ** rng.uniform(-3, 0))), int(rng.integers(-128, 128)))

        def fn(m, fb, q=q):
            for i, (s, z) in ((op.inputs[0], q[:2]), (op.outputs[0], q[2:])):
                m.subgraphs[0].tensors[i].quantization.scale = [s]
                m.subgraphs[0].tensors[i].quantization.zeroPoint = [z]

        tb = _edit(base, fn)
        codes = np.maximum(np.arange(-128, 128), q[1])
        table = lut("RSQRT", *q)
        assert np.array_equal(table[codes + 128], _tflm_all_codes(tb, codes)), q


@pytest.mark.parametrize("opcode", ["ADD", "SUB", "MUL", "DIV", "MAXIMUM", "MINIMUM", "SQUARED_DIFFERENCE"])
@pytest.mark.parametrize("const_first", [False, True])
def test_every_island_binary_op_is_tflite_micro(unix, opcode, const_first):
    """DEQUANTIZE -> NEG -> op with a float constant -> QUANTIZE on all 256 inputs."""
    import keras

    from micronn import pack

    rng = np.random.default_rng(4)
    calib = (rng.normal(size=(32, 256)) * 1.5).astype(np.float32)
    tb = _convert(lambda x: keras.ops.maximum(keras.ops.negative(x), -0.3), calib)

    def swap(m, fb):
        for op in m.subgraphs[0].operators:
            if len(op.inputs) == 2:
                op.inputs = list(op.inputs)[::-1]

    tb = _retype(_edit(tb, swap) if const_first else tb, "MAXIMUM", opcode)
    codes = np.arange(-128, 128)
    want = _tflm_all_codes(tb, codes)
    data = pack(tb)
    assert [o["kind"] for o in blob.read(data)["ops"]] == ["LUT"]
    unix.link.load(data)
    got = np.frombuffer(unix.link.run(codes.astype(np.int8).tobytes())[0], np.int8)
    assert np.array_equal(got, want), np.nonzero(got != want)


@pytest.mark.parametrize("opcode", ["ADD", "SUB", "MUL", "DIV"])
@pytest.mark.parametrize("act", ["RELU", "RELU6", "RELU_N1_TO_1"])
def test_island_fused_activations_are_tflite_micro(unix, opcode, act):
    import keras

    from micronn import pack

    rng = np.random.default_rng(5)
    calib = (rng.normal(size=(32, 256)) * 3).astype(np.float32)
    tb = _retype(_convert(lambda x: keras.ops.maximum(keras.ops.negative(x), -0.7), calib), "MAXIMUM", opcode)

    def fuse(m, fb):
        for op in m.subgraphs[0].operators:
            if len(op.inputs) == 2:
                kind = {"ADD": "Add", "SUB": "Sub", "MUL": "Mul", "DIV": "Div"}[opcode]
                op.builtinOptionsType = getattr(fb.BuiltinOptions, f"{kind}Options")
                op.builtinOptions = getattr(fb, f"{kind}OptionsT")()
                op.builtinOptions.fusedActivationFunction = getattr(fb.ActivationFunctionType, act)

    tb = _edit(tb, fuse)
    codes = np.arange(-128, 128)
    want = _tflm_all_codes(tb, codes)
    data = pack(tb)
    unix.link.load(data)
    got = np.frombuffer(unix.link.run(codes.astype(np.int8).tobytes())[0], np.int8)
    assert np.array_equal(got, want), np.nonzero(got != want)


@pytest.mark.parametrize("opcode", ["SUB", "SQUARED_DIFFERENCE"])
def test_rescaling_of_one_or_more_is_refused(opcode):
    """TFLite Micro requantizes SUB and SQUARED_DIFFERENCE with SmallerThanOneExp: an output
    scale so small that the factor reaches 1 has no defined result there."""
    import keras

    from micronn import pack
    from micronn import tflite as tfl

    def build(x):
        d = keras.layers.Dense(6)(x) - keras.layers.Dense(1)(x)
        return keras.ops.square(d) if opcode == "SQUARED_DIFFERENCE" else d

    tb = _convert(build, np.random.default_rng(0).normal(size=(16, 8)).astype(np.float32))
    op = next(o for o in tfl.load(tb).operators if o.opcode == opcode)
    pack(tb)

    def tiny(m, fb):
        m.subgraphs[0].tensors[op.outputs[0]].quantization.scale = [1e-12]

    with pytest.raises(MicronnError, match=rf"\({opcode}\): the quantization scales need a rescaling factor of 1"):
        pack(_edit(tb, tiny))
