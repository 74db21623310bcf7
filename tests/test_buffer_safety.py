"""The caller's buffers cannot reach freed or shared memory (issue #17, items 5,
6, 7 and 9), on the unix firmware:

- a writable memoryview of heap memory is refused as a blob or arena: its
  bytearray can be resized under it (the check at run() sees only the view);
- an arena may not overlap its own blob or any live model's blob; a blob may
  not overlap a live model's blob or caller arena; out= may not overlap a live
  blob or the model's arena; two models may share one arena;
- every error text is shorter than the longest of MicroPython's own, whose
  length sizes the decompression buffer (MicroPython 1.25 overflows it by one
  byte for the longest text of a build);
- a name that is not UTF-8, an arena plus scratch of 2^31 and a scratch size
  that is not a multiple of 8 are refused at load, with the values named.
"""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from micronn import blob
from micronn import format as fmt

from .conftest import ROOT, micropython
from .test_format import GRAPH_KNOWN, _graph

SHOW = """
import gc, micronn
from array import array
def show(f):
    try:
        r = f()
        print('ok ' + bytes(r).hex() if isinstance(r, (bytes, bytearray, array)) else 'ok')
    except Exception as e:
        print(type(e).__name__, e)
"""


def _blob() -> bytes:
    return blob.write(_graph())


def _run(tmp_path: Path, body: str) -> list[str]:
    (tmp_path / "m.mnb").write_bytes(_blob())
    return micropython(SHOW + "b = open('m.mnb', 'rb').read()\n" + body, tmp_path).splitlines()


X = bytes(range(8))
WANT = bytes(np.array(GRAPH_KNOWN[X], np.int8)).hex()


def test_memoryview_blob_of_a_bytearray_is_refused(tmp_path):
    """The reviewer's case: resizing the bytearray under a memoryview blob made
    run() read freed memory and return wrong outputs."""
    lines = _run(tmp_path, f"""
ba = bytearray(b)
show(lambda: micronn.Model(memoryview(ba)))
show(lambda: micronn.Model(memoryview(ba)[0:len(ba)]))
m = micronn.Model(memoryview(b))          # a read-only view: bytes never move
show(lambda: m.run({X!r}))
m2 = micronn.Model(ba)                    # the bytearray itself: its resizing is seen
ba.extend(bytes(4096))
show(lambda: m2.run({X!r}))
""")
    assert lines == [
        "ValueError micronn: blob is a writable memoryview; pass its object",
        "ValueError micronn: blob is a writable memoryview; pass its object",
        f"ok {WANT}",
        "ValueError micronn: the blob was resized after Model() was made",
    ]


def test_memoryview_arena_of_heap_memory_is_refused(tmp_path):
    """The reviewer's case: arena=memoryview(ba), then ba resized, crashed the
    unix port (and hung qemu-m4)."""
    lines = _run(tmp_path, f"""
m = micronn.Model(b)
a = bytearray(m.arena_size)
show(lambda: micronn.Model(b, arena=memoryview(a)))
m2 = micronn.Model(b, arena=a)
show(lambda: m2.run({X!r}))
a.extend(bytes(100000))
show(lambda: m2.run({X!r}))
""")
    assert lines == [
        "ValueError micronn: arena= is a memoryview of heap memory",
        f"ok {WANT}",
        "ValueError micronn: the arena was resized after Model() was made",
    ]


def test_arena_may_not_overlap_a_blob(tmp_path):
    """arena= the blob itself gave garbage and a shift by 2,139,062,142 under UBSan."""
    lines = _run(tmp_path, """
ba = bytearray(b) + bytearray(4096)
show(lambda: micronn.Model(ba, arena=ba))
m1 = micronn.Model(ba)
other = bytearray(b)
show(lambda: micronn.Model(other, arena=ba))      # another live model's blob
del m1
gc.collect()
show(lambda: micronn.Model(other, arena=ba))      # no longer live
""")
    assert lines == [
        "ValueError micronn: arena= overlaps the blob",
        "ValueError micronn: arena= overlaps a live model's blob",
        "ok",
    ]


def test_blob_may_not_overlap_a_live_arena_or_blob(tmp_path):
    lines = _run(tmp_path, f"""
m = micronn.Model(b)
a = bytearray(max(m.arena_size, len(b)))
m1 = micronn.Model(b, arena=a)
a[:len(b)] = b
show(lambda: micronn.Model(a))                    # m1 would write over it
m1 = None
show(lambda: micronn.Model(a).run({X!r}))         # m1 is gone: collected on the way
""")
    assert lines == [
        "ValueError micronn: blob overlaps a live model's arena",
        f"ok {WANT}",
    ]


def test_out_may_not_overlap_a_blob(tmp_path):
    lines = _run(tmp_path, f"""
ba = bytearray(b)
m = micronn.Model(ba)
show(lambda: m.run({X!r}, out=memoryview(ba)[100:104]))
show(lambda: m.run({X!r}, out=bytearray(4)))
""")
    assert lines == [
        "ValueError micronn: out= overlaps a live model's blob",
        f"ok {WANT}",
    ]


def test_two_models_may_share_an_arena(tmp_path):
    """Runs are sequential and each writes its whole arena: sharing is safe."""
    lines = _run(tmp_path, f"""
m = micronn.Model(b)
a = bytearray(m.arena_size)
m1 = micronn.Model(b, arena=a)
m2 = micronn.Model(bytes(b), arena=a)
show(lambda: m1.run({X!r}))
show(lambda: m2.run(bytes(8)))
show(lambda: m1.run({X!r}))
""")
    zero = bytes(np.array(GRAPH_KNOWN.get(bytes(8), [0] * 4), np.int8)).hex()
    assert lines[0] == lines[2] == f"ok {WANT}"
    if bytes(8) in GRAPH_KNOWN:
        assert lines[1] == f"ok {zero}"


def test_str_is_not_an_input(tmp_path):
    lines = _run(tmp_path, """
m = micronn.Model(b)
show(lambda: m.run('a' * 8))
""")
    assert lines == ["TypeError micronn: input needs bytes, bytearray, array('b'/'f'), not str"]


def test_long_error_texts_come_out_whole(tmp_path):
    """The 89-character text that overflowed the decompression buffer, and its
    neighbours, arrive whole."""
    lines = _run(tmp_path, """
m = micronn.Model(b)
show(lambda: m.run(array('h', [0] * 8)))
show(lambda: m.run(bytes(8), out=array('h', [0] * 4)))
show(lambda: m.run(bytes(8), out=b'xxxx'))
""")
    assert lines == [
        "TypeError micronn: input typecode 'h'; use 'b', 'f', bytes or bytearray",
        "TypeError micronn: out= typecode 'h'; use 'b', 'f' or bytearray",
        "TypeError micronn: out= needs bytearray or array('b'/'f'), not bytes",
    ]


def _module_texts() -> list[str]:
    """Every MP_ERROR_TEXT of the binding, as the build collects it."""
    src = (ROOT / "cmodule" / "modmicronn.c").read_text()
    return [m.group(1) for m in re.finditer(r'MP_ERROR_TEXT\("((?:[^"\\]|\\.)*)"\)', src)]


def _with_module(name: str) -> bool:
    from micronn import firmware

    return name not in firmware.boards() or firmware.profile(name).get("user_c_module", True)


def test_error_texts_are_shorter_than_micropythons_longest():
    """In every firmware built here, the longest compressed text is one of
    MicroPython's own, and each of micronn's is shorter than it."""
    texts = _module_texts()
    assert len(texts) > 30
    # boards without the module ("user_c_module": false: unix-stock, qemu-*-stock) load the
    # native module, whose texts are not compressed
    builds = sorted(b for b in (ROOT / "build").glob("*/genhdr/compressed.collected")
                    if _with_module(b.parents[1].name))
    if not builds:
        pytest.skip("no firmware built: run `make firmware-all`")
    for collected in builds:
        lines = [x for x in collected.read_text().splitlines() if x.strip()]
        core = max(len(x) for x in lines if not x.startswith("micronn:"))
        ours = [x for x in lines if x.startswith("micronn:")]
        assert ours, collected
        longest = max(ours, key=len)
        assert len(longest) < core, f"{collected}: {longest!r} ({len(longest)}) is not under {core}"
        header = collected.with_name("compressed.data.h").read_text()
        assert f"MP_MAX_UNCOMPRESSED_TEXT_LEN ({core})" in header


def _fix_crc(b: bytearray) -> bytes:
    at = fmt.HEADER.offsets["crc32"]
    struct.pack_into("<I", b, at, zlib.crc32(b[at + 4:]))
    return bytes(b)


def _load(tmp_path: Path, data: bytes) -> str:
    (tmp_path / "bad.mnb").write_bytes(data)
    return micropython(SHOW + "show(lambda: micronn.Model(open('bad.mnb', 'rb').read()))\n", tmp_path).strip()


@pytest.mark.parametrize("name", [b"\xff\xfe", b"ab\xc3", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80"])
def test_name_that_is_not_utf8_is_refused_at_load(tmp_path, name):
    g = _graph()
    mark = ("QZ" * 4)[:len(name)]
    g.meta["NAME"] = mark
    data = bytearray(blob.write(g))
    at = data.index(mark.encode())
    data[at:at + len(name)] = name
    assert _load(tmp_path, _fix_crc(data)) == "ValueError micronn: bad metadata entry 0: name is not UTF-8"


def test_valid_utf8_name_loads(tmp_path):
    g = _graph()
    g.meta["NAME"] = "modèle €1 𝄞"
    (tmp_path / "u.mnb").write_bytes(blob.write(g))
    out = micropython("import micronn\nprint(micronn.Model(open('u.mnb', 'rb').read()).name)", tmp_path)
    assert out.strip() == "modèle €1 𝄞"


def _header(data: bytes, **fields) -> bytes:
    b = bytearray(data)
    for k, v in fields.items():
        struct.pack_into("<I", b, fmt.HEADER.offsets[k], v)
    return _fix_crc(b)


def test_arena_plus_scratch_reports_the_sum(tmp_path):
    """arena + scratch = 2^31 used to report arena_size alone (under its limit)."""
    data = _blob()
    arena = blob.read(data)["header"]["arena_size"]
    out = _load(tmp_path, _header(data, scratch_size=(1 << 31) - arena))
    assert out == f"ValueError micronn: bad header field arena_size + scratch_size ({1 << 31}, limit {(1 << 31) - 1})"


def test_scratch_size_must_be_a_multiple_of_8(tmp_path):
    data = _blob()
    assert _load(tmp_path, _header(data, scratch_size=12)) == \
        "ValueError micronn: bad header field scratch_size (12, limit 8)"
    assert _load(tmp_path, _header(data, scratch_size=16)) == "ok"
