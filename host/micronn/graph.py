"""The lowered graph the packer builds, and the offline arena planner.

A ``Graph`` holds tensors (activations in the arena, or constants) and a flat
list of device ops whose parameters are already the integers the kernels use.
Lowering from TFLite (``micronn.lower``) and hand-built test graphs both end
here; ``micronn.blob.write`` serializes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import format as fmt
from .errors import MicronnError


@dataclass
class Tensor:
    name: str
    dtype: str
    shape: tuple[int, ...]
    scale: float = 0.0
    zero_point: int = 0
    data: np.ndarray | None = None      # constant tensors only
    alias_of: int | None = None         # shares the memory of another tensor
    source: int = -1                    # index of the tensor in the source .tflite, if any
    offset: int = -1                    # arena, constant or state offset, set when writing
    state: bool = False                 # model state (STATE storage): kept between runs, not in the arena

    @property
    def nbytes(self) -> int:
        return fmt.dtype_nbytes(self.dtype, int(np.prod(self.shape, dtype=np.int64)))     # int4: packed

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def in_arena(self) -> bool:
        return self.data is None and not self.state

    @property
    def storage(self) -> str:
        return "CONST" if self.data is not None else "STATE" if self.state else "ARENA"


@dataclass
class Op:
    kind: str                   # a key of format.OPCODES
    inputs: list[int]           # tensor indices; -1 for an omitted optional input
    outputs: list[int]
    params: dict
    scratch: int = 0            # bytes of kernel scratch memory it needs
    source: str = ""            # where it came from, for messages and inspect
    once: bool = False          # runs once, at load (initial values of the state); ONCE ops come first


@dataclass
class Graph:
    tensors: list[Tensor] = field(default_factory=list)
    ops: list[Op] = field(default_factory=list)
    inputs: list[int] = field(default_factory=list)
    outputs: list[int] = field(default_factory=list)
    meta: dict[str, object] = field(default_factory=dict)
    float_input: bool = False   # the model's interface is float: the board quantizes
    float_output: bool = False  # ... and dequantizes

    def add(self, t: Tensor) -> int:
        if len(t.shape) > fmt.MAX_DIMS:
            raise MicronnError(f"tensor {t.name!r} has {len(t.shape)} dimensions; micronn supports up to 4")
        self.tensors.append(t)
        return len(self.tensors) - 1

    def const(self, name: str, array: np.ndarray) -> int:
        a = np.ascontiguousarray(array)
        return self.add(Tensor(name, a.dtype.name, tuple(a.shape), data=a))

    def const_int4(self, name: str, values: np.ndarray) -> int:
        """An int4 constant (S4 ops' weights): values in [-8, 7] with their logical shape, held and stored
        packed two per byte (format.pack_int4)."""
        v = np.asarray(values)
        return self.add(Tensor(name, "int4", tuple(v.shape), data=fmt.pack_int4(v)))

    def state(self, name: str, dtype: str, shape: tuple[int, ...], scale: float = 0.0, zero_point: int = 0) -> int:
        """A tensor of model state: the model's own memory, kept from one run to the next;
        loading sets it to its zero point, then runs the ONCE ops (its initial value);
        Model.reset() sets it to its zero point again."""
        return self.add(Tensor(name, dtype, tuple(shape), scale, zero_point, state=True))

    def compact(self) -> None:
        """Drop the tensors nothing refers to any more (after a fusion) and renumber the rest."""
        used = {i for op in self.ops for i in op.inputs + op.outputs if i >= 0} | set(self.inputs + self.outputs)
        todo = list(used)
        while todo:
            a = self.tensors[todo.pop()].alias_of
            if a is not None and a not in used:
                used.add(a)
                todo.append(a)
        new = {old: k for k, old in enumerate(sorted(used))}
        self.tensors = [self.tensors[i] for i in sorted(used)]
        for t in self.tensors:
            if t.alias_of is not None:
                t.alias_of = new[t.alias_of]
        for op in self.ops:
            op.inputs = [new[i] if i >= 0 else i for i in op.inputs]
            op.outputs = [new[i] for i in op.outputs]
        self.inputs = [new[i] for i in self.inputs]
        self.outputs = [new[i] for i in self.outputs]

    def root(self, i: int) -> int:
        """The tensor whose memory tensor i uses."""
        while self.tensors[i].alias_of is not None:
            i = self.tensors[i].alias_of
        return i


@dataclass
class Plan:
    arena_size: int
    lower_bound: int            # largest sum of simultaneously live buffers
    offsets: dict[int, int]     # root tensor index -> arena offset

    def offset(self, g: Graph, i: int) -> int:
        r = g.root(i)
        return self.offsets[self.shared.get(r, r)]

    shared: dict[int, int] = field(default_factory=dict)    # in-place output root -> buffer root


# Ops whose kernels read element i before writing element i, so their output
# may overwrite an input of the same size that dies there.
IN_PLACE = {"LUT", "ADD", "MUL", "SUB", "SQUARED_DIFFERENCE", "MAXIMUM", "MINIMUM", "PRELU",
            "ADD_S16", "MUL_S16", "TANH_S16", "LOGISTIC_S16", "REQUANT"}


def _in_place(g: Graph) -> dict[int, int]:
    """Output root -> input root it may share memory with."""
    last: dict[int, int] = {}
    for k, op in enumerate(g.ops):
        for i in op.inputs:
            if i >= 0 and g.tensors[i].in_arena:
                last[g.root(i)] = k
    keep = {g.root(i) for i in g.inputs + g.outputs}
    share: dict[int, int] = {}
    for k, op in enumerate(g.ops):
        if op.kind not in IN_PLACE:
            continue
        out = g.root(op.outputs[0])
        if not g.tensors[out].in_arena:
            continue
        for i in op.inputs:
            if i < 0 or not g.tensors[i].in_arena:
                continue
            r = share.get(g.root(i), g.root(i))
            if last.get(g.root(i)) == k and g.root(i) not in keep and g.tensors[i].nbytes == g.tensors[out].nbytes:
                share[out] = r
                break
    return share


def _lifetimes(g: Graph) -> dict[int, list[int]]:
    """Buffer (root tensor) -> [first op index that needs it, last op index]."""
    n = len(g.ops)
    life: dict[int, list[int]] = {}
    share = _in_place(g)

    def touch(i: int, k: int) -> None:
        if i < 0 or not g.tensors[i].in_arena:
            return
        r = g.root(i)
        r = share.get(r, r)
        span = life.setdefault(r, [k, k])
        span[0], span[1] = min(span[0], k), max(span[1], k)

    for i in g.inputs:
        touch(i, -1)
    for k, op in enumerate(g.ops):
        for i in op.inputs + op.outputs:
            touch(i, k)
    for i in g.outputs:
        touch(i, n)
    return life


def plan_arena(g: Graph) -> Plan:
    """Greedy placement, largest buffers first, each at the lowest offset that
    does not collide with a placed buffer whose lifetime overlaps its own."""
    life = _lifetimes(g)
    size = {r: fmt.align(g.tensors[r].nbytes, fmt.ARENA_ALIGN) for r in life}
    order = sorted(life, key=lambda r: (-size[r], life[r][0], r))
    placed: list[tuple[int, int, int]] = []     # (offset, end, root)
    offsets: dict[int, int] = {}
    for r in order:
        first, last = life[r]
        busy = sorted((o, e) for o, e, q in placed if life[q][0] <= last and first <= life[q][1])
        at = 0
        for o, e in busy:
            if at + size[r] <= o:
                break
            at = max(at, e)
        offsets[r] = at
        placed.append((at, at + size[r], r))
    arena = max((e for _, e, _ in placed), default=0)
    lower = 0
    for k in range(-1, len(g.ops) + 1):
        lower = max(lower, sum(size[r] for r in life if life[r][0] <= k <= life[r][1]))
    return Plan(arena, lower, offsets, _in_place(g))
