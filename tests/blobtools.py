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
