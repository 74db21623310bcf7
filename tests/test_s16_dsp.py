"""The 16x8 convolution kernels' DSP variants (CONV_S16_DSP: two output channels times two pixels with
SMLAD; DEPTHWISE_S16_DSP: four channels at a time with SMLABB/SMLATB/SMLABT/SMLATT, the weights of
kernels up to 9 taps extended once, edge taps reading zeros) on shapes that reach
their edge cases: lone channels and pixels, channel pairs split by groups, runs of 1 to 3 values after the
groups of four, windows clipped on one pixel of a pair only, dilation, strides, sums of up to 511 products
in int32 and longer ones flushed into int64 (acc64) or wrapping (int32 sums), the largest products, 17-bit
and larger requantization shifts (mnn_s16_out32's two forms). Each
against the numpy model of TFLite's 16x8 arithmetic (tests/test_s16.py) on qemu-m4 and qemu-m7 (DSP),
qemu-m3 and unix (portable), with the variant that ran checked. Also mnn_s16_round (their requantization
with 32-bit shifts) against mnn_s16_out's 64-bit form, compiled for the host."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from micronn import blob

from .conftest import need_firmware
from .test_s16 import _conv, _reference

ROOT = Path(__file__).resolve().parents[1]
C, D = "CONV_2D_S16", "DEPTHWISE_CONV_2D_S16"


def _extreme(g, x_value=-32768, w_value=-128):
    """The largest products everywhere (x * w = 2^22): sums past int32 show a wrap or a missed flush."""
    op = g.ops[0]
    w = g.tensors[op.inputs[1]]
    w.data = np.full(w.data.shape, w_value, np.int8)
    return g, x_value


def _cases():
    rng = np.random.default_rng(1614)
    return {
        # conv: pairs and a lone channel; an odd output width (a lone pixel per row); 3 input channels
        "c_odd": (_conv(rng, C, (7, 7), 3, 5, (3, 3), pad=1), None),
        # stride 2 with padding: pairs whose first pixel is clipped and the second not
        "c_stride_pad": (_conv(rng, C, (9, 8), 6, 4, (3, 3), stride=2, pad=1), None),
        # a 4x3 window at padding 2: pixels of a pair clipped differently on both sides
        "c_wide_pad": (_conv(rng, C, (5, 6), 5, 6, (4, 3), pad=2), None),
        # groups of 3 output channels: a pair would cross a group (the lone channel of each group)
        "c_groups3": (_conv(rng, C, (6, 6), 4, 6, (3, 3), pad=1, groups=2), None),
        # dilation: taps one by one (no merged rows); 7 input channels: groups of four and three left
        "c_dilated": (_conv(rng, C, (9, 9), 7, 4, (3, 3), dil=2, pad=2, null_bias=True), None),
        # 1x1 with 33 channels: two blocks of 16 and one lone channel; runs of 1 + 4k
        "c_1x1_33": (_conv(rng, C, (4, 5), 9, 33, (1, 1)), None),
        # long runs: 600 input channels (runs of 508 and 92), sums flushed into int64
        "c_long_run": (_conv(rng, C, (2, 3), 600, 3, (1, 1)), None),
        # 3x3x57 = 513 products: one merged row of 171, flushed before the third row
        "c_flush_rows": (_conv(rng, C, (4, 4), 57, 4, (3, 3), pad=1), None),
        # the int32 bound: 511 products of 2^22 (2^31 - 2^22, no flush) and 512 (a flush needed)
        "c_511_extreme": _extreme(_conv(rng, C, (1, 2), 511, 2, (1, 1))),
        "c_512_extreme": _extreme(_conv(rng, C, (1, 2), 512, 2, (1, 1))),
        "c_9x64_extreme": _extreme(_conv(rng, C, (3, 4), 64, 3, (3, 3), pad=1)),
        # int32 sums wrap: 1024 largest products
        "c_int32_wrap": _extreme(_conv(rng, C, (1, 2), 1024, 2, (1, 1), acc64=False)),
        "c_int32": (_conv(rng, C, (5, 6), 8, 7, (3, 3), pad=1, acc64=False), None),
        # depthwise: 4, 5, 7, 8, 19 channels (groups of four and leftovers), padding, strides, dilation
        "d_4": (_conv(rng, D, (5, 5), 4, 4, (3, 3), pad=1), None),
        "d_7_stride": (_conv(rng, D, (7, 6), 7, 7, (3, 3), stride=2, pad=1), None),
        "d_19_dilated": (_conv(rng, D, (8, 8), 19, 19, (3, 2), dil=2, pad=2), None),
        "d_8_int32": (_conv(rng, D, (5, 4), 8, 8, (2, 2), pad=1, acc64=False), None),
        "d_5_clamped": (_conv(rng, D, (4, 5), 5, 5, (3, 3), pad=1, act=(-2000, 300)), None),
        # 21 x 24 = 504 taps of the largest products (no flush within int32), and 23 x 23 = 529
        # taps (acc64: the portable kernel; int32 sums: the DSP one, wrapping)
        "d_504_extreme": _extreme(_conv(rng, D, (21, 24), 4, 4, (21, 24))),
        "d_529_acc64": _extreme(_conv(rng, D, (23, 23), 4, 4, (23, 23))),
        "d_529_int32": _extreme(_conv(rng, D, (23, 23), 4, 4, (23, 23), acc64=False)),
        "d_mult2": (_conv(rng, D, (5, 5), 3, 6, (3, 3), pad=1, depth_mult=2), None),
    }


def _variant(g, dsp: bool) -> str:
    op = g.ops[0]
    p = op.params
    if op.kind == C:
        return "CONV_S16_DSP" if dsp else "CONV_S16"
    fast = p["depth_mult"] == 1 and (not p["acc64"] or p["k_h"] * p["k_w"] <= 511)
    return "DEPTHWISE_S16_DSP" if dsp and fast else "DEPTHWISE_S16"


def _check(target, dsp: bool):
    rng = np.random.default_rng(99)
    target.link.info()
    for name, (g, fill) in _cases().items():
        shape = g.tensors[g.inputs[0]].shape
        x = np.full(shape, fill) if fill is not None else rng.integers(-32768, 32768, shape)
        x = x.astype(np.int16)
        target.link.load(blob.write(g))
        got = np.frombuffer(target.link.run(x.astype("<i2").tobytes())[0], "<i2")
        want = _reference(g, x).reshape(-1)
        bad = np.flatnonzero(got != want)
        assert bad.size == 0, f"{name}: {bad.size} of {want.size} differ, first {bad[:5]}: {got[bad[:5]]} != " \
                              f"{want[bad[:5]]}"
        if fill is None and "clamped" not in name:
            assert len(set(got.tolist())) > 2, f"{name}: outputs nearly constant"
        variants = target.link.info()["variants"]
        assert variants.get(_variant(g, dsp)) == 1, f"{name}: {variants}"


def test_extreme_cases_reach_past_int32():
    """The extreme cases' sums pass 2^31 (a wrap or a missed flush would change them), the 511 one does
    not, and their outputs are not all clamped."""
    cases = _cases()
    for name in ("c_512_extreme", "c_9x64_extreme", "d_529_acc64"):
        g, fill = cases[name]
        op = g.ops[0]
        p = op.params
        taps = p["k_h"] * p["k_w"] * (p["in_c"] if op.kind == C else 1)
        assert taps * fill * -128 >= 1 << 31, name
        want = _reference(g, np.full(g.tensors[g.inputs[0]].shape, fill, np.int16))
        assert len(set(want.reshape(-1).tolist()) - {-32768, 32767}) > 0, name
    g, fill = cases["c_511_extreme"]
    assert 511 * fill * -128 < 1 << 31


@pytest.mark.parametrize("board, dsp", [("qemu-m4", True), ("qemu-m7", True), ("qemu-m3", False)])
def test_s16_dsp_kernels_on_qemu(board, dsp):
    from micronn.targets import open_target

    need_firmware(board)
    with open_target(board) as t:
        _check(t, dsp)


def test_s16_kernels_on_unix(unix):
    _check(unix, dsp=False)


def test_s16_round_equals_the_64_bit_requantization(tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        pytest.skip("no C compiler")
    exe = tmp_path / "test_s16_round"
    src = ROOT / "tests" / "c" / "test_s16_round.c"
    subprocess.run([cc, "-O2", "-Wall", "-Wextra", "-Werror", "-fsanitize=undefined", "-fno-sanitize-recover",
                    f"-I{ROOT / 'cmodule' / 'kernels'}", "-o", str(exe), str(src)], check=True)
    r = subprocess.run([str(exe), "3000000"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip().endswith(" 0 differ"), r.stdout
