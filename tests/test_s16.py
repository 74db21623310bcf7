"""int16 activations with int8 weights (TFLite's 16x8 mode; issue 14, S16 ops): FULLY_CONNECTED_S16,
CONV_2D_S16 and DEPTHWISE_CONV_2D_S16 on the real firmware. CMSIS-NN's s16 vectors
(tests/test_cmsis_vectors.py) are the oracle of the arithmetic on their shapes; here the ops run shapes
and values the vectors leave out (per-channel fully connected, groups, depth multipliers, strides with
padding, the largest products and biases the loader allows, clamping) against a numpy model of TFLite's
16x8 reference arithmetic written from its definition, with the DSP kernels on qemu-m4 and the portable
loops on unix and qemu-m3. Also: int16 inputs and outputs through the module's API, and malformed 16x8
blobs refused at load with a clear error."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from micronn import blob
from micronn.graph import Graph, Op, Tensor

from .blobtools import load_error
from .conftest import IMPLS, micropython, need_firmware

I16 = (-32768, 32767)


# --- a numpy model of TFLite's 16x8 arithmetic ------------------------------------------------------------

def _mbqm32(x: int, m: int, s: int) -> int:
    """TFLite's 32-bit MultiplyByQuantizedMultiplier (double rounding)."""
    x = x << max(s, 0)
    x = (x + (1 << 31)) % (1 << 32) - (1 << 31)
    if x == m == -(1 << 31):
        v = (1 << 31) - 1
    else:
        ab = x * m
        nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
        q = abs(ab + nudge) >> 31
        v = q if ab + nudge >= 0 else -q
    e = max(-s, 0)
    mask = (1 << e) - 1
    rem, thr = v & mask, (mask >> 1) + (1 if v < 0 else 0)
    return (v >> e) + (1 if rem > thr else 0)


def _requant(sums: np.ndarray, bias, mult, shift, acc64: bool, lo: int, hi: int) -> np.ndarray:
    """sums [..., C] (exact int64 sums of products) to int16 outputs, per channel."""
    sums = np.asarray(sums, np.int64)
    c = sums.shape[-1]
    bias = np.zeros(c, np.int64) if bias is None else np.asarray(bias, np.int64)
    mult = np.broadcast_to(np.asarray(mult, np.int64), (c,))
    shift = np.broadcast_to(np.asarray(shift, np.int64), (c,))
    flat = sums.reshape(-1, c)
    out = np.empty(flat.shape, np.int64)
    for j in range(c):
        m, s = int(mult[j]), int(shift[j])
        if acc64:
            m16 = (m + (1 << 15)) >> 16 if m < 0x7FFF0000 else 0x7FFF
            t = 15 - s
            out[:, j] = [((int(v) + int(bias[j])) * m16 + (1 << (t - 1))) >> t for v in flat[:, j]]
        else:
            out[:, j] = [_mbqm32((int(v) + int(bias[j]) + (1 << 31)) % (1 << 32) - (1 << 31), m, s)
                         for v in flat[:, j]]
    return np.clip(out, lo, hi).astype(np.int16).reshape(sums.shape)


def _conv_sums(x, w, p, depthwise):
    """Exact sums of products of a convolution (NHWC, zero points 0), [n, oh, ow, out_c]."""
    n = x.shape[0]
    out = np.zeros((n, p["out_h"], p["out_w"], p["out_c"]), np.int64)
    x64, w64 = x.astype(np.int64), w.astype(np.int64)
    for oy in range(p["out_h"]):
        for ox in range(p["out_w"]):
            for ky in range(p["k_h"]):
                iy = oy * p["stride_h"] - p["pad_top"] + ky * p["dil_h"]
                if not 0 <= iy < p["in_h"]:
                    continue
                for kx in range(p["k_w"]):
                    ix = ox * p["stride_w"] - p["pad_left"] + kx * p["dil_w"]
                    if not 0 <= ix < p["in_w"]:
                        continue
                    v = x64[:, iy, ix, :]               # [n, in_c]
                    if depthwise:
                        ch = np.arange(p["out_c"]) // p["depth_mult"]
                        out[:, oy, ox, :] += v[:, ch] * w64[0, ky, kx, :]
                    else:
                        cin = p["in_c"] // p["groups"]
                        per = p["out_c"] // p["groups"]
                        for oc in range(p["out_c"]):
                            g0 = oc // per * cin
                            out[:, oy, ox, oc] += v[:, g0:g0 + cin] @ w64[oc, ky, kx, :]
    return out


# --- cases ------------------------------------------------------------------------------------------------

def _quant(rng, c, acc64, shifts=(-20, -12)):
    bias = (rng.integers(-(1 << 30), 1 << 30, c) if acc64 else rng.integers(-(1 << 20), 1 << 20, c))
    mult = rng.integers(1 << 30, (1 << 31) - 1, c)
    mult[0] = 0x7FFF8000        # the 16-bit multiplier's saturating branch
    shift = rng.integers(*shifts, c)
    return bias.astype(np.int64 if acc64 else np.int32), mult.astype(np.int32), shift.astype(np.int32)


def _fc(rng, batches, depth, outs, acc64=True, per_channel=True, null_bias=False, extreme=False, act=I16):
    g = Graph()
    x = g.add(Tensor("input", "int16", (batches, depth), 0.001, 0))
    w = np.full((outs, depth), -128) if extreme else rng.integers(-128, 128, (outs, depth))
    wi = g.const("weights", w.astype(np.int8))
    bias, mult, shift = _quant(rng, outs, acc64, (-30, -24) if extreme else (-22, -14))
    if extreme:     # the largest biases of either sign: outputs clamp both ways, a wrong sign shows
        bias[0::2], bias[1::2] = 1 << 46, -(1 << 46)
    if not per_channel:
        mult, shift = mult[:1], shift[:1]
    b = -1 if null_bias else g.const("bias", bias)
    y = g.add(Tensor("output", "int16", (batches, outs), 0.002, 0))
    g.ops.append(Op("FULLY_CONNECTED_S16", [x, wi, b, g.const("mult", mult), g.const("shift", shift)], [y], dict(
        input_offset=0, filter_offset=0, output_offset=0, act_min=act[0], act_max=act[1], batches=batches,
        accum_depth=depth, out_depth=outs, acc64=int(acc64))))
    g.inputs, g.outputs = [x], [y]
    return g


def _conv(rng, kind, in_hw, in_c, out_c, k, stride=1, dil=1, pad=0, groups=1, depth_mult=1, acc64=True,
          null_bias=False, act=I16):
    g = Graph()
    (ih, iw), (kh, kw) = in_hw, k
    oh = (ih + 2 * pad - dil * (kh - 1) - 1) // stride + 1
    ow = (iw + 2 * pad - dil * (kw - 1) - 1) // stride + 1
    x = g.add(Tensor("input", "int16", (2, ih, iw, in_c), 0.001, 0))
    shape = (out_c, kh, kw, in_c // groups) if kind == "CONV_2D_S16" else (1, kh, kw, out_c)
    wi = g.const("weights", rng.integers(-128, 128, shape).astype(np.int8))
    bias, mult, shift = _quant(rng, out_c, acc64)
    b = -1 if null_bias else g.const("bias", bias)
    y = g.add(Tensor("output", "int16", (2, oh, ow, out_c), 0.002, 0))
    params = dict(batches=2, in_h=ih, in_w=iw, in_c=in_c, out_h=oh, out_w=ow, out_c=out_c, k_h=kh, k_w=kw,
                  stride_h=stride, stride_w=stride, dil_h=dil, dil_w=dil, pad_top=pad, pad_left=pad,
                  input_offset=0, output_offset=0, act_min=act[0], act_max=act[1], acc64=int(acc64))
    params.update(groups=groups) if kind == "CONV_2D_S16" else params.update(depth_mult=depth_mult)
    g.ops.append(Op(kind, [x, wi, b, g.const("mult", mult), g.const("shift", shift)], [y], params))
    g.inputs, g.outputs = [x], [y]
    return g


def _cases():
    rng = np.random.default_rng(16)
    return {
        "fc_per_channel": _fc(rng, 3, 37, 9),
        "fc_per_tensor_int32": _fc(rng, 2, 64, 11, acc64=False, per_channel=False),
        "fc_null_bias_clamped": _fc(rng, 2, 30, 6, null_bias=True, act=(-3000, 2500)),
        "fc_long_rows": _fc(rng, 1, 20000, 3, extreme=True),     # sums near 2^47 with the largest bias
        "fc_int32_long": _fc(rng, 1, 1500, 4, acc64=False),      # int32 sums of 1500 products
        "conv_basic": _conv(rng, "CONV_2D_S16", (7, 6), 3, 5, (3, 3), pad=1),
        "conv_int32": _conv(rng, "CONV_2D_S16", (6, 5), 8, 7, (3, 3), pad=1, acc64=False),
        "conv_groups": _conv(rng, "CONV_2D_S16", (6, 6), 6, 4, (2, 3), stride=2, groups=2),
        "conv_dilated": _conv(rng, "CONV_2D_S16", (9, 8), 5, 7, (3, 2), dil=2, pad=2, null_bias=True),
        "conv_1x1_clamped": _conv(rng, "CONV_2D_S16", (5, 5), 9, 33, (1, 1), act=(-20000, 100)),
        "dw_basic": _conv(rng, "DEPTHWISE_CONV_2D_S16", (6, 7), 5, 5, (3, 3), pad=1),
        "dw_mult3": _conv(rng, "DEPTHWISE_CONV_2D_S16", (5, 6), 3, 9, (3, 2), stride=2, pad=1, depth_mult=3),
        "dw_wide_int32": _conv(rng, "DEPTHWISE_CONV_2D_S16", (4, 5), 37, 37, (2, 2), dil=2, pad=1, acc64=False),
    }


def _reference(g: Graph, x: np.ndarray) -> np.ndarray:
    op = g.ops[0]
    p = op.params
    w = g.tensors[op.inputs[1]].data
    bias = None if op.inputs[2] < 0 else g.tensors[op.inputs[2]].data
    mult, shift = g.tensors[op.inputs[3]].data, g.tensors[op.inputs[4]].data
    if op.kind == "FULLY_CONNECTED_S16":
        sums = x.astype(np.int64) @ w.astype(np.int64).T
    else:
        sums = _conv_sums(x, w, p, op.kind == "DEPTHWISE_CONV_2D_S16")
    return _requant(sums, bias, mult, shift, bool(p["acc64"]), p["act_min"], p["act_max"])


def _check(target, dsp: bool):
    rng = np.random.default_rng(6)
    target.link.info()
    for name, g in _cases().items():
        shape = g.tensors[g.inputs[0]].shape
        x = np.full(shape, -32768) if name == "fc_long_rows" else rng.integers(-32768, 32768, shape)
        x = x.astype(np.int16)
        target.link.load(blob.write(g))
        got = np.frombuffer(target.link.run(x.astype("<i2").tobytes())[0], "<i2")
        want = _reference(g, x).reshape(-1)
        bad = np.flatnonzero(got != want)
        assert bad.size == 0, f"{name}: {bad.size} of {want.size} differ, first {bad[:5]}: {got[bad[:5]]} != " \
                              f"{want[bad[:5]]}"
        assert name == "fc_long_rows" or len(set(got.tolist())) > 2, f"{name}: outputs nearly constant"
        kind = g.ops[0].kind
        want_v = {"FULLY_CONNECTED_S16": "FC_S16", "CONV_2D_S16": "CONV_S16"}.get(kind, "DEPTHWISE_S16")
        if dsp and (kind != "DEPTHWISE_CONV_2D_S16" or g.ops[0].params["depth_mult"] == 1):
            want_v += "_DSP"
        variants = target.link.info()["variants"]
        assert variants.get(want_v) == 1, f"{name}: {variants}"


def test_s16_reference_is_sensitive():
    """The numpy model tells the two requantizations apart (so the board tests can fail)."""
    rng = np.random.default_rng(1)
    sums = rng.integers(-(1 << 40), 1 << 40, (64, 4))
    bias, mult, shift = np.zeros(4, np.int64), rng.integers(1 << 30, (1 << 31) - 1, 4), np.full(4, -20)
    a = _requant(sums, bias, mult, shift, True, *I16)
    b = _requant(sums % (1 << 31), bias, mult, shift, False, *I16)
    c = _requant(sums % (1 << 31), bias, mult, shift, True, *I16)
    assert not np.array_equal(b, c), "64-bit and 32-bit requantization agree everywhere"
    assert len(set(a.reshape(-1).tolist())) > 10


def test_s16_ops_on_unix(unix):
    _check(unix, dsp=False)


@pytest.mark.parametrize("board, dsp", [("qemu-m4", True), ("qemu-m3", False)])
def test_s16_ops_on_qemu(board, dsp):
    """qemu-m4 runs the SMLAD sums of fully connected and convolution, qemu-m3 the portable loops."""
    from micronn.targets import open_target

    need_firmware(board)
    with open_target(board) as t:
        _check(t, dsp)


@pytest.mark.parametrize("impl", IMPLS)
def test_int16_io_through_the_module(tmp_path, impl):
    """An int16 input takes array('h'), bytes or bytearray of its bytes (not other typecodes or lengths; floats:
    tests/test_float16.py); an
    int16 output comes back as array('h') or into an 'h' or bytearray buffer. The built-in module and the
    native one (micronn.mpy)."""
    need_firmware("unix")
    g = _cases()["fc_per_channel"]
    (tmp_path / "m.mnb").write_bytes(blob.write(g))
    x = np.random.default_rng(3).integers(-32768, 32768, (3, 37)).astype(np.int16)
    want = _reference(g, x).reshape(-1)
    out = micropython(f"""
import micronn
from array import array
m = micronn.Model(open('m.mnb', 'rb').read())
print(m.input_dtype, m.output_dtype, m.input_shape, m.output_shape)
x = array('h', {x.reshape(-1).tolist()})
y = m.run(x)
print(type(y).__name__, list(y))
print(list(m.run(bytes(x))) == list(y), list(m.run(bytearray(x))) == list(y))
buf = array('h', [0] * {want.size})
print(m.run(x, out=buf) is buf, list(buf) == list(y))
raw = bytearray({2 * want.size})
m.run(x, out=raw)
print(bytes(raw) == bytes(y))
for bad in (array('i', [0] * {x.size}), bytes({2 * x.size - 2}), array('h', [0] * {x.size + 1})):
    try:
        m.run(bad)
        print('accepted')
    except (TypeError, ValueError) as e:
        print(type(e).__name__, e)
label, score = m.predict(x)
print(label == list(y).index(max(y)), abs(score - m.output_scale * max(y)) < 1e-4)
""", tmp_path, impl=impl)
    lines = out.splitlines()
    assert lines[0] == "int16 int16 (3, 37) (3, 9)", out
    kind, values = lines[1].split(" ", 1)
    assert kind == "array" and eval(values) == want.tolist(), out
    assert lines[2:5] == ["True True", "True True", "True"], out
    assert lines[5].startswith("TypeError") and "int16 input typecode 'i'" in lines[5], out
    assert lines[6].startswith("ValueError") and "bytes" in lines[6], out
    assert lines[7].startswith("ValueError"), out
    assert lines[8] == "True True", out     # the top value's index, dequantized


def _bad(g: Graph, **params) -> bytes:
    h = copy.deepcopy(g)
    h.ops[0].params.update(params)
    return blob.write(h)


def test_malformed_s16_blobs_are_refused(unix):
    fc, conv, dw = (_cases()[k] for k in ("fc_per_channel", "conv_basic", "dw_basic"))
    for g in (fc, conv, dw):
        unix.link.load(blob.write(g))
        op = g.ops[0]
        # the bias dtype follows acc64: int64 bias with acc64 0, int32 bias with acc64 1
        assert "bias (acc64 0: int32) dtype or size" in load_error(unix, _bad(g, acc64=0))
        h = copy.deepcopy(g)
        h.ops[0].inputs[2] = h.const("b32", h.tensors[op.inputs[2]].data.astype(np.int32))
        assert "bias (acc64: int64) dtype or size" in load_error(unix, blob.write(h))
        assert "acc64" in load_error(unix, _bad(g, acc64=2))
        # a bias of another length (one channel too few)
        h = copy.deepcopy(g)
        h.ops[0].inputs[2] = h.const("b_short", h.tensors[op.inputs[2]].data[:-1])
        assert "bias (acc64: int64) dtype or size" in load_error(unix, blob.write(h))
        # an int64 bias past 2^46 (sums must stay within TFLite's 2^47)
        for v in (1 << 46) + 1, -(1 << 46) - 1:
            h = copy.deepcopy(g)
            h.tensors[op.inputs[2]].data = h.tensors[op.inputs[2]].data.copy()
            h.tensors[op.inputs[2]].data[-1] = v
            assert "int64 bias out of range" in load_error(unix, blob.write(h))
        # shifts past 14 for the 64-bit requantization
        h = copy.deepcopy(g)
        h.tensors[op.inputs[4]].data = h.tensors[op.inputs[4]].data.copy()
        h.tensors[op.inputs[4]].data[0] = 15
        assert "16x8 requantization shift" in load_error(unix, blob.write(h))
        # zero points (offsets) are 0; the activation range is int16's
        assert "16x8 offset" in load_error(unix, _bad(g, output_offset=1))
        assert "16x8 offset" in load_error(unix, _bad(g, input_offset=-1))
        assert "int16 activation range" in load_error(unix, _bad(g, act_min=-32769))
        assert "int16 activation range" in load_error(unix, _bad(g, act_max=32768))
        assert "int16 activation range" in load_error(unix, _bad(g, act_min=5, act_max=4))
        # int8 input or output tensors for a 16x8 op (half the bytes)
        for k, what in ((0, "int16 input size"), (1, "int16 output size")):
            h = copy.deepcopy(g)
            t = h.tensors[(op.inputs if k == 0 else op.outputs)[0]]
            t.dtype = "int8"
            assert what in load_error(unix, blob.write(h))
        # an odd size: one input row or pixel too many
        h = copy.deepcopy(g)
        t = h.tensors[op.inputs[0]]
        t.shape = (t.shape[0] + 1,) + t.shape[1:]
        assert "int16 input size" in load_error(unix, blob.write(h))
    assert "16x8 offset" in load_error(unix, _bad(fc, filter_offset=3))
    # an int16 graph input must have zero point 0
    h = copy.deepcopy(fc)
    h.tensors[h.inputs[0]].zero_point = 5
    assert "int16 zero point" in load_error(unix, blob.write(h))
    # SOFTMAX_S8_S16 writes int16 values: an int8 output tensor (half the bytes) is refused
    h = _softmax_graph((1, 2, 10), 0.1, 0, 1.0)
    unix.link.load(blob.write(h))
    h.tensors[h.outputs[0]].dtype, h.tensors[h.outputs[0]].zero_point = "int8", -128
    assert "int16 output size" in load_error(unix, blob.write(h))
    # an int16 graph output's zero point is 0 or -32768 (the int8 -> int16 softmax's)
    h = _softmax_graph((1, 2, 10), 0.1, 0, 1.0)
    h.tensors[h.outputs[0]].zero_point = -32767
    assert "int16 zero point" in load_error(unix, blob.write(h))
    # the 32-bit requantization takes shifts in [-31, 30]
    g = _cases()["conv_int32"]
    unix.link.load(blob.write(g))
    h = copy.deepcopy(g)
    h.tensors[h.ops[0].inputs[4]].data = np.full(7, 31, np.int32)
    assert "requantization shift" in load_error(unix, blob.write(h))


def test_inspect_counts_16x8_macs():
    """inspect and the blob header count a 16x8 op's MACs as the int8 op's."""
    from micronn.inspector import inspect, op_macs

    for name, g in _cases().items():
        op = g.ops[0]
        want = op_macs(op.kind.removesuffix("_S16"), op.params)
        info = inspect(blob.write(g))
        assert want > 0 and info["ops"][0]["macs"] == want == info["macs"], name
        assert blob.read(blob.write(g))["header"]["macs"] == want, name


def _softmax_tflite(shape, in_scale: float, in_zp: int, beta: float) -> bytes:
    """A one-op .tflite: int8 input, SOFTMAX, int16 output (scale 1/65536, zero point -32768), written as a
    flatbuffer (the converter makes int16 softmax outputs only in 16x8 models)."""
    import flatbuffers
    from tensorflow.lite.python import schema_py_generated as s

    model = s.ModelT()
    model.version = 3
    model.buffers = [s.BufferT()]
    sg = s.SubGraphT()
    sg.tensors = []
    for name, ttype, scale, zp in (("input", s.TensorType.INT8, in_scale, in_zp),
                                   ("output", s.TensorType.INT16, 1 / 65536, -32768)):
        t = s.TensorT()
        t.name, t.type, t.shape = name, ttype, list(shape)
        t.quantization = s.QuantizationParametersT()
        t.quantization.scale, t.quantization.zeroPoint = [scale], [zp]
        model.buffers.append(s.BufferT())
        t.buffer = len(model.buffers) - 1
        sg.tensors.append(t)
    op = s.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, [0], [1]
    op.builtinOptionsType = s.BuiltinOptions.SoftmaxOptions
    op.builtinOptions = s.SoftmaxOptionsT()
    op.builtinOptions.beta = beta
    sg.operators, sg.inputs, sg.outputs, sg.name = [op], [0], [1], "main"
    code = s.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = s.BuiltinOperator.SOFTMAX
    code.version = 2
    model.operatorCodes, model.subgraphs = [code], [sg]
    fb = flatbuffers.Builder(1024)
    fb.Finish(model.Pack(fb), file_identifier=b"TFL3")
    return bytes(fb.Output())


def _softmax_graph(shape, in_scale: float, in_zp: int, beta: float) -> Graph:
    from micronn.quant import softmax_params

    mult, shift, diff_min = softmax_params(beta, in_scale)
    g = Graph()
    x = g.add(Tensor("input", "int8", shape, in_scale, in_zp))
    y = g.add(Tensor("output", "int16", shape, 1 / 65536, -32768))
    g.ops.append(Op("SOFTMAX_S8_S16", [x], [y], dict(input_mult=mult, input_left_shift=shift, diff_min=diff_min,
                                                      rows=int(np.prod(shape[:-1])), row_size=shape[-1])))
    g.inputs, g.outputs = [x], [y]
    return g


@pytest.mark.parametrize("board", ["unix", "qemu-m3"])
def test_softmax_s8_s16_matches_tflite_micro(board):
    """int8 -> int16 softmax (SOFTMAX_S8_S16) bit-exact with TensorFlow Lite Micro's kernel, 8 inputs each of
    a few scales, betas and row lengths (rows of one value, of ties, of values below diff_min)."""
    from micronn.reference import tflm_run
    from micronn.targets import open_target

    need_firmware(board)
    rng = np.random.default_rng(57)
    with open_target(board) as t:
        for shape, scale, zp, beta in [((1, 2, 10), 0.1, -3, 1.0), ((1, 4, 33), 0.05, 7, 1.0),
                                       ((1, 3, 1), 0.2, 0, 1.0), ((1, 2, 64), 0.5, -128, 0.5),
                                       ((1, 4, 7), 0.02, 20, 2.0)]:
            x = rng.integers(-128, 128, (8, *shape[1:])).astype(np.int8)      # 8 samples of one batch
            x[0] = 5                        # rows of ties
            want = np.asarray(tflm_run(_softmax_tflite(shape, scale, zp, beta), x)).astype(np.int16)
            t.link.load(blob.write(_softmax_graph(shape, scale, zp, beta)))
            for i in range(len(x)):
                got = np.frombuffer(t.link.run(x[i].tobytes())[0], "<i2")
                assert np.array_equal(got, want[i].reshape(-1)), f"{shape} {scale} {beta} sample {i}: " \
                                                                 f"{got} != {want[i].reshape(-1)}"
            assert shape[-1] == 1 or len(set(want.reshape(-1).tolist())) > 8     # a row of one value: all 1
