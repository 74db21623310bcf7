"""Serialize a lowered ``Graph`` into a blob, and parse a blob back.

The layout is described in ``micronn.format``; this module only follows it.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

from . import format as fmt
from .errors import MicronnError
from .graph import Graph, plan_arena

_CRC_START = fmt.HEADER.offsets["crc32"] + 4


def _pad(b: bytes | bytearray, a: int = fmt.ALIGN) -> bytes:
    return bytes(b) + bytes(fmt.align(len(b), a) - len(b))


def _meta_section(meta: dict[str, object]) -> bytes:
    out = bytearray()
    for key, value in meta.items():
        if value is None:
            continue
        if isinstance(value, str):
            typ, raw = "UTF8", value.encode()
        elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            typ, raw = "UTF8", "\n".join(value).encode()
        elif isinstance(value, int):
            typ, raw = "U32", struct.pack("<I", value)
        elif isinstance(value, bytes):
            typ, raw = "BYTES", value
        else:
            typ, raw = "F32_ARRAY", np.asarray(value, dtype="<f4").tobytes()
        out += fmt.META_ENTRY.pack(key=fmt.META_KEYS[key], type=fmt.META_TYPES[typ], size=len(raw))
        out += _pad(raw, 4)
    return bytes(out)


def write(g: Graph) -> bytes:
    """Plan the arena, lay out the constants and return the blob bytes."""
    plan = plan_arena(g)
    const = bytearray()
    seen: dict[bytes, int] = {}
    state_size = 0
    once = [op.once for op in g.ops]
    if once != sorted(once, reverse=True):
        raise AssertionError("ONCE ops must come first")
    for i, t in enumerate(g.tensors):
        if t.state:
            t.offset = state_size
            state_size += fmt.align(t.nbytes, fmt.ARENA_ALIGN)
        elif t.is_const:
            raw = np.ascontiguousarray(t.data, dtype=t.data.dtype.newbyteorder("<")).tobytes()
            if raw not in seen:     # identical arrays are stored once
                seen[raw] = len(const)
                const += _pad(raw)
            t.offset = seen[raw]
        else:
            t.offset = plan.offset(g, i)

    tensors = bytearray()
    for t in g.tensors:
        dims = list(t.shape) + [1] * (fmt.MAX_DIMS - len(t.shape))
        tensors += fmt.TENSOR.pack(
            dtype=fmt.DTYPES[t.dtype], ndim=len(t.shape),
            storage=fmt.STORAGE[t.storage],
            dims=dims, offset=t.offset, nbytes=t.nbytes, scale=float(t.scale), zero_point=int(t.zero_point))

    from .inspector import op_macs

    ops = bytearray()
    macs = 0
    for op in g.ops:
        rec = fmt.OP_PARAMS[op.kind]
        idx = [fmt.NO_TENSOR if i < 0 else i for i in op.inputs + op.outputs]
        idx_bytes = _pad(struct.pack(f"<{len(idx)}H", *idx), 4)
        size = fmt.OP.size + len(idx_bytes) + rec.size
        ops += fmt.OP.pack(opcode=fmt.OPCODES[op.kind], n_inputs=len(op.inputs), n_outputs=len(op.outputs),
                           flags=fmt.OP_FLAGS["ONCE"] if op.once else 0, size=size, params_size=rec.size)
        ops += idx_bytes + rec.pack(**op.params)
        macs += op_macs(op.kind, op.params)

    io = struct.pack(f"<{len(g.inputs) + len(g.outputs)}H", *(g.inputs + g.outputs))
    meta = _meta_section({**g.meta, "ARENA_LOWER_BOUND": plan.lower_bound} if g.meta else {})
    sections = [("TENSORS", bytes(tensors)), ("OPS", bytes(ops)), ("IO", io), ("CONST", bytes(const))]
    if meta:
        sections.append(("META", meta))

    table_end = fmt.HEADER.size + fmt.SECTION.size * len(sections)
    body = bytearray()
    table = bytearray()
    pos = fmt.align(table_end)
    for name, data in sections:
        table += fmt.SECTION.pack(id=fmt.SECTION_IDS[name], offset=pos, size=len(data),
                                  flags=fmt.SECTION_FLAGS["OPTIONAL"] if name == "META" else 0)
        body += _pad(data)
        pos += fmt.align(len(data))
    total = fmt.align(table_end) + len(body)
    flags = 0
    for name, on in (("HAS_META", bool(meta)), ("FLOAT_INPUT", g.float_input), ("FLOAT_OUTPUT", g.float_output)):
        flags |= fmt.HEADER_FLAGS[name] if on else 0
    header = fmt.HEADER.pack(
        magic=list(fmt.MAGIC), version_major=fmt.VERSION_MAJOR, version_minor=fmt.VERSION_MINOR,
        header_size=fmt.HEADER.size, section_count=len(sections), total_size=total, crc32=0, flags=flags,
        arena_size=fmt.align(plan.arena_size, fmt.ARENA_ALIGN),
        scratch_size=fmt.align(max((op.scratch for op in g.ops), default=0), fmt.ARENA_ALIGN),
        tensor_count=len(g.tensors), op_count=len(g.ops), input_count=len(g.inputs),
        output_count=len(g.outputs), const_size=len(const), macs=min(macs, 0xFFFFFFFF), state_size=state_size)
    blob = bytearray(_pad(header + table))
    blob += body
    assert len(blob) == total
    struct.pack_into("<I", blob, fmt.HEADER.offsets["crc32"], zlib.crc32(blob[_CRC_START:]))
    return bytes(blob)


def crc_ok(blob: bytes) -> bool:
    (stored,) = struct.unpack_from("<I", blob, fmt.HEADER.offsets["crc32"])
    return zlib.crc32(blob[_CRC_START:]) == stored


def read(blob: bytes) -> dict:
    """Parse a blob into plain Python structures (for inspect and tools).

    Checks structure enough to parse safely; the device does the full
    validation."""
    b = bytes(blob)
    if len(b) < fmt.HEADER.size or b[:4] != fmt.MAGIC:
        raise MicronnError("not a micronn blob (bad magic or too short)")
    h = fmt.HEADER.unpack(b)
    if h["version_major"] != fmt.VERSION_MAJOR:
        raise MicronnError(f"blob format version {h['version_major']}.{h['version_minor']} is not supported "
                           f"(this micronn reads {fmt.VERSION_MAJOR}.x)")
    if h["total_size"] > len(b):
        raise MicronnError(f"blob truncated: {len(b)} bytes, header says {h['total_size']}")
    if h["total_size"] < fmt.HEADER.size:
        raise MicronnError(f"malformed blob: total size {h['total_size']} is smaller than the header")
    if not crc_ok(b[:h["total_size"]]):
        raise MicronnError("blob checksum mismatch (crc32): corrupted blob")
    secs = {}
    try:
        for k in range(h["section_count"]):
            s = fmt.SECTION.unpack(b, h["header_size"] + k * fmt.SECTION.size)
            name = {v: n for n, v in fmt.SECTION_IDS.items()}.get(s["id"], f"#{s['id']}")
            secs[name] = b[s["offset"]:s["offset"] + s["size"]]
        tensors = [fmt.TENSOR.unpack(secs["TENSORS"], i * fmt.TENSOR.size) for i in range(h["tensor_count"])]
        names = {v: n for n, v in fmt.DTYPES.items()}
        for t in tensors:
            t["dtype"] = names.get(t["dtype"], t["dtype"])
            t["shape"] = tuple(t["dims"][: t["ndim"]])
            t["storage"] = {v: k for k, v in fmt.STORAGE.items()}.get(t["storage"], t["storage"])
        opnames = {v: n for n, v in fmt.OPCODES.items()}
        ops, pos = [], 0
        for _ in range(h["op_count"]):
            o = fmt.OP.unpack(secs["OPS"], pos)
            n = o["n_inputs"] + o["n_outputs"]
            idx = list(struct.unpack_from(f"<{n}H", secs["OPS"], pos + fmt.OP.size))
            kind = opnames.get(o["opcode"], f"#{o['opcode']}")
            pstart = pos + o["size"] - o["params_size"]
            params = fmt.OP_PARAMS[kind].unpack(secs["OPS"], pstart) if kind in fmt.OP_PARAMS else {}
            ops.append({"kind": kind, "inputs": idx[: o["n_inputs"]], "outputs": idx[o["n_inputs"]:],
                        "params": params, "once": bool(o["flags"] & fmt.OP_FLAGS["ONCE"])})
            pos += o["size"]
        io = struct.unpack_from(f"<{h['input_count'] + h['output_count']}H", secs["IO"])
        meta = _read_meta(secs.get("META", b""))
    except (KeyError, struct.error, IndexError) as e:
        raise MicronnError(f"malformed blob: {e}") from None
    n = len(tensors)
    if h["input_count"] < 1 or h["output_count"] < 1:
        raise MicronnError(f"malformed blob: {h['input_count']} inputs and {h['output_count']} outputs")
    for where, idx, optional in [("graph input or output", io, False)] + [
            (f"op {k} ({o['kind']}) {kind}", o[kind], kind == "inputs") for k, o in enumerate(ops)
            for kind in ("inputs", "outputs")]:
        bad = [i for i in idx if i >= n and not (optional and i == fmt.NO_TENSOR)]
        if bad:
            raise MicronnError(f"malformed blob: {where} refers to tensor {bad[0]} of {n}")
    return {"header": h, "tensors": tensors, "ops": ops, "inputs": list(io[: h["input_count"]]),
            "outputs": list(io[h["input_count"]:]), "meta": meta, "sections": {k: len(v) for k, v in secs.items()}}


def _read_meta(sec: bytes) -> dict:
    """Metadata values by key name. Like the device, any key may have any type: NAME and
    LABELS are read as text whatever their type, and a value whose size does not fit its
    type (a U32 of 3 bytes, say) stays bytes."""
    keys = {v: n for n, v in fmt.META_KEYS.items()}
    types = {v: n for n, v in fmt.META_TYPES.items()}
    out, pos = {}, 0
    while pos + fmt.META_ENTRY.size <= len(sec):
        e = fmt.META_ENTRY.unpack(sec, pos)
        raw = sec[pos + fmt.META_ENTRY.size: pos + fmt.META_ENTRY.size + e["size"]]
        key, typ = keys.get(e["key"], f"#{e['key']}"), types.get(e["type"])
        if typ == "UTF8" or key in ("NAME", "LABELS"):
            val: object = raw.decode("utf-8", "replace")
        elif typ == "U32" and len(raw) == 4:
            (val,) = struct.unpack("<I", raw)
        elif typ == "F32_ARRAY" and len(raw) % 4 == 0:
            val = np.frombuffer(raw, dtype="<f4").tolist()
        else:
            val = raw
        out[key] = val
        pos += fmt.META_ENTRY.size + fmt.align(e["size"], 4)
    if "LABELS" in out:
        out["LABELS"] = out["LABELS"].split("\n")
    return out
