"""Helpers of the tests that change packed blobs and check what the board's loader
says: the checksum made right again after a change, and the error of a refused load."""

from __future__ import annotations

import struct
import zlib

import pytest

from micronn import format as fmt
from micronn.link import DeviceError

CRC_AT = fmt.HEADER.offsets["crc32"]


def fix_crc(b: bytearray) -> bytes:
    """The blob with its CRC-32 made right again (so that the loader checks the rest)."""
    struct.pack_into("<I", b, CRC_AT, zlib.crc32(b[CRC_AT + 4:]))
    return bytes(b)


def load_error(unix, data: bytes) -> str:
    """The board's error for loading data, which must be the loader's ValueError."""
    with pytest.raises(DeviceError) as e:
        unix.link.load(data)
    msg = str(e.value)
    assert "ValueError: micronn:" in msg, msg
    return msg


def section_at(data: bytes, name: str) -> int:
    """Blob offset of section ``name`` (a key of format.SECTION_IDS)."""
    h = fmt.HEADER.unpack(data)
    for k in range(h["section_count"]):
        s = fmt.SECTION.unpack(data, h["header_size"] + k * fmt.SECTION.size)
        if s["id"] == fmt.SECTION_IDS[name]:
            return s["offset"]
    raise AssertionError(f"no {name} section")


def tensor_at(data: bytes, i: int) -> int:
    """Blob offset of tensor record i."""
    return section_at(data, "TENSORS") + i * fmt.TENSOR.size


def op_at(data: bytes, k: int) -> int:
    """Blob offset of op record k."""
    at = section_at(data, "OPS")
    for _ in range(k):
        at += fmt.OP.unpack(data, at)["size"]
    return at


def params_at(data: bytes, kind: str) -> int:
    """Blob offset of the parameter record of the blob's first op of this kind."""
    at = section_at(data, "OPS")
    for _ in range(fmt.HEADER.unpack(data)["op_count"]):
        op = fmt.OP.unpack(data, at)
        if op["opcode"] == fmt.OPCODES[kind]:
            return at + op["size"] - op["params_size"]
        at += op["size"]
    raise AssertionError(f"no {kind} op")
