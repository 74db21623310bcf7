"""Seed blobs made only from this repository, one per operator family and one
per kernel variant. The committed corpus is grown from these, so it holds
nothing from the shared test data.

- zoo models (tests/test_zoo.py, weights drawn from fixed seeds) packed by micronn;
- graphs written directly with the Graph/blob API, for kernel variants the
  packer never emits or that no zoo model happens to reach: depthwise
  convolution with a depth multiplier above 1 (the packer rewrites those into
  grouped convolutions), im2col columns too long for the stack buffer
  (fill_slow), fully connected rows whose length is not a multiple of four,
  CONV_2D_MAXPOOL at every unrolled window width and pooling size, and
  model names that are not UTF-8.

`make fuzz-check` prints which lines of cmodule/ the committed corpus reaches.

    python tests/fuzz/make_synthetic_corpus.py OUTDIR [--graphs-only] [--opzoo=NAME,NAME...]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]

MODELS = ["conv_3x3_same_relu6", "conv_3x3_valid_s2", "conv_groups", "conv_single_channel", "conv_dilation_2_same",
          "dw_mult1_same", "dw_mult2_valid_s2", "dw_dilation_2", "maxpool_3x3_s2", "avgpool_3x3_s2", "gap",
          "mean_1d", "residual_add", "add_broadcast", "multiply", "se_block", "fire_modules", "concat_hw",
          "zero_padding", "conv1d", "head_softmax", "head_sigmoid", "float_io_cnn", "digits8x8_cnn",
          "conv_pool_same", "maxpool_2x2"]


def _out(size: int, k: int, stride: int, dil: int, pad: int) -> int:
    """Output size of a window sliding over size + 2 * pad values."""
    return (size + 2 * pad - dil * (k - 1) - 1) // stride + 1


def _requant(g, rng, out_c: int, monotonic: bool = False):
    """Per-channel bias, multiplier and shift constants (multipliers in [2^30, 2^31),
    shifts right only when the kernel needs monotonic requantization)."""
    bias = g.const("bias", rng.integers(-2000, 2000, out_c, dtype=np.int32))
    mult = g.const("mult", rng.integers(1 << 30, (1 << 31) - 1, out_c, dtype=np.int32))
    shift = g.const("shift", rng.integers(-9, 0 if monotonic else 2, out_c, dtype=np.int32))
    return bias, mult, shift


def conv_graph(kind: str, *, h: int, w: int, c: int, k_h: int, k_w: int, out_c: int | None = None,
               batches: int = 1, stride: int = 1, dil: int = 1, pad: tuple[int, int] = (0, 0), groups: int = 1,
               depth_mult: int = 1, pool: tuple[int, int] | None = None, bias: bool = True,
               scratch: bool = True, seed: int = 0):
    """One CONV_2D, DEPTHWISE_CONV_2D or CONV_2D_MAXPOOL op (kind), with the
    scratch the packer would reserve for its fast variant (scratch=False: none,
    the direct loops run)."""
    from micronn import format as fmt
    from micronn.graph import Graph, Op, Tensor

    rng = np.random.default_rng(seed)
    g = Graph()
    if kind == "DEPTHWISE_CONV_2D":
        out_c = c * depth_mult
    out_h, out_w = _out(h, k_h, stride, dil, pad[0]), _out(w, k_w, stride, dil, pad[1])
    x = g.add(Tensor("input", "int8", (batches, h, w, c), 0.05, -3))
    if kind == "DEPTHWISE_CONV_2D":
        wshape = (1, k_h, k_w, out_c)
    else:
        wshape = (out_c, k_h, k_w, c // groups)
    wt = g.const("weights", rng.integers(-127, 128, wshape, dtype=np.int8))
    b, mult, shift = _requant(g, rng, out_c, monotonic=kind == "CONV_2D_MAXPOOL")
    yh, yw = (out_h // pool[0], out_w // pool[1]) if pool else (out_h, out_w)
    y = g.add(Tensor("output", "int8", (batches, yh, yw, out_c), 0.1, 5))
    params = dict(batches=batches, in_h=h, in_w=w, in_c=c, out_h=out_h, out_w=out_w, out_c=out_c, k_h=k_h, k_w=k_w,
                  stride_h=stride, stride_w=stride, dil_h=dil, dil_w=dil, pad_top=pad[0], pad_left=pad[1],
                  input_offset=3, output_offset=5, act_min=-128, act_max=127)
    room = 0
    taps = k_h * k_w * c
    if kind == "CONV_2D":
        params["groups"] = groups
        room = fmt.CONV_SCRATCH_PER_TAP * taps // groups
    elif kind == "CONV_2D_MAXPOOL":
        params.update(groups=1, pool_h=pool[0], pool_w=pool[1])
        room = fmt.conv_pool_scratch(taps, out_c, pool[0], pool[1], h * w * c)
    else:
        params["depth_mult"] = depth_mult
    g.ops.append(Op(kind, [x, wt, b if bias else -1, mult, shift], [y], params, scratch=room if scratch else 0))
    g.inputs, g.outputs = [x], [y]
    return g


def fc_graph(*, batches: int, depth: int, out_depth: int, input_offset: int = 0, filter_offset: int = 0,
             seed: int = 0, meta: dict | None = None):
    """One FULLY_CONNECTED op (offsets 0: the plain dot product)."""
    from micronn.graph import Graph, Op, Tensor

    rng = np.random.default_rng(seed)
    g = Graph()
    x = g.add(Tensor("input", "int8", (batches, depth), 0.05, -input_offset))
    wt = g.const("weights", rng.integers(-127, 128, (out_depth, depth), dtype=np.int8))
    bias, mult, shift = _requant(g, rng, out_depth)
    y = g.add(Tensor("output", "int8", (batches, out_depth), 0.1, 0))
    g.ops.append(Op("FULLY_CONNECTED", [x, wt, bias, mult, shift], [y], dict(
        input_offset=input_offset, filter_offset=filter_offset, output_offset=0, act_min=-128, act_max=127,
        batches=batches, accum_depth=depth, out_depth=out_depth)))
    g.inputs, g.outputs = [x], [y]
    g.meta = dict(meta or {})
    return g


def softmax_graph(*, rows: int, row_size: int):
    """One SOFTMAX op (input scale 1: the harness's probe values -1e9, -0.5,
    3.25, 1e9 become -128, -1, 3, 127, so a quarter of each row is its maximum)."""
    from micronn.graph import Graph, Op, Tensor

    g = Graph()
    x = g.add(Tensor("input", "int8", (rows, row_size), 1.0, 0))
    y = g.add(Tensor("output", "int8", (rows, row_size), 1 / 256, -128))
    g.ops.append(Op("SOFTMAX", [x], [y], dict(input_mult=1 << 30, input_left_shift=20, diff_min=-248, rows=rows,
                                             row_size=row_size)))
    g.inputs, g.outputs = [x], [y]
    return g


def _graphs():
    """name -> Graph, the variants no packed zoo model reaches."""
    dw, conv, pool = "DEPTHWISE_CONV_2D", "CONV_2D", "CONV_2D_MAXPOOL"
    graphs = {
        # depthwise_generic: depth multiplier 3, windows over every edge
        "dw_mult3_same": conv_graph(dw, h=5, w=5, c=2, k_h=3, k_w=3, depth_mult=3, pad=(1, 1), seed=1),
        "dw_mult2_dil2_s2_batch2": conv_graph(dw, h=7, w=6, c=3, k_h=3, k_w=2, depth_mult=2, batches=2, stride=2,
                                              dil=2, pad=(2, 1), seed=2),
        # fill_slow: channels per group not a multiple of 4 and K = k_h * k_w * fc over the
        # 256-value stack buffer (K = 297 and 270: both leave a tail of K % 4 values)
        "conv_long_column_c3": conv_graph(conv, h=6, w=6, c=3, k_h=9, k_w=11, out_c=2, stride=2, pad=(4, 5),
                                          seed=3),
        "conv_long_column_groups": conv_graph(conv, h=5, w=5, c=6, k_h=9, k_w=10, out_c=4, groups=2, pad=(4, 4),
                                              seed=4),
        # dot_s8's tail: rows of 7 values, no offsets; a name and labels with
        # two-, three- and four-byte UTF-8 characters (the loader's UTF-8 check)
        "fc_plain_depth7": fc_graph(batches=2, depth=7, out_depth=5, seed=5,
                                    meta={"NAME": "d\u00e9j\u00e0 vu \u2248", "LABELS": ["\u00e9t\u00e9", "\u6c34",
                                          "\U0001f600", "x", "\u00df"]}),
        # CONV_2D_MAXPOOL over other windows than 2x2 (window_max_any)
        "conv_pool_3x3": conv_graph(pool, h=7, w=7, c=2, k_h=2, k_w=2, out_c=3, pool=(3, 3), seed=6),
        "conv_pool_2x1_k18": conv_graph(pool, h=6, w=6, c=2, k_h=3, k_w=3, out_c=2, pool=(2, 1), pad=(1, 1),
                                        seed=7),
        # ... without scratch and without bias
        "conv_pool_direct_no_bias": conv_graph(pool, h=5, w=5, c=2, k_h=2, k_w=2, out_c=3, pool=(2, 2), bias=False,
                                               scratch=False, seed=8),
        # more output channels than one requantization block (MNN_RQ_BLOCK, 32)
        "conv_out40": conv_graph(conv, h=3, w=3, c=4, k_h=1, k_w=1, out_c=40, seed=20),
        "conv_pool_out40": conv_graph(pool, h=4, w=4, c=1, k_h=1, k_w=1, out_c=40, pool=(2, 2), seed=21),
        "dw_mult1_c40": conv_graph(dw, h=3, w=3, c=40, k_h=3, k_w=3, pad=(1, 1), seed=22),
        # softmax rows with 600 equal maxima: the quotient's exponent passes 31
        "softmax_row2400": softmax_graph(rows=1, row_size=2400),
    }
    # CONV_2D_MAXPOOL 2x2 at each unrolled width (K2 / 2 = 1..8 words of int16
    # pairs) and beyond it, rows of taps of 1..5+ values (fill_window's cases),
    # half of them with windows at the padded edge.
    for k_h, k_w, c in [(1, 1, 1), (1, 2, 1), (1, 1, 3), (1, 5, 1), (2, 4, 1), (3, 3, 1), (1, 11, 1),
                        (1, 13, 1), (2, 2, 4), (3, 3, 2)]:
        taps = k_h * k_w * c
        graphs[f"conv_pool_2x2_k{taps}_w{k_w * c}"] = conv_graph(
            pool, h=6, w=max(6, k_w + 3), c=c, k_h=k_h, k_w=k_w, out_c=3, pool=(2, 2),
            pad=(taps % 2, taps % 2), seed=10 + taps)
    return graphs


def _bad_utf8_names():
    """name -> blob: a model name that is not UTF-8 (the loader refuses it),
    once for each way utf8_valid finds out; the CRC is made to match."""
    import struct
    import zlib

    from micronn import blob
    from micronn import format as fmt

    bad = {"utf8_cut_short": b"ok \xe6\xb0", "utf8_bad_continuation": b"\xe6\x41\x41",
           "utf8_surrogate": b"\xed\xa0\x80", "utf8_past_10ffff": b"\xf4\x90\x80\x80",
           "utf8_bad_lead_byte": b"\xc0\xaf"}
    out = {}
    for name, raw in bad.items():
        data = bytearray(blob.write(fc_graph(batches=1, depth=4, out_depth=2, seed=30, meta={"NAME": "@" * 8})))
        at = data.index(b"@" * 8)
        data[at:at + 8] = raw.rjust(8, b"x")
        start = fmt.HEADER.offsets["crc32"]
        struct.pack_into("<I", data, start, zlib.crc32(data[start + 4:]))
        out[f"{name}.mnb"] = bytes(data)
    return out


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(ROOT))
    from micronn import blob

    d = Path(argv[0])
    d.mkdir(parents=True, exist_ok=True)
    blobs = {f"{name}.mnb": blob.write(g) for name, g in _graphs().items()} | _bad_utf8_names()
    for name, data in blobs.items():
        (d / name).write_bytes(data)
    n = len(blobs)
    if "--graphs-only" not in argv[1:]:
        from micronn import pack
        from tests.test_zoo import convert_case

        for name in MODELS:
            (d / f"{name}.mnb").write_bytes(pack(convert_case(name), name=name))
        n += len(MODELS)
        # issue 18's operator zoo (tests/opzoo/), or only the models named by --opzoo=A,B
        from tests import opzoo

        only = [a.split("=", 1)[1].split(",") for a in argv[1:] if a.startswith("--opzoo=")]
        for name in (only[0] if only else sorted(opzoo.cases())):
            (d / f"opzoo-{name}.mnb").write_bytes(pack(opzoo.tflite(name), name=name))
            n += 1
    print(f"synthetic corpus: {n} blobs in {d}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
