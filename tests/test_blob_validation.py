"""Bad blobs give ValueError naming the problem on the real firmware; never a crash."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from micronn import blob
from micronn import format as fmt

from .blobtools import fix_crc as _fix_crc
from .blobtools import load_error as _load_error
from .test_format import _graph

CRC_AT = fmt.HEADER.offsets["crc32"]


def _set(data: bytes, field: str, value: int, fix_crc: bool = True) -> bytes:
    b = bytearray(data)
    f = next(f for f in fmt.HEADER.fields if f.name == field)
    code = {"u8": "B", "u16": "H", "u32": "I", "i32": "i"}[f.type]
    struct.pack_into("<" + code, b, fmt.HEADER.offsets[field], value)
    return _fix_crc(b) if fix_crc else bytes(b)


@pytest.fixture(scope="module")
def good():
    return blob.write(_graph())


# header field -> (new value, what the error must say); None: the loader tolerates it.
HEADER_CASES = {
    "magic": (None, "bad magic"),
    "version_major": (2, "blob format 2 is not supported; this module reads 1"),
    "version_minor": (7, None),
    "header_size": (8, "header_size"),
    "section_count": (200, "section_count"),
    "total_size": (0x10000, "blob truncated at blob"),
    "crc32": (0x12345678, "checksum mismatch"),
    "flags": (0x80, None),
    "arena_size": (4, "arena_size"),
    "scratch_size": (0x7FFFFFFF, "arena_size"),
    "tensor_count": (9, "tensors size"),
    "op_count": (2, "blob truncated at op 1"),
    "input_count": (fmt.MAX_IO + 1, "input_count"),
    "output_count": (0, "output_count"),
    "const_size": (1 << 20, "const size"),
    "macs": (1, None),
    # a model without state has none; a size that is not a multiple of 8 is malformed
    "state_size": (12, "state_size"),
    # refused: a later minor version may give these a meaning a reader must not ignore
    "reserved": (5, "reserved"),
}


def test_every_header_field_has_a_case():
    assert set(HEADER_CASES) == {f.name for f in fmt.HEADER.fields}


@pytest.mark.parametrize("field", list(HEADER_CASES))
def test_header_field(unix, good, field):
    value, expect = HEADER_CASES[field]
    if field == "magic":
        data = b"MNNX" + good[4:]
    else:
        data = _set(good, field, value, fix_crc=field != "crc32")
    if expect is None:
        info = unix.link.load(data)
        assert info["output_shape"] == (1, 4)
    else:
        assert expect in _load_error(unix, data)


def test_arena_size_too_small_for_a_tensor(unix, good):
    assert "outside the arena" in _load_error(unix, _set(good, "arena_size", 8))


def test_truncations(unix, good):
    lengths = sorted(set(range(0, 80)) | set(range(80, len(good), 7)) | {len(good) - 1})
    for n in lengths:
        msg = _load_error(unix, good[:n])
        assert "truncated" in msg, (n, msg)
    assert unix.link.load(good)["ops"] == ("FULLY_CONNECTED",)


def test_bit_flips_are_caught_by_the_crc(unix, good):
    rng = np.random.default_rng(1)
    for pos in rng.choice(np.arange(CRC_AT + 4, len(good)), 40, replace=False):
        b = bytearray(good)
        b[pos] ^= 1 << int(rng.integers(8))
        assert "checksum mismatch" in _load_error(unix, bytes(b))


def test_bad_tables_with_a_valid_crc(unix, good):
    info = blob.read(good)
    sec = {}
    for k in range(info["header"]["section_count"]):
        s = fmt.SECTION.unpack(good, fmt.HEADER.size + k * fmt.SECTION.size)
        sec[s["id"]] = s["offset"]
    t0 = sec[fmt.SECTION_IDS["TENSORS"]]
    op0 = sec[fmt.SECTION_IDS["OPS"]]
    cases = [
        (t0 + fmt.TENSOR.offsets["dtype"], 99, "bad tensor 0: unknown dtype"),
        (t0 + fmt.TENSOR.offsets["nbytes"], 3, "bad tensor 0: nbytes does not match shape"),
        (t0 + fmt.TENSOR.offsets["storage"], 7, "bad tensor 0: unknown storage"),
        (op0 + fmt.OP.offsets["opcode"], 200, "op 0 has op code 200, which this module does not support"),
        (op0 + fmt.OP.offsets["n_inputs"], 4, "bad op 0: operand count"),
    ]
    for pos, value, expect in cases:
        b = bytearray(good)
        b[pos] = value
        assert expect in _load_error(unix, _fix_crc(b))
    # an op whose input tensor index is out of range
    b = bytearray(good)
    struct.pack_into("<H", b, op0 + fmt.OP.size, 77)
    assert "bad op 0: input size" in _load_error(unix, _fix_crc(b))
