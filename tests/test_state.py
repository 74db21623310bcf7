"""Models with state (issue 18, item 3): the state lives in each model's own
memory, survives from one run to the next, starts at its initial values (set just
before the first run, as TFLite Micro's CALL_ONCE does), and Model.reset() zeroes it
as TFLite Micro's Reset() does. Two models never share it, not even through a shared
arena. Blobs whose state records are wrong are refused at load; a run of a stateful
model is never repeated by the serial link (it would advance the state twice).
The zoo (tests/opzoo/state.py, tests/test_op_zoo.py) checks the models bit-exact on
unix, qemu-m3 and qemu-m4."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from micronn import blob, pack
from micronn import format as fmt
from micronn.errors import MicronnError
from micronn.graph import Graph, Op, Tensor
from micronn.reference import tflm_run

from . import opzoo
from .blobtools import fix_crc, load_error, op_at, tensor_at
from .conftest import IMPLS, micropython


def _model(name: str) -> tuple[bytes, bytes]:
    tfl = opzoo.tflite(name)
    return tfl, pack(tfl, name=name)


def _rows(out: str, tag: str) -> list[list[int]]:
    return [eval(line[len(tag):]) for line in out.splitlines() if line.startswith(tag)]


@pytest.mark.parametrize("impl", IMPLS)
def test_two_models_keep_their_own_state(tmp_path, impl):
    """Two models of one blob, run in turns, one of them on an arena the other also
    uses: each gives TFLite Micro's outputs of its own sequence, resets included."""
    tfl, data = _model("state_rnn_init")
    (tmp_path / "s.mnb").write_bytes(data)
    rng = np.random.default_rng(5)
    xa = rng.integers(-128, 128, (6, 1, 8), dtype=np.int8)
    xb = rng.integers(-128, 128, (6, 1, 8), dtype=np.int8)
    (tmp_path / "xa.bin").write_bytes(xa.tobytes())
    (tmp_path / "xb.bin").write_bytes(xb.tobytes())
    out = micropython(r"""
import micronn
blob = open('s.mnb', 'rb').read()
xa = open('xa.bin', 'rb').read()
xb = open('xb.bin', 'rb').read()
a = micronn.Model(blob)
arena = bytearray(a.arena_size)
b = micronn.Model(blob, arena=arena)
c = micronn.Model(blob, arena=arena)
print('sizes', [a.state_size, b.state_size, 'ASSIGN' in a.ops, len(a.ops)])
b.reset()            # before the first run: the initial values still come at the first run
for i in range(6):
    if i == 3:
        a.reset()
    print('A', list(a.run(xa[8 * i:8 * i + 8])))
    print('B', list(b.run(xb[8 * i:8 * i + 8])))
    print('C', list(c.run(xb[8 * i:8 * i + 8])))
""", tmp_path, impl=impl)
    sizes = _rows(out, "sizes")[0]
    h = blob.read(data)["header"]
    assert sizes[:2] == [h["state_size"]] * 2 and sizes[0] > 0
    runs = [o for o in blob.read(data)["ops"] if not o["once"]]
    assert sizes[3] == len(runs) < len(blob.read(data)["ops"]), "m.ops lists the ops of a run, not the ONCE ops"
    want_a = tflm_run(tfl, xa, reset_at=(3,))
    want_b = tflm_run(tfl, xb)
    assert np.array_equal(np.array(_rows(out, "A"), np.int8), want_a.reshape(6, -1))
    assert np.array_equal(np.array(_rows(out, "B"), np.int8), want_b.reshape(6, -1))
    assert np.array_equal(np.array(_rows(out, "C"), np.int8), want_b.reshape(6, -1))
    assert len({tuple(r) for r in _rows(out, "B")}) > 1


def test_profile_advances_the_state_like_one_run(tmp_path):
    tfl, data = _model("state_rnn")
    (tmp_path / "s.mnb").write_bytes(data)
    x = np.random.default_rng(2).integers(-128, 128, (3, 1, 8), dtype=np.int8)
    (tmp_path / "x.bin").write_bytes(x.tobytes())
    out = micropython(r"""
import micronn
m = micronn.Model(open('s.mnb', 'rb').read())
x = open('x.bin', 'rb').read()
print('R', list(m.run(x[0:8])))
total, per_op = m.profile(x[8:16])
print('P', [len(per_op) == len(m.ops)])
print('R', list(m.run(x[16:24])))
""", tmp_path)
    want = tflm_run(tfl, x).reshape(3, -1)
    rows = _rows(out, "R")
    assert _rows(out, "P") == [[True]]
    assert rows == [want[0].tolist(), want[2].tolist()]


# --- blobs the loader refuses ----------------------------------------------------

def _state_graph(state_dtype: str = "int8") -> Graph:
    """A running maximum: y = max(x, s) (through a copy r of s), then s = y; s starts at 3."""
    g = Graph()
    x = g.add(Tensor("x", "int8", (1, 4), 0.5, 0))
    s = g.state("s", state_dtype, (1, 4), 0.5, 0)
    r = g.add(Tensor("r", "int8", (1, 4), 0.5, 0))
    y = g.add(Tensor("y", "int8", (1, 4), 0.5, 0))
    init = g.const("s0", np.full((1, 4), 3, np.int8 if state_dtype == "int8" else np.int16))
    g.ops.append(Op("ASSIGN", [init], [s], {}, once=True))
    g.ops.append(Op("ASSIGN", [s], [r], {}))
    g.ops.append(Op("MAXIMUM", [x, r], [y], dict(dims=[1, 1, 1, 4], stride1=[0, 0, 0, 1], stride2=[0, 0, 0, 1],
                                                  act_min=-128, act_max=127)))
    g.ops.append(Op("ASSIGN", [y], [s], {}))
    g.inputs, g.outputs = [x], [y]
    return g


def test_state_graph_runs(unix):
    data = blob.write(_state_graph())
    info = unix.link.load(data)
    assert info["state_size"] == 8
    xs = [[1, 2, -1, 0], [5, -3, 0, 7], [-9, 9, 2, 1]]
    ys = [list(np.frombuffer(unix.link.run(np.int8(x).tobytes())[0], np.int8)) for x in xs]
    assert ys == [[3, 3, 3, 3], [5, 3, 3, 7], [5, 9, 3, 7]]
    unix.link.reset()           # zero points: 0
    assert list(np.frombuffer(unix.link.run(np.int8(xs[0]).tobytes())[0], np.int8)) == [1, 2, 0, 0]


def _patched(field_at, fmt_char: str, value) -> bytes:
    data = bytearray(blob.write(_state_graph()))
    struct.pack_into(fmt_char, data, field_at(bytes(data)), value)
    return fix_crc(data)


REFUSED = {
    "state dtype": lambda: blob.write(_state_graph("int32")),
    "outside the state": lambda: _patched(lambda d: tensor_at(d, 1) + fmt.TENSOR.offsets["offset"], "<I", 8),
    "state offset misaligned": lambda: _patched(lambda d: tensor_at(d, 1) + fmt.TENSOR.offsets["offset"],
                                                "<I", 4),
    "state zero point": lambda: _patched(lambda d: tensor_at(d, 1) + fmt.TENSOR.offsets["zero_point"],
                                         "<i", 200),
    "unknown storage": lambda: _patched(lambda d: tensor_at(d, 1) + fmt.TENSOR.offsets["storage"], "<B", 3),
    "unknown flags": lambda: _patched(lambda d: tensor_at(d, 0) + fmt.TENSOR.offsets["flags"], "<B", 1),
    "state_size": lambda: _patched(lambda d: fmt.HEADER.offsets["state_size"], "<I", 12),
    "reserved": lambda: _patched(lambda d: fmt.HEADER.offsets["reserved"] + 4, "<I", 1),
    "unknown op flags": lambda: _patched(lambda d: op_at(d, 1) + fmt.OP.offsets["flags"], "<B", 2),
    "ONCE op after a run op": lambda: _patched(lambda d: op_at(d, 3) + fmt.OP.offsets["flags"], "<B", 1),
    "ONCE op that is not an ASSIGN": lambda: _once_max(),
    "ONCE ASSIGN not from a constant to state": lambda: _patched(lambda d: op_at(d, 1) + fmt.OP.offsets["flags"],
                                                                  "<B", 1),
    "assign to a constant": lambda: _assign_to_const(),
    "source": lambda: _patched(lambda d: tensor_at(d, 2) + fmt.TENSOR.offsets["dtype"], "<B",
                               fmt.DTYPES["uint8"]),
}


def _once_max() -> bytes:
    """The MAXIMUM marked ONCE, right after the ONCE ASSIGN: a ONCE op that is not an ASSIGN."""
    g = _state_graph()
    g.ops[1], g.ops[2] = g.ops[2], g.ops[1]
    g.ops[1].once = True
    return blob.write(g)


def _assign_to_const() -> bytes:
    g = _state_graph()
    g.ops[3].outputs = [4]      # the constant s0
    return blob.write(g)


@pytest.mark.parametrize("why", sorted(REFUSED))
def test_bad_state_blobs_are_refused(unix, why):
    msg = load_error(unix, REFUSED[why]())
    assert why in msg, msg
    unix.link.load(blob.write(_state_graph()))      # the board is fine


def test_writer_keeps_once_ops_first():
    g = _state_graph()
    g.ops[0].once, g.ops[1].once = False, True
    with pytest.raises(AssertionError, match="ONCE ops must come first"):
        blob.write(g)


# --- the serial link ----------------------------------------------------------------

def test_a_stateful_run_is_not_repeated(unix):
    """A reply to a run lost on the way: the run of a model without state is asked
    again; with state it is not (the state would move twice), and the error says how
    to start over."""
    from .test_link_faults import Faulty

    unix.link.load(blob.write(_state_graph()))
    assert unix.link.stateful
    unix.link.run(np.int8([1, 2, -1, 0]).tobytes())
    stream = unix.link.stream
    try:
        unix.link.stream = Faulty(stream, flip_read_at=12)
        with pytest.raises(MicronnError, match="not repeated.*the model keeps state"):
            unix.link.run(np.int8([5, -3, 0, 7]).tobytes())
    finally:
        unix.link.stream = stream
    # the board ran the lost run once: its maximum is in the state
    assert list(np.frombuffer(unix.link.run(np.int8([-9, 9, 2, 1]).tobytes())[0], np.int8)) == [5, 9, 3, 7]
    _, plain = _model("ew_sub")
    unix.link.load(plain)
    assert not unix.link.stateful
