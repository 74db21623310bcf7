"""Misuse of the device API ends in a TypeError or ValueError that says what was
expected and what was given (issue #6, item 3), on the unix firmware. The
input, arena-size, allocation-failure and format-version cases are in
test_module_api.py and test_blob_validation.py; these are the rest."""

from __future__ import annotations

from micronn import blob

from .conftest import micropython
from .test_format import _graph

SETUP = """
import micronn
from array import array
b = open('m.mnb', 'rb').read()
m = micronn.Model(b)
x = bytes(8)
def show(f):
    try:
        f()
        print('no error')
    except (TypeError, ValueError) as e:
        print(type(e).__name__, e)
"""


def test_out_buffer_misuse(tmp_path):
    (tmp_path / "m.mnb").write_bytes(blob.write(_graph()))
    out = micropython(SETUP + """
show(lambda: m.run(x, out=array('f', [0.0] * 3)))
show(lambda: m.run(x, out=array('h', [0] * 4)))
show(lambda: m.run(x, out=bytes(4)))
show(lambda: m.run(x, out=array('f', [0.0] * 4)))
""", tmp_path)
    assert out.splitlines() == [
        "ValueError micronn: out= has 3 floats; expected 4",
        "TypeError micronn: out= typecode 'h'; use 'b', 'f' or bytearray",
        "TypeError micronn: out= needs bytearray or array('b'/'f'), not bytes",
        "no error",
    ]


def test_arena_misuse(tmp_path):
    (tmp_path / "m.mnb").write_bytes(blob.write(_graph()))
    out = micropython(SETUP + """
a = bytearray(m.arena_size + 8)
show(lambda: micronn.Model(b, arena=memoryview(a)[1:]))
show(lambda: micronn.Model(b, arena=bytes(m.arena_size)))
show(lambda: micronn.Model(b, arena=memoryview(a)[8:]))
print(m.arena_size)
""", tmp_path)
    arena_size = int(out.splitlines()[-1])
    assert out.splitlines()[:-1] == [
        "ValueError micronn: arena= is a memoryview of heap memory",
        f"TypeError micronn: arena= needs bytearray({arena_size}), not bytes",
        "ValueError micronn: arena= is a memoryview of heap memory",
    ]


def test_resized_arena_is_refused(tmp_path):
    """A caller-owned bytearray arena that grows after Model() is moved by the
    heap: run() must refuse it, not write into freed memory."""
    (tmp_path / "m.mnb").write_bytes(blob.write(_graph()))
    out = micropython(SETUP + """
a = bytearray(m.arena_size)
m2 = micronn.Model(b, arena=a)
a.extend(bytes(100000))
keep = [bytearray(b'U' * 32) for i in range(2000)]
show(lambda: m2.run(x))
print(sum(1 for k in keep if k != b'U' * 32))
""", tmp_path)
    lines = out.splitlines()
    assert lines[0].startswith("ValueError micronn:") and "arena" in lines[0] and lines[1] == "0"
