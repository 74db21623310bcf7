"""Models with several inputs and outputs (issue 18, item 1): the loader's limits
and checks, the module API (built-in and native), the server and the host's run,
verify and inspect. The zoo models of tests/opzoo/multi_io.py also run bit-exact
on unix, qemu-m3 and qemu-m4 in tests/test_op_zoo.py."""

from __future__ import annotations

import json
import struct
import subprocess
import sys

import numpy as np
import pytest

from micronn import blob, pack
from micronn import format as fmt
from micronn.graph import Graph, Op, Tensor
from micronn.reference import tflm_run
from micronn.run import io, pack_sample, sample_inputs, split_result

from . import opzoo
from .blobtools import load_error as _load_error
from .conftest import IMPLS, micropython
from .test_blob_validation import _fix_crc, _set

MIO = sorted(n for n in opzoo.cases() if n.startswith("mio_"))


def _blob(name: str) -> tuple[bytes, bytes]:
    tfl = opzoo.tflite(name)
    return tfl, pack(tfl, name=name)


def _graph2x2() -> Graph:
    """Two inputs, two outputs, no TensorFlow: y1 = x1 + x2 (ADD), y2 = fully connected of x2."""
    g = Graph()
    x1 = g.add(Tensor("a", "int8", (1, 4), 0.5, 1))
    x2 = g.add(Tensor("b", "int8", (1, 4), 0.5, 1))
    y1 = g.add(Tensor("sum", "int8", (1, 4), 1.0, 0))
    w = g.const("w", np.arange(8, dtype=np.int8).reshape(2, 4))
    m = g.const("m", np.array([1 << 30], np.int32))
    s = g.const("s", np.array([-2], np.int32))
    y2 = g.add(Tensor("fc", "int8", (1, 2), 0.2, -1))
    g.ops.append(Op("ADD", [x1, x2], [y1], dict(
        dims=[1, 1, 1, 4], stride1=[0, 0, 0, 1], stride2=[0, 0, 0, 1], input1_offset=-1, input2_offset=-1,
        output_offset=0, act_min=-128, act_max=127, left_shift=20, input1_mult=1 << 30, input1_shift=-1,
        input2_mult=1 << 30, input2_shift=-1, output_mult=1 << 30, output_shift=-19)))
    g.ops.append(Op("FULLY_CONNECTED", [x2, w, -1, m, s], [y2], dict(
        input_offset=-1, filter_offset=0, output_offset=-1, act_min=-128, act_max=127,
        batches=1, accum_depth=4, out_depth=2)))
    g.inputs, g.outputs = [x1, x2], [y1, y2]
    g.meta = {"NAME": "t2", "INPUT_NAMES": ["a", "b"], "OUTPUT_NAMES": ["sum", "fc"]}
    return g


@pytest.fixture(scope="module")
def two() -> bytes:
    return blob.write(_graph2x2())


# --- the loader -------------------------------------------------------------------

def _io_entry(data: bytes, k: int) -> int:
    """Byte offset of IO entry k."""
    info = blob.read(data)
    h = info["header"]
    for j in range(h["section_count"]):
        s = fmt.SECTION.unpack(data, h["header_size"] + j * fmt.SECTION.size)
        if s["id"] == fmt.SECTION_IDS["IO"]:
            return s["offset"] + 2 * k
    raise AssertionError("no IO section")


def test_loader_takes_two_inputs_and_outputs(unix, two):
    info = unix.link.load(two)
    assert [d["name"] for d in info["inputs"]] == ["a", "b"]
    assert [d["name"] for d in info["outputs"]] == ["sum", "fc"]
    assert [d["shape"] for d in info["outputs"]] == [(1, 4), (1, 2)]
    assert info["outputs"][1]["zero_point"] == -1 and info["inputs"][0]["dtype"] == "int8"


@pytest.mark.parametrize("field,value,expect", [
    ("input_count", 0, "bad header field input_count (0, limit 16)"),
    ("input_count", fmt.MAX_IO + 1, "bad header field input_count (17, limit 16)"),
    ("output_count", 0, "bad header field output_count (0, limit 16)"),
    ("output_count", fmt.MAX_IO + 1, "bad header field output_count (17, limit 16)"),
    ("output_count", 3, "io size"),           # more entries than the IO section holds
])
def test_loader_refuses_io_counts(unix, two, field, value, expect):
    assert expect in _load_error(unix, _set(two, field, value))


def _set_tensor(data: bytes, i: int, field: str, value) -> bytes:
    info = blob.read(data)
    h = info["header"]
    for j in range(h["section_count"]):
        s = fmt.SECTION.unpack(data, h["header_size"] + j * fmt.SECTION.size)
        if s["id"] == fmt.SECTION_IDS["TENSORS"]:
            at = s["offset"] + i * fmt.TENSOR.size + fmt.TENSOR.offsets[field]
    b = bytearray(data)
    code = {"dtype": "B", "storage": "B", "zero_point": "i", "offset": "I"}[field]
    struct.pack_into("<" + code, b, at, value)
    return _fix_crc(b)


def test_loader_refuses_bad_io_entries(unix, two):
    n = len(blob.read(two)["tensors"])
    b = bytearray(two)
    # the second input names a tensor past the table, then a constant
    struct.pack_into("<H", b, _io_entry(two, 1), n)
    assert "bad graph input/output 1: tensor index" in _load_error(unix, _fix_crc(b))
    const = next(k for k, t in enumerate(blob.read(two)["tensors"]) if t["storage"] == "CONST")
    b = bytearray(two)
    struct.pack_into("<H", b, _io_entry(two, 3), const)
    assert "bad graph input/output 3: not an arena tensor" in _load_error(unix, _fix_crc(b))
    # an int8 zero point out of range on an input and on an output
    ins = blob.read(two)["inputs"]
    outs = blob.read(two)["outputs"]
    assert "bad graph input/output 1: zero point" in _load_error(unix, _set_tensor(two, ins[1], "zero_point", 300))
    assert "bad graph input/output 3: zero point" in _load_error(unix, _set_tensor(two, outs[1], "zero_point", -129))


@pytest.mark.parametrize("where,dtype,ok", [
    ("input", "int32", False), ("input", "int16", True), ("input", "int64", False),
    ("output", "int16", True), ("output", "uint8", False), ("output", "float32", False),
    ("output", "int32", True), ("output", "int64", True),
])
def test_loader_io_dtypes(unix, where, dtype, ok):
    """Inputs int8 or int16 (16x8 models); outputs int8, int16, or int32/int64 (raw values:
    ARG_MAX, ARG_MIN). The extra input or output here is a tensor no op touches, so the IO
    check is what answers."""
    g = _graph2x2()
    t = g.add(Tensor("extra", dtype, (1, 3), 0.0, 0))
    if where == "input":
        g.inputs = [*g.inputs, t]
    else:
        g.outputs = [*g.outputs, t]
    g.meta = {}
    data = blob.write(g)
    if ok:
        info = unix.link.load(data)
        assert info[where + "s"][2]["dtype"] == dtype
    else:
        k = 2 if where == "input" else 4
        assert f"bad graph input/output {k}: dtype" in _load_error(unix, data)


def _int32_out_blob(dtype: str = "int32") -> bytes:
    """_graph2x2 with a third output, of dtype int32 (or int64), shape (1, 1), that no op
    writes: its record is moved onto input 1's arena bytes (which nothing overwrites after
    the FULLY_CONNECTED reads them), so its raw value is those four bytes read as a
    little-endian integer (an int64's low half). The loader checks IO
    records, not who writes them."""
    g = _graph2x2()
    z = g.add(Tensor("idx", dtype, (1, 1), 0.0, 0))
    g.outputs = [*g.outputs, z]
    g.meta = {"NAME": "t3", "INPUT_NAMES": ["a", "b"], "OUTPUT_NAMES": ["sum", "fc", "idx"]}
    data = blob.write(g)
    info = blob.read(data)
    x1 = info["tensors"][info["inputs"][1]]["offset"]
    return _set_tensor(data, info["outputs"][2], "offset", x1)


@pytest.mark.parametrize("dtype", ["int32", "int64"])
def test_wide_output_is_raw_over_the_link(unix, dtype):
    data = _int32_out_blob(dtype)
    info = unix.link.load(data)
    assert info["outputs"][2]["dtype"] == dtype and info["outputs"][2]["shape"] == (1, 1)
    a = bytes([0x81, 2, 3, 0xF4])
    y, _ = unix.link.run(bytes(4) + a)
    got = split_result(y, io(data)["outputs"])
    assert got[2].dtype == np.dtype(dtype) and got[2].shape == (1,)
    assert int(got[2][0]) & 0xFFFFFFFF == int.from_bytes(a, "little")


# --- the module API (built-in and native) -------------------------------------------

API = r"""
import micronn
from array import array
m = micronn.Model(open('m.mnb', 'rb').read())
print(len(m.inputs), len(m.outputs))
print([(d['name'], d['shape'], d['dtype'], d['zero_point']) for d in m.inputs])
print([(d['name'], d['shape'], d['dtype']) for d in m.outputs])
print(m.input_shape, m.output_shape, m.input_dtype, m.output_zero_point)
a = bytes([1, 2, 3, 4]); b = bytes([5, 6, 7, 250])
y = m.run((a, b))
print(type(y).__name__, [list(v) for v in y])
print([list(v) for v in m.run([bytearray(a), array('b', b)])] == [list(v) for v in y])
o1, o2 = bytearray(4), array('f', [0.0] * 2)
r = m.run((a, b), out=(o1, o2))
print(r[0] is o1, r[1] is o2, list(array('b', o1)) == list(y[0]))
print(all(abs(o2[i] - 0.2 * (y[1][i] + 1)) < 1e-6 for i in range(2)))
r = m.run((a, b), out=[None, bytearray(2)])
print(list(r[0]) == list(y[0]), list(array('b', r[1])) == list(y[1]))
print(m.predict((a, b))[0])
t, per = m.profile((a, b))
print(len(per))
def bad(*args, **kw):
    try:
        m.run(*args, **kw)
        print('no error')
    except (TypeError, ValueError) as e:
        print(type(e).__name__, e)
bad(a)
bad((a,))
bad((a, b, a))
bad((a, bytes(5)))
bad((a, 5))
bad((a, 'abcd'))
bad([a, array('h', [0] * 4)])
bad((a, array('f', [0.0] * 3)))
bad((a, b), out=bytearray(4))
bad((a, b), out=(bytearray(4),))
bad((a, b), out=(bytearray(3), None))
bad((a, b), out=(None, array('h', [0, 0])))
bad((a, b), out=(None, 7))
bad({})
print([list(v) for v in m.run((a, b))] == [list(v) for v in y])
"""

API_WANT = """2 2
[('a', (1, 4), 'int8', 1), ('b', (1, 4), 'int8', 1)]
[('sum', (1, 4), 'int8'), ('fc', (1, 2), 'int8')]
(1, 4) (1, 4) int8 0
tuple [[1, 2, 2, -1], [-2, 3]]
True
True True True
True
True True
1
2
TypeError micronn: the model takes 2 inputs: pass a tuple or list
ValueError micronn: 1 inputs given; the model takes 2
ValueError micronn: 3 inputs given; the model takes 2
ValueError micronn: input has 5 bytes; expected 4
TypeError micronn: input needs bytes, bytearray, array('b'/'f'), not int
TypeError micronn: input needs bytes, bytearray, array('b'/'f'), not str
TypeError micronn: input typecode 'h'; use 'b', 'f', bytes or bytearray
ValueError micronn: input has 3 floats; expected 4
TypeError micronn: the model has 2 outputs: out= needs a tuple or list
ValueError micronn: out= has 1 buffers; the model has 2 outputs
ValueError micronn: out= has 3 bytes; expected 4
TypeError micronn: out= typecode 'h'; use 'b', 'f' or bytearray
TypeError micronn: out= needs bytearray or array('b'/'f'), not int
TypeError micronn: the model takes 2 inputs: pass a tuple or list
True
"""


# API's outputs worked out by hand with TFLite's arithmetic. ADD: inputs minus zero point 1,
# (0, 1, 2, 3) and (4, 5, 6, -7), each << 20 then times 2^30 * 2^-1 (a quarter), summed, then
# times 2^30 * 2^-19: (4, 6, 8, -4) / 4 = 1, 1.5, 2, -1 -> 1, 2, 2, -1 (halves away from zero).
# FULLY_CONNECTED of the second input: rows (0..3) and (4..7) give -4 and 28, divided by 8 in
# two roundings (-2 -> -0.5 -> -1; 14 -> 3.5 -> 4), minus 1: -2 and 3. predict(): index 1.


@pytest.mark.parametrize("impl", IMPLS)
def test_module_api(tmp_path, impl, two):
    (tmp_path / "m.mnb").write_bytes(two)
    assert micropython(API, tmp_path, impl=impl) == API_WANT


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype,tc,size", [("int32", "i", 4), ("int64", "q", 8)])
def test_module_api_wide_output(tmp_path, impl, dtype, tc, size):
    """An int32/int64 output comes back as its raw value: array('i'/'q'), or out= of that
    typecode or a bytearray of its bytes; float32 out= is refused (no dequantizing)."""
    (tmp_path / "m.mnb").write_bytes(_int32_out_blob(dtype))
    out = micropython(r"""
import micronn
from array import array
m = micronn.Model(open('m.mnb', 'rb').read())
print(m.outputs[2]['dtype'])
a = bytes([0x81, 2, 3, 0xf4])
y = m.run((bytes(4), a))
print(str(y[2])[:10], len(y[2]), y[2][0] & 0xffffffff == 0xf4030281)
r = m.run((bytes(4), a), out=(None, None, array('TC', [7])))
print(list(r[2]) == list(y[2]))
r = m.run((bytes(4), a), out=(None, None, bytearray(SIZE)))
print(bytes(r[2][:4]) == a)
for o in (array('b', [0] * SIZE), array('f', [0.0]), bytearray(3), array('h', [0] * (SIZE // 2))):
    try:
        m.run((bytes(4), a), out=(None, None, o))
        print(len(o), 'taken')
    except (TypeError, ValueError) as e:
        print(type(e).__name__, e)
""".replace("TC", tc).replace("SIZE", str(size)), tmp_path, impl=impl)
    assert out.splitlines() == [
        dtype, f"array('{tc}', 1 True", "True", "True",
        f"{size} taken",
        f"TypeError micronn: out= typecode 'f'; use '{tc}' or bytearray",
        f"ValueError micronn: out= has 3 bytes; expected {size}",
        f"TypeError micronn: out= typecode 'h'; use '{tc}' or bytearray"]


# --- zoo models through the server (native module; the built-in one: test_op_zoo) ---

def _exact(link, tfl: bytes, data: bytes, x) -> None:
    want = tflm_run(tfl, x)
    outs = io(data)["outputs"]
    link.load(data)
    xs = x if isinstance(x, list) else [x]
    rows = [split_result(link.run(pack_sample(xs, i))[0], outs) for i in range(len(xs[0]))]
    wants = want if isinstance(want, list) else [want]
    assert len(wants) == len(outs)
    for k, w in enumerate(wants):
        got = np.stack([r[k] for r in rows]).reshape(w.shape)
        assert np.array_equal(got, w), f"output {k}: {np.count_nonzero(got != w)} of {w.size} differ"
        assert (got != got[:1]).any(), f"output {k} does not depend on the input"


@pytest.mark.parametrize("name", MIO)
def test_zoo_native(unix_native, name):
    tfl, data = _blob(name)
    x = opzoo.data(name, 8, salt=1) if opzoo.cases()[name].float_io else sample_inputs(data, 8, opzoo.seed(name))
    if opzoo.cases()[name].float_io:
        x = [x[k] for k in opzoo.tflite_order(name)]
    _exact(unix_native.link, tfl, data, x)


def test_blob_io_names_and_order():
    """The blob keeps the converted model's order; INPUT_NAMES/OUTPUT_NAMES are its tensor names."""
    from micronn import tflite as tfl_reader

    for name in ("mio_two_inputs", "mio_float_two_by_two"):
        tfl, data = _blob(name)
        m = tfl_reader.load(tfl)
        d = io(data)
        assert [t["name"] for t in d["inputs"]] == [m.tensors[i].name for i in m.inputs]
        assert [t["name"] for t in d["outputs"]] == [m.tensors[i].name for i in m.outputs]
        assert len(d["inputs"]) == len(opzoo.cases()[name].inputs)
    assert all(t["dtype"] == "float32" for t in d["inputs"] + d["outputs"])


def test_reference_lists():
    tfl, data = _blob("mio_two_by_two")
    x = sample_inputs(data, 3, 1)
    y = tflm_run(tfl, x)
    assert isinstance(y, list) and [a.shape for a in y] == [(3, 3), (3, 6)]
    from micronn.errors import MicronnError

    with pytest.raises(MicronnError, match="2 inputs"):
        tflm_run(tfl, x[0])
    with pytest.raises(MicronnError, match="1 input arrays for a model with 2 inputs"):
        tflm_run(tfl, x[:1])


def test_calibration_by_name_and_order(tmp_path):
    """An .npz with one array per input: by input name, or in order."""
    from micronn.convert import calibration_inputs
    from micronn.errors import MicronnError

    model = opzoo.keras_model("mio_two_inputs")
    a, b = opzoo.data("mio_two_inputs", 4)
    names = [t.name for t in model.inputs]
    np.savez(tmp_path / "named.npz", **{names[1]: b, names[0]: a})
    np.savez(tmp_path / "order.npz", a, b)
    for f in ("named.npz", "order.npz"):
        xs = calibration_inputs(model, tmp_path / f)
        assert [x.shape for x in xs] == [a.shape, b.shape]
    np.save(tmp_path / "one.npy", a)
    with pytest.raises(MicronnError, match="2 inputs"):
        calibration_inputs(model, tmp_path / "one.npy")
    with pytest.raises(MicronnError, match="different numbers of samples"):
        calibration_inputs(model, [a, b[:2]])
    with pytest.raises(MicronnError, match="do not fit"):
        calibration_inputs(model, [b, a])


# --- the CLI ---------------------------------------------------------------------

def _cli(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "micronn.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


def test_cli_multi_io(unix, tmp_path):
    tfl, data = _blob("mio_two_by_two")
    (tmp_path / "m.tflite").write_bytes(tfl)
    (tmp_path / "m.mnb").write_bytes(data)
    p = _cli("inspect", tmp_path / "m.mnb")
    assert p.returncode == 0, p.stderr
    assert "serving_default_mio_in00:0" in p.stdout and "serving_default_mio_in01:0" in p.stdout, p.stdout
    p = _cli("verify", tmp_path / "m.mnb", "--reference", tmp_path / "m.tflite", "--samples", "5")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "bit-exact" in p.stdout, p.stdout
    x = sample_inputs(data, 4, 3)
    names = [t["name"].split(":")[0].replace("serving_default_", "") for t in io(data)["inputs"]]
    np.savez(tmp_path / "x.npz", **{names[1]: x[1], names[0]: x[0]})     # by name, in another order
    p = _cli("run", tmp_path / "m.mnb", "--input", tmp_path / "x.npz", "-o", tmp_path / "y.npz")
    assert p.returncode == 0, p.stderr
    got = np.load(tmp_path / "y.npz")
    want = tflm_run(tfl, x)
    assert [got[f"y{k}"].tolist() for k in range(2)] == [w.tolist() for w in want]
    p = _cli("verify", tmp_path / "m.mnb", "--reference", tmp_path / "m.tflite", "--input", tmp_path / "x.npz")
    assert p.returncode == 0 and "bit-exact: 4 samples" in p.stdout, p.stdout + p.stderr
    p = _cli("run", tmp_path / "m.mnb", "--input", tmp_path / "x.npz")
    assert p.returncode == 0 and "output 1:" in p.stdout, p.stderr
    np.save(tmp_path / "one.npy", x[0])
    p = _cli("run", tmp_path / "m.mnb", "--input", tmp_path / "one.npy")
    assert p.returncode != 0 and "2 inputs" in p.stderr, p.stderr


# --- Cortex-M boards over the link ----------------------------------------------------

@pytest.mark.parametrize("board", ["qemu-m3", "qemu-m4"])
def test_qemu_module_api_and_verify(board, two):
    """The API script on the board itself (blob opened from ROMFS), then the host's
    verify() of a two-input, two-output zoo model against TFLite Micro over the link."""
    from micronn import romfs
    from micronn.firmware import firmware_file
    from micronn.run import verify
    from micronn.targets import QemuTarget

    if not firmware_file(board).exists():
        pytest.skip(f"{board} firmware not built")
    with QemuTarget(board, romfs=romfs.build({"m.mnb": two})) as t:
        t.setup()
        out = t.exec(API.replace("open('m.mnb'", "open('/rom/m.mnb'"))
    assert "\n".join(out.replace("\r\n", "\n").splitlines()) + "\n" == API_WANT
    tfl, data = _blob("mio_three_inputs")
    r = verify(data, tfl, target=board, samples=8)
    assert r["bit_exact"] and r["oracle"] == "tflm" and r["samples"] == 8, r


def test_eval_first_output_and_several_inputs(unix, tmp_path):
    """eval scores the first output (the blob's order); its disagreements cover every output."""
    from micronn.run import evaluate

    tfl, data = _blob("mio_two_heads")
    x = sample_inputs(data, 6, 2)
    want = tflm_run(tfl, x)
    labels = want[0].reshape(6, -1).argmax(axis=1)
    r = evaluate(data, x, labels, "unix", reference=tfl)
    assert r["accuracy"] == 1.0 and r["reference"]["accuracy"] == 1.0
    assert r["disagreements"] == {"outputs": [], "predictions": []}
    assert len(r["classes"]) == want[0].shape[1]
    tfl, data = _blob("mio_two_inputs")
    xs = sample_inputs(data, 5, 4)
    labels = tflm_run(tfl, xs).argmax(axis=1)
    r = evaluate(data, xs, labels, "unix", reference=tfl)
    assert r["accuracy"] == 1.0 and r["samples"] == 5
    (tmp_path / "m.mnb").write_bytes(data)
    (tmp_path / "m.tflite").write_bytes(tfl)
    np.savez(tmp_path / "d.npz", x0=xs[0], x1=xs[1], y=labels)
    p = _cli("eval", tmp_path / "m.mnb", "--data", tmp_path / "d.npz", "--reference", tmp_path / "m.tflite",
             "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["accuracy"] == 1.0


def test_bench_several_inputs_and_outputs():
    from micronn.bench import bench
    from micronn.firmware import firmware_file

    if not firmware_file("qemu-m4").exists():
        pytest.skip("qemu-m4 firmware not built")
    tfl, data = _blob("mio_two_by_two")
    x = sample_inputs(data, 1, 5)
    r = bench(data, "qemu-m4", runs=1, x=[a[0] for a in x])
    want = tflm_run(tfl, x)
    assert [np.array(o).tolist() for o in r["output"]] == [w[0].tolist() for w in want]
    assert r["instructions"] > 0 and len(r["ops"]) == 4


def test_pack_refuses_more_than_max_io_inputs():
    """17 inputs: refused on the host with the limit named (the loader refuses such a blob too)."""
    import keras

    from micronn.convert import keras_to_tflite
    from micronn.errors import MicronnError

    n = fmt.MAX_IO + 1
    xs = [keras.Input((2,), name=f"in{k:02d}") for k in range(n)]
    cat = keras.layers.Concatenate
    t = cat()([cat()(xs[:8]), cat()(xs[8:16]), xs[16]])     # CONCATENATION takes at most 8
    m = keras.Model(xs, keras.layers.Dense(2)(t))
    rng = np.random.default_rng(0)
    tfl = keras_to_tflite(m, [rng.normal(size=(8, 2)).astype(np.float32) for _ in range(n)])
    with pytest.raises(MicronnError, match=f"the model has {n} inputs; micronn runs models with 1 to {fmt.MAX_IO}"):
        pack(tfl)
