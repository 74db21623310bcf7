"""ROMFS images (MicroPython's read-only filesystem for memory-mapped flash)
with every file's data 16-byte aligned, so that blobs are used in place.

The image is a sequence of records, each ``varint kind, varint length,
payload``; see MicroPython's extmod/vfs_rom.c. Varints may carry leading
0x80 bytes, which lets us fix the header's size and so every absolute offset.
"""

from __future__ import annotations

from .errors import MicronnError

MAGIC = b"\xd2\xcd\x31"
PADDING, VERBATIM, FILE = 1, 2, 5
HEADER_SIZE = 8      # magic + a 5-byte varint length
ALIGN = 16


def _varint(value: int, width: int = 0) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.insert(0, 0x80 | (value & 0x7F))
        value >>= 7
    return bytes([0x80] * max(0, width - len(out)) + out)


def _record(kind: int, payload: bytes) -> bytes:
    return _varint(kind) + _varint(len(payload)) + payload


def build(files: dict[str, bytes], align: int = ALIGN) -> bytes:
    """A ROMFS image holding ``files`` (flat names) with aligned file data."""
    root = bytearray()
    for name, data in files.items():
        if "/" in name or not name.isascii() or not name:
            raise MicronnError(f"ROMFS file name {name!r}: use a plain ASCII name")
        raw = name.encode()
        inner = _record(VERBATIM, data)
        payload = _varint(len(raw)) + raw + inner
        rec = _record(FILE, payload)
        head = len(rec) - len(data)          # bytes before the data in this record
        pos = HEADER_SIZE + len(root) + head
        pad = -pos % align
        if pad:
            if pad < 2:                      # a padding record takes at least 2 bytes
                pad += align
            root += _varint(PADDING) + _varint(pad - 2) + bytes(pad - 2)
        assert (HEADER_SIZE + len(root) + head) % align == 0
        root += rec
    return MAGIC + _varint(len(root), HEADER_SIZE - len(MAGIC)) + bytes(root)
