"""Every single-byte change in a blob's header and tables (checksum fixed up so
that the structure checks, not the CRC, must catch it) and every truncation ends
in a ValueError naming the problem (or a MemoryError saying how much arena a
changed size asks for), or loads and runs normally; never a crash."""

from __future__ import annotations

import struct
import zlib

from micronn import blob
from micronn import format as fmt

from .conftest import micropython
from .test_format import _graph

CRC_AT = fmt.HEADER.offsets["crc32"]


def _mutants(data: bytes) -> list[bytes]:
    info = blob.read(data)
    const_sec = next(fmt.SECTION.unpack(data, fmt.HEADER.size + k * fmt.SECTION.size)
                     for k in range(info["header"]["section_count"])
                     if fmt.SECTION.unpack(data, fmt.HEADER.size + k * fmt.SECTION.size)["id"]
                     == fmt.SECTION_IDS["CONST"])
    out = []
    for pos in range(len(data)):
        if const_sec["offset"] <= pos < const_sec["offset"] + const_sec["size"] or CRC_AT <= pos < CRC_AT + 4:
            continue        # weight bytes are any values by design; the CRC has its own test
        for new in {data[pos] ^ 0xFF, data[pos] ^ 0x01, 0x00, 0x80, 0x7F}:
            if new == data[pos]:
                continue
            b = bytearray(data)
            b[pos] = new
            struct.pack_into("<I", b, CRC_AT, zlib.crc32(b[CRC_AT + 4:]))
            out.append(bytes(b))
    return out


def test_single_byte_changes_and_truncations(tmp_path):
    data = blob.write(_graph())
    mutants = _mutants(data) + [data[:n] for n in range(len(data))]
    with open(tmp_path / "mutants.bin", "wb") as f:
        for m in mutants:
            f.write(struct.pack("<I", len(m)) + m)
    out = micropython(f"""
import micronn, struct
f = open('mutants.bin', 'rb')
counts = {{'ValueError': 0, 'MemoryError': 0, 'ran': 0, 'other': 0}}
unnamed = 0
for i in range({len(mutants)}):
    (n,) = struct.unpack('<I', f.read(4))
    b = f.read(n)
    try:
        m = micronn.Model(b)
        m.run(bytes(8))
        counts['ran'] += 1
    except (ValueError, MemoryError) as e:
        counts[type(e).__name__] += 1
        if not str(e).startswith('micronn: '):
            unnamed += 1
    except Exception as e:
        counts['other'] += 1
        print('other', i, repr(e))
print(counts['ValueError'], counts['MemoryError'], counts['ran'], counts['other'], unnamed)
""", tmp_path, timeout=300)
    last = out.strip().splitlines()[-1].split()
    value_errors, memory_errors, ran, other, unnamed = map(int, last)
    print(f"\n{len(mutants)} mutated or truncated blobs: {value_errors} ValueError, {memory_errors} MemoryError "
          f"(arena size), {ran} loaded and ran, {other} other")
    assert value_errors + memory_errors + ran == len(mutants) and other == 0 and unnamed == 0, out[-2000:]
    assert value_errors > len(mutants) // 2      # the structure checks catch most changes
