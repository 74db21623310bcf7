"""The blob format: one description in format.py, the C header generated from it."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from micronn import blob
from micronn import format as fmt
from micronn.errors import MicronnError
from micronn.graph import Graph, Op, Tensor, plan_arena


def test_c_header_is_generated_from_format_py():
    assert fmt.HEADER_PATH.read_text() == fmt.c_header(), "run: python -m micronn.format --write"


def test_header_offsets_in_c_match_python():
    text = fmt.HEADER_PATH.read_text()
    for f in fmt.HEADER.fields:
        assert f"#define MNN_HDR_{f.name.upper():<24} {fmt.HEADER.offsets[f.name]:>4}" in text


def test_record_round_trip():
    rec = fmt.TENSOR
    values = dict(dtype=1, ndim=2, storage=0, flags=0, dims=(3, 4, 1, 1), offset=16, nbytes=12,
                  scale=0.5, zero_point=-3)
    raw = rec.pack(**values)
    assert len(raw) == rec.size
    assert rec.unpack(raw) == values
    with pytest.raises(TypeError):
        rec.pack(bogus=1)


def _graph() -> Graph:
    g = Graph()
    x = g.add(Tensor("x", "int8", (1, 8), 0.1, 3))
    w = g.const("w", np.arange(32, dtype=np.int8).reshape(4, 8))
    m = g.const("m", np.array([1 << 30], np.int32))
    s = g.const("s", np.array([-2], np.int32))
    y = g.add(Tensor("y", "int8", (1, 4), 0.2, -1))
    g.ops.append(Op("FULLY_CONNECTED", [x, w, -1, m, s], [y], dict(
        input_offset=-3, filter_offset=0, output_offset=-1, act_min=-128, act_max=127,
        batches=1, accum_depth=8, out_depth=4)))
    g.inputs, g.outputs = [x], [y]
    g.meta = {"NAME": "t", "LABELS": ["a", "b", "c", "d"]}
    return g


def test_blob_layout_and_read_back():
    data = blob.write(_graph())
    info = blob.read(data)
    h = info["header"]
    assert data[:4] == fmt.MAGIC and h["total_size"] == len(data)
    assert h["tensor_count"] == 5 and h["op_count"] == 1 and h["macs"] == 32
    assert info["meta"]["NAME"] == "t" and info["meta"]["LABELS"] == ["a", "b", "c", "d"]
    assert info["ops"][0]["params"]["accum_depth"] == 8
    assert info["ops"][0]["inputs"][2] == fmt.NO_TENSOR
    for k in range(h["section_count"]):
        sec = fmt.SECTION.unpack(data, h["header_size"] + k * fmt.SECTION.size)
        assert sec["offset"] % fmt.ALIGN == 0
    for t in info["tensors"]:
        if t["storage"] == "CONST":
            assert t["offset"] % fmt.ALIGN == 0


def test_blob_reader_rejects_corruption():
    data = bytearray(blob.write(_graph()))
    with pytest.raises(MicronnError, match="magic"):
        blob.read(b"XXXX" + bytes(data[4:]))
    with pytest.raises(MicronnError, match="truncated"):
        blob.read(bytes(data[:-16]))
    data[-1] ^= 1
    with pytest.raises(MicronnError, match="checksum"):
        blob.read(bytes(data))
    data[-1] ^= 1
    struct.pack_into("<H", data, fmt.HEADER.offsets["version_major"], 9)
    with pytest.raises(MicronnError, match="version 9"):
        blob.read(bytes(data))


def test_planner_reuses_memory_of_dead_tensors():
    g = Graph()
    ids = [g.add(Tensor(f"t{i}", "int8", (1, 100))) for i in range(4)]
    for a, b in zip(ids, ids[1:], strict=False):
        g.ops.append(Op("SOFTMAX", [a], [b], {}))
    g.inputs, g.outputs = [ids[0]], [ids[-1]]
    plan = plan_arena(g)
    assert plan.lower_bound == 2 * 104
    assert plan.arena_size == plan.lower_bound
    # neighbours never share memory
    for a, b in zip(ids, ids[1:], strict=False):
        assert plan.offsets[a] != plan.offsets[b]


def test_planner_aliases_share_memory():
    g = Graph()
    a = g.add(Tensor("a", "int8", (1, 64)))
    b = g.add(Tensor("b", "int8", (8, 8), alias_of=a))
    c = g.add(Tensor("c", "int8", (8, 8)))
    g.ops.append(Op("SOFTMAX", [b], [c], {}))
    g.inputs, g.outputs = [a], [c]
    plan = plan_arena(g)
    assert g.root(b) == a and set(plan.offsets) == {a, c}
    assert plan.arena_size == 128


def test_format_doc_tables_are_generated_from_format_py():
    assert fmt.DOC_PATH.read_text() == fmt.doc_text(fmt.DOC_PATH.read_text()), "run: python -m micronn.format --write"


def test_planner_runs_elementwise_ops_in_place():
    g = Graph()
    ids = [g.add(Tensor(f"t{i}", "int8", (1, 64))) for i in range(5)]
    table = g.const("table", np.zeros(256, np.int8))
    g.ops.append(Op("SOFTMAX", [ids[0]], [ids[1]], {}))
    g.ops.append(Op("LUT", [ids[1], table], [ids[2]], {}))       # t1 dies here: t2 takes its place
    g.ops.append(Op("LUT", [ids[2], table], [ids[3]], {}))       # and again
    g.ops.append(Op("SOFTMAX", [ids[3]], [ids[4]], {}))
    g.inputs, g.outputs = [ids[0]], [ids[4]]
    plan = plan_arena(g)
    assert plan.offset(g, ids[1]) == plan.offset(g, ids[2]) == plan.offset(g, ids[3])
    assert plan.arena_size == 2 * 64
