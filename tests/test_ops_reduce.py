"""The REDUCE group (issue 18): ARG_MAX / ARG_MIN (int32 and int64 indices, first
index on ties), REDUCE_MAX / REDUCE_MIN against NumPy on the unix firmware; the
loader's refusal of every corrupted parameter field and operand of the new ops;
and the lowerings' refusals. TFLite Micro bit-exactness of every op (SUM,
L2_NORMALIZATION and LOG_SOFTMAX included) is tests/test_op_zoo.py's (rd_ models)."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from micronn import blob
from micronn import format as fmt
from micronn import lower as _lower  # noqa: F401  (imports lower_reduce after lower, as the package does)
from micronn.errors import MicronnError
from micronn.graph import Graph, Op, Tensor
from micronn.lower_reduce import (
    L2NORM_DEPTH_MAX,
    LOG_SOFTMAX_ROW_MAX,
    log_softmax_params,
    lower_arg_minmax,
    lower_l2norm,
    lower_log_softmax,
    lower_reduce_minmax,
    lower_sum,
)

from .blobtools import fix_crc as _fix_crc
from .blobtools import load_error as _load_error

CRC_AT = fmt.HEADER.offsets["crc32"]


def _reduce_graph(kind: str, shape=(3, 5, 4), dtype="int32") -> Graph:
    """One ARG_MAX / ARG_MIN / REDUCE_MAX / REDUCE_MIN over the middle axis of shape."""
    outer, reduce, inner = shape
    g = Graph()
    x = g.add(Tensor("x", "int8", shape, 0.1, 2))
    if kind.startswith("ARG"):
        y = g.add(Tensor("y", dtype, (outer, inner)))
    else:
        y = g.add(Tensor("y", "int8", (outer, inner), 0.1, 2))
    g.ops.append(Op(kind, [x], [y], dict(outer=outer, reduce=reduce, inner=inner)))
    g.inputs, g.outputs = [x], [y]
    return g


def _l2_graph(rows=2, depth=6, zp=-3) -> Graph:
    g = Graph()
    x = g.add(Tensor("x", "int8", (rows, depth), 0.1, zp))
    y = g.add(Tensor("y", "int8", (rows, depth), 1 / 128, 0))
    g.ops.append(Op("L2_NORMALIZATION", [x], [y], dict(rows=rows, depth=depth, input_offset=-zp)))
    g.inputs, g.outputs = [x], [y]
    return g


def _log_softmax_graph(rows=2, n=7, scale=0.05) -> Graph:
    g = Graph()
    x = g.add(Tensor("x", "int8", (rows, n), scale, 1))
    y = g.add(Tensor("y", "int8", (rows, n), 16 / 256, 127))
    g.ops.append(Op("LOG_SOFTMAX", [x], [y], dict(log_softmax_params(scale), rows=rows, row_size=n)))
    g.inputs, g.outputs = [x], [y]
    return g


def _run(unix, g: Graph, x: np.ndarray, dtype) -> np.ndarray:
    unix.link.load(blob.write(g))
    return np.frombuffer(unix.link.run(np.ascontiguousarray(x, np.int8).tobytes())[0], dtype)


# --- kernels -----------------------------------------------------------------

@pytest.mark.parametrize("kind, dtype", [("ARG_MAX", "int32"), ("ARG_MIN", "int32"), ("ARG_MAX", "int64"),
                                         ("ARG_MIN", "int64")])
def test_arg_minmax(unix, kind, dtype):
    """First index of the extreme on ties (TFLite Micro's), as int32 or int64 (TFLite
    Micro runs only int32 outputs, so int64 is checked against NumPy, which also
    takes the first index)."""
    rng = np.random.default_rng(1)
    shape = (3, 5, 4)
    g = _reduce_graph(kind, shape, dtype)
    fn = np.argmax if kind == "ARG_MAX" else np.argmin
    for x in [rng.integers(-3, 3, size=shape), rng.integers(-128, 128, size=shape), np.full(shape, 7),
              np.full(shape, -128)]:
        x = x.astype(np.int8)
        got = _run(unix, g, x, dtype).reshape(3, 4)
        assert np.array_equal(got, fn(x, axis=1)), (x, got)


def test_argmax_int64_model_output_raw_bytes(unix):
    """An int64 arg max as the model's output comes back as its 8-byte little-endian words."""
    g = _reduce_graph("ARG_MAX", (1, 300, 1), "int64")
    x = np.zeros((1, 300, 1), np.int8)
    x[0, 257, 0] = 5
    unix.link.load(blob.write(g))
    raw = unix.link.run(x.tobytes())[0]
    assert raw == struct.pack("<q", 257)


@pytest.mark.parametrize("kind", ["REDUCE_MAX", "REDUCE_MIN"])
def test_reduce_minmax(unix, kind):
    rng = np.random.default_rng(2)
    for shape in [(3, 5, 4), (1, 9, 1), (2, 1, 3)]:
        g = _reduce_graph(kind, shape)
        x = rng.integers(-128, 128, size=shape).astype(np.int8)
        fn = np.max if kind == "REDUCE_MAX" else np.min
        assert np.array_equal(_run(unix, g, x, np.int8).reshape(shape[0], shape[2]), fn(x, axis=1))


def test_l2norm_zero_row(unix):
    """A row of zero points: TFLite takes its sum of squares 0 as 1 (multiplier 2^31 - 1)."""
    g = _l2_graph(rows=1, depth=6, zp=-3)
    assert np.array_equal(_run(unix, g, np.full((1, 6), -3, np.int8), np.int8), np.zeros(6, np.int8))


# --- loader refusals -----------------------------------------------------------

def _params_at(data: bytes) -> int:
    info = blob.read(data)
    for k in range(info["header"]["section_count"]):
        s = fmt.SECTION.unpack(data, fmt.HEADER.size + k * fmt.SECTION.size)
        if s["id"] == fmt.SECTION_IDS["OPS"]:
            op = fmt.OP.unpack(data, s["offset"])
            return s["offset"] + fmt.OP.size + ((2 * (op["n_inputs"] + op["n_outputs"]) + 3) & ~3)
    raise AssertionError("no OPS section")


def _patch(data: bytes, kind: str, field: str, value: int) -> bytes:
    rec = fmt.OP_PARAMS[kind]
    f = next(f for f in rec.fields if f.name == field)
    b = bytearray(data)
    struct.pack_into("<" + {"u32": "I", "i32": "i"}[f.type], b, _params_at(data) + rec.offsets[field], value)
    return _fix_crc(b)


GRAPHS = {
    "ARG_MAX": lambda: _reduce_graph("ARG_MAX"),
    "ARG_MIN": lambda: _reduce_graph("ARG_MIN", dtype="int64"),
    "REDUCE_MAX": lambda: _reduce_graph("REDUCE_MAX"),
    "REDUCE_MIN": lambda: _reduce_graph("REDUCE_MIN"),
    "L2_NORMALIZATION": _l2_graph,
    "LOG_SOFTMAX": _log_softmax_graph,
}

_SHAPE_CASES = [(f, v, w) for f in ("outer", "reduce", "inner")
                for v, w in ((0, "reduce shape"), (1 << 24, "reduce shape"), (2, "input size"))]
# op -> [(field, bad value, what the error names)]
FIELD_CASES = {
    "ARG_MAX": _SHAPE_CASES,
    "ARG_MIN": _SHAPE_CASES,
    "REDUCE_MAX": _SHAPE_CASES,
    "REDUCE_MIN": _SHAPE_CASES,
    "L2_NORMALIZATION": [
        ("rows", 0, "zero dimension"), ("rows", 3, "input size"), ("rows", 0x40000000, "dimensions overflow"),
        ("depth", 0, "zero dimension"), ("depth", L2NORM_DEPTH_MAX + 1, "l2 normalization depth"),
        ("depth", 3, "input size"),
        ("input_offset", 129, "input offset"), ("input_offset", -129, "input offset"),
    ],
    "LOG_SOFTMAX": [
        ("rows", 0, "zero dimension"), ("rows", 3, "input size"), ("rows", 0x40000000, "dimensions overflow"),
        ("row_size", 0, "zero dimension"), ("row_size", LOG_SOFTMAX_ROW_MAX, "log softmax row size"),
        ("row_size", 8, "input size"),
        ("input_left_shift", -1, "log softmax input shift"), ("input_left_shift", 32, "log softmax input shift"),
        ("diff_min", -(1 << 30), "log softmax diff_min"), ("diff_min", 1, "log softmax diff_min"),
        ("reverse_shift", 1, "log softmax reverse shift"), ("reverse_shift", -32, "log softmax reverse shift"),
        # any multiplier is arithmetic only: it loads (see test_any_multiplier_runs)
    ],
}


def test_every_field_has_a_case():
    for kind, cases in FIELD_CASES.items():
        named = {f for f, _, _ in cases}
        fields = {f.name for f in fmt.OP_PARAMS[kind].fields} - {"input_mult", "reverse_mult"}
        assert named == fields, kind


@pytest.mark.parametrize("kind, field, value, expect",
                         [(k, f, v, w) for k, cases in FIELD_CASES.items() for f, v, w in cases])
def test_field_refused(unix, kind, field, value, expect):
    good = blob.write(GRAPHS[kind]())
    unix.link.load(good)     # the unpatched blob loads
    assert f"bad op 0: {expect}" in _load_error(unix, _patch(good, kind, field, value))


def test_any_multiplier_runs(unix):
    """The log-softmax multipliers change values, never memory: extreme ones load and run."""
    good = blob.write(_log_softmax_graph())
    for field in ("input_mult", "reverse_mult"):
        for v in (0, -1, 0x7FFFFFFF, -0x80000000):
            unix.link.load(_patch(good, "LOG_SOFTMAX", field, v))
            for x in (np.zeros(14, np.int8), np.arange(-7, 7, dtype=np.int8) * 18):
                assert len(unix.link.run(x.tobytes())[0]) == 14


@pytest.mark.parametrize("kind", list(GRAPHS))
def test_operands_refused(unix, kind):
    # an output of the wrong size
    g = GRAPHS[kind]()
    g.tensors[1].shape = (1,) + g.tensors[1].shape[1:]
    assert "bad op 0: output size" in _load_error(unix, blob.write(g))
    # an input of the wrong dtype
    g = GRAPHS[kind]()
    g.tensors[0].dtype = "int16"
    assert "bad op 0: input size" in _load_error(unix, blob.write(g))


def test_arg_output_dtype_refused(unix):
    g = _reduce_graph("ARG_MAX")
    g.tensors[1] = Tensor("y", "int8", (3, 4), 0.1, 0)
    assert "bad op 0: output size" in _load_error(unix, blob.write(g))
    g = _reduce_graph("REDUCE_MAX")
    g.tensors[1] = Tensor("y", "int32", (3, 4))
    assert "bad op 0: output size" in _load_error(unix, blob.write(g))


def test_output_over_input_refused(unix):
    g = _reduce_graph("REDUCE_MAX", (1, 1, 8))
    data = bytearray(blob.write(g))
    info = blob.read(bytes(data))
    for k in range(info["header"]["section_count"]):
        s = fmt.SECTION.unpack(data, fmt.HEADER.size + k * fmt.SECTION.size)
        if s["id"] == fmt.SECTION_IDS["TENSORS"]:
            x = fmt.TENSOR.unpack(data, s["offset"])
            struct.pack_into("<I", data, s["offset"] + fmt.TENSOR.size + fmt.TENSOR.offsets["offset"], x["offset"])
    assert "output overlaps an input" in _load_error(unix, _fix_crc(data))


# --- lowering ------------------------------------------------------------------

class _T:
    def __init__(self, shape, scale=0.05, zp=0, data=None, dtype="int8"):
        self.shape, self.dtype, self.data = shape, dtype, data
        self.scale = None if scale is None else np.array([scale], np.float32)
        self.zero_point = None if zp is None else np.array([zp])
        self.name = "t"

    def array(self):
        return self.data


class _Model:
    def __init__(self, tensors):
        self.tensors = tensors
        self.inputs, self.outputs, self.operators, self.subgraph_count = [0], [2], [], 1


class _OpStub:
    def __init__(self, opcode, **options):
        self.index, self.opcode, self.options, self.inputs, self.outputs = 0, opcode, options, [0, 1], [2]
        self.custom_code, self.version = None, 1


def _lowered(fn, opcode, x, axes, y, **options):
    low = _lower.Lowering(_Model([x, _T(np.shape(axes), None, None, np.asarray(axes, np.int32), "int32"), y]))
    fn(low, _OpStub(opcode, **options))
    return low.g


def test_lowering_parameters():
    g = _lowered(lower_sum, "SUM", _T((1, 4, 5, 3), 0.05, 3), [1, 2], _T((1, 3), 0.4, -2))
    op = g.ops[0]
    assert op.kind == "MEAN" and op.scratch == 12
    p = op.params
    from micronn.quant import quantize_multiplier
    assert (p["outer"], p["reduce"], p["inner"], p["mode"]) == (1, 20, 3, fmt.MEAN_MODES["SCALED"])
    assert (p["mult"], p["shift"]) == quantize_multiplier(float(np.float32(0.05)) / float(np.float32(0.4)))
    assert (p["input_offset"], p["output_offset"]) == (-3, -2)
    g = _lowered(lower_arg_minmax, "ARG_MAX", _T((2, 6, 4)), [-2], _T((2, 4), None, None, dtype="int64"))
    assert g.ops[0].params == dict(outer=2, reduce=6, inner=4) and g.tensors[g.ops[0].outputs[0]].dtype == "int64"
    g = _lowered(lower_reduce_minmax, "REDUCE_MIN", _T((2, 6, 4)), [2], _T((2, 6, 1)), keep_dims=True)
    assert g.ops[0].params == dict(outer=12, reduce=4, inner=1)
    assert g.tensors[g.ops[0].outputs[0]].shape == (2, 6, 1)


def test_log_softmax_params_follow_tflite():
    """PreprocessLogSoftmaxScalingExp: the reverse divisor is (2^(31 - left shift)) / multiplier."""
    from micronn.quant import quantize_multiplier, softmax_params
    p = log_softmax_params(0.07)
    mult, shift, diff_min = softmax_params(1.0, 0.07)
    assert (p["input_mult"], p["input_left_shift"], p["diff_min"]) == (mult, shift, diff_min)
    assert (p["reverse_mult"], p["reverse_shift"]) == quantize_multiplier((1 << (31 - shift)) / mult)
    assert p["reverse_shift"] <= 0


@pytest.mark.parametrize("fn, opcode, x, axes, y, options, expect", [
    (lower_sum, "SUM", _T((1, 4, 5, 3)), [1, 3], _T((1, 5)), {}, "non-adjacent axes"),
    (lower_sum, "SUM", _T((1, 4, 5, 3)), [4], _T((1, 5)), {}, "do not fit the 4-D input"),
    (lower_sum, "SUM", _T((1, 4, 5, 3)), [], _T((1, 5)), {}, "do not fit"),
    (lower_reduce_minmax, "REDUCE_MAX", _T((1, 4, 5, 3)), [1, 3], _T((1, 5)), {}, "non-adjacent axes"),
    (lower_reduce_minmax, "REDUCE_MAX", _T((1, 4, 5, 3)), [1], _T((1, 5, 3), 0.07), {}, "share the quantization"),
    (lower_arg_minmax, "ARG_MAX", _T((1, 4, 5)), [1, 2], _T((1,), None, None, dtype="int32"), {}, "one axis"),
    (lower_arg_minmax, "ARG_MIN", _T((1, 4, 5)), [1], _T((1, 5), 0.1, 0), {}, "output type int8"),
])
def test_lowering_refusals(fn, opcode, x, axes, y, options, expect):
    with pytest.raises(MicronnError, match=expect):
        _lowered(fn, opcode, x, axes, y, **options)


def _lowered1(fn, opcode, x, y, **options):
    low = _lower.Lowering(_Model([x, _T((1,)), y]))
    op = _OpStub(opcode, **options)
    op.inputs = [0]
    fn(low, op)
    return low.g


@pytest.mark.parametrize("fn, opcode, x, y, options, expect", [
    (lower_l2norm, "L2_NORMALIZATION", _T((1, 8)), _T((1, 8), 1 / 256, 0), {}, "scale 1/128 and zero point 0"),
    (lower_l2norm, "L2_NORMALIZATION", _T((1, 8)), _T((1, 8), 1 / 128, 1), {}, "scale 1/128 and zero point 0"),
    (lower_l2norm, "L2_NORMALIZATION", _T((1, 8)), _T((1, 8), 1 / 128, 0),
     {"fused_activation_function": "RELU"}, "fused activation"),
    (lower_l2norm, "L2_NORMALIZATION", _T((1, L2NORM_DEPTH_MAX + 1)), _T((1, L2NORM_DEPTH_MAX + 1), 1 / 128, 0),
     {}, "normalises at most"),
    (lower_log_softmax, "LOG_SOFTMAX", _T((1, 8)), _T((1, 8), 1 / 16, 0), {}, "scale 16/256 and zero point 127"),
    (lower_log_softmax, "LOG_SOFTMAX", _T((1, 5000)), _T((1, 5000), 1 / 16, 127), {}, "rows of 5000 values"),
    (lower_log_softmax, "LOG_SOFTMAX", _T((1, 8), 64.0), _T((1, 8), 1 / 16, 127), {}, "input shift"),
])
def test_lowering_refusals_normalisations(fn, opcode, x, y, options, expect):
    with pytest.raises(MicronnError, match=expect):
        _lowered1(fn, opcode, x, y, **options)


@pytest.mark.parametrize("kind, variant", [("ARG_MAX", "ARG_MINMAX"), ("ARG_MIN", "ARG_MINMAX"),
                                           ("REDUCE_MAX", "REDUCE_MINMAX"), ("REDUCE_MIN", "REDUCE_MINMAX"),
                                           ("L2_NORMALIZATION", "L2NORM"), ("LOG_SOFTMAX", "LOG_SOFTMAX")])
def test_variant_counted(unix, kind, variant):
    g = GRAPHS[kind]()
    unix.link.load(blob.write(g))
    unix.link.info()                                    # counts start from here
    x = np.zeros(g.tensors[0].nbytes, np.int8)
    for _ in range(3):
        unix.link.run(x.tobytes())
    assert unix.link.info()["variants"] == {variant: 3}


@pytest.mark.parametrize("dtype", ["int32", "int64"])
def test_argmax_through_model_run(tmp_path, dtype):
    """micronn.Model.run() on the board returns an arg max output's indices as they are."""
    from .conftest import micropython

    g = _reduce_graph("ARG_MAX", (1, 5, 3), dtype)
    (tmp_path / "a.mnb").write_bytes(blob.write(g))
    x = np.array([[1, 9, 3], [4, 9, -7], [7, 2, 3], [7, -8, 100], [0, 0, 0]], np.int8)
    out = micropython(f"""
import micronn
m = micronn.Model(open('a.mnb', 'rb').read())
y = m.run(bytes({x.reshape(-1).view(np.uint8).tolist()!r}))
print(list(y))
""", tmp_path)
    assert out.strip().splitlines()[-1] == str(np.argmax(x, axis=0).tolist())


def test_index_bytes_that_overflow_refused(unix):
    """outer * inner int64 indices past 2^32 bytes, whose truncated size matches a small output."""
    outer, inner = 64, (1 << 23) + 1
    g = Graph()
    x = g.add(Tensor("x", "int8", (outer, inner), 0.1, 0))
    y = g.add(Tensor("y", "int64", (outer,)))      # 512 bytes: (outer * inner * 8) mod 2^32
    g.ops.append(Op("ARG_MAX", [x], [y], dict(outer=outer, reduce=1, inner=inner)))
    g.inputs, g.outputs = [x], [y]
    assert "bad op 0: dimensions overflow" in _load_error(unix, blob.write(g))
