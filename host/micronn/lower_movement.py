"""Lowerings of the movement operators (issue 18); lower.py merges the tables below
into its own (LOWERINGS, LIMITS, OPERANDS have the same meaning there).

Most of them become STRIDED_COPY: the host applies the op to an array holding
each input element's own index (``np.arange``), with TFLite Micro's semantics,
and reads the copy's start and per-axis steps off the result (checking that it
is one strided box). DEPTH_TO_SPACE and SPACE_TO_DEPTH are strided boxes in
six dimensions; SPLIT, SPLIT_V and UNPACK make one copy per output. PACK is a
CONCATENATION, GATHER with constant indices and MIRROR_PAD have device ops of
their own. None of them changes values, so each needs its output quantized as
its input (TFLite's own rule for them).
"""

from __future__ import annotations

import math

import numpy as np

from . import format as fmt
from .graph import Op
from .lower import CONCAT_MAX_INPUTS, GEOM_MAX, _int_value

LOWERINGS: dict = {}
LIMITS: dict = {}
OPERANDS: dict = {}


def _same_quant(low, op, x: int, y: int) -> None:
    xin, yout = low.g.tensors[x], low.g.tensors[y]
    if (xin.scale, xin.zero_point) != (yout.scale, yout.zero_point):
        raise low.fail(op, f"the output's quantization ({yout.scale}, {yout.zero_point}) differs from the input's "
                           f"({xin.scale}, {xin.zero_point}); {op.opcode} moves values without rescaling them")


def _index(low, x: int) -> np.ndarray:
    """Each element's own index, in the shape of activation x."""
    shape = low.g.tensors[x].shape
    return np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)


def copy_params(low, op, r: np.ndarray) -> dict:
    """STRIDED_COPY's parameters for an index array r (its C order is the output's):
    axes of size 1 dropped, axes that step evenly merged, the rest padded to 6-D."""
    if r.size == 0:
        raise low.fail(op, f"the output of shape {r.shape} is empty")
    start = int(r.reshape(-1)[0])
    axes = []
    for d, n in enumerate(r.shape):
        if n > 1:
            unit = [0] * r.ndim
            unit[d] = 1
            axes.append((int(n), int(r[tuple(unit)]) - start))
    want = np.full((1,), start, np.int64)
    for n, s in axes:
        want = (want[..., None] + np.arange(n, dtype=np.int64) * s)
    if not np.array_equal(want.reshape(-1), r.reshape(-1)):
        raise AssertionError(f"{op.opcode}: not a strided copy")     # a bug here, not a model problem
    merged: list[list[int]] = []
    for n, s in reversed(axes):
        if merged and s == merged[0][1] * merged[0][0]:
            merged[0] = [merged[0][0] * n, merged[0][1]]
        else:
            merged.insert(0, [n, s])
    if len(merged) > fmt.COPY_DIMS:
        raise low.fail(op, f"the copy needs {len(merged)} strided axes; micronn's copy has {fmt.COPY_DIMS}")
    if any(n >= GEOM_MAX or abs(s) >= GEOM_MAX for n, s in merged):
        raise low.fail(op, f"sizes or steps of {GEOM_MAX} or more values ({merged})")
    merged = [[1, 0]] * (fmt.COPY_DIMS - len(merged)) + merged
    return dict(dims=[n for n, _ in merged], strides=[s for _, s in merged], start=start)


def _emit_copy(low, op, x: int, k: int, r: np.ndarray, shape: tuple | None = None) -> None:
    """Output k of op as the strided copy r of activation x (unless nothing reads it); r may be
    a factored form (more axes) of the output's shape."""
    i = op.outputs[k]
    if i < 0 or (not low.consumers.get(i) and i not in low.outputs):
        return
    declared = tuple(int(d) for d in low.tensor(i).shape)
    shape = shape or r.shape
    if declared and int(np.prod(declared)) == r.size and min(declared) > 0:
        shape = declared     # the same elements in the same order (e.g. a shrunk axis left out)
    if int(np.prod(shape)) != r.size:
        raise low.fail(op, f"output {k} is declared {declared}; the op gives {r.shape}")
    params = copy_params(low, op, r)
    y = low.out(op, k, tuple(shape))
    _same_quant(low, op, x, y)
    low.g.ops.append(Op("STRIDED_COPY", [x], [y], params, source=f"op {op.index} {op.opcode}"))


def _axis(low, op, value: int, nd: int, what: str = "axis") -> int:
    if not -nd <= value < nd:
        raise low.fail(op, f"{what} {value} is outside the {nd}-D input")
    return value % nd


# --- slices -------------------------------------------------------------------

def _ss_start(b: int, s: int, n: int, begin_mask: bool) -> int:
    """TFLite Micro's StridedSliceStartForAxis."""
    if b < 0:
        b += n
    b = min(max(b, 0), n) if s > 0 else min(max(b, -1), n - 1)
    if begin_mask:
        b = 0 if s > 0 else n - 1
    return b


def _ss_end(e: int, s: int, n: int, start: int, end_mask: bool, shrink: bool) -> int:
    """TFLite Micro's StridedSliceEndForAxis (without the offset option, which TFLite Micro does not pass)."""
    if shrink:
        return start if start >= n else start + 1
    if e < 0:
        e += n
    e = min(max(e, 0), n) if s > 0 else min(max(e, -1), n - 1)
    if end_mask:
        e = n if s > 0 else -1
    return e


def lower_strided_slice(low, op) -> None:
    x = low.act(op.inputs[0], op)
    r = _index(low, x)
    nd = r.ndim
    begin, end, strides = (_int_value(low, op, k, w).reshape(-1) for k, w in ((1, "begin"), (2, "end"),
                                                                               (3, "strides")))
    if not begin.size == end.size == strides.size == nd:
        raise low.fail(op, f"begin, end and strides have {begin.size}, {end.size} and {strides.size} values for a "
                           f"{nd}-D input")
    o = op.options
    # TFLite Micro reads begin, end and strides per input axis and ignores the ellipsis and
    # new-axis masks (its Prepare then insists on the output shape this gives).
    bm, em, sm = o.get("begin_mask", 0), o.get("end_mask", 0), o.get("shrink_axis_mask", 0)
    index = []
    for d in range(nd):
        s, n = int(strides[d]), r.shape[d]
        if s == 0:
            raise low.fail(op, f"stride 0 on axis {d}")
        shrink = bool(sm >> d & 1)
        if shrink and s < 0:
            raise low.fail(op, f"shrinking axis {d} with a negative stride (TFLite Micro copies nothing there)")
        b = _ss_start(int(begin[d]), s, n, bool(bm >> d & 1))
        e = _ss_end(int(end[d]), s, n, b, bool(em >> d & 1), shrink)
        index.append(np.arange(b, e, s, dtype=np.int64))
    shape = tuple(len(ix) for d, ix in enumerate(index) if not sm >> d & 1)
    declared = tuple(int(d) for d in low.tensor(op.outputs[0]).shape)
    if declared != shape:       # TFLite Micro's Prepare (CheckOutputSize) insists on it
        raise low.fail(op, f"the output is declared {declared}; begin, end, strides and masks give {shape} "
                           "(TFLite Micro refuses the model)")
    _emit_copy(low, op, x, 0, r[np.ix_(*index)], shape or (1,))


def lower_slice(low, op) -> None:
    x = low.act(op.inputs[0], op)
    r = _index(low, x)
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
    _emit_copy(low, op, x, 0, r[tuple(index)])


# --- splits -------------------------------------------------------------------

def _split(low, op, x: int, axis: int, sizes: list[int]) -> None:
    r = _index(low, x)
    if len(sizes) != len(op.outputs):
        raise low.fail(op, f"{len(sizes)} pieces for {len(op.outputs)} outputs")
    at = 0
    for k, n in enumerate(sizes):
        _emit_copy(low, op, x, k, np.take(r, np.arange(at, at + n), axis=axis))
        at += n


def lower_split(low, op) -> None:
    x = low.act(op.inputs[1], op)
    nd = len(low.g.tensors[x].shape)
    a = _int_value(low, op, 0, "axis").reshape(-1)
    if a.size != 1:
        raise low.fail(op, f"axis {a.tolist()}: expected one value")
    axis = _axis(low, op, int(a[0]), nd)
    n, parts = low.g.tensors[x].shape[axis], op.options.get("num_splits", len(op.outputs))
    if parts < 1 or n % parts:
        raise low.fail(op, f"axis {axis} of size {n} does not split into {parts} equal pieces")
    _split(low, op, x, axis, [n // parts] * parts)


def lower_split_v(low, op) -> None:
    x = low.act(op.inputs[0], op)
    shape = low.g.tensors[x].shape
    sizes = [int(v) for v in _int_value(low, op, 1, "size_splits").reshape(-1)]
    a = _int_value(low, op, 2, "axis").reshape(-1)
    if a.size != 1:
        raise low.fail(op, f"axis {a.tolist()}: expected one value")
    axis = _axis(low, op, int(a[0]), len(shape))
    if sizes.count(-1) == 1:
        sizes[sizes.index(-1)] = shape[axis] - sum(s for s in sizes if s != -1)
    if min(sizes) < 1 or sum(sizes) != shape[axis]:
        raise low.fail(op, f"sizes {sizes} do not split axis {axis} of size {shape[axis]}")
    _split(low, op, x, axis, sizes)


def lower_unpack(low, op) -> None:
    x = low.act(op.inputs[0], op)
    r = _index(low, x)
    axis = _axis(low, op, op.options.get("axis", 0), r.ndim)
    if r.shape[axis] != len(op.outputs):
        raise low.fail(op, f"axis {axis} of size {r.shape[axis]} unpacks into {len(op.outputs)} outputs")
    for k in range(r.shape[axis]):
        _emit_copy(low, op, x, k, np.take(r, k, axis=axis))


def lower_pack(low, op) -> None:
    """PACK is CONCATENATION: the new axis of size 1 per input moves no data."""
    low.operands(op, len(op.inputs))
    xs = [low.act(i, op) for i in op.inputs]
    shapes = {low.g.tensors[x].shape for x in xs}
    if len(shapes) != 1:
        raise low.fail(op, f"inputs of different shapes {sorted(shapes)}")
    shape = shapes.pop()
    axis = op.options.get("axis", 0)
    if not -len(shape) - 1 <= axis <= len(shape):
        raise low.fail(op, f"axis {axis} is outside the {len(shape) + 1}-D output")
    axis %= len(shape) + 1
    if len(xs) > CONCAT_MAX_INPUTS:
        raise low.fail(op, f"{len(xs)} inputs; micronn packs at most {CONCAT_MAX_INPUTS}")
    y = low.out(op, 0, shape[:axis] + (len(xs),) + shape[axis:])
    for x in xs:
        _same_quant(low, op, x, y)
    outer = int(np.prod(shape[:axis]))
    low.g.ops.append(Op("CONCATENATION", xs, [y], dict(outer=outer), source=f"op {op.index} PACK"))


# --- rearrangements -----------------------------------------------------------

def lower_transpose(low, op) -> None:
    x = low.act(op.inputs[0], op)
    r = _index(low, x)
    perm = [int(p) for p in _int_value(low, op, 1, "permutation").reshape(-1)]
    if sorted(p % r.ndim if -r.ndim <= p < r.ndim else p for p in perm) != list(range(r.ndim)):
        raise low.fail(op, f"permutation {perm} does not fit the {r.ndim}-D input")
    _emit_copy(low, op, x, 0, np.transpose(r, [p % r.ndim for p in perm]))


def _block(low, op, x: int) -> tuple[int, tuple]:
    shape = low.g.tensors[x].shape
    if len(shape) != 4:
        raise low.fail(op, f"input of shape {shape}; expected 4-D NHWC")
    b = op.options.get("block_size", 0)
    if b < 1:
        raise low.fail(op, f"block size {b}")
    return b, shape


def lower_depth_to_space(low, op) -> None:
    x = low.act(op.inputs[0], op)
    b, (n, h, w, c) = _block(low, op, x)
    if c % (b * b):
        raise low.fail(op, f"{c} channels do not split into {b}x{b} blocks")
    # output (n, h * b + i, w * b + j, k) = input (n, h, w, (i * b + j) * c / b^2 + k)
    r = _index(low, x).reshape(n, h, w, b, b, c // (b * b)).transpose(0, 1, 3, 2, 4, 5)
    # 6-D in the output's order: [n, h, i, w, j, k] is [n, h * b + i, w * b + j, k]
    _emit_copy(low, op, x, 0, r, (n, h * b, w * b, c // (b * b)))


def lower_space_to_depth(low, op) -> None:
    x = low.act(op.inputs[0], op)
    b, (n, h, w, c) = _block(low, op, x)
    if h % b or w % b:
        raise low.fail(op, f"height {h} and width {w} are not multiples of the block size {b}")
    r = _index(low, x).reshape(n, h // b, b, w // b, b, c).transpose(0, 1, 3, 2, 4, 5)
    _emit_copy(low, op, x, 0, r, (n, h // b, w // b, b * b * c))     # [n, h, w, i, j, k]: channel (i * b + j) * c + k


# --- gather and mirror padding -----------------------------------------------

def lower_gather(low, op) -> None:
    x = low.act(op.inputs[0], op)
    shape = low.g.tensors[x].shape
    idx = low.value(op.inputs[1])
    if idx is None:
        raise low.fail(op, "indices computed by the model (not constant) are not supported: micronn's activations "
                           "are int8, and int8 indices would not address past 127")
    if low.tensor(op.inputs[1]).dtype != "int32":
        raise low.fail(op, f"indices are {low.tensor(op.inputs[1]).dtype}; TFLite Micro's GATHER takes int32 only")
    if op.options.get("batch_dims", 0):
        raise low.fail(op, f"batch_dims {op.options['batch_dims']} is not supported (only 0)")
    axis = _axis(low, op, op.options.get("axis", 0), len(shape))
    flat = idx.astype(np.int64).reshape(-1)
    if flat.size == 0 or flat.min() < 0 or flat.max() >= shape[axis]:
        raise low.fail(op, f"indices {flat[:8].tolist()} must lie in [0, {shape[axis]}) (TFLite Micro refuses "
                           "others)")
    outer, inner = int(np.prod(shape[:axis])), int(np.prod(shape[axis + 1:]))
    if max(outer, inner, shape[axis], flat.size) >= GEOM_MAX:
        raise low.fail(op, f"sizes of {GEOM_MAX} or more values")
    y = low.out(op, 0, shape[:axis] + tuple(int(d) for d in idx.shape) + shape[axis + 1:])
    _same_quant(low, op, x, y)
    t = low.g.const(f"{low.tensor(op.inputs[1]).name}/indices", flat.astype(np.int32))
    low.g.ops.append(Op("GATHER", [x, t], [y], dict(outer=outer, axis_size=int(shape[axis]), inner=inner,
                                                       count=int(flat.size)), source=f"op {op.index} GATHER"))


def lower_mirror_pad(low, op) -> None:
    x = low.act(op.inputs[0], op)
    shape = low.g.tensors[x].shape
    mode = op.options.get("mode", "REFLECT")
    if mode not in ("REFLECT", "SYMMETRIC"):
        raise low.fail(op, f"mode {mode}")
    off = 1 if mode == "REFLECT" else 0
    pads = _int_value(low, op, 1, "paddings").astype(np.int64)
    nd = len(shape)
    if pads.size != 2 * nd:
        raise low.fail(op, f"paddings {pads.reshape(-1).tolist()} do not fit the input {shape}")
    pads = pads.reshape(nd, 2)
    for d, (a, b) in enumerate(pads):
        if min(a, b) < 0 or max(a, b) > shape[d] - off:
            raise low.fail(op, f"{mode} paddings {[int(a), int(b)]} of axis {d} (size {shape[d]}) must lie in "
                               f"[0, {shape[d] - off}]")
    y = low.out(op, 0, tuple(int(d + a + b) for d, (a, b) in zip(shape, pads, strict=True)))
    _same_quant(low, op, x, y)
    ext = 4 - nd
    low.g.ops.append(Op("MIRROR_PAD", [x], [y], dict(
        in_dims=[1] * ext + list(shape), before=[0] * ext + [int(a) for a, _ in pads],
        after=[0] * ext + [int(b) for _, b in pads], offset=off), source=f"op {op.index} MIRROR_PAD"))


LOWERINGS.update({
    "STRIDED_SLICE": lower_strided_slice,
    "SLICE": lower_slice,
    "SPLIT": lower_split,
    "SPLIT_V": lower_split_v,
    "UNPACK": lower_unpack,
    "PACK": lower_pack,
    "TRANSPOSE": lower_transpose,
    "DEPTH_TO_SPACE": lower_depth_to_space,
    "SPACE_TO_DEPTH": lower_space_to_depth,
    "GATHER": lower_gather,
    "MIRROR_PAD": lower_mirror_pad,
})
OPERANDS.update({"STRIDED_SLICE": 4, "SLICE": 3, "SPLIT": 2, "SPLIT_V": 3, "TRANSPOSE": 2, "GATHER": 2,
                 "MIRROR_PAD": 2})

_SAME = "same quantization in and out"
_COPY = f"at most {fmt.COPY_DIMS} strided axes after merging; sizes and steps below {GEOM_MAX}; {_SAME}"
LIMITS.update({
    "STRIDED_SLICE": ("STRIDED_COPY", "constant begin, end and strides (one each per input axis, as TFLite Micro "
                      "reads them), any stride but 0, negative strides; begin, end and shrink-axis masks (TFLite "
                      "Micro ignores the ellipsis and new-axis masks); no shrinking with a negative stride; "
                      f"{_COPY}"),
    "SLICE": ("STRIDED_COPY", f"constant begin and size (-1: to the end); {_COPY}"),
    "SPLIT": ("STRIDED_COPY (one per output)", f"constant axis; equal pieces; {_COPY}"),
    "SPLIT_V": ("STRIDED_COPY (one per output)", f"constant axis and sizes (one may be -1); {_COPY}"),
    "UNPACK": ("STRIDED_COPY (one per output)", f"any axis; {_COPY}"),
    "PACK": ("CONCATENATION", f"1 to {CONCAT_MAX_INPUTS} activations of one shape; any axis; {_SAME}"),
    "TRANSPOSE": ("STRIDED_COPY", f"constant permutation; {_COPY}"),
    "DEPTH_TO_SPACE": ("STRIDED_COPY", f"4-D NHWC; {_COPY}"),
    "SPACE_TO_DEPTH": ("STRIDED_COPY", f"4-D NHWC; height and width multiples of the block; {_COPY}"),
    "GATHER": ("GATHER", f"constant int32 indices in [0, axis size) (indices computed by the model are refused); any "
               f"axis; batch_dims 0; sizes below {GEOM_MAX}; {_SAME}"),
    "MIRROR_PAD": ("MIRROR_PAD", f"REFLECT (paddings below the axis size) or SYMMETRIC (up to it); constant "
                   f"paddings; at most 4-D; {_SAME}"),
})


# --- repetition: TILE, and Keras UpSampling2D's EXPAND_DIMS -> TILE -> RESHAPE --------

# TILE's output: at most this many values (far beyond a microcontroller's memory; the
# host builds index arrays of that size)
TILE_MAX_OUT = 1 << 26


def _multiples(low, op, shape: tuple) -> list[int]:
    m = _int_value(low, op, 1, "multiples").reshape(-1)
    if m.size != len(shape):
        raise low.fail(op, f"{m.size} multiples for a {len(shape)}-D input")
    if (m < 1).any():
        raise low.fail(op, f"multiples {m.tolist()}: each must be at least 1")
    out = [int(d) * int(v) for d, v in zip(shape, m, strict=True)]
    if max(out) >= GEOM_MAX or math.prod(out) > TILE_MAX_OUT:
        raise low.fail(op, f"an output of shape {tuple(out)}: micronn's limits are {GEOM_MAX - 1} per axis and "
                           f"{TILE_MAX_OUT} values")
    return [int(v) for v in m]


def _tiled(r: np.ndarray, multiples: list[int]) -> np.ndarray:
    """np.tile(r, multiples) in factored form [m0, d0, m1, d1, ...] (the same C order): a
    repetition is an axis of step 0, so the result is one strided box."""
    fine = r.reshape([s for d in r.shape for s in (1, d)])
    return np.broadcast_to(fine, [s for m, d in zip(multiples, r.shape, strict=True) for s in (m, d)])


def lower_tile(low, op) -> None:
    x = low.act(op.inputs[0], op)
    r = _index(low, x)
    if r.ndim > fmt.MAX_DIMS:
        raise low.fail(op, f"a {r.ndim}-D input; micronn's activations are at most {fmt.MAX_DIMS}-D")
    multiples = _multiples(low, op, r.shape)
    _emit_copy(low, op, x, 0, _tiled(r, multiples), tuple(d * m for d, m in zip(r.shape, multiples, strict=True)))


def _evaluate(low, i: int, shapes: dict, depth: int = 0):
    """The value tensor i will have once the host folds the ops that compute it (the new
    shape of a RESHAPE, say), or None; shapes gives the shapes of activations that have no
    graph tensor (yet)."""
    from .lower import FOLDERS

    v = low.value(i)
    if v is not None or depth > 32:
        return v
    op = low.producer.get(i)
    if op is None or op.opcode not in FOLDERS or not op.outputs or op.outputs[0] != i:
        return None
    vals = []
    for k, j in enumerate(op.inputs):
        if op.opcode == "SHAPE" and k == 0 and (j in shapes or j in low.map):
            vals.append(np.broadcast_to(np.int8(0), shapes[j] if j in shapes else low.g.tensors[low.map[j]].shape))
            continue
        v = _evaluate(low, j, shapes, depth + 1) if j >= 0 else None
        if v is None:
            return None
        vals.append(v)
    try:
        return np.asarray(FOLDERS[op.opcode](vals, op.options)).astype(low.tensor(i).dtype)
    except (ValueError, IndexError, TypeError, KeyError):
        return None


def _upsampling_chain(low, op):
    """EXPAND_DIMS -> TILE (constant multiples) -> RESHAPE, each the only reader of the one
    before (SHAPE ops may read the TILE's output too): (tile, reshape, shape ops), else None."""
    e = op.outputs[0]
    uses = low.consumers.get(e, [])
    if e in low.outputs or len(uses) != 1 or uses[0].opcode != "TILE" or uses[0].inputs[:1] != [e]:
        return None
    tile = uses[0]
    if len(tile.inputs) < 2 or low.value(tile.inputs[1]) is None or not tile.outputs:
        return None
    t = tile.outputs[0]
    uses = low.consumers.get(t, [])
    reshapes = [u for u in uses if u.opcode == "RESHAPE"]
    shapes = [u for u in uses if u.opcode == "SHAPE"]
    if t in low.outputs or len(reshapes) != 1 or len(reshapes) + len(shapes) != len(uses) \
            or reshapes[0].inputs[:1] != [t] or not reshapes[0].outputs:
        return None
    return tile, reshapes[0], shapes


class _Fine:
    """An activation's index array kept in a finer shape: each of its axes is a group of
    consecutive fine axes that each step evenly (a repetition is a fine axis of step 0),
    so that several EXPAND_DIMS -> TILE -> RESHAPE chains still make one strided box."""

    def __init__(self, r: np.ndarray):
        self.r, self.groups = r, [[d] for d in range(r.ndim)]

    def shape(self) -> tuple:
        return tuple(int(np.prod([self.r.shape[f] for f in g])) for g in self.groups)

    def _regroup(self, sizes: list[list[int]]) -> None:
        at, self.groups = 0, []
        for n in sizes:
            self.groups.append(list(range(at, at + len(n))))
            at += len(n)

    def _sizes(self) -> list[list[int]]:
        return [[self.r.shape[f] for f in g] for g in self.groups]

    def expand(self, axis: int) -> None:
        sizes = self._sizes()
        at = sum(len(g) for g in sizes[:axis])
        self.r = np.expand_dims(self.r, at)
        sizes.insert(axis, [1])
        self._regroup(sizes)

    def tile(self, multiples: list[int]) -> None:
        sizes = self._sizes()
        fine = [n for g in sizes for n in g]
        shape, at = [], 0
        for m, g in zip(multiples, sizes, strict=True):     # axis d becomes [m, its fine axes]
            shape += [m] + g
            at += len(g)
        view = self.r.reshape([n for g in sizes for n in [1] + g]) if fine else self.r
        self.r = np.broadcast_to(view, shape)
        self._regroup([[m] + g for m, g in zip(multiples, sizes, strict=True)])

    def reshape(self, target: list[int]) -> bool:
        """Regroup to target if it only merges adjacent axes (and adds or drops axes of
        size 1); False if not (the fine form is then lost)."""
        sizes = [[n for n in g if n > 1] for g in self._sizes()]
        self.r = self.r.reshape([n for g in sizes for n in g] or [1])
        rest = [g for g in sizes if g]
        out = []
        for t in target:
            group, n = [], 1
            while n < t and rest:
                group += rest[0]
                n *= int(np.prod(rest.pop(0)))
            if n != t:
                return False
            out.append(group)
        if rest:
            return False
        if not any(out):
            out[0] = [1]
        elif self.r.ndim != sum(len(g) for g in out):
            return False
        self._regroup(out)
        return True


def _reshape_target(low, reshape, shapes: dict, n: int) -> list[int]:
    target = _evaluate(low, reshape.inputs[1], shapes) if len(reshape.inputs) > 1 and reshape.inputs[1] >= 0 \
        else None
    if target is None:
        target = reshape.options.get("new_shape")
    if target is None:
        raise low.fail(reshape, "the new shape after EXPAND_DIMS and TILE cannot be evaluated on the host")
    shape = [int(d) for d in np.asarray(target).reshape(-1)]
    if shape.count(-1) == 1:
        rest = int(np.prod([d for d in shape if d != -1]))
        if rest > 0 and n % rest == 0:
            shape[shape.index(-1)] = n // rest
    if int(np.prod(shape)) != n or min(shape, default=1) < 1:
        raise low.fail(reshape, f"reshape to {shape} changes the size ({n} values)")
    return shape or [1]


def lower_expand_dims(low, op) -> None:
    """EXPAND_DIMS shares its input's memory (lower.py's lower_alias), unless it starts
    EXPAND_DIMS -> TILE -> RESHAPE (Keras 3's UpSampling2D, nearest, writes one such chain
    per axis): such chains, one after the other, are one STRIDED_COPY from the first
    input to the last RESHAPE's output, so the 5-D tensors between never exist."""
    from .lower import lower_alias

    chain = _upsampling_chain(low, op)
    if chain is None:
        lower_alias(low, op)
        return
    x = low.act(op.inputs[0], op)
    fine = _Fine(_index(low, x))
    shapes: dict = {}           # shapes of the activations in between (for the SHAPE ops that read them)
    absorbed, names = [], []
    e, regrouped = op, True
    while True:
        tile, reshape, shape_ops = chain
        nd = len(fine.groups)
        axis = _int_value(low, e, 1, "axis").reshape(-1)
        if axis.size != 1 or not -nd - 1 <= int(axis[0]) <= nd:
            raise low.fail(e, f"axis {axis.tolist()} does not fit the {nd}-D input")
        fine.expand(int(axis[0]) % (nd + 1))
        fine.tile(_multiples(low, tile, fine.shape()))
        t_shape = fine.shape()
        shapes[tile.outputs[0]] = t_shape
        for s in shape_ops:      # the converter computes the RESHAPE's new shape from these
            low.values[s.outputs[0]] = np.array(t_shape, dtype=low.tensor(s.outputs[0]).dtype)
        target = _reshape_target(low, reshape, shapes, int(np.prod(t_shape)))
        shapes[reshape.outputs[0]] = tuple(target)
        absorbed += [tile, reshape, *shape_ops]
        names += [f"op {e.index} EXPAND_DIMS", f"op {tile.index} TILE", f"op {reshape.index} RESHAPE"]
        regrouped = fine.reshape(target)
        out = reshape.outputs[0]
        uses = low.consumers.get(out, [])
        nexts = [u for u in uses if u.opcode == "EXPAND_DIMS" and u.inputs[:1] == [out]]
        sizes = [u for u in uses if u.opcode == "SHAPE" and u.outputs]     # the next chain's new shape
        chain = _upsampling_chain(low, nexts[0]) if len(nexts) == 1 and len(nexts) + len(sizes) == len(uses) \
            and out not in low.outputs and regrouped else None
        if chain is None:
            break
        for s in sizes:
            low.values[s.outputs[0]] = np.array(target, dtype=low.tensor(s.outputs[0]).dtype)
        absorbed += [nexts[0], *sizes]
        e = nexts[0]
    if len(target) > fmt.MAX_DIMS:
        raise low.fail(reshape, f"a {len(target)}-D output; micronn's activations are at most {fmt.MAX_DIMS}-D")
    params = copy_params(low, op, fine.r)
    y = low.out(reshape, 0, tuple(target))
    _same_quant(low, op, x, y)
    for o in absorbed:
        low.skip.add(o.index)
    low.g.ops.append(Op("STRIDED_COPY", [x], [y], params, source=" + ".join(names)))


LOWERINGS.update({"TILE": lower_tile, "EXPAND_DIMS": lower_expand_dims})
OPERANDS.update({"TILE": 2, "EXPAND_DIMS": 2})
LIMITS.update({
    "TILE": ("STRIDED_COPY", f"constant multiples (at least 1 each); at most {fmt.MAX_DIMS}-D; at most "
             f"{TILE_MAX_OUT} output values; {_COPY} (a repetition is a step of 0)"),
    "EXPAND_DIMS": ("none (the output shares the input's memory); STRIDED_COPY for EXPAND_DIMS -> TILE -> RESHAPE",
                    "a constant axis; EXPAND_DIMS -> TILE (constant multiples) -> RESHAPE, each read only by the next "
                    "(and SHAPE), as Keras' UpSampling2D (nearest) writes it per axis, is one copy from the input to "
                    "the RESHAPE's output without the 5-D tensors between (chains that follow one another, one "
                    f"copy); {_COPY}"),
})


# lower.py (the hub) takes this group's tables in; this call does it when this module is imported first
from .lower import _merge_groups  # noqa: E402

_merge_groups()
