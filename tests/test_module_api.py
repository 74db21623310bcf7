"""The device API of the micronn module, exercised on the unix firmware: the built-in
module, and the native module (micronn-x64.mpy) on firmware without it."""

from __future__ import annotations

import numpy as np
import pytest

from micronn import blob, pack
from micronn.reference import tflm_run
from micronn.run import quantize

from .conftest import IMPLS, micropython, need_shared
from .test_format import GRAPH_KNOWN, _graph

pytestmark = pytest.mark.parametrize("impl", IMPLS)


def test_model_api(tmp_path, impl):
    data = blob.write(_graph())
    arena = blob.read(data)["header"]["arena_size"]
    (tmp_path / "m.mnb").write_bytes(data)
    out = micropython(r"""
import micronn
from array import array
blob = open('m.mnb', 'rb').read()
m = micronn.Model(blob)
print(repr(m))
print(m.input_shape, m.input_dtype, m.input_zero_point, m.output_shape, m.output_zero_point)
print(m.arena_size, m.blob_size == len(blob), m.name, m.labels, m.ops, m.macs)
x = bytes(range(8))
y = m.run(x)
print(type(y).__name__, list(y))
print(list(m.run(array('b', range(8)))) == list(y), list(m.run(bytearray(x))) == list(y))
buf = bytearray(4)
print(m.run(x, out=buf) is buf, list(array('b', buf)) == list(y))
f = array('f', [0.0] * 4)
m.run(x, out=f)
print(all(abs(f[i] - m.output_scale * (y[i] - m.output_zero_point)) < 1e-6 for i in range(4)))
label, score = m.predict(x)
print(label, abs(score - 3.8) < 1e-5)
for bad in (bytes(7), array('h', range(8)), 5, array('f', [0.0] * 3)):
    try:
        m.run(bad)
    except (ValueError, TypeError) as e:
        print(type(e).__name__, e)
try:
    m.run(x, out=bytearray(3))
except ValueError as e:
    print(e)
arena = bytearray(m.arena_size)
m2 = micronn.Model(blob, arena=arena)
print(list(m2.run(x)) == list(y))
try:
    micronn.Model(blob, arena=bytearray(1))
except ValueError as e:
    print(e)
m3 = micronn.Model(open('m.mnb', 'rb'))
print(list(m3.run(x)) == list(y))
m4 = micronn.Model(memoryview(b'x' + blob)[1:])
print(list(m4.run(x)) == list(y))
for k in KNOWN:
    print(list(m.run(k)))
""".replace("KNOWN", repr(list(GRAPH_KNOWN))), tmp_path, impl=impl)
    lines = out.splitlines()
    assert lines[0] == "<Model 't' 1 ops in (1,8) int8 out (1,4) int8 arena 0.0 KiB>"
    assert lines[1] == "(1, 8) int8 3 (1, 4) -1"
    assert lines[2].startswith(f"{arena} True t ['a', 'b', 'c', 'd'] ('FULLY_CONNECTED',) 32")
    assert lines[3] == "array [6, 10, 14, 18]"      # worked out by hand: GRAPH_KNOWN
    assert lines[4:7] == ["True True", "True True", "True"]
    assert lines[7] == "d True"                      # label of the largest output, score 0.2 * (18 - -1)
    assert lines[8] == "ValueError micronn: input has 7 bytes; expected 8"
    assert lines[9] == "TypeError micronn: input typecode 'h'; use 'b', 'f', bytes or bytearray"
    assert lines[10] == "TypeError micronn: input needs bytes, bytearray, array('b'/'f'), not int"
    assert lines[11] == "ValueError micronn: input has 3 floats; expected 8"
    assert lines[12] == "micronn: out= has 3 bytes; expected 4"
    assert lines[13] == "True"
    assert lines[14] == f"micronn: arena has 1 bytes; the model needs {arena}"
    assert lines[15:17] == ["True", "True"]
    assert lines[17:] == [str(v) for v in GRAPH_KNOWN.values()]


def test_arena_allocation_failure_says_how_much(tmp_path, impl):
    g = _graph()
    data = bytearray(blob.write(g))
    # Same blob, but claiming a 1.5 GB scratch area.
    import struct
    import zlib

    from micronn import format as fmt
    struct.pack_into("<I", data, fmt.HEADER.offsets["scratch_size"], 1_500_000_000)
    struct.pack_into("<I", data, fmt.HEADER.offsets["crc32"], zlib.crc32(data[fmt.HEADER.offsets["crc32"] + 4:]))
    (tmp_path / "big.mnb").write_bytes(bytes(data))
    out = micropython("""
import micronn
try:
    micronn.Model(open('big.mnb', 'rb').read())
except MemoryError as e:
    print(e)
""", tmp_path, impl=impl)
    need = 1_500_000_000 + blob.read(bytes(data))["header"]["arena_size"]
    assert out.strip() == f"micronn: no memory for a {need}-byte arena: gc.collect() or arena="


def test_float_input_is_quantized_like_tflite(tmp_path, impl):
    model = need_shared("models", "tflm_hello_world_int8.tflite")
    data = pack(model)
    (tmp_path / "h.mnb").write_bytes(data)
    xs = np.linspace(-1, 7, 101, dtype=np.float32)
    (tmp_path / "x.bin").write_bytes(xs.tobytes())
    out = micropython("""
import micronn
from array import array
m = micronn.Model(open('h.mnb', 'rb').read())
xs = array('f', open('x.bin', 'rb').read())
print(' '.join(str(m.run(array('f', [v]))[0]) for v in xs))
""", tmp_path, impl=impl)
    got = np.array(out.split(), dtype=np.int8)
    info = blob.read(data)
    t = info["tensors"][info["inputs"][0]]
    want = tflm_run(model.read_bytes(), quantize(xs.reshape(-1, 1), t["scale"], t["zero_point"]))
    assert np.array_equal(got, want.reshape(-1))


def test_frozen_module_blob(tmp_path, impl):
    """`micronn freeze` writes a module whose BLOB the module uses where it lies."""
    from micronn.deploy import freeze_module

    data = blob.write(_graph())
    (tmp_path / "tiny_model.py").write_text(freeze_module(data, name="tiny_model"))
    (tmp_path / "m.mnb").write_bytes(data)
    out = micropython("""
import micronn, tiny_model
a = micronn.Model(tiny_model.BLOB)
b = micronn.Model(open('m.mnb', 'rb').read())
x = bytes(range(8))
print(len(tiny_model.BLOB), list(a.run(x)) == list(b.run(x)), a.name)
""", tmp_path, impl=impl)
    assert out.split() == [str(len(data)), "True", "t"]


def test_float_input_nan_and_infinities(tmp_path, impl):
    """array('f') input: NaN becomes the zero point, infinities clamp to int8. With _graph()
    (zero point 3): NaN gives x - 3 = 0, all sums 0 and outputs -1 (the output offset);
    +-inf give the saturated rows of GRAPH_KNOWN."""
    (tmp_path / "m.mnb").write_bytes(blob.write(_graph()))
    out = micropython("""
import micronn
from array import array
m = micronn.Model(open('m.mnb', 'rb').read())
for v in (float('nan'), float('inf'), -float('inf'), 1e30, -1e30):
    print(list(m.run(array('f', [v] * 8))))
""", tmp_path, impl=impl)
    assert out.splitlines() == [str(v) for v in ([-1] * 4, GRAPH_KNOWN[bytes([127] * 8)],
                                                 GRAPH_KNOWN[bytes([0x80] * 8)], GRAPH_KNOWN[bytes([127] * 8)],
                                                 GRAPH_KNOWN[bytes([0x80] * 8)])]


def test_resized_blob_is_refused(tmp_path, impl):
    """A bytearray blob that grows after Model() may move: run() refuses it."""
    (tmp_path / "m.mnb").write_bytes(blob.write(_graph()))
    out = micropython("""
import micronn
b = bytearray(open('m.mnb', 'rb').read())
m = micronn.Model(b)
print(list(m.run(bytes(range(8)))))
b.extend(bytes(100000))
try:
    m.run(bytes(range(8)))
    print('no error')
except ValueError as e:
    print(e)
""", tmp_path, impl=impl)
    lines = out.splitlines()
    assert lines[0] == str(GRAPH_KNOWN[bytes(range(8))])
    assert lines[1].startswith("micronn: the blob") and "resized" in lines[1], lines[1]


def test_loader_error_names_the_op_and_field(tmp_path, impl):
    """docs/security.md's example: a requantization shift out of range, refused at Model()."""
    g = _graph()
    g.tensors[g.ops[0].inputs[4]].data = np.array([45], np.int32)
    (tmp_path / "m.mnb").write_bytes(blob.write(g))
    out = micropython("""
import micronn
try:
    micronn.Model(open('m.mnb', 'rb').read())
except ValueError as e:
    print(e)
""", tmp_path, impl=impl)
    assert out.strip() == "micronn: bad op 0: requantization shift (45, expected 30)"
