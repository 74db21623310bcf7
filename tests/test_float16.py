"""Float inputs and outputs of 16x8 models (issue 14): a Keras model converted with
keras_to_tflite(..., activations="int16", float_io=True) has QUANTIZE float -> int16 first
and DEQUANTIZE int16 -> float last; micronn packs them as the blob's FLOAT_INPUT /
FLOAT_OUTPUT flags and the board (de)quantizes array('f') with TFLite Micro's QUANTIZE and
DEQUANTIZE arithmetic. Checked bit for bit against TFLite Micro running the float .tflite:
the quantization alone (every rounding tie, clamping) through an identity graph, whole
models on the unix port (built-in and native module), through the serial link and the CLI,
and on qemu-m4."""

from __future__ import annotations

import functools
import json
import subprocess
import sys

import numpy as np
import pytest

from micronn import blob, pack
from micronn import format as fmt
from micronn import tflite as tfl_reader
from micronn.graph import Graph, Op, Tensor
from micronn.quant import quantize_multiplier
from micronn.reference import tflm_run, tflm_tensors
from micronn.run import io, verify
from micronn.targets import QemuTarget

from . import s16x_models as models
from .conftest import IMPLS, micropython, need_firmware

# s16_cnn: every 16x8 op family, a SOFTMAX output (scale 1/32768); s16_conv: signed outputs.
NAMES = ["s16_cnn", "s16_conv"]
SAMPLES = 10


@functools.cache
def _converted(name: str) -> tuple[bytes, bytes]:
    """The float-interface .tflite of a 16x8 Keras model, and its blob."""
    from micronn.convert import keras_to_tflite

    calib = np.concatenate(models.calibration(name))
    tfl = keras_to_tflite(models.keras_model(name), calib, activations="int16", float_io=True)
    return tfl, pack(tfl, name=name)


def _input_quant(tfl: bytes) -> tuple[np.float32, int]:
    """Scale and zero point of the QUANTIZE at the model input (its int16 output)."""
    m = tfl_reader.load(tfl)
    op = m.operators[0]
    assert op.opcode == "QUANTIZE" and op.inputs[0] == m.inputs[0]
    t = m.tensors[op.outputs[0]]
    assert t.dtype == "int16"
    return np.float32(t.scale[0]), int(t.zero_point[0])


def _ties(scale: np.float32, n: int, rng) -> np.ndarray:
    """n floats x with x / scale (in float32, as the board and TFLite compute it) exactly k + 0.5,
    both signs, small and large k: the rounding ties (away from zero)."""
    out = []
    while len(out) < n:
        k = int(rng.choice([rng.integers(0, 8), rng.integers(0, 32767)]))
        x = np.float32((k + 0.5) * float(scale)) * np.float32(rng.choice([-1, 1]))
        if abs(float(x / scale)) == k + 0.5:
            out.append(x)
    return np.array(out, np.float32)


def float_inputs(tfl: bytes, shape: tuple, n: int, seed: int = 0) -> np.ndarray:
    """n float samples: values over 1.4 times the int16 input range (about a third clamp),
    the first sample with rounding ties, the clamping edges (32767.5 steps and past), 0 and -0."""
    scale, zp = _input_quant(tfl)
    rng = np.random.default_rng(seed)
    top = float(scale) * 32767
    x = rng.uniform(-1.4 * top, 1.4 * top, (n, *shape)).astype(np.float32)
    edges = np.array([32767.4, 32767.5, 32768.5, 40000.0, 1e6], np.float64) * float(scale)
    special = np.concatenate([_ties(scale, 40, rng), edges, -edges, [0.0, -0.0, 0.5 * scale, -0.5 * scale]])
    flat = x.reshape(n, -1)
    m = min(flat.shape[1], special.size)
    flat[0, :m] = special[:m].astype(np.float32)
    return x


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, np.float32).view(np.uint32)


def _shape(tfl: bytes) -> tuple:
    m = tfl_reader.load(tfl)
    return tuple(int(d) for d in m.tensors[m.inputs[0]].shape[1:])


# --- host: the float boundaries become the header flags ----------------------

@pytest.mark.parametrize("name", NAMES)
def test_float_boundaries_pack_as_flags(name):
    tfl, data = _converted(name)
    m = tfl_reader.load(tfl)
    assert m.tensors[m.inputs[0]].dtype == "float32" and m.tensors[m.outputs[0]].dtype == "float32"
    assert [m.operators[0].opcode, m.operators[-1].opcode] == ["QUANTIZE", "DEQUANTIZE"]
    info = blob.read(data)
    flags = info["header"]["flags"]
    assert flags & fmt.HEADER_FLAGS["FLOAT_INPUT"] and flags & fmt.HEADER_FLAGS["FLOAT_OUTPUT"]
    for key in ("inputs", "outputs"):
        t = info["tensors"][info[key][0]]
        assert t["dtype"] == "int16" and t["zero_point"] == 0
    d = io(data)
    assert d["input"]["dtype"] == d["output"]["dtype"] == "float32"
    assert d["input"]["stored"] == d["output"]["stored"] == "int16"
    scale, _ = _input_quant(tfl)
    assert np.float32(d["input"]["scale"]) == scale


# --- the quantization alone: an identity graph, int16 out raw ----------------

def _identity(scale: float, zp_out: int = 0, float_out: bool = False) -> Graph:
    """float input -> int16 (scale) -> REQUANT by 1 -> int16 output: out=bytearray gives the
    board's quantized values as they are."""
    g = Graph()
    n = 4096
    x = g.add(Tensor("x", "int16", (1, n), scale, 0))
    y = g.add(Tensor("y", "int16", (1, n), scale, zp_out))
    mult, shift = quantize_multiplier(1.0)
    g.ops.append(Op("REQUANT", [x], [y], dict(count=n, input_zero_point=0, mult=mult, shift=shift,
                                              output_offset=zp_out)))
    g.inputs, g.outputs = [x], [y]
    g.float_input, g.float_output = True, float_out
    return g


@pytest.mark.parametrize("impl", IMPLS)
def test_quantize_equals_tflite_micro(tmp_path, impl):
    """The board's float -> int16 is TFLite Micro's QUANTIZE on 4096 values per model input scale:
    every rounding tie (half away from zero), values past the range (clamped), 0 and -0; NaN gives
    the zero point and infinities clamp. int16 -> float of those values is TFLite Micro's DEQUANTIZE."""
    need_firmware("unix")
    for name in NAMES:
        tfl, _ = _converted(name)
        scale, _ = _input_quant(tfl)
        shape = _shape(tfl)
        size = int(np.prod(shape))
        rng = np.random.default_rng(7)
        top = float(scale) * 32767
        x = rng.uniform(-1.2 * top, 1.2 * top, 4096).astype(np.float32)
        x[:2000] = _ties(scale, 2000, rng)
        x[2000:2010] = np.array([32767.5, 32768.5, -32767.5, -32768.5, -32769.5, 1e5, -1e5, 0.0, -0.0, 0.5]) * scale
        # TFLite Micro's QUANTIZE output tensor, one sample (size values) at a time
        q_index = tfl_reader.load(tfl).operators[0].outputs[0]
        want = np.concatenate([tflm_tensors(tfl, x[i:i + size].reshape(1, *shape), [q_index])[q_index].ravel()
                               for i in range(0, 4096 - size + 1, size)])
        assert want.dtype == np.int16 and want.min() == -32768 and want.max() == 32767
        (tmp_path / "q.mnb").write_bytes(blob.write(_identity(float(scale))))
        (tmp_path / "d.mnb").write_bytes(blob.write(_identity(float(scale), float_out=True)))
        (tmp_path / "x.bin").write_bytes(x.tobytes())
        out = micropython("""
import micronn
from array import array
q = micronn.Model(open('q.mnb', 'rb').read())
d = micronn.Model(open('d.mnb', 'rb').read())
print(q.input_dtype, q.output_dtype, d.output_dtype, d.outputs[0]['dtype'])
x = array('f', open('x.bin', 'rb').read())
raw = bytearray(8192)
q.run(x, out=raw)
open('q.bin', 'wb').write(raw)
f = array('f', bytes(4 * 4096))
d.run(x, out=f)
open('f.bin', 'wb').write(f)
print(bytes(d.run(x)) == bytes(f))
special = array('f', [float('nan'), float('inf'), -float('inf'), 1e30, -1e30] + [0.0] * 4091)
q.run(special, out=raw)
print(list(array('h', raw)[:5]))
""", tmp_path, impl=impl)
        lines = out.splitlines()
        assert lines[0] == "float32 int16 float32 float32", out
        got = np.frombuffer((tmp_path / "q.bin").read_bytes(), "<i2")
        n = want.size
        assert np.array_equal(got[:n], want), f"{name}: {np.count_nonzero(got[:n] != want)} values differ"
        # DEQUANTIZE: TFLite Micro's is scale * (q - zero point) in float32
        deq = (scale * (want.astype(np.float32) - np.float32(0))).astype(np.float32)
        f = np.frombuffer((tmp_path / "f.bin").read_bytes(), np.float32)
        assert np.array_equal(_bits(f[:n]), _bits(deq))
        assert lines[1] == "True"
        assert lines[2] == "[0, 32767, -32768, 32767, -32768]"


def test_dequantize_with_zero_point_minus_32768(tmp_path):
    """An int16 output with zero point -32768 (SOFTMAX int8 -> int16) dequantizes with it."""
    need_firmware("unix")
    scale = 1 / 65536
    (tmp_path / "m.mnb").write_bytes(blob.write(_identity(scale, zp_out=-32768, float_out=True)))
    x = np.linspace(-0.2, 1.2, 4096, dtype=np.float32)
    (tmp_path / "x.bin").write_bytes(x.tobytes())
    out = micropython("""
import micronn
from array import array
m = micronn.Model(open('m.mnb', 'rb').read())
open('y.bin', 'wb').write(m.run(array('f', open('x.bin', 'rb').read())))
""", tmp_path)
    assert out == ""
    y = np.frombuffer((tmp_path / "y.bin").read_bytes(), np.float32)
    # REQUANT by 1 with output offset -32768: q - 32768 clamped; then (q' + 32768) * scale
    r = x / np.float32(scale)
    q = np.clip(np.sign(r) * np.floor(np.abs(r) + np.float32(0.5)), -32768, 32767)
    q2 = np.clip(q - 32768, -32768, 32767)
    assert np.array_equal(_bits(y), _bits(np.float32(scale) * (q2 + 32768).astype(np.float32)))
    assert len(np.unique(y)) > 1000


# --- whole models against TFLite Micro ---------------------------------------

def _link_run(link, x: np.ndarray, like: np.ndarray) -> np.ndarray:
    ys = [np.frombuffer(link.run(np.ascontiguousarray(x[i]).tobytes())[0], np.float32) for i in range(len(x))]
    return np.stack(ys).reshape(like.shape)


def _check(got: np.ndarray, want: np.ndarray, name: str) -> None:
    assert want.dtype == np.float32 and got.shape == want.shape
    diff = np.count_nonzero(_bits(got) != _bits(want))
    assert diff == 0, f"{name}: {diff} of {want.size} values differ"
    assert len(np.unique(want)) >= min(8, want.size // 4), f"{name}: too few distinct outputs"


@pytest.mark.parametrize("name", NAMES)
def test_model_through_the_link(unix_impl, name):
    """The server (serial link protocol) on the unix port: float32 bytes in, float32 bytes out."""
    tfl, data = _converted(name)
    x = float_inputs(tfl, _shape(tfl), SAMPLES)
    want = tflm_run(tfl, x)
    info = unix_impl.link.load(data)
    assert info["input_dtype"] == info["output_dtype"] == "float32"
    assert [d["dtype"] for d in info["inputs"] + info["outputs"]] == ["float32", "float32"]
    _check(_link_run(unix_impl.link, x, want), want, name)


@pytest.mark.parametrize("impl", IMPLS)
def test_model_through_the_module(tmp_path, impl):
    """m.run(array('f')) gives array('f'); out=array('f') fills it; array('h') still takes the int16
    values (here TFLite Micro's own QUANTIZE output) and out=bytearray gives the raw int16 output;
    m.inputs/m.outputs say float32; wrong sizes and types are refused."""
    need_firmware("unix")
    name = "s16_conv"
    tfl, data = _converted(name)
    shape = _shape(tfl)
    x = float_inputs(tfl, shape, 8, seed=3)
    want = tflm_run(tfl, x)
    m = tfl_reader.load(tfl)
    q_in = m.operators[0].outputs[0]
    q_out = m.operators[-1].inputs[0]
    t0 = tflm_tensors(tfl, x[0][None], [q_in, q_out])
    (tmp_path / "m.mnb").write_bytes(data)
    (tmp_path / "x.bin").write_bytes(x.tobytes())
    (tmp_path / "q.bin").write_bytes(t0[q_in].astype("<i2").tobytes())
    size, n_out = x[0].size, int(np.prod(want.shape[1:]))
    out = micropython(f"""
import micronn
from array import array
m = micronn.Model(open('m.mnb', 'rb').read())
print(m.input_dtype, m.output_dtype, m.inputs[0]['dtype'], m.outputs[0]['dtype'])
print(repr(m).split(' arena')[0])
xs = open('x.bin', 'rb').read()
ys = bytearray()
buf = array('f', bytes({4 * n_out}))
for i in range(8):
    x = array('f', xs[i * {4 * size}:(i + 1) * {4 * size}])
    y = m.run(x)
    if i % 2:
        assert m.run(x, out=buf) is buf and bytes(buf) == bytes(y)
    ys += bytes(y)
print(type(y).__name__, str(y)[:9])
open('y.bin', 'wb').write(ys)
raw = bytearray({2 * n_out})
m.run(array('h', open('q.bin', 'rb').read()), out=raw)
open('raw.bin', 'wb').write(raw)
h = array('h', [0] * {n_out})
print(m.run(bytes(open('q.bin', 'rb').read()), out=h) is h, bytes(h) == bytes(raw))
for bad in (array('f', [0.0] * {size - 1}), array('i', [0] * {size})):
    try:
        m.run(bad)
        print('accepted')
    except (TypeError, ValueError) as e:
        print(type(e).__name__, e)
for bad in (array('f', [0.0] * {n_out + 1}), array('b', [0] * {n_out})):
    try:
        m.run(x, out=bad)
        print('accepted')
    except (TypeError, ValueError) as e:
        print(type(e).__name__, e)
""", tmp_path, impl=impl)
    lines = out.splitlines()
    assert lines[0] == "float32 float32 float32 float32", out
    assert " float32 out " in lines[1] and lines[1].endswith(" float32"), out
    assert lines[2] == "array array('f'", out
    _check(np.frombuffer((tmp_path / "y.bin").read_bytes(), np.float32).reshape(want.shape), want, name)
    raw = np.frombuffer((tmp_path / "raw.bin").read_bytes(), "<i2")
    assert np.array_equal(raw, t0[q_out].ravel()), "int16 in, int16 out: not TFLite Micro's tensors"
    assert lines[3] == "True True", out
    assert lines[4] == f"ValueError micronn: input has {size - 1} floats; expected {size}", out
    assert lines[5] == "TypeError micronn: int16 input typecode 'i'; use 'h', 'f', bytes or bytearray", out
    assert lines[6] == f"ValueError micronn: out= has {n_out + 1} floats; expected {n_out}", out
    assert lines[7] == f"ValueError micronn: out= has {n_out} bytes; expected {2 * n_out}", out


def test_cli_pack_run_verify(tmp_path, unix):
    """`micronn pack MODEL.keras --calib C.npy --activations int16 --float-io` (the command of issue 14),
    then `micronn run --input X.npy` with floats and `micronn verify --reference MODEL.keras`."""
    name = "s16_conv"
    models.keras_model(name).save(tmp_path / "m.keras")
    np.save(tmp_path / "calib.npy", np.concatenate(models.calibration(name)))

    def cli(*args):
        p = subprocess.run([sys.executable, "-m", "micronn.cli", *map(str, args)], capture_output=True, text=True,
                           timeout=600)
        return p.returncode, p.stdout, p.stderr

    rc, _, se = cli("pack", tmp_path / "m.keras", "--calib", tmp_path / "calib.npy", "--activations", "int16",
                    "--float-io", "-o", tmp_path / "m.mnb", "--keep-tflite", tmp_path / "m.tflite")
    assert rc == 0, se
    tfl = (tmp_path / "m.tflite").read_bytes()
    x = float_inputs(tfl, _shape(tfl), SAMPLES, seed=5)
    np.save(tmp_path / "x.npy", x)
    rc, _, se = cli("run", tmp_path / "m.mnb", "--input", tmp_path / "x.npy", "-o", tmp_path / "y.npy",
                    "--target", "unix")
    assert rc == 0, se
    _check(np.load(tmp_path / "y.npy"), tflm_run(tfl, x), name)
    rc, so, se = cli("verify", tmp_path / "m.mnb", "--reference", tmp_path / "m.keras", "--calib",
                     tmp_path / "calib.npy", "--target", "unix", "--json")
    assert rc == 0, se
    assert json.loads(so)["bit_exact"] is True, so
    # verify's own samples: floats over the int16 input range, not int8's
    r = verify((tmp_path / "m.mnb").read_bytes(), tfl, "unix", samples=8)
    assert r["bit_exact"] and r["values"] == 8 * int(np.prod(tflm_run(tfl, x[:1]).shape[1:])), r


def test_models_on_qemu_m4():
    need_firmware("qemu-m4")
    with QemuTarget("qemu-m4") as t:
        t.setup()
        t.serve()
        for name in NAMES:
            tfl, data = _converted(name)
            x = float_inputs(tfl, _shape(tfl), SAMPLES, seed=11)
            want = tflm_run(tfl, x)
            info = t.link.load(data)
            assert info["input_dtype"] == info["output_dtype"] == "float32"
            _check(_link_run(t.link, x, want), want, name)
