"""Movement operators (issue 18): STRIDED_COPY, GATHER and MIRROR_PAD blobs run as
numpy says on the unix port; every corrupted parameter field or operand size is
refused at load with a ValueError naming it; the lowerings refuse what they do not
support with a clear MicronnError."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from micronn import blob, lower
from micronn import format as fmt
from micronn.errors import MicronnError
from micronn.graph import Graph, Op, Tensor
from micronn.tflite import Model, Operator
from micronn.tflite import Tensor as TflTensor

from .blobtools import load_error as _load_error
from .test_blob_validation import _fix_crc

# --- device: hand-built one-op blobs -------------------------------------------

def _one_op(kind: str, in_shape, out_shape, params: dict, consts=()) -> bytes:
    g = Graph()
    x = g.add(Tensor("x", "int8", tuple(in_shape), 0.1, 0))
    ks = [g.const(f"c{k}", c) for k, c in enumerate(consts)]
    y = g.add(Tensor("y", "int8", tuple(out_shape), 0.1, 0))
    g.ops.append(Op(kind, [x, *ks], [y], params))
    g.inputs, g.outputs = [x], [y]
    return blob.write(g)


def _copy_blob(x_shape, r: np.ndarray, out_shape=None) -> bytes:
    from micronn.lower_movement import copy_params

    class _Low:     # copy_params only calls fail() on a model problem
        def fail(self, op, why):
            return MicronnError(why)

    p = copy_params(_Low(), Operator(0, "TEST", 1, None, [], [], [], {}), r)
    return _one_op("STRIDED_COPY", x_shape, out_shape or r.shape, p)


def _params_at(data: bytes) -> int:
    """Byte offset of the first op's parameter record."""
    info = blob.read(data)
    for k in range(info["header"]["section_count"]):
        s = fmt.SECTION.unpack(data, fmt.HEADER.size + k * fmt.SECTION.size)
        if s["id"] == fmt.SECTION_IDS["OPS"]:
            op = fmt.OP.unpack(data, s["offset"])
            return s["offset"] + op["size"] - op["params_size"]
    raise AssertionError("no ops section")


def _patch(data: bytes, kind: str, field: str, value: int, index: int = 0) -> bytes:
    rec = fmt.OP_PARAMS[kind]
    f = next(f for f in rec.fields if f.name == field)
    b = bytearray(data)
    struct.pack_into("<" + {"u32": "I", "i32": "i"}[f.type], b, _params_at(data) + rec.offsets[field] + 4 * index,
                     value)
    return _fix_crc(b)


def _run(unix, data: bytes, x: np.ndarray) -> np.ndarray:
    unix.link.load(data)
    return np.frombuffer(unix.link.run(np.ascontiguousarray(x, np.int8).tobytes())[0], np.int8)


def _x(shape, seed=0):
    return np.random.default_rng(seed).integers(-128, 128, shape, dtype=np.int8)


COPIES = {
    # name: (input shape, index array -> output index array)
    "slice": ((2, 5, 6, 3), lambda r: r[:, 1:4, ::2, :]),
    "negative": ((1, 7, 4, 5), lambda r: r[:, ::-3, 3:0:-1, ::-1]),
    "transpose": ((2, 3, 4, 5), lambda r: r.transpose(3, 1, 0, 2)),
    "depth_to_space": ((1, 2, 3, 8), lambda r: r.reshape(1, 2, 3, 2, 2, 2).transpose(0, 1, 3, 2, 4, 5)),
    "whole": ((3, 4), lambda r: r),
    "one": ((3, 4), lambda r: r[2:3, 1:2]),
}


@pytest.mark.parametrize("case", list(COPIES))
def test_strided_copy_runs_as_numpy(unix, case):
    shape, fn = COPIES[case]
    r = fn(np.arange(np.prod(shape)).reshape(shape))
    out_shape = r.shape if r.ndim <= 4 else (int(np.prod(r.shape[:-1])), r.shape[-1])
    data = _copy_blob(shape, r, out_shape)
    for seed in range(3):
        x = _x(shape, seed)
        assert np.array_equal(_run(unix, data, x), x.reshape(-1)[r.reshape(-1)]), case


def test_gather_and_mirror_pad_run_as_numpy(unix):
    idx = np.array([2, 0, 2, 1], np.int32)
    data = _one_op("GATHER", (2, 3, 5), (2, 4, 5), dict(outer=2, axis_size=3, inner=5, count=4), [idx])
    x = _x((2, 3, 5))
    assert np.array_equal(_run(unix, data, x), np.take(x, idx, axis=1).reshape(-1))
    for mode, off in (("reflect", 1), ("symmetric", 0)):
        pads = [(0, 1), (2, 1 + off * 0), (1, 3 - off), (2, 1)]
        shape = (2, 4, 4, 3)
        out = tuple(d + a + b for d, (a, b) in zip(shape, pads, strict=True))
        data = _one_op("MIRROR_PAD", shape, out, dict(in_dims=list(shape), before=[a for a, _ in pads],
                                                      after=[b for _, b in pads], offset=off))
        x = _x(shape, 3)
        assert np.array_equal(_run(unix, data, x), np.pad(x, pads, mode=mode).reshape(-1)), mode


def _copy_good() -> bytes:
    r = np.arange(2 * 5 * 6 * 3).reshape(2, 5, 6, 3)[:, 4:0:-1, ::2, :]
    return _copy_blob((2, 5, 6, 3), r)


# (field, axis index, value, what the loader says)
COPY_CASES = [
    ("dims", 5, 0, "copy shape"),
    ("dims", 0, 1 << 24, "copy shape"),
    ("dims", 0, 2, "output size"),             # more output than the tensor holds (a step-0 axis)
    ("dims", 3, 6, "copy reaches outside the input"),
    ("strides", 5, 1 << 24, "copy stride"),
    ("strides", 4, -(1 << 24), "copy stride"),
    ("strides", 3, 90, "copy reaches outside the input"),
    ("strides", 3, 18, "copy reaches outside the input"),    # rows stepping forwards from row 4
    ("strides", 2, -90, "copy reaches outside the input"),
    ("start", 0, 170, "copy reaches outside the input"),
    ("start", 0, 0, "copy reaches outside the input"),       # the negative step then reads before the input
]


def test_strided_copy_good_blob_loads(unix):
    unix.link.load(_copy_good())


@pytest.mark.parametrize("field,index,value,expect", COPY_CASES)
def test_strided_copy_refusals(unix, field, index, value, expect):
    assert expect in _load_error(unix, _patch(_copy_good(), "STRIDED_COPY", field, value, index))


def test_strided_copy_large_dims_overflow(unix):
    data = _copy_good()
    for d in range(4):
        data = _patch(data, "STRIDED_COPY", "dims", (1 << 24) - 1, d)
    assert "dimensions overflow" in _load_error(unix, data)


def _gather_good() -> bytes:
    return _one_op("GATHER", (2, 3, 5), (2, 4, 5), dict(outer=2, axis_size=3, inner=5, count=4),
                   [np.array([2, 0, 2, 1], np.int32)])


@pytest.mark.parametrize("field,value,expect", [
    ("outer", 0, "gather shape"),
    ("axis_size", 1 << 24, "gather shape"),
    ("inner", 0, "gather shape"),
    ("count", 0, "gather shape"),
    ("outer", 3, "input size"),
    ("axis_size", 2, "input size"),
    ("inner", 4, "input size"),
    ("count", 5, "indices size"),
])
def test_gather_refusals(unix, field, value, expect):
    assert expect in _load_error(unix, _patch(_gather_good(), "GATHER", field, value))


def test_gather_dimensions_overflow(unix):
    data = _patch(_patch(_gather_good(), "GATHER", "outer", (1 << 24) - 1), "GATHER", "inner", (1 << 24) - 1)
    assert "dimensions overflow" in _load_error(unix, data)


def test_gather_index_out_of_range(unix):
    for bad in (3, -1):
        data = _one_op("GATHER", (2, 3, 5), (2, 4, 5), dict(outer=2, axis_size=3, inner=5, count=4),
                       [np.array([2, 0, bad, 1], np.int32)])
        assert "gather index" in _load_error(unix, data)
    # indices that are not int32 constants
    data = _one_op("GATHER", (2, 3, 5), (2, 4, 5), dict(outer=2, axis_size=3, inner=5, count=4),
                   [np.array([2, 0, 2, 1], np.int8)])
    assert "indices size" in _load_error(unix, data)


def _mirror_good(off=1) -> bytes:
    return _one_op("MIRROR_PAD", (1, 4, 5, 3), (1, 6, 9, 4), dict(in_dims=[1, 4, 5, 3], before=[0, 1, 2, 1],
                                                                  after=[0, 1, 2, 0], offset=off))


@pytest.mark.parametrize("field,index,value,expect", [
    ("offset", 0, 2, "mirror pad mode"),
    ("in_dims", 1, 0, "mirror pad shape"),
    ("in_dims", 2, 1 << 24, "mirror pad shape"),
    ("before", 0, 1, "mirror padding"),       # REFLECT: at most size - 1 = 0 on an axis of 1
    ("after", 1, 4, "mirror padding"),
    ("before", 3, 3, "mirror padding"),
    ("in_dims", 3, 4, "input size"),
    ("after", 3, 1, "output size"),
])
def test_mirror_pad_refusals(unix, field, index, value, expect):
    assert expect in _load_error(unix, _patch(_mirror_good(), "MIRROR_PAD", field, value, index))


def test_mirror_pad_symmetric_limit(unix):
    # SYMMETRIC may pad by the whole axis; REFLECT may not
    data = _one_op("MIRROR_PAD", (1, 2, 2, 1), (1, 6, 2, 1), dict(in_dims=[1, 2, 2, 1], before=[0, 2, 0, 0],
                                                                  after=[0, 2, 0, 0], offset=0))
    x = _x((1, 2, 2, 1))
    assert np.array_equal(_run(unix, data, x), np.pad(x, [(0, 0), (2, 2), (0, 0), (0, 0)], "symmetric").reshape(-1))
    assert "mirror padding" in _load_error(unix, _patch(data, "MIRROR_PAD", "offset", 1))


def test_copy_output_overlapping_its_input_is_refused(unix):
    g = Graph()
    x = g.add(Tensor("x", "int8", (4, 4), 0.1, 0))
    y = g.add(Tensor("y", "int8", (4, 4), 0.1, 0))
    r = np.arange(16).reshape(4, 4).T
    from micronn.lower_movement import copy_params

    class _Low:
        def fail(self, op, why):
            return MicronnError(why)

    g.ops.append(Op("STRIDED_COPY", [x], [y], copy_params(_Low(), None, r)))
    g.inputs, g.outputs = [x], [y]
    data = bytearray(blob.write(g))
    # point the output at the input's arena offset
    info = blob.read(bytes(data))
    tens = {}
    for k in range(info["header"]["section_count"]):
        s = fmt.SECTION.unpack(bytes(data), fmt.HEADER.size + k * fmt.SECTION.size)
        tens[s["id"]] = s["offset"]
    t0 = tens[fmt.SECTION_IDS["TENSORS"]]
    off_x = fmt.TENSOR.unpack(bytes(data), t0)["offset"]
    struct.pack_into("<I", data, t0 + fmt.TENSOR.size + fmt.TENSOR.offsets["offset"], off_x)
    assert "output overlaps an input" in _load_error(unix, _fix_crc(data))


# --- host: lowering refusals ----------------------------------------------------

def _t(i, shape, dtype="int8", data=None, scale=0.1, zp=0):
    q = dtype == "int8"
    return TflTensor(index=i, name=f"t{i}", shape=tuple(shape), shape_signature=None, dtype=dtype, buffer=0,
                     data=None if data is None else np.asarray(data, dtype).tobytes(),
                     scale=np.array([scale], np.float32) if q else None, zero_point=np.array([zp]) if q else None,
                     quantized_dimension=0, is_variable=False)


def _lower_one(*args, **kw):
    return lower.lower(_model_one(*args, **kw))


def _model_one(opcode, x_shape, consts, out_shapes, options=None, out_quant=(0.1, 0), act_inputs=1):
    """A model of one op: activation input(s) 0.., constant inputs after, outputs last."""
    ts = [_t(i, x_shape) for i in range(act_inputs)]
    for c in consts:
        ts.append(_t(len(ts), np.shape(c), "int32", np.asarray(c, np.int32)))
    outs = []
    for s in out_shapes:
        outs.append(len(ts))
        ts.append(_t(len(ts), s, scale=out_quant[0], zp=out_quant[1]))
    ins = list(range(len(ts) - len(outs)))
    if opcode == "SPLIT":      # the axis comes first
        ins = ins[act_inputs:] + ins[:act_inputs]
    op = Operator(0, opcode, 1, None, ins, outs, [], options or {})
    return Model(3, "", ts, [op], list(range(act_inputs)), outs[:1], 1, {}, 0)


def _refused(*args, **kw) -> str:
    with pytest.raises(MicronnError) as e:
        _lower_one(*args, **kw)
    return str(e.value)


def test_lowering_refusals():
    ss = dict(begin_mask=0, end_mask=0)
    assert "stride 0" in _refused("STRIDED_SLICE", (1, 4, 4, 2), [[0, 0, 0, 0], [1, 4, 4, 2], [1, 0, 1, 1]],
                                  [(1, 4, 4, 2)], ss)
    assert "negative stride" in _refused("STRIDED_SLICE", (1, 4, 4, 2), [[0, 1, 0, 0], [1, 2, 4, 2], [1, -1, 1, 1]],
                                         [(1, 4, 2)], dict(ss, shrink_axis_mask=2))
    assert "for a 4-D input" in _refused("STRIDED_SLICE", (1, 4, 4, 2), [[0, 0], [1, 4], [1, 1]], [(1, 4)], ss)
    assert "empty" in _refused("STRIDED_SLICE", (1, 4, 4, 2), [[0, 3, 0, 0], [1, 1, 4, 2], [1, 1, 1, 1]],
                               [(1, 0, 4, 2)], ss)
    # the new-axis mask, which TFLite Micro ignores: its Prepare then refuses the declared shape
    assert "TFLite Micro refuses" in _refused("STRIDED_SLICE", (1, 4, 4, 2), [[0, 0, 0, 0], [1, 4, 4, 2],
                                                                              [1, 1, 1, 1]],
                                              [(1, 1, 4, 4, 2)], dict(ss, new_axis_mask=2))
    assert "differs from the input" in _refused("STRIDED_SLICE", (1, 4, 4, 2), [[0, 1, 0, 0], [1, 3, 4, 2],
                                                                                 [1, 1, 1, 1]],
                                                [(1, 2, 4, 2)], ss, out_quant=(0.2, 0))
    assert "do not fit axis" in _refused("SLICE", (1, 4, 4, 2), [[0, 3, 0, 0], [1, 2, 4, 2]], [(1, 2, 4, 2)])
    assert "equal pieces" in _refused("SPLIT", (1, 5, 2), [[1]], [(1, 2, 2), (1, 3, 2)], dict(num_splits=2))
    assert "do not split" in _refused("SPLIT_V", (1, 5, 2), [[2, 2], [1]], [(1, 2, 2), (1, 2, 2)])
    assert "outside the 3-D input" in _refused("SPLIT_V", (1, 5, 2), [[2, 3], [3]], [(1, 2, 2), (1, 3, 2)])
    assert "does not fit" in _refused("TRANSPOSE", (1, 5, 2), [[0, 1, 1]], [(1, 5, 2)])
    assert "lie in [0, 5)" in _refused("GATHER", (1, 5, 2), [[0, 5]], [(1, 2, 2)], dict(axis=1))
    assert "lie in [0, 5)" in _refused("GATHER", (1, 5, 2), [[-1]], [(1, 1, 2)], dict(axis=1))
    m = _model_one("GATHER", (1, 5, 2), [[0]], [(1, 1, 2)], dict(axis=1))
    m.tensors[1].dtype, m.tensors[1].data = "int64", np.array([0], np.int64).tobytes()
    with pytest.raises(MicronnError, match="takes int32 only"):
        lower.lower(m)
    assert "batch_dims" in _refused("GATHER", (1, 5, 2), [[0]], [(1, 1, 2)], dict(axis=1, batch_dims=1))
    assert "not constant" in _refused("GATHER", (1, 5, 2), [], [(1, 5, 2)], dict(axis=1), act_inputs=2)
    assert "must lie in [0, 4]" in _refused("MIRROR_PAD", (1, 5, 2), [[[0, 0], [5, 0], [0, 0]]], [(1, 10, 2)],
                                            dict(mode="REFLECT"))
    assert "differs from the input" in _refused("PACK", (1, 5), [], [(2, 1, 5)], dict(axis=0), act_inputs=2,
                                                 out_quant=(0.3, 1))
    assert "block size" in _refused("DEPTH_TO_SPACE", (1, 2, 2, 4), [], [(1, 4, 4, 1)], dict(block_size=0))
    assert "multiples of the block" in _refused("SPACE_TO_DEPTH", (1, 3, 4, 1), [], [(1, 1, 2, 4)],
                                                dict(block_size=2))


def test_lowering_strided_slice_semantics():
    """TFLite Micro's clamping and masks: begin and end beyond the axis clamp, masks win."""
    g = _lower_one("STRIDED_SLICE", (1, 6, 4, 2), [[0, -100, 3, 5], [1, 100, -5, 0], [1, 2, -1, -1]],
                   [(1, 3, 4, 2)], dict(begin_mask=0, end_mask=8))
    (op,) = g.ops
    r = np.arange(48).reshape(1, 6, 4, 2)[:, 0:6:2, 3::-1, ::-1]
    p = op.params
    want = p["start"] + sum(np.arange(n).reshape([-1 if k == d else 1 for k in range(6)]) * s
                            for d, (n, s) in enumerate(zip(p["dims"], p["strides"], strict=True)))
    assert np.array_equal(want.reshape(-1), r.reshape(-1))


def test_gather_indices_misaligned(unix):
    data = bytearray(_one_op("GATHER", (2, 3, 5), (2, 3, 5), dict(outer=2, axis_size=3, inner=5, count=3),
                             [np.array([2, 0, 1], np.int32)]))
    info = blob.read(bytes(data))
    at = next(s["offset"] for s in (fmt.SECTION.unpack(bytes(data), fmt.HEADER.size + k * fmt.SECTION.size)
                                    for k in range(info["header"]["section_count"]))
              if s["id"] == fmt.SECTION_IDS["TENSORS"])
    rec = at + fmt.TENSOR.size      # tensor 1: the indices
    assert fmt.TENSOR.unpack(bytes(data), rec)["dtype"] == fmt.DTYPES["int32"]
    off = fmt.TENSOR.unpack(bytes(data), rec)["offset"]
    struct.pack_into("<I", data, rec + fmt.TENSOR.offsets["offset"], off + 2)
    assert "indices misaligned" in _load_error(unix, _fix_crc(data))


# --- TILE and the EXPAND_DIMS -> TILE -> RESHAPE chain (UpSampling2D) -------------

def _box(p: dict) -> np.ndarray:
    """The input indices a STRIDED_COPY's parameters read, in output order."""
    return p["start"] + sum(np.arange(n).reshape([-1 if k == d else 1 for k in range(6)]) * s
                            for d, (n, s) in enumerate(zip(p["dims"], p["strides"], strict=True))).reshape(-1)


def test_tile_lowers_to_one_copy():
    for shape, mult in (((1, 3, 4), (1, 2, 3)), ((1, 4, 5, 3), (1, 3, 1, 2)), ((2, 3), (3, 1)), ((5,), (4,))):
        out = tuple(d * m for d, m in zip(shape, mult, strict=True))
        g = _lower_one("TILE", shape, [list(mult)], [out])
        (op,) = g.ops
        assert op.kind == "STRIDED_COPY" and g.tensors[op.outputs[0]].shape == out
        assert np.array_equal(_box(op.params), np.tile(np.arange(np.prod(shape)).reshape(shape), mult).reshape(-1))


def test_tile_refusals():
    assert "at least 1" in _refused("TILE", (1, 3, 4), [[1, 0, 2]], [(1, 1, 8)])
    assert "3 multiples for a 4-D input" in _refused("TILE", (1, 3, 4, 2), [[1, 2, 2]], [(1, 6, 8, 2)])
    assert "must be constant" in _refused("TILE", (1, 3, 4), [], [(1, 6, 8)], act_inputs=2)
    # every axis repeated and longer than 1: 8 strided axes, more than the copy's 6
    assert "needs 8 strided axes" in _refused("TILE", (2, 3, 4, 5), [[2, 2, 2, 2]], [(4, 6, 8, 10)])
    assert "differs from the input" in _refused("TILE", (1, 3, 4), [[1, 2, 1]], [(1, 6, 4)], out_quant=(0.2, 0))
    assert "values" in _refused("TILE", (1, 300, 400), [[1, 200, 200]], [(1, 60000, 80000)])     # no huge index arrays


def _upsampling_model(x_shape, steps, alias_only=False):
    """x -> per (axis, factor): EXPAND_DIMS(axis + 1) -> TILE -> RESHAPE, with a SHAPE
    reading each chain's input as Keras 3's UpSampling2D writes it (there it feeds the new
    shape; a constant here)."""
    ts = [_t(0, x_shape)]
    ops = []

    def const(v):
        ts.append(_t(len(ts), np.shape(v), "int32", np.asarray(v, np.int32)))
        return len(ts) - 1

    def act(shape):
        ts.append(_t(len(ts), shape))
        return len(ts) - 1

    cur, shape = 0, tuple(x_shape)
    for axis, f in steps:
        e_shape = shape[:axis + 1] + (1,) + shape[axis + 1:]
        e = act(e_shape)
        ops.append(Operator(len(ops), "EXPAND_DIMS", 1, None, [cur, const(axis + 1)], [e], [], {}))
        if alias_only:
            cur, shape = e, e_shape
            break
        t_shape = e_shape[:axis + 1] + (f,) + e_shape[axis + 2:]
        t = act(t_shape)
        ops.append(Operator(len(ops), "TILE", 1, None, [e, const([f if k == axis + 1 else 1
                                                                  for k in range(len(e_shape))])], [t], [], {}))
        s = len(ts)
        ts.append(_t(s, (len(shape),), "int32"))
        ops.append(Operator(len(ops), "SHAPE", 1, None, [cur], [s], [], {"out_type": "INT32"}))
        shape = shape[:axis] + (shape[axis] * f,) + shape[axis + 1:]
        r = act((1, 1, 1, 1))          # the converter's static shapes after it are often wrong
        ops.append(Operator(len(ops), "RESHAPE", 1, None, [t, const(list(shape))], [r], [], {}))
        cur = r
    return Model(3, "", ts, ops, [0], [cur], 1, {}, 0), shape


def test_upsampling_chains_are_one_copy():
    x = np.arange(2 * 5 * 6 * 3).reshape(2, 5, 6, 3)
    m, shape = _upsampling_model(x.shape, [(1, 2), (2, 3)])
    g = lower.lower(m)
    (op,) = g.ops        # both chains, no 5-D tensor
    assert op.kind == "STRIDED_COPY" and g.tensors[op.outputs[0]].shape == shape == (2, 10, 18, 3)
    assert all(len(t.shape) <= 4 for t in g.tensors)
    assert np.array_equal(_box(op.params), x.repeat(2, axis=1).repeat(3, axis=2).reshape(-1))
    m, _ = _upsampling_model((1, 5, 6), [(1, 2)], alias_only=True)       # EXPAND_DIMS alone: an alias
    g = lower.lower(m)
    assert not g.ops and g.tensors[g.outputs[0]].shape == (1, 5, 1, 6) and g.tensors[g.outputs[0]].alias_of == 0
