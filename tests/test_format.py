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


def _records():
    return [fmt.HEADER, fmt.SECTION, fmt.TENSOR, fmt.OP, fmt.META_ENTRY, *fmt.OP_PARAMS.values()]


def _distinct_values(rec: fmt.Record) -> dict:
    """A value for every field of a record, no two alike, each needing the field's full width."""
    out = {}
    for i, f in enumerate(rec.fields):
        vals = []
        for k in range(f.count):
            n = 16 * i + k + 1
            vals.append({"u8": 0x80 | n % 0x7f, "u16": 0x8100 + n, "u32": 0x81234500 + n, "i32": -0x1234500 - n,
                         "f32": 0.5 + n}[f.type])
        out[f.name] = tuple(vals) if f.count > 1 else vals[0]
    return out


def test_c_header_compiled_reads_what_python_packs(tmp_path):
    """A C program built against cmodule/mnn_format.h (warnings are errors, so a macro defined
    twice fails) reads records Python packed with a distinct value in every field, through the
    header's offsets, and prints the header's constants and MNN_CONV_POOL_SCRATCH."""
    import shutil
    import subprocess

    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    assert cc, "no C compiler (tools/setup-apt.sh installs one)"
    types = {"u8": ("uint8_t", "%u"), "u16": ("uint16_t", "%u"), "u32": ("uint32_t", "%lu"),
             "i32": ("int32_t", "%ld"), "f32": ("float", "%.9g")}
    casts = {"u8": "(unsigned)", "u16": "(unsigned)", "u32": "(unsigned long)", "i32": "(long)", "f32": "(double)"}
    data, want, body = b"", [], []
    for rec in _records():
        values = _distinct_values(rec)
        raw = rec.pack(**values)
        body.append(f'    printf("{rec.prefix} size %d\\n", {rec.prefix}_RECORD_SIZE);')
        want.append(f"{rec.prefix} size {len(raw)}")
        for f in rec.fields:
            ctype, conv = types[f.type]
            for k in range(f.count):
                v = values[f.name][k] if f.count > 1 else values[f.name]
                at = f"{len(data)} + {rec.prefix}_{f.name.upper()} + {k} * sizeof({ctype})"
                body.append(f'    {{ {ctype} v; memcpy(&v, buf + {at}, sizeof v); '
                            f'printf("{rec.prefix}.{f.name}[{k}] {conv}\\n", {casts[f.type]}v); }}')
                want.append(f"{rec.prefix}.{f.name}[{k}] {float(v):.9g}" if f.type == "f32"
                            else f"{rec.prefix}.{f.name}[{k}] {v}")
        data += raw
    consts = dict(MNN_ALIGN=fmt.ALIGN, MNN_ARENA_ALIGN=fmt.ARENA_ALIGN, MNN_MAX_DIMS=fmt.MAX_DIMS,
                  MNN_MAX_TENSORS=fmt.MAX_TENSORS, MNN_MAX_OPS=fmt.MAX_OPS, MNN_MAX_SECTIONS=fmt.MAX_SECTIONS,
                  MNN_NO_TENSOR=fmt.NO_TENSOR, MNN_VERSION_MAJOR=fmt.VERSION_MAJOR,
                  MNN_CONV_SCRATCH_PER_TAP=fmt.CONV_SCRATCH_PER_TAP, MNN_ADD_SCRATCH=fmt.ADD_SCRATCH,
                  MNN_OPCODE_MAX=max(fmt.OPCODES.values()))
    consts.update({f"MNN_MAGIC_{i}": b for i, b in enumerate(fmt.MAGIC)})
    consts.update({f"MNN_OPCODE_{k}": v for k, v in fmt.OPCODES.items()})
    consts.update({f"MNN_SECTION_{k}": v for k, v in fmt.SECTION_IDS.items()})
    consts.update({f"MNN_DTYPE_{k.upper()}": v for k, v in fmt.DTYPES.items()})
    consts.update({f"MNN_META_{k}": v for k, v in fmt.META_KEYS.items()})
    for name, v in consts.items():
        body.append(f'    printf("{name} %ld\\n", (long)({name}));')
        want.append(f"{name} {v}")
    for k, out_c, ph, pw, image in [(1, 1, 1, 1, 1), (9, 16, 2, 2, 784), (27, 32, 3, 2, 3072),
                                    (50_000, 1_000_000, 4, 4, 3_000_000_000)]:
        body.append(f'    printf("pool scratch %llu\\n", (unsigned long long)MNN_CONV_POOL_SCRATCH('
                    f'(uint64_t){k}, (uint64_t){out_c}, (uint64_t){ph} * {pw}, (uint64_t){image}));')
        want.append(f"pool scratch {fmt.conv_pool_scratch(k, out_c, ph, pw, image)}")
    (tmp_path / "records.bin").write_bytes(data)
    (tmp_path / "check.c").write_text(
        "#include <stdint.h>\n#include <stdio.h>\n#include <string.h>\n#include \"mnn_format.h\"\n"
        f"static unsigned char buf[{len(data)}];\n"
        "int main(void) {\n    FILE *f = fopen(\"records.bin\", \"rb\");\n"
        "    if (!f || fread(buf, 1, sizeof buf, f) != sizeof buf) {\n        return 2;\n    }\n"
        + "\n".join(body) + "\n    return 0;\n}\n")
    subprocess.run([cc, "-std=c99", "-Wall", "-Wextra", "-Werror", f"-I{fmt.HEADER_PATH.parent}", "-o", "check",
                    "check.c"], cwd=tmp_path, check=True)
    got = subprocess.run(["./check"], cwd=tmp_path, capture_output=True, text=True, check=True).stdout.splitlines()
    bad = [(w, g) for w, g in zip(want, got, strict=True) if w != g]
    assert not bad, f"{len(bad)} differ, first {bad[:5]}"


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


# _graph()'s outputs worked out by hand (several test files use this blob). Output j is
#   R(sum_i (x_i - 3) * (8j + i)) - 1, clamped to int8,
# where R is TFLite's requantization with multiplier 2^30 and shift -2, a division by 8 in
# two roundings: v -> v / 2 with halves up, then / 4 with halves away from zero.
GRAPH_KNOWN = {
    # x - 3 = -3..4 sums to 4 and sum (i - 3) * i = 140 - 84 = 56: sums 32j + 56, exactly 7 + 4j
    bytes(range(8)): [6, 10, 14, 18],
    # x - 3 = unit vector 3: sums 8j + 3; (8j + 3) / 2 -> 4j + 2, / 4 = j + 1/2 -> j + 1
    # (one rounding of (8j + 3) / 8 would give j: this input tells the two apart)
    bytes([3, 3, 3, 4, 3, 3, 3, 3]): [0, 1, 2, 3],
    # x - 3 = (1, -3, ..., -3): sums 8j - 3 * (56j + 28) = -160j - 84; / 8 = -20j - 10.5 -> -20j - 11
    bytes([4, 0, 0, 0, 0, 0, 0, 0]): [-12, -32, -52, -72],
    # x - 3 = 124 and -131 times sum_i (8j + i) = 64j + 28: far outside int8, clamped
    bytes([127] * 8): [127, 127, 127, 127],
    bytes([0x80] * 8): [-128, -128, -128, -128],
}


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
