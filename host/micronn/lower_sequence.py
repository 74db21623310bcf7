"""Lowerings of the sequence operators (issue 18); lower.py merges the tables below
into its own (LOWERINGS, LIMITS, OPERANDS have the same meaning there).

Recurrent layers reach micronn unrolled (tests/opzoo/recurrent.py): their cells are
ordinary int8 ops, except that TensorFlow's converter sometimes leaves a gate split in
float: DEQUANTIZE -> SPLIT -> QUANTIZE of each piece (about one conversion of an LSTM
or GRU in four, at random: the same model converts either way). Such a float region
is lowered here:

* A float region starts at a DEQUANTIZE of one int8 value x and holds the float ops
  that read it: elementwise ops of one value (those of a float island, see
  lower_elementwise.py) and pure movement (RESHAPE, SQUEEZE, EXPAND_DIMS, SPLIT,
  SPLIT_V, SLICE, STRIDED_SLICE, UNPACK, TRANSPOSE, and CONCATENATION or PACK of pieces
  of x), each of its ends a QUANTIZE to int8.
* Every element of an end is then f(x[j]) for one element j of x, f being the
  elementwise ops on its path (movement copies float values exactly, and an
  elementwise op does the same to every element of its tensor). So each end is the
  int8 movement (a STRIDED_COPY of x, found by applying the ops to x's element
  indices, as lower_movement.py does; a GATHER with constant indices where pieces
  are joined so that no strided box holds them) followed by a 256-entry table of
  TFLite Micro's float32 arithmetic (island_table), each left out when it does nothing.

A plain chain (no movement, no branch) stays lower_elementwise.lower_island's.
"""

from __future__ import annotations

import numpy as np

from . import lower_elementwise
from . import tflite as tfl
from .graph import Op, Tensor
from .lower import Lowering, _int_value
from .lower_elementwise import (
    _FLOAT_ACT,
    ISLAND_BINARY,
    ISLAND_FUSED,
    ISLAND_MAX_OPS,
    ISLAND_UNARY,
    island_table,
    lower_island,
)
from .lower_movement import _ss_end, _ss_start, copy_params

LOWERINGS: dict = {}
LIMITS: dict = {}
OPERANDS: dict = {}

# float movement a region may hold (ops that only copy float values)
REGION_MOVES = ("RESHAPE", "SQUEEZE", "EXPAND_DIMS", "SPLIT", "SPLIT_V", "SLICE", "STRIDED_SLICE", "UNPACK",
                "TRANSPOSE", "CONCATENATION", "PACK")
# ops one region may hold (a bound on the host's work, far above what converters write)
REGION_MAX_OPS = 256


def _plain_chain(low: Lowering, op: tfl.Operator) -> bool:
    """True if the DEQUANTIZE starts a chain without movement or branches (or something
    lower_island reports better): that function's case."""
    t = op.outputs[0]
    for _ in range(ISLAND_MAX_OPS + 2):
        uses = {u.index: u for u in low.consumers.get(t, [])}
        if len(uses) != 1:
            return len(uses) == 0
        nxt = next(iter(uses.values()))
        if nxt.opcode in REGION_MOVES:
            return False
        if nxt.opcode == "QUANTIZE" or len(nxt.outputs) != 1:
            return True
        t = nxt.outputs[0]
    return True


def _axis(low: Lowering, op: tfl.Operator, a: int, nd: int) -> int:
    if not -nd <= a < nd:
        raise low.fail(op, f"axis {a} is outside the {nd}-D input")
    return a % nd


def _one_axis(low: Lowering, op: tfl.Operator, k: int) -> int:
    a = _int_value(low, op, k, "axis").reshape(-1)
    if a.size != 1:
        raise low.fail(op, f"axis {a.tolist()}: expected one value")
    return int(a[0])


def _strided_slice(low: Lowering, op: tfl.Operator, r: np.ndarray) -> np.ndarray:
    """TFLite Micro's STRIDED_SLICE of an index array (lower_movement.py's rules)."""
    begin, end, strides = (_int_value(low, op, k, w).reshape(-1) for k, w in ((1, "begin"), (2, "end"),
                                                                               (3, "strides")))
    if not begin.size == end.size == strides.size == r.ndim:
        raise low.fail(op, f"begin, end and strides have {begin.size}, {end.size} and {strides.size} values for a "
                           f"{r.ndim}-D input")
    o = op.options
    bm, em, sm = o.get("begin_mask", 0), o.get("end_mask", 0), o.get("shrink_axis_mask", 0)
    index = []
    for d in range(r.ndim):
        s, n = int(strides[d]), r.shape[d]
        if s == 0:
            raise low.fail(op, f"stride 0 on axis {d}")
        shrink = bool(sm >> d & 1)
        if shrink and s < 0:
            raise low.fail(op, f"shrinking axis {d} with a negative stride (TFLite Micro copies nothing there)")
        b = _ss_start(int(begin[d]), s, n, bool(bm >> d & 1))
        index.append(np.arange(b, _ss_end(int(end[d]), s, n, b, bool(em >> d & 1), shrink), s, dtype=np.int64))
    return r[np.ix_(*index)]


def _move(low: Lowering, op: tfl.Operator, rs: list[np.ndarray]) -> list[np.ndarray]:
    """The index arrays of a movement op's outputs, from those of its float inputs (in
    the order of op.inputs); each output's shape is fixed afterwards from its declaration."""
    r, code, o = rs[0], op.opcode, op.options
    if code in ("RESHAPE", "SQUEEZE", "EXPAND_DIMS"):
        return [r]                      # the same elements in the same order
    if code == "SPLIT":
        n = len(op.outputs)
        axis = _axis(low, op, _one_axis(low, op, 0), r.ndim)
        if r.shape[axis] % n:
            raise low.fail(op, f"axis {axis} of size {r.shape[axis]} does not split into {n} equal pieces")
        return np.split(r, n, axis=axis)
    if code == "SPLIT_V":
        axis = _axis(low, op, _one_axis(low, op, 2), r.ndim)
        sizes = [int(v) for v in _int_value(low, op, 1, "size_splits").reshape(-1)]
        if sizes.count(-1) == 1:
            sizes[sizes.index(-1)] = r.shape[axis] - sum(s for s in sizes if s != -1)
        if len(sizes) != len(op.outputs) or min(sizes) < 1 or sum(sizes) != r.shape[axis]:
            raise low.fail(op, f"sizes {sizes} do not split axis {axis} of size {r.shape[axis]} into "
                               f"{len(op.outputs)} pieces")
        return np.split(r, np.cumsum(sizes)[:-1], axis=axis)
    if code == "SLICE":
        begin, size = _int_value(low, op, 1, "begin").reshape(-1), _int_value(low, op, 2, "size").reshape(-1)
        if not begin.size == size.size == r.ndim:
            raise low.fail(op, f"begin and size have {begin.size} and {size.size} values for a {r.ndim}-D input")
        index = []
        for d, n in enumerate(r.shape):
            b, s = int(begin[d]), int(size[d])
            s = n - b if s == -1 else s
            if not (0 <= b and 0 < s and b + s <= n):
                raise low.fail(op, f"begin {b} and size {int(size[d])} do not fit axis {d} of size {n}")
            index.append(slice(b, b + s))
        return [r[tuple(index)]]
    if code == "STRIDED_SLICE":
        return [_strided_slice(low, op, r)]
    if code == "UNPACK":
        axis = _axis(low, op, o.get("axis", 0), r.ndim)
        if r.shape[axis] != len(op.outputs):
            raise low.fail(op, f"axis {axis} of size {r.shape[axis]} unpacks into {len(op.outputs)} outputs")
        return [np.take(r, k, axis=axis) for k in range(r.shape[axis])]
    if code == "TRANSPOSE":
        perm = [int(p) for p in _int_value(low, op, 1, "permutation").reshape(-1)]
        if sorted(p % r.ndim if -r.ndim <= p < r.ndim else p for p in perm) != list(range(r.ndim)):
            raise low.fail(op, f"permutation {perm} does not fit the {r.ndim}-D input")
        return [np.transpose(r, [p % r.ndim for p in perm])]
    if o.get("fused_activation_function", "NONE") != "NONE":
        raise low.fail(op, f"a fused activation on a float {code} is not supported")
    if len({a.shape for a in rs}) != 1 and code == "PACK":
        raise low.fail(op, f"inputs of different shapes {sorted({a.shape for a in rs})}")
    if code == "PACK":
        return [np.stack(rs, axis=_axis(low, op, o.get("axis", 0), r.ndim + 1))]
    axis = _axis(low, op, o.get("axis", 0), r.ndim)       # CONCATENATION
    if any(a.ndim != r.ndim or np.delete(a.shape, axis).tolist() != np.delete(r.shape, axis).tolist() for a in rs):
        raise low.fail(op, f"shapes {[a.shape for a in rs]} do not concatenate on axis {axis}")
    return [np.concatenate(rs, axis=axis)]


def _declared(low: Lowering, op: tfl.Operator, k: int, r: np.ndarray) -> np.ndarray:
    """Index array r in output k's declared shape (the same elements in C order)."""
    declared = tuple(int(d) for d in low.tensor(op.outputs[k]).shape)
    if declared and min(declared) > 0 and int(np.prod(declared)) == r.size:
        return r.reshape(declared)
    if int(np.prod(declared)) != r.size:
        raise low.fail(op, f"output {k} is declared {declared}; the op gives {r.shape}")
    return r


def lower_float_region(low: Lowering, op: tfl.Operator) -> None:
    """DEQUANTIZE inside the graph: a float island (lower_island), or a float region with
    movement or branches, each end a STRIDED_COPY and/or a LUT of x (see the module)."""
    if _plain_chain(low, op):
        lower_island(low, op)
        return
    x = low.act(op.inputs[0], op)
    xin = low.g.tensors[x]
    t0 = op.outputs[0]
    vals: dict[int, tuple[np.ndarray, tuple]] = {}      # float tensor -> (x's element indices, elementwise steps)
    pending: dict[int, set[int]] = {}                   # float tensor -> ops still to read it

    def add(t: int, r: np.ndarray, steps: tuple, by: tfl.Operator) -> None:
        if t in low.outputs:
            raise low.fail(op, f"the float output of op {by.index} ({by.opcode}) is a model output; micronn's "
                               "outputs are int8 (or float through a final DEQUANTIZE)")
        if len(steps) > ISLAND_MAX_OPS:
            raise low.fail(op, f"a float island of more than {ISLAND_MAX_OPS} elementwise ops")
        vals[t] = (r, steps)
        readers = {u.index for u in low.consumers.get(t, [])}
        if readers:
            pending[t] = readers

    r0 = np.arange(xin.nbytes, dtype=np.int64).reshape(xin.shape)
    add(t0, _declared(low, op, 0, r0), (), op)
    absorbed, ends = [], []
    for u in low.model.operators:
        if not pending:
            break
        if u.index <= op.index or not any(i in vals for i in u.inputs):
            continue
        if len(absorbed) >= REGION_MAX_OPS:
            raise low.fail(op, f"a float region of more than {REGION_MAX_OPS} ops")
        where = f"op {u.index} ({u.opcode}) of the float region after op {op.index} (DEQUANTIZE)"
        for i in u.inputs:
            if i in pending:
                pending[i].discard(u.index)
                if not pending[i]:
                    del pending[i]
        floats = [i for i in u.inputs if i in vals]
        for i in u.inputs:
            if i >= 0 and i not in vals and low.tensor(i).dtype == "float32" and low.value(i) is None:
                raise low.fail(op, f"{where} also reads the float value {low.tensor(i).name} from outside the region "
                                   "(micronn turns a float region of one int8 value into copies and tables)")
        absorbed.append(u)
        if u.opcode == "QUANTIZE":
            if not u.outputs or low.tensor(u.outputs[0]).dtype != "int8":
                raise low.fail(op, f"{where} does not quantize to int8")
            r, steps = vals[floats[0]]
            ends.append((u, _declared(low, u, 0, r), steps))
            continue
        if not u.outputs or any(o < 0 or low.tensor(o).dtype != "float32" for o in u.outputs):
            raise low.fail(op, f"{where}: expected float32 outputs")
        if u.opcode in REGION_MOVES:
            if len({vals[i][1] for i in floats}) != 1:
                raise low.fail(op, f"{where} joins pieces that went through different float ops")
            data = [i for i in u.inputs if i in vals]
            if u.opcode in ("CONCATENATION", "PACK") and len(data) != len(u.inputs):
                raise low.fail(op, f"{where}: every input must come from the region")
            if u.opcode not in ("CONCATENATION", "PACK") and len(set(data)) != 1:
                raise low.fail(op, f"{where}: expected one float input")
            steps = vals[data[0]][1]
            outs = _move(low, u, [vals[i][0] for i in data])
            if len(outs) != len(u.outputs):
                raise low.fail(op, f"{where}: {len(outs)} pieces for {len(u.outputs)} outputs")
            for k, r in enumerate(outs):
                add(u.outputs[k], _declared(low, u, k, r), steps, u)
            continue
        if len(u.outputs) != 1:
            raise low.fail(op, f"{where}: expected one float32 output")
        if u.opcode in ISLAND_UNARY and len(floats) == 1:
            r, steps = vals[floats[0]]
            add(u.outputs[0], _declared(low, u, 0, r), steps + ((u.opcode, "NONE", None, False),), u)
            continue
        if u.opcode in ISLAND_BINARY and len(u.inputs) == 2 and len(floats) == 1:
            k_other = 1 if u.inputs[0] == floats[0] else 0
            c = u.inputs[k_other]
            v = low.value(c)
            if v is None or low.tensor(c).dtype != "float32" or v.size != 1:
                raise low.fail(op, f"{where}: its other operand must be one float32 constant value "
                                   "(a table maps one value)")
            act = u.options.get("fused_activation_function", "NONE") if u.opcode in ISLAND_FUSED else "NONE"
            if act not in _FLOAT_ACT:
                raise low.fail(op, f"{where}: fused activation {act} is not supported")
            r, steps = vals[floats[0]]
            step = (u.opcode, act, float(np.asarray(v, np.float32).reshape(-1)[0]), k_other == 0)
            add(u.outputs[0], _declared(low, u, 0, r), steps + (step,), u)
            continue
        raise low.fail(op, f"{where}: micronn turns only float movement ({', '.join(REGION_MOVES)}) and the "
                           f"elementwise ops {', '.join(sorted([*ISLAND_UNARY, *ISLAND_BINARY]))} of one value "
                           "(and QUANTIZE at each end) into copies and tables")
    if pending:     # cannot happen in a topologically ordered model; a bad file is refused
        raise low.fail(op, f"float values {sorted(pending)} are read before they are computed")
    _emit_ends(low, op, x, ends)
    low.skip.update(u.index for u in absorbed)


def _is_box(r: np.ndarray) -> bool:
    """True if index array r is one strided box (what copy_params turns into a STRIDED_COPY)."""
    flat, start = r.reshape(-1), int(r.reshape(-1)[0])
    want = np.full((1,), start, np.int64)
    for d, n in enumerate(r.shape):
        unit = [0] * r.ndim
        unit[d] = min(1, n - 1)
        want = want[..., None] + np.arange(n, dtype=np.int64) * (int(r[tuple(unit)]) - start)
    return bool(np.array_equal(want.reshape(-1), flat))


def _emit_ends(low: Lowering, op: tfl.Operator, x: int, ends: list) -> None:
    """Each end: a STRIDED_COPY of its elements of x (unless it is all of x in order), then
    a LUT (unless its table is the identity)."""
    g = low.g
    xin = g.tensors[x]
    tables: dict[bytes, int] = {}
    for q, r, steps in ends:
        y = low.out(q, 0, tuple(r.shape))
        yout = g.tensors[y]
        table = island_table(xin.scale, xin.zero_point, steps, yout.scale, yout.zero_point)
        same = np.array_equal(table, np.arange(-128, 128))
        whole = r.size == xin.nbytes and np.array_equal(r.reshape(-1), np.arange(r.size))
        source = f"ops {op.index}-{q.index} DEQUANTIZE..QUANTIZE (float region)"
        src = x
        if not whole or same:
            dst = y if same else g.add(Tensor(f"region{op.index}/piece{q.index}", "int8", tuple(r.shape),
                                              xin.scale, xin.zero_point))
            if _is_box(r):
                g.ops.append(Op("STRIDED_COPY", [x], [dst], copy_params(low, q, r), source=source))
            else:       # pieces joined out of order: a GATHER of x's elements (int32 indices, 4 bytes a value)
                idx = g.const(f"region{op.index}/indices{q.index}", r.reshape(-1).astype(np.int32))
                g.ops.append(Op("GATHER", [x, idx], [dst], dict(outer=1, axis_size=int(xin.nbytes), inner=1,
                                                                count=int(r.size)), source=source))
            src = dst
        if not same:
            key = table.tobytes()
            if key not in tables:
                tables[key] = g.const(f"region{op.index}/table{q.index}", table)
            g.ops.append(Op("LUT", [src, tables[key]], [y], dict(count=yout.nbytes), source=source))


LOWERINGS["DEQUANTIZE"] = lower_float_region      # replaces lower_elementwise's entry (merged after it)
_text = lower_elementwise.LIMITS["DEQUANTIZE"][1]
LIMITS["DEQUANTIZE"] = ("LUT, STRIDED_COPY or GATHER (with the float ops after it)", _text + (
    "; or a float region of that one value with branches and float movement (" + ", ".join(REGION_MOVES)
    + f"; CONCATENATION and PACK of pieces that went through the same float ops; at most {REGION_MAX_OPS} ops) "
    "ending in QUANTIZEs to int8: per end a STRIDED_COPY of x (a GATHER where pieces join out of order) and/or "
    "a table (the SPLIT TensorFlow's converter leaves in float in unrolled LSTMs and GRUs)"))


# lower.py (the hub) takes this group's tables in; this call does it when this module is imported first
from .lower import _merge_groups  # noqa: E402

_merge_groups()
