"""The Cortex-M4/M7 depthwise 3x3 kernel (rectangles of whole windows, edge windows
shifted inside with zero weights, requantization in assembly) against the portable
kernel of the unix port, which the CMSIS-NN vectors and the zoo check against TFLite
Micro: per-channel left shifts (the assembly's rare branch), a narrow activation range,
strides 1 and 2, SAME and VALID, 8 to 128 channels, DS-CNN's 25x5 maps."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from micronn import blob, romfs
from micronn.firmware import firmware_file
from micronn.run import sample_inputs
from micronn.targets import QemuTarget

sys.path.insert(0, str(Path(__file__).parent / "fuzz"))
from make_synthetic_corpus import conv_graph  # noqa: E402

SHAPES = [(8, 8, 64, 1, (1, 1), False), (9, 7, 8, 2, (1, 1), True), (25, 5, 64, 1, (1, 1), False),
          (6, 6, 128, 1, (1, 1), False), (12, 12, 16, 1, (0, 0), True), (16, 16, 32, 2, (0, 0), False)]


def _blobs() -> list[bytes]:
    out = []
    for seed, (h, w, c, stride, pad, narrow) in enumerate(SHAPES):
        g = conv_graph("DEPTHWISE_CONV_2D", h=h, w=w, c=c, k_h=3, k_w=3, stride=stride, pad=pad, seed=seed)
        op = g.ops[0]
        shift = g.tensors[op.inputs[4]].data
        shift[::3] = 1                  # a left shift on every third channel
        if narrow:
            op.params["act_min"], op.params["act_max"] = -20, 100
        out.append(blob.write(g))
    return out


@pytest.mark.parametrize("board", ["qemu-m4", "qemu-m7"])
def test_dsp_depthwise_equals_the_portable_kernel(unix, board):
    if not firmware_file(board).exists():
        pytest.skip(f"{board} firmware not built: run `make firmware-all`")
    blobs = _blobs()
    xs = [sample_inputs(b, 3, 7) for b in blobs]
    want = []
    for b, x in zip(blobs, xs, strict=True):
        unix.link.load(b)
        want.append([unix.link.run(s.tobytes())[0] for s in x])
    with QemuTarget(board, romfs=romfs.build({f"d{k}.mnb": b for k, b in enumerate(blobs)})) as t:
        t.setup()
        t.serve()
        t.link.info()       # resets the variant counts
        for k, x in enumerate(xs):
            t.link.open(f"/rom/d{k}.mnb")
            got = [t.link.run(s.tobytes())[0] for s in x]
            assert got == want[k], f"{board}: shape {SHAPES[k]} differs from the portable kernel"
        assert t.link.info()["variants"].get("DEPTHWISE_MULT1") == 3 * len(blobs)
