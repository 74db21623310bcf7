"""Firmware with only the ops your models use (`micronn firmware build --ops-from`).

One qemu-m4 firmware is built for this file (once: later runs find it built,
build/qemu-m4-ops-HASH/) from two blobs, the hand-made fully connected graph of
test_format.py and a small convolution packed with its scratch: it runs both
bit-exact, reports only FULLY_CONNECTED and CONV_2D, refuses another op (before
sending, and on the board by name) and a convolution whose blob reserved no
scratch (its fallback variant is left out), and its module is smaller than the
full firmware's.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from micronn import blob, opset
from micronn.errors import MicronnError
from micronn.graph import Graph, Op, Tensor

from .conftest import need_firmware
from .test_format import GRAPH_KNOWN, _graph

BOARD = "qemu-m4"


def _conv_graph(scratch: bool = True) -> Graph:
    """A 3x3 'same' convolution of a 4x4x3 image into 2 channels (per-channel
    requantization, bias); with its im2col scratch, as the packer writes it, or none."""
    rng = np.random.default_rng(5)
    g = Graph()
    x = g.add(Tensor("x", "int8", (1, 4, 4, 3), 0.05, -4))
    w = g.const("w", rng.integers(-127, 128, (2, 3, 3, 3), dtype=np.int8))
    b = g.const("b", np.array([700, -1200], np.int32))
    m = g.const("m", np.array([1 << 30, 1 << 29], np.int32))
    s = g.const("s", np.array([-7, -6], np.int32))
    y = g.add(Tensor("y", "int8", (1, 4, 4, 2), 0.1, 2))
    params = dict(batches=1, in_h=4, in_w=4, in_c=3, out_h=4, out_w=4, out_c=2, k_h=3, k_w=3, stride_h=1,
                  stride_w=1, dil_h=1, dil_w=1, pad_top=1, pad_left=1, input_offset=4, output_offset=2,
                  act_min=-128, act_max=127, groups=1)
    g.ops.append(Op("CONV_2D", [x, w, b, m, s], [y], params, scratch=4 * 27 if scratch else 0))
    g.inputs, g.outputs = [x], [y]
    return g


def _softmax_graph() -> Graph:
    g = Graph()
    x = g.add(Tensor("x", "int8", (1, 8), 0.1, 0))
    y = g.add(Tensor("y", "int8", (1, 8), 1 / 256, -128))
    g.ops.append(Op("SOFTMAX", [x], [y], dict(input_mult=1 << 30, input_left_shift=20, diff_min=-1000,
                                              rows=1, row_size=8)))
    g.inputs, g.outputs = [x], [y]
    return g


FC, CONV = blob.write(_graph()), blob.write(_conv_graph())


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    """The qemu-m4 firmware built --ops-from the two blobs (built once, then found)."""
    need_firmware(BOARD)
    from micronn import firmware

    d = tmp_path_factory.mktemp("ops")
    (d / "fc.mnb").write_bytes(FC)
    (d / "conv.mnb").write_bytes(CONV)
    ops = opset.ops_from([d / "fc.mnb", d / "conv.mnb"])
    assert ops == ["FULLY_CONNECTED", "CONV_2D"]        # op-code order; no fallback variant needed
    return firmware.build(BOARD, jobs=2, ops=ops)


@pytest.fixture(scope="module")
def board(limited):
    from micronn.targets import QemuTarget

    t = QemuTarget(BOARD, firmware=limited)
    try:
        t.setup()
        t.serve()
        yield t
    finally:
        t.close()


def test_it_reports_only_its_ops(board):
    fw = board.link.info()["firmware"]
    assert fw["ops_limited"] is True
    assert sorted(fw["supported_ops"]) == ["CONV_2D", "FULLY_CONNECTED"]


def test_it_runs_its_models_bit_exact(board, unix):
    board.link.load(FC)
    for x, want in GRAPH_KNOWN.items():
        assert list(np.frombuffer(board.link.run(x)[0], np.int8)) == want
    rng = np.random.default_rng(11)
    xs = [rng.integers(-128, 128, 48, dtype=np.int8).tobytes() for _ in range(6)]
    unix.link.load(CONV)
    want = [unix.link.run(x)[0] for x in xs]            # the full firmware
    board.link.load(CONV)
    got = [board.link.run(x)[0] for x in xs]
    assert got == want
    assert len(set(got)) == len(xs)                     # the inputs reach the outputs


def test_another_op_is_refused_before_sending(board):
    with pytest.raises(MicronnError) as e:
        board.link.load(blob.write(_softmax_graph()))
    msg = str(e.value)
    assert "also uses SOFTMAX" in msg and "--ops-from" in msg and "\n" not in msg, msg
    board.link.load(FC)                                 # the session goes on
    assert list(np.frombuffer(board.link.run(bytes(range(8)))[0], np.int8)) == GRAPH_KNOWN[bytes(range(8))]


def test_the_board_refuses_a_left_out_op_by_name(board):
    from micronn.link import Link

    with pytest.raises(MicronnError, match=r"op 0: SOFTMAX is not in this firmware \(built with --ops-from\)"):
        Link.load(board.link, blob.write(_softmax_graph()))     # past the host's check
    # the convolution's direct loops (no scratch) are a fallback variant it left out
    with pytest.raises(MicronnError, match=r"op 0: CONV_2D without scratch is not in this firmware"):
        board.link.load(blob.write(_conv_graph(scratch=False)))


def test_micronn_run_on_its_port_names_the_missing_op(limited, tmp_path):
    """`micronn run --port` on a board with this firmware: one line naming the op."""
    from micronn.targets import QemuBoard

    (tmp_path / "s.mnb").write_bytes(blob.write(_softmax_graph()))
    np.save(tmp_path / "x.npy", np.zeros((1, 8), np.int8))
    q = QemuBoard(BOARD, firmware=limited)
    try:
        r = _cli("run", tmp_path / "s.mnb", "--input", tmp_path / "x.npy", "--port", q.pty)
    finally:
        q.kill()
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1 and len(lines) == 1 and lines[0].startswith("micronn: error: "), r.stderr
    assert "runs only CONV_2D, FULLY_CONNECTED" in lines[0] and "also uses SOFTMAX" in lines[0], lines


def test_its_module_is_smaller(limited):
    from micronn.firmware import firmware_file

    full = opset.module_size(opset.map_file(firmware_file(BOARD)))
    mine = opset.module_size(opset.map_file(limited))
    assert mine["text"] < full["text"] and mine["rodata"] <= full["rodata"], (mine, full)
    # the kernels of ops it left out are not linked at all
    for gone in ("kernels/depthwise_conv.o", "kernels/softmax.o", "kernels/pooling.o"):
        assert gone in full["objects"] and gone not in mine["objects"], gone


def _cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "micronn.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("content, why", [(None, "no such blob"), (b"not a blob at all", "not a micronn blob")])
def test_bad_ops_from_is_one_line(tmp_path, content, why):
    p = tmp_path / "m.mnb"
    if content is not None:
        p.write_bytes(content)
    r = _cli("firmware", "build", "--board", BOARD, "--ops-from", p)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1 and len(lines) == 1 and lines[0].startswith("micronn: error: "), r.stderr
    assert str(p) in lines[0] and why in lines[0], lines


def test_variants_follow_the_blobs_scratch():
    """Fallback variants come from each blob's scratch, by the loader's rules."""
    assert opset.fallbacks_of_blob(CONV) == set()
    assert opset.fallbacks_of_blob(blob.write(_conv_graph(scratch=False))) == {"CONV_DIRECT"}
    text = opset.config_header(["CONV_2D", "CONV_DIRECT"])
    assert "#define MNN_WITH_OP_CONV_2D 1" in text and "#define MNN_WITH_OP_ADD 0" in text
    assert "#define MNN_WITH_VARIANT_CONV_DIRECT 1" in text and "#define MNN_WITH_VARIANT_ADD_DIRECT 0" in text
