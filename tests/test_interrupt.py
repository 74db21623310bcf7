"""A small blob that would run for hours (issue #17, item 8): 2,048 max
poolings with a window as wide as the input is about 5.5 * 10^11 compares.
Its cost is known at load (``Model.cost``, computed by the loader from the
validated shapes, not taken from the blob's header), and a run can be stopped:
the kernels poll for a pending KeyboardInterrupt between bursts of work, the
server answers the interrupted run, and the host interrupts a run that
outlasts ``run_timeout`` (or that its own Ctrl-C stops)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from micronn import blob
from micronn.errors import MicronnError
from micronn.graph import Graph, Op, Tensor
from micronn.link import RESYNC_FILL, SYNC, Link, RunInterrupted
from micronn.targets import QemuTarget, UnixTarget

from .conftest import micropython
from .test_format import GRAPH_KNOWN, _graph

WIDE = 16384


def hostile(ops: int = 2048, width: int = WIDE) -> bytes:
    """ops max poolings over a 1 x width row, each window the whole row."""
    g = Graph()
    a = g.add(Tensor("a", "int8", (1, 1, width, 1), 1.0, 0))
    b = g.add(Tensor("b", "int8", (1, 1, width, 1), 1.0, 0))
    geom = dict(batches=1, in_h=1, in_w=width, in_c=1, out_h=1, out_w=width, out_c=1, k_h=1, k_w=width,
                stride_h=1, stride_w=1, dil_h=1, dil_w=1, pad_top=0, pad_left=width // 2)
    for k in range(ops):
        src, dst = (a, b) if k % 2 == 0 else (b, a)
        g.ops.append(Op("MAX_POOL_2D", [src], [dst], dict(geom, act_min=-128, act_max=127)))
    g.inputs, g.outputs = [a], [a if ops % 2 == 0 else b]
    return blob.write(g)


def test_cost_is_known_at_load(tmp_path):
    (tmp_path / "h.mnb").write_bytes(hostile())
    (tmp_path / "fc.mnb").write_bytes(blob.write(_graph()))
    out = micropython("""
import micronn
h = micronn.Model(open('h.mnb', 'rb').read())
print(len(open('h.mnb', 'rb').read()), h.cost)
print(micronn.Model(open('fc.mnb', 'rb').read()).cost)
""", tmp_path).split()
    size, cost, fc_cost = (int(v) for v in out)
    # each pooling: width outputs of width compares, plus its width-element output
    assert cost == 2048 * (WIDE * WIDE + WIDE) > 5.4e11
    assert size < 200_000
    # the FC graph: 4 outputs of 8 MACs, plus its 8-element input
    assert fc_cost == 4 * 8 + 8


def _interrupt_and_go_on(target, seconds: float) -> float:
    link = target.link
    link.run_timeout = seconds
    link.load(hostile())
    t0 = time.monotonic()
    with pytest.raises(RunInterrupted, match="interrupted"):
        link.run(bytes(WIDE))
    took = time.monotonic() - t0
    # the board answers at once, and the next model runs right
    link.run_timeout = None
    link.load(blob.write(_graph()))
    for x, want in GRAPH_KNOWN.items():
        y, _ = link.run(x)
        assert list(np.frombuffer(y, np.int8)) == want
    return took


class _Silent:
    """A board that never answers: keeps what the host writes."""

    def __init__(self):
        self.writes = []

    def write(self, data):
        self.writes.append(bytes(data))

    def read(self, n):
        return b""


def test_resync_never_sends_ctrl_c():
    """A run that outlasts its reply timeout is told from a lost request by a
    resync, sent while the run may still be going: a byte 03 in its ping
    (seq, nonce or CRC) would be the board's Ctrl-C and stop the run."""
    silent = _Silent()
    link = Link(silent, timeout=0.001)
    for _ in range(300):
        with pytest.raises(MicronnError, match="does not answer"):
            link.resync(wait=0.0005)
    pings = [w[RESYNC_FILL:] for w in silent.writes]
    assert len(pings) == 600 and all(p.startswith(SYNC) for p in pings)
    assert not any(3 in w for w in silent.writes)


def test_unix_run_is_interrupted():
    with UnixTarget() as t:
        took = _interrupt_and_go_on(t, 2.0)
    assert took < 2.0 + 2.0 + 10.0      # the run timeout, a resync as long, the interrupt


@pytest.mark.parametrize("board", ["qemu-m4", "qemu-m3"])
def test_qemu_run_is_interrupted(board):
    from micronn.firmware import firmware_file

    if not firmware_file(board).exists():
        pytest.skip(f"{board} firmware not built")
    t = QemuTarget(board)
    try:
        t.setup()
        t.serve()
        took = _interrupt_and_go_on(t, 3.0)
    finally:
        t.close()
    # the run timeout, a resync as long, at most INTERRUPT_WAIT for the answer, and slack for a loaded machine
    assert took < 3.0 + 3.0 + 10.0 + 4.0
