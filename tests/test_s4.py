"""int4 weights (issue 14, S4 ops): FULLY_CONNECTED_S4, CONV_2D_S4 and DEPTHWISE_CONV_2D_S4 on the real
firmware. CMSIS-NN's s4 vectors (tests/test_cmsis_vectors.py) are the oracle of the arithmetic; here
every S4 op must give the bytes of its int8 op run with the same weights unpacked (the int8 kernels are
bit-exact with TFLite Micro), on shapes the vectors leave out (rows starting in the middle of a byte,
depth multipliers, groups, very long rows), with the DSP kernels on qemu-m4 and the portable loops on
unix and qemu-m3. Also: the blob stores the packed bytes (inspect's weight bytes), and malformed int4
blobs are refused at load with a clear error."""

from __future__ import annotations

import copy
import struct

import numpy as np
import pytest

from micronn import blob
from micronn import format as fmt
from micronn.graph import Graph, Op, Tensor
from micronn.inspector import inspect

from .blobtools import fix_crc, load_error
from .conftest import need_firmware


def _fc(rng, batches, depth, outs, per_channel=True, filter_offset=0, extreme=False):
    g = Graph()
    x = g.add(Tensor("input", "int8", (batches, depth), 0.5, -3))
    w = np.full((outs, depth), -8) if extreme else rng.integers(-8, 8, (outs, depth))
    wi = g.const_int4("weights", w)
    b = g.const("bias", rng.integers(-5000, 5000, outs).astype(np.int32))
    n = outs if per_channel else 1
    mult = g.const("mult", rng.integers(1 << 30, (1 << 31) - 1, n).astype(np.int32))
    shift = g.const("shift", (rng.integers(-22, -20, n) if extreme else rng.integers(-9, -5, n)).astype(np.int32))
    y = g.add(Tensor("output", "int8", (batches, outs), 0.25, 5))
    g.ops.append(Op("FULLY_CONNECTED_S4", [x, wi, b, mult, shift], [y], dict(
        input_offset=-255 if extreme else int(rng.integers(-128, 128)), filter_offset=filter_offset,
        output_offset=int(rng.integers(-20, 20)), act_min=-128 if extreme else -100, act_max=127,
        batches=batches, accum_depth=depth, out_depth=outs)))
    g.inputs, g.outputs = [x], [y]
    return g


def _conv(rng, kind, in_hw, in_c, out_c, k, stride=1, dil=1, pad=0, groups=1, depth_mult=1, column=True):
    g = Graph()
    (ih, iw), (kh, kw) = in_hw, k
    oh = (ih + 2 * pad - dil * (kh - 1) - 1) // stride + 1
    ow = (iw + 2 * pad - dil * (kw - 1) - 1) // stride + 1
    x = g.add(Tensor("input", "int8", (2, ih, iw, in_c), 0.5, 7))
    shape = (out_c, kh, kw, in_c // groups) if kind == "CONV_2D_S4" else (1, kh, kw, out_c)
    wi = g.const_int4("weights", rng.integers(-8, 8, shape))
    b = g.const("bias", rng.integers(-3000, 3000, out_c).astype(np.int32))
    mult = g.const("mult", rng.integers(1 << 30, (1 << 31) - 1, out_c).astype(np.int32))
    shift = g.const("shift", rng.integers(-10, -5, out_c).astype(np.int32))
    y = g.add(Tensor("output", "int8", (2, oh, ow, out_c), 0.25, -4))
    params = dict(batches=2, in_h=ih, in_w=iw, in_c=in_c, out_h=oh, out_w=ow, out_c=out_c, k_h=kh, k_w=kw,
                  stride_h=stride, stride_w=stride, dil_h=dil, dil_w=dil, pad_top=pad, pad_left=pad,
                  input_offset=int(rng.integers(-128, 128)), output_offset=-4, act_min=-120, act_max=110)
    params.update(groups=groups) if kind == "CONV_2D_S4" else params.update(depth_mult=depth_mult)
    scratch = fmt.conv_s4_scratch(kh, kw, in_c // groups) if kind == "CONV_2D_S4" and column else 0
    g.ops.append(Op(kind, [x, wi, b, mult, shift], [y], params, scratch=scratch))
    g.inputs, g.outputs = [x], [y]
    return g


def _cases():
    rng = np.random.default_rng(14)
    return {
        "fc_odd_depth": _fc(rng, 3, 37, 9),             # rows start in high nibbles
        "fc_even_depth": _fc(rng, 2, 64, 11),           # the DSP pairs and an odd last row
        "fc_tail": _fc(rng, 1, 30, 6, per_channel=False),   # 24 values by words, 6 by bytes
        "fc_filter_offset": _fc(rng, 2, 40, 5, filter_offset=3),
        "fc_long_rows": _fc(rng, 1, 20000, 3, extreme=True),    # sums past the DSP kernel's block
        "conv_odd": _conv(rng, "CONV_2D_S4", (7, 6), 3, 5, (3, 3), pad=1),     # rows start in high nibbles
        "conv_odd_direct": _conv(rng, "CONV_2D_S4", (7, 6), 3, 5, (3, 3), pad=1, column=False),
        "conv_even": _conv(rng, "CONV_2D_S4", (6, 5), 4, 7, (3, 3), pad=1),    # the DSP pairs, K % 8 = 4
        "conv_long": _conv(rng, "CONV_2D_S4", (4, 4), 64, 3, (3, 3), pad=1),   # 576 values, groups of 8
        "conv_groups": _conv(rng, "CONV_2D_S4", (6, 6), 6, 4, (2, 3), stride=2, groups=2),
        "conv_dilated": _conv(rng, "CONV_2D_S4", (9, 8), 5, 7, (3, 2), dil=2, pad=2),
        "conv_dilated_direct": _conv(rng, "CONV_2D_S4", (9, 8), 6, 4, (3, 2), dil=2, pad=2, column=False),
        "conv_1x1": _conv(rng, "CONV_2D_S4", (5, 5), 9, 33, (1, 1)),     # two channel blocks
        "dw_odd": _conv(rng, "DEPTHWISE_CONV_2D_S4", (6, 7), 5, 5, (3, 3), pad=1),
        "dw_mult3": _conv(rng, "DEPTHWISE_CONV_2D_S4", (5, 6), 3, 9, (3, 2), stride=2, pad=1, depth_mult=3),
        "dw_wide": _conv(rng, "DEPTHWISE_CONV_2D_S4", (4, 5), 37, 37, (2, 2), dil=2, pad=1),
        "dw_even": _conv(rng, "DEPTHWISE_CONV_2D_S4", (6, 5), 20, 20, (3, 3), pad=1),   # 8 + 8 by DSP, 4 left
        "dw_blocks": _conv(rng, "DEPTHWISE_CONV_2D_S4", (5, 4), 42, 42, (3, 2), stride=2, dil=2, pad=2),
    }


def _as_int8(g: Graph) -> Graph:
    """The same graph with the int8 op: the weights unpacked."""
    h = copy.deepcopy(g)
    op = h.ops[0]
    op.kind = op.kind.removesuffix("_S4")
    w = h.tensors[op.inputs[1]]
    w.data = fmt.unpack_int4(w.data, int(np.prod(w.shape))).reshape(w.shape)
    w.dtype = "int8"
    if op.kind == "CONV_2D":
        p = op.params
        op.scratch = fmt.CONV_SCRATCH_PER_TAP * p["k_h"] * p["k_w"] * p["in_c"] // p["groups"]
    return h


def _check(target, dsp: bool):
    rng = np.random.default_rng(4)
    target.link.info()
    for name, g in _cases().items():
        x = rng.integers(-128, 128, g.tensors[g.inputs[0]].shape).astype(np.int8)
        if name == "fc_long_rows":
            x[:] = -128         # with input offset -255 and weights -8: the largest products
        got = []
        for h in (g, _as_int8(g)):
            target.link.load(blob.write(h))
            got.append(np.frombuffer(target.link.run(x.tobytes())[0], np.int8))
        assert np.array_equal(got[0], got[1]), f"{name}: {np.flatnonzero(got[0] != got[1])[:8]}"
        assert name == "fc_long_rows" or len(set(got[0].tolist())) > 2, f"{name}: outputs nearly constant"
        op = g.ops[0]
        variants = target.link.info()["variants"]
        if op.kind == "FULLY_CONNECTED_S4":
            fast = dsp and op.params["filter_offset"] == 0 and op.params["accum_depth"] % 2 == 0
            assert variants.get("FC_S4_DSP" if fast else "FC_S4") == 1, f"{name}: {variants}"
        else:
            p = op.params
            want = "CONV_S4_COL" if op.scratch else "CONV_S4"
            if op.kind == "DEPTHWISE_CONV_2D_S4":
                want = "DEPTHWISE_S4_DSP" if dsp and p["depth_mult"] == 1 and p["out_c"] % 2 == 0 else "DEPTHWISE_S4"
            assert variants.get(want) == 1, f"{name}: {variants}"


def test_s4_ops_equal_int8_ops_on_unix(unix):
    _check(unix, dsp=False)


@pytest.mark.parametrize("board, dsp", [("qemu-m4", True), ("qemu-m3", False)])
def test_s4_ops_equal_int8_ops_on_qemu(board, dsp):
    """qemu-m4 runs the DSP fully connected kernel (SMLAD on nibbles), qemu-m3 the portable loops."""
    from micronn.targets import open_target

    need_firmware(board)
    with open_target(board) as t:
        _check(t, dsp)


def test_packed_int4_values_and_sizes():
    v = np.array([1, 2, 3, 4, -8, 7, -1])
    assert fmt.pack_int4(v).tolist() == [0x21, 0x43, 0x78, 0x0F]     # value 2k in the low nibble of byte k
    assert fmt.unpack_int4(fmt.pack_int4(v), v.size).tolist() == v.tolist()
    assert Tensor("w", "int4", (3, 3)).nbytes == 5
    with pytest.raises(Exception, match=r"\[-8, 7\]"):
        fmt.pack_int4([8])


def test_inspect_counts_the_packed_bytes():
    g = _cases()["fc_odd_depth"]
    info = inspect(blob.write(g))
    op = info["ops"][0]
    assert op["type"] == "FULLY_CONNECTED_S4"
    assert op["macs"] == 3 * 37 * 9
    # the weights count ceil(333 / 2) bytes, then bias, mult and shift 9 int32 each
    assert op["weight_bytes"] == (9 * 37 + 1) // 2 + 3 * 9 * 4
    int8 = inspect(blob.write(_as_int8(g)))["ops"][0]
    assert int8["weight_bytes"] - op["weight_bytes"] == 9 * 37 - (9 * 37 + 1) // 2
    t = blob.read(blob.write(g))["tensors"][g.ops[0].inputs[1]]
    assert (t["dtype"], t["shape"], t["nbytes"], t["storage"]) == ("int4", (9, 37), 167, "CONST")


def _tensor_field(data: bytes, index: int, field: str, value: int) -> bytes:
    b = bytearray(data)
    h = fmt.HEADER.unpack(b)
    sec = [fmt.SECTION.unpack(b, h["header_size"] + k * fmt.SECTION.size) for k in range(h["section_count"])]
    base = next(s["offset"] for s in sec if s["id"] == fmt.SECTION_IDS["TENSORS"])
    f = next(f for f in fmt.TENSOR.fields if f.name == field)
    at = base + index * fmt.TENSOR.size + fmt.TENSOR.offsets[field]
    struct.pack_into("<" + {"u8": "B", "u32": "I"}[f.type], b, at, value)
    return fix_crc(b)


def test_malformed_int4_blobs_are_refused(unix):
    g = _cases()["fc_odd_depth"]
    wi = g.ops[0].inputs[1]
    good = blob.write(g)
    unix.link.load(good)
    # nbytes of an odd count of values: ceil(333 / 2) = 167, not 166 or 168
    for n in (166, 168):
        assert "nbytes does not match shape" in load_error(unix, _tensor_field(good, wi, "nbytes", n))
    # int4 in the arena (not a constant)
    assert "int4 tensor not constant" in load_error(
        unix, _tensor_field(good, wi, "storage", fmt.STORAGE["ARENA"]))
    # int8 weights for an S4 op, int4 weights for an int8 op
    h = copy.deepcopy(g)
    h.ops[0].inputs[1] = h.const("w8", np.zeros((9, 37), np.int8))
    assert "int4 weights" in load_error(unix, blob.write(h))
    h = copy.deepcopy(g)
    h.ops[0].kind = "FULLY_CONNECTED"
    assert "weights size" in load_error(unix, blob.write(h))
    for kind in ("CONV_2D_S4", "DEPTHWISE_CONV_2D_S4"):
        c = _cases()["conv_odd" if kind == "CONV_2D_S4" else "dw_odd"]
        ci = c.ops[0].inputs[1]
        n = c.tensors[ci].nbytes
        h = copy.deepcopy(c)
        h.ops[0].inputs[1] = h.const("w8", np.zeros(c.tensors[ci].shape, np.int8))
        assert "int4 weights" in load_error(unix, blob.write(h))
        c.tensors[ci].shape = (c.tensors[ci].shape[0] + 1,) + c.tensors[ci].shape[1:]   # a larger packed size
        c.tensors[ci].data = np.zeros(c.tensors[ci].nbytes, np.uint8)
        assert c.tensors[ci].nbytes > n
        assert "int4 weights" in load_error(unix, blob.write(c))
    # the int4 zero point lies in [-8, 7]: filter offset in [-7, 8]
    h = copy.deepcopy(g)
    h.ops[0].params["filter_offset"] = 9
    assert "int4 filter offset" in load_error(unix, blob.write(h))
    h.ops[0].params["filter_offset"] = 8
    unix.link.load(blob.write(h))


# --- .tflite files with INT4 weights (TensorFlow's low-bit QAT conversion) against TFLite Micro ---

_TFLITE: dict[str, tuple] = {}


def _converted(name: str):
    from micronn import pack
    from micronn.reference import tflm_run
    from micronn.run import sample_inputs

    from . import s4_models

    if name not in _TFLITE:
        tfl = s4_models.make_tflite(name)
        data = pack(tfl)
        x = sample_inputs(data, 8, 3)
        _TFLITE[name] = data, x, tflm_run(tfl, x)
    return _TFLITE[name]


def _check_tflite(target, name: str):
    data, x, want = _converted(name)
    kinds = {o["type"] for o in inspect(data)["ops"]}
    assert kinds and all(k.endswith("_S4") for k in kinds), kinds     # every layer read as int4
    target.link.load(data)
    got = np.stack([np.frombuffer(target.link.run(s.tobytes())[0], np.int8) for s in x])
    assert np.array_equal(got.reshape(want.shape), want), f"{name}: differs from TFLite Micro"
    assert len(set(want.reshape(-1).tolist())) > 8, f"{name}: outputs nearly constant"


@pytest.mark.parametrize("name", ["dense", "conv", "conv_dense", "depthwise"])
def test_int4_tflite_bit_exact_with_tflite_micro_on_unix(unix, name):
    _check_tflite(unix, name)


def test_int4_tflite_bit_exact_with_tflite_micro_on_qemu_m4():
    from micronn.targets import open_target

    from . import s4_models

    need_firmware("qemu-m4")
    with open_target("qemu-m4") as t:
        for name in s4_models.MODELS:
            _check_tflite(t, name)
