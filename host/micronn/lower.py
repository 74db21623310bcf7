"""Lower a fully-int8 TFLite graph into micronn device ops.

Each supported TFLite operator has one lowering function in ``LOWERINGS``;
it turns TFLite's tensors and options into the exact integer parameters the
device kernels use (TFLite Micro's preparation arithmetic, see ``quant``).
Anything the device cannot run stops here with a message naming the op and
its position in the graph; ``Lowering(model, collect=True)`` instead lowers every
op it can and keeps a list of all the problems (``micronn ops MODEL``).
``LIMITS`` (beside ``LOWERINGS``) states what each lowering accepts, for the
table ``micronn ops`` prints and docs/ops.md holds.
"""

from __future__ import annotations

import math

import numpy as np

from . import format as fmt
from . import quant
from . import tflite as tfl
from .errors import MicronnError
from .graph import Graph, Op, Tensor

# The loader's limit on any size in an op's geometry (GEOM_MAX in cmodule/loader.c):
# a model beyond it is refused here, with the op named, rather than on the board.
GEOM_MAX = 1 << 24
# ... on a requantization shift (a multiplier below 2**31 * 2**30),
MAX_SHIFT = 30
# ... and on a pooling window's taps (their int8 sum must fit an int32).
POOL_WINDOW_MAX = 1 << 23
# ... and on the inputs of one CONCATENATION.
CONCAT_MAX_INPUTS = 8


class Lowering:
    def __init__(self, model: tfl.Model, collect: bool = False):
        self.model = model
        # collect: record each op's problem and go on (with a stand-in for its outputs)
        # instead of raising at the first, so that one report names them all
        self.collect = collect
        self.problems: list[dict] = []
        self.status: dict[int, str] = {}        # op index -> lowered / folded / absorbed / float boundary / unsupported
        self.lost: dict[int, int] = {}          # tflite tensor -> the failed op that left it without a stand-in
        self.g = Graph()
        self.map: dict[int, int] = {}           # tflite tensor index -> graph tensor index
        self.values: dict[int, np.ndarray] = {}  # tflite tensor index -> folded constant value
        self.inputs = list(model.inputs)        # int8 graph inputs/outputs (after float boundaries)
        self.outputs = list(model.outputs)
        self.skip: set[int] = set()             # ops absorbed by another lowering
        self.consumers: dict[int, list[tfl.Operator]] = {}
        for op in model.operators:
            for i in op.inputs:
                if i >= 0:
                    self.consumers.setdefault(i, []).append(op)
        self.producer = {o: op for op in model.operators for o in op.outputs}

    def fail(self, op: tfl.Operator, why: str) -> MicronnError:
        return MicronnError(f"op {op.index} ({op.opcode}): {why}")

    def tensor(self, i: int) -> tfl.Tensor:
        if i < 0:       # -1 marks an omitted optional input; Python would index from the end
            raise MicronnError("a required operand is missing (tensor index -1)")
        return self.model.tensors[i]

    def operands(self, op: tfl.Operator, n: int) -> None:
        """The first n inputs and one output must be present (the lowerings index them)."""
        if len(op.inputs) < n or any(i < 0 for i in op.inputs[:n]) or not op.outputs:
            raise self.fail(op, f"needs {n} input{'s' if n > 1 else ''} and an output, "
                                f"has inputs {op.inputs} and outputs {op.outputs}")

    # -- constants ---------------------------------------------------------------

    def value(self, i: int) -> np.ndarray | None:
        """The value of a constant or host-folded tensor, else None."""
        if i < 0:
            return None
        if i not in self.values and self.tensor(i).data is not None:
            self.values[i] = self.tensor(i).array()
        return self.values.get(i)

    def const_of(self, op: tfl.Operator, k: int, dtype: str) -> tfl.Tensor:
        i = op.inputs[k]
        t = self.tensor(i)
        if t.data is None:
            raise self.fail(op, f"input {k} ({t.name}) must be a constant")
        if t.dtype != dtype:
            raise self.fail(op, f"input {k} ({t.name}) is {t.dtype}; expected {dtype}")
        return t

    # -- activations -----------------------------------------------------------

    def _quant(self, i: int, where: str, dtype: str = "int8") -> tuple[float, int]:
        """Scale and zero point of activation i, which must be of dtype (int8; int16 for the
        lowerings of TFLite's 16x8 mode)."""
        t = self.tensor(i)
        if t.dtype != dtype:
            if dtype == "int8":
                raise MicronnError(f"{where} is {t.dtype}; micronn runs int8 activations "
                                   "(quantize the model fully to int8)")
            raise MicronnError(f"{where} is {t.dtype}; expected {dtype}")
        if t.scale is None or t.zero_point is None or len(t.scale) != 1:
            raise MicronnError(f"{where} has no per-tensor quantization")
        scale, zp = float(t.scale[0]), int(t.zero_point[0])
        if not (math.isfinite(scale) and scale > 0):
            raise MicronnError(f"{where} has quantization scale {scale}; expected a positive number")
        lo, hi = (quant.INT8_MIN, quant.INT8_MAX) if dtype == "int8" else (-(1 << 15), (1 << 15) - 1)
        if not lo <= zp <= hi:
            raise MicronnError(f"{where} has zero point {zp}, outside {dtype}")
        return scale, zp

    def _shape(self, shape, where: str) -> tuple[int, ...]:
        """An activation's shape: dimensions of at least 1, fewer than 2**31 values (the arena's limit)."""
        shape = tuple(int(d) for d in shape) or (1,)
        if min(shape) < 1 or max(shape) >= GEOM_MAX or math.prod(shape) >= 2**31:
            raise MicronnError(f"{where} has shape {shape}; micronn needs static dimensions from 1 to "
                               f"{GEOM_MAX - 1} and fewer than 2**31 values")
        return shape

    def act(self, i: int, op: tfl.Operator | None = None, dtype: str = "int8") -> int:
        """The graph tensor of TFLite activation tensor i, which must exist already; read by op
        (if given) as dtype (the lowerings that are not int16's read int8)."""
        if i in self.map:
            have = self.g.tensors[self.map[i]].dtype
            if op is not None and have in ("int8", "int16") and have != dtype:
                raise self.fail(op, f"input tensor {i} ({self.tensor(i).name}) is {have}; micronn runs "
                                    f"{op.opcode} on {dtype} activations")
            return self.map[i]
        t = self.tensor(i)
        by = f" by op {op.index} ({op.opcode})" if op else ""
        if i not in self.inputs:
            if self.value(i) is not None:
                raise MicronnError(f"tensor {i} ({t.name}): a constant where an activation was expected{by}")
            raise MicronnError(f"tensor {i} ({t.name}) is used{by} before any op produces it")
        where = f"input tensor {i} ({t.name})"
        dtype = "int16" if op is None and t.dtype == "int16" else dtype     # a graph input of a 16x8 model
        scale, zp = self._quant(i, where, dtype)
        shape = self._shape(t.shape, where)
        self.map[i] = self.g.add(Tensor(t.name, dtype, shape, scale, zp, source=i))
        return self.map[i]

    def out(self, op: tfl.Operator, k: int, shape: tuple[int, ...], dtype: str = "int8") -> int:
        """Create output k of op (of dtype) with the shape the lowering computed."""
        i = op.outputs[k]
        t = self.tensor(i)
        where = f"output {k} of op {op.index} ({op.opcode})"
        scale, zp = self._quant(i, where, dtype)
        self.map[i] = self.g.add(Tensor(t.name, dtype, self._shape(shape, where), scale, zp, source=i))
        return self.map[i]

    # -- the graph -------------------------------------------------------------

    def run(self) -> Graph:
        m = self.model
        from .lower_state import state_problem

        problem = state_problem(m)
        if problem is not None:
            self._model_problem(problem)
        self._float_boundaries()
        for i in self.inputs:
            self._guarded(lambda i=i: self.act(i))
        for op in m.operators:
            if op.index in self.skip:
                self.status.setdefault(op.index, "absorbed")
                continue
            if not self.collect:
                self._lower_op(op)
                continue
            try:
                self._lower_op(op)
            except MicronnError as e:
                self._failed(op, e)
        if self.collect and self.problems:
            return self.g
        try:
            self.g.inputs = [self.act(i) for i in self.inputs]
            self.g.outputs = [self.act(i) for i in self.outputs]
        except MicronnError as e:
            self._model_problem(e)
            return self.g
        for what, ids in (("inputs", self.g.inputs), ("outputs", self.g.outputs)):
            if not 1 <= len(ids) <= fmt.MAX_IO:
                self._model_problem(MicronnError(f"the model has {len(ids)} {what}; micronn runs models with "
                                                 f"1 to {fmt.MAX_IO}"))
        if len(set(self.g.inputs)) != len(self.g.inputs):
            self._model_problem(MicronnError("the model uses one tensor as two of its inputs"))
        if set(self.g.inputs) & set(self.g.outputs):
            self._model_problem(MicronnError("an input of the model is also an output; micronn needs an op "
                                             "between them"))
        return self.g

    def _lower_op(self, op: tfl.Operator) -> None:
        if fold(self, op):
            self.status[op.index] = "folded"
            return
        fn = LOWERINGS.get(op.opcode)
        if fn is None:
            custom = f" {op.custom_code!r}" if op.custom_code else ""
            raise self.fail(op, f"not supported by micronn{custom} (version {op.version})")
        n = OPERANDS.get(op.opcode, 1)
        if n is not None:
            self.operands(op, n)
        fn(self, op)
        self.status[op.index] = "lowered"

    def _model_problem(self, e: MicronnError) -> None:
        """A problem of the whole model (no one op's): raised, or recorded when collecting."""
        if not self.collect:
            raise e
        self.problems.append(dict(index=None, op=None, inputs=[], outputs=[], reason=str(e), after=[]))

    def _guarded(self, fn) -> None:
        try:
            fn()
        except MicronnError as e:
            self._model_problem(e)

    def _failed(self, op: tfl.Operator, e: MicronnError) -> None:
        """Record op's problem; give its outputs a stand-in from their declared shape and
        quantization so that the ops after it are checked too."""
        reason = str(e)
        prefix = f"op {op.index} ({op.opcode}): "
        if reason.startswith(prefix):
            reason = reason[len(prefix):]

        def names(ids):
            return [self.model.tensors[i].name if 0 <= i < len(self.model.tensors) else "-" for i in ids]

        after = sorted({self.lost[i] for i in op.inputs if i in self.lost})
        self.problems.append(dict(index=op.index, op=op.opcode, inputs=names(op.inputs), outputs=names(op.outputs),
                                  reason=reason, after=after))
        self.status[op.index] = "unsupported"
        for i in op.outputs:
            if i in self.map or not 0 <= i < len(self.model.tensors):
                continue
            t = self.model.tensors[i]
            try:
                where = f"output of op {op.index} ({op.opcode})"
                dtype = "int16" if t.dtype == "int16" else "int8"
                scale, zp = self._quant(i, where, dtype)
                self.map[i] = self.g.add(Tensor(t.name, dtype, self._shape(t.shape, where), scale, zp, source=i))
            except MicronnError:
                self.lost[i] = op.index

    def _float_boundaries(self) -> None:
        """A float model interface (QUANTIZE first, DEQUANTIZE last; to and from int8,
        or int16 in 16x8 models) becomes the board's job: the graph itself stays integer."""
        boundary = {"inputs": set(), "outputs": set()}
        for k, i in enumerate(self.inputs):
            uses = self.consumers.get(i, [])
            if self.tensor(i).dtype == "float32" and len(uses) == 1 and uses[0].opcode == "QUANTIZE" \
                    and uses[0].outputs and self.tensor(uses[0].outputs[0]).dtype in ("int8", "int16"):
                self.inputs[k] = uses[0].outputs[0]
                boundary["inputs"].add(self.inputs[k])
                self.skip.add(uses[0].index)
                self.status[uses[0].index] = "float boundary"
                self.g.float_input = True
        for k, o in enumerate(self.outputs):
            op = self.producer.get(o)
            if self.tensor(o).dtype == "float32" and op is not None and op.opcode == "DEQUANTIZE" \
                    and op.inputs and op.inputs[0] >= 0 and self.tensor(op.inputs[0]).dtype in ("int8", "int16"):
                self.outputs[k] = op.inputs[0]
                boundary["outputs"].add(self.outputs[k])
                self.skip.add(op.index)
                self.status[op.index] = "float boundary"
                self.g.float_output = True
        # One header flag each: every input (output) is float, or none is (the board
        # presents every int8 and int16 one of a flagged blob as float).
        for what, ids, on in (("inputs", self.inputs, self.g.float_input),
                              ("outputs", self.outputs, self.g.float_output)):
            if on and any(i not in boundary[what] and self.tensor(i).dtype in ("float32", "int8", "int16")
                          for i in ids):
                self._model_problem(MicronnError(f"the model has float and integer {what}; micronn needs all of "
                                                 f"them float (quantized on the board) or none"))

    def sole_consumer(self, op: tfl.Operator, opcode: str) -> tfl.Operator | None:
        uses = self.consumers.get(op.outputs[0], [])
        if len(uses) == 1 and uses[0].opcode == opcode and op.outputs[0] not in self.outputs:
            return uses[0]
        return None


# --- host-side constant folding (shape arithmetic the converter emits) -------

def _strided_slice(x: np.ndarray, begin, end, strides, o: dict) -> np.ndarray:
    if o.get("ellipsis_mask") or o.get("new_axis_mask"):
        raise ValueError("ellipsis and new-axis masks")
    index = []
    for d in range(len(begin)):
        b = None if o.get("begin_mask", 0) >> d & 1 else int(begin[d])
        e = None if o.get("end_mask", 0) >> d & 1 else int(end[d])
        if o.get("shrink_axis_mask", 0) >> d & 1:
            index.append(int(begin[d]))
        else:
            index.append(slice(b, e, int(strides[d])))
    return np.asarray(x[tuple(index)])


def _reduce(fn, x, axes, keep):
    axes = tuple(int(a) % max(x.ndim, 1) for a in np.atleast_1d(axes))
    return fn(x, axis=axes, keepdims=bool(keep))


FOLDERS = {
    "SHAPE": lambda v, o: np.array(v[0].shape, dtype=np.int32),
    "GATHER": lambda v, o: np.take(v[0], v[1], axis=o.get("axis", 0)),
    "REDUCE_PROD": lambda v, o: _reduce(np.prod, v[0], v[1], o.get("keep_dims")),
    "SUM": lambda v, o: _reduce(np.sum, v[0], v[1], o.get("keep_dims")),
    "PACK": lambda v, o: np.stack(v, axis=o.get("axis", 0)),
    "CONCATENATION": lambda v, o: np.concatenate([np.atleast_1d(a) for a in v], axis=o.get("axis", 0)),
    "STRIDED_SLICE": lambda v, o: _strided_slice(v[0], v[1], v[2], v[3], o),
    "SLICE": lambda v, o: v[0][tuple(slice(int(b), None if s < 0 else int(b) + int(s)) for b, s in zip(v[1], v[2],
                                                                                                          strict=True))],
    "RESHAPE": lambda v, o: v[0].reshape(v[1] if len(v) > 1 else o["new_shape"]),
    "CAST": lambda v, o: v[0],
}


def fold(low: Lowering, op: tfl.Operator) -> bool:
    """Evaluate op on the host when its inputs are known; True if it was folded."""
    if op.opcode not in FOLDERS or not op.outputs:
        return False
    vals = []
    for k, i in enumerate(op.inputs):
        v = low.value(i)
        if v is None and op.opcode == "SHAPE" and k == 0 and i in low.map:
            v = np.broadcast_to(np.int8(0), low.g.tensors[low.map[i]].shape)    # only the shape matters
        if v is None:
            return False
        vals.append(v)
    out = low.tensor(op.outputs[0])
    try:
        result = FOLDERS[op.opcode](vals, op.options)
        low.values[op.outputs[0]] = np.asarray(result).astype(out.dtype if out.dtype != "bool" else np.bool_)
    except (ValueError, IndexError, TypeError, KeyError) as e:
        raise low.fail(op, f"cannot evaluate on the host: {e}") from None
    return True


def _activation(low: Lowering, op: tfl.Operator, out: Tensor) -> tuple[int, int]:
    act = op.options.get("fused_activation_function", "NONE")
    qmin, qmax = (-(1 << 15), (1 << 15) - 1) if out.dtype == "int16" else (quant.INT8_MIN, quant.INT8_MAX)
    try:
        return quant.activation_range(act, out.scale, out.zero_point, qmin, qmax)
    except ValueError:
        raise low.fail(op, f"fused activation {act} is not supported") from None
    except OverflowError:   # a bound divided by a denormal scale: infinite in float32 (undefined in TFLite)
        raise low.fail(op, f"output scale {out.scale} is too small for the fused {act}") from None


def _arith(low: Lowering, op: tfl.Operator, fn, *args, **kw):
    """A quant function's result; its ValueError (scales with no integer form) names the op."""
    try:
        return fn(*args, **kw)
    except ValueError as e:
        raise low.fail(op, str(e)) from None


def _check_shifts(low: Lowering, op: tfl.Operator, *shifts) -> None:
    """Requantization shifts the kernels (and the loader) take: at most MAX_SHIFT."""
    top = max(int(np.max(s)) for s in shifts)
    if top > MAX_SHIFT:
        raise low.fail(op, f"the quantization scales need a multiplier of 2**{top - 31} or more; "
                           f"requantization holds at most 2**{MAX_SHIFT - 31}")


def _weight_quant(low: Lowering, op: tfl.Operator, wt: tfl.Tensor) -> None:
    """Weights need scales (finite, not negative) and int8 zero points."""
    if wt.scale is None:
        raise low.fail(op, "weights are not quantized")
    if not (np.isfinite(wt.scale).all() and (wt.scale >= 0).all()):
        raise low.fail(op, f"weight scales {wt.scale[:8].tolist()} must be finite and not negative")
    zp = wt.zero_point
    if zp is not None and ((zp < quant.INT8_MIN) | (zp > quant.INT8_MAX)).any():
        raise low.fail(op, f"weight zero points {zp[:8].tolist()} lie outside int8")


def _int_value(low: Lowering, op: tfl.Operator, k: int, what: str) -> np.ndarray:
    """Input k as a constant (or host-folded) integer array."""
    v = low.value(op.inputs[k]) if k < len(op.inputs) else None
    if v is None:
        raise low.fail(op, f"{what} must be constant")
    if v.dtype.kind not in "iu":
        raise low.fail(op, f"{what} are {v.dtype}; expected integers")
    return v


def _weights_of(low: Lowering, op: tfl.Operator) -> tuple[tfl.Tensor, np.ndarray, bool]:
    """Input 1: int8 weights, or int4 ones (TensorFlow's low-bit QAT conversion writes them packed two per
    byte, value 2k in the low nibble, as the blob does): the tensor, its values as int8, and whether int4
    (the S4 ops)."""
    if low.tensor(op.inputs[1]).dtype == "int4":
        wt = low.const_of(op, 1, "int4")
        n = math.prod(wt.shape)
        if min(wt.shape, default=0) < 0 or len(wt.data) != (n + 1) // 2:
            raise low.fail(op, f"int4 weights of {len(wt.data)} bytes for shape {wt.shape}")
        return wt, fmt.unpack_int4(wt.data, n).reshape(wt.shape), True
    wt = low.const_of(op, 1, "int8")
    return wt, wt.array().astype(np.int8), False


def _act_dtype(low: Lowering, op: tfl.Operator) -> str:
    """int16 for an op of a 16x8 model (its first input int16), else int8."""
    return "int16" if low.tensor(op.inputs[0]).dtype == "int16" else "int8"


def _bias16(low: Lowering, op: tfl.Operator, n: int) -> tuple[int, int]:
    """A 16x8 op's bias (graph tensor or -1) and its acc64 field: TFLite Micro sums in int64 with
    an int64 bias or none, in int32 with an int32 bias."""
    if len(op.inputs) <= 2 or op.inputs[2] < 0:
        return -1, 1
    t = low.tensor(op.inputs[2])
    if t.dtype not in ("int64", "int32") or t.data is None:
        raise low.fail(op, f"bias is {t.dtype}; a 16x8 op takes a constant int64 or int32 bias")
    b = t.array().reshape(-1)
    if b.size != n:
        raise low.fail(op, f"bias has {b.size} values; expected {n}")
    if t.dtype == "int64" and np.abs(b.astype(np.int64)).max(initial=0) > 2**46:
        raise low.fail(op, "an int64 bias beyond 2**46 (TFLite's bound for 16x8 sums)")
    return low.g.const(f"{t.name}/bias", b.astype(np.int64 if t.dtype == "int64" else np.int32)), int(
        t.dtype == "int64")


def lower_fully_connected(low: Lowering, op: tfl.Operator) -> None:
    g = low.g
    if op.options.get("weights_format", "DEFAULT") != "DEFAULT":
        raise low.fail(op, f"weights format {op.options['weights_format']} is not supported")
    dt = _act_dtype(low, op)
    x = low.act(op.inputs[0], op, dt)
    wt, w, s4 = _weights_of(low, op)
    if w.ndim != 2:
        raise low.fail(op, f"weights of rank {w.ndim}; expected 2")
    outs, depth = w.shape
    xin = g.tensors[x]
    n_in = int(np.prod(xin.shape))
    if n_in % depth:
        raise low.fail(op, f"input of {n_in} values does not split into rows of {depth}")
    _weight_quant(low, op, wt)
    batches = n_in // depth
    keep = op.options.get("keep_num_dims") and xin.shape[-1] == depth
    y = low.out(op, 0, xin.shape[:-1] + (outs,) if keep else (batches, outs), dt)
    yout = g.tensors[y]
    if len(wt.scale) > 1 and len(wt.scale) != outs:
        raise low.fail(op, f"{len(wt.scale)} weight scales for {outs} outputs")
    w_zp = int(wt.zero_point[0]) if wt.zero_point is not None and len(wt.zero_point) else 0
    mult, shift = _arith(low, op, quant.conv_multipliers, xin.scale, wt.scale, yout.scale)
    _check_shifts(low, op, shift)
    if dt == "int16":
        if s4 or w_zp != 0:
            raise low.fail(op, "a 16x8 FULLY_CONNECTED needs int8 weights with zero point 0")
        bias, acc64 = _bias16(low, op, outs)
        lo, hi = _activation(low, op, yout)
        inputs = [x, g.const(wt.name, w), bias, g.const(f"{wt.name}/mult", mult), g.const(f"{wt.name}/shift", shift)]
        g.ops.append(Op("FULLY_CONNECTED_S16", inputs, [y], dict(
            input_offset=0, filter_offset=0, output_offset=0, act_min=lo, act_max=hi, batches=batches,
            accum_depth=depth, out_depth=outs, acc64=acc64), source=f"op {op.index} FULLY_CONNECTED (16x8)"))
        return
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        bias = low.const_of(op, 2, "int32").array().astype(np.int64).reshape(-1)
        if bias.size != outs:
            raise low.fail(op, f"bias has {bias.size} values; expected {outs}")
    else:
        bias = None
    in_off, w_off = -xin.zero_point, -w_zp
    if w_off == 0 and in_off != 0:
        # Fold the input offset into the bias: sum((x + o) * w) = sum(x * w) + o * sum(w).
        folded = (bias if bias is not None else 0) + in_off * w.astype(np.int64).sum(axis=1)
        if np.abs(folded).max() < 2**31:
            bias, in_off = folded, 0
    lo, hi = _activation(low, op, yout)
    b = -1 if bias is None else g.const(f"{wt.name}/bias", bias.astype(np.int32))
    wi = g.const_int4(wt.name, w) if s4 else g.const(wt.name, w)
    inputs = [x, wi, b, g.const(f"{wt.name}/mult", mult), g.const(f"{wt.name}/shift", shift)]
    g.ops.append(Op("FULLY_CONNECTED_S4" if s4 else "FULLY_CONNECTED", inputs, [y], dict(
        input_offset=in_off, filter_offset=w_off, output_offset=yout.zero_point, act_min=lo, act_max=hi,
        batches=batches, accum_depth=depth, out_depth=outs),
        source=f"op {op.index} FULLY_CONNECTED"))


def lower_softmax(low: Lowering, op: tfl.Operator) -> None:
    g = low.g
    x = low.act(op.inputs[0], op)
    y = low.out(op, 0, g.tensors[x].shape)
    xin, yout = g.tensors[x], g.tensors[y]
    if yout.zero_point != -128 or abs(yout.scale - 1 / 256) > 1e-9:
        raise low.fail(op, f"int8 softmax output must have scale 1/256 and zero point -128 "
                           f"(has {yout.scale}, {yout.zero_point})")
    beta = op.options.get("beta", 1.0)
    if not math.isfinite(beta):
        raise low.fail(op, f"beta {beta} is not a finite number")
    mult, shift, diff_min = _arith(low, op, quant.softmax_params, beta, xin.scale)
    row = xin.shape[-1]
    g.ops.append(Op("SOFTMAX", [x], [y], dict(
        input_mult=mult, input_left_shift=shift, diff_min=diff_min, rows=xin.nbytes // row, row_size=row),
        source=f"op {op.index} SOFTMAX"))


def lower_reshape(low: Lowering, op: tfl.Operator) -> None:
    """A reshape moves no data: the output shares the input's memory."""
    x = low.act(op.inputs[0], op)
    xin = low.g.tensors[x]
    target = low.value(op.inputs[1]) if len(op.inputs) > 1 and op.inputs[1] >= 0 else None
    if target is None:
        target = op.options.get("new_shape")
    if target is None:
        target = low.tensor(op.outputs[0]).shape
    target = np.asarray(target)
    if target.size and target.dtype.kind not in "iu":
        raise low.fail(op, f"the new shape is {target.dtype}; expected integers")
    shape = [int(d) for d in target.reshape(-1)]
    n = xin.nbytes
    if shape.count(-1) == 1:
        rest = int(np.prod([d for d in shape if d != -1]))
        if rest <= 0 or n % rest:
            raise low.fail(op, f"cannot reshape {xin.shape} to {shape}")
        shape[shape.index(-1)] = n // rest
    if int(np.prod(shape)) != n or any(d <= 0 for d in shape):
        raise low.fail(op, f"reshape from {xin.shape} to {shape} changes the size")
    y = low.out(op, 0, tuple(shape))
    yout = low.g.tensors[y]
    if (xin.scale, xin.zero_point) != (yout.scale, yout.zero_point):
        raise low.fail(op, "reshape changes the quantization")
    yout.alias_of = x


def _nhwc(low: Lowering, op: tfl.Operator, x: int) -> tuple[int, int, int, int]:
    shape = low.g.tensors[x].shape
    if len(shape) != 4:
        raise low.fail(op, f"input of shape {shape}; expected 4-D NHWC")
    return shape


def _out_size(n: int, k: int, stride: int, dil: int, padding: str) -> tuple[int, int]:
    """TFLite's output size and leading padding for one spatial axis."""
    eff = (k - 1) * dil + 1
    out = (n + stride - 1) // stride if padding == "SAME" else (n + stride - eff) // stride
    total = max((out - 1) * stride + eff - n, 0)
    return out, total // 2


def _geom(batches, in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w, s_h, s_w, d_h, d_w, p_t, p_l) -> dict:
    return dict(batches=batches, in_h=in_h, in_w=in_w, in_c=in_c, out_h=out_h, out_w=out_w, out_c=out_c,
                k_h=k_h, k_w=k_w, stride_h=s_h, stride_w=s_w, dil_h=d_h, dil_w=d_w, pad_top=p_t, pad_left=p_l)


_GEOM_SIZES = ("batches", "in_h", "in_w", "in_c", "out_h", "out_w", "out_c", "k_h", "k_w", "stride_h", "stride_w",
               "dil_h", "dil_w")


def _check_geom(low: Lowering, op: tfl.Operator, p: dict) -> None:
    """The loader's limits on a convolution's or pooling's geometry (check_geom in cmodule/loader.c):
    every size from 1 to GEOM_MAX - 1, and so the reach of the window and the padding."""
    bad = [f"{k} {p[k]}" for k in _GEOM_SIZES if not 1 <= p[k] < GEOM_MAX]
    reach = max(p["out_h"] * p["stride_h"] + p["k_h"] * p["dil_h"], p["out_w"] * p["stride_w"] + p["k_w"] * p["dil_w"])
    if reach >= GEOM_MAX:
        bad.append(f"window reach {reach} (output size times stride plus kernel size times dilation)")
    if max(abs(p["pad_top"]), abs(p["pad_left"])) >= GEOM_MAX:
        bad.append(f"padding {p['pad_top']}x{p['pad_left']}")
    if op.opcode != "MAX_POOL_2D" and op.opcode != "AVERAGE_POOL_2D" and p["out_c"] >= GEOM_MAX // 4:
        bad.append(f"{p['out_c']} output channels")
    if bad:
        raise low.fail(op, f"geometry beyond micronn's limits ({GEOM_MAX - 1} per size): {', '.join(bad)}")


def _conv_mult(low: Lowering, op: tfl.Operator, wt: tfl.Tensor, xin: Tensor, yout: Tensor, out_c: int):
    """Per output channel (multiplier, shift) of a convolution with symmetric weights (TFLite
    Micro's PopulateConvolutionQuantizationParams, for int8 and 16x8 alike)."""
    _weight_quant(low, op, wt)
    if wt.zero_point is not None and np.any(wt.zero_point != 0):
        raise low.fail(op, "weights must be symmetric (zero point 0)")
    scales = np.broadcast_to(np.asarray(wt.scale, np.float32), (out_c,)) if len(wt.scale) == 1 else wt.scale
    if len(scales) != out_c:
        raise low.fail(op, f"{len(scales)} weight scales for {out_c} output channels")
    mult, shift = _arith(low, op, quant.conv_multipliers, xin.scale, scales, yout.scale)
    _check_shifts(low, op, shift)
    return mult, shift


def _conv_quant(low: Lowering, op: tfl.Operator, wt: tfl.Tensor, xin: Tensor, yout: Tensor, out_c: int):
    mult, shift = _conv_mult(low, op, wt, xin, yout, out_c)
    bias = None
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        bias = low.const_of(op, 2, "int32").array().astype(np.int32).reshape(-1)
        if bias.size != out_c:
            raise low.fail(op, f"bias has {bias.size} values; expected {out_c}")
    return mult, shift, bias


def _dilated_pattern(low: Lowering, op: tfl.Operator):
    """SPACE_TO_BATCH_ND -> conv -> BATCH_TO_SPACE_ND, as the converter writes a
    dilated convolution: returns (input, dilation, pad_top_left, out_hw, final op) or None."""
    stb = low.producer.get(op.inputs[0])
    if stb is None or stb.opcode != "SPACE_TO_BATCH_ND" or stb.index not in low.skip:
        return None
    bts = low.sole_consumer(op, "BATCH_TO_SPACE_ND")
    if bts is None:
        raise low.fail(op, "SPACE_TO_BATCH_ND before a convolution must be undone by BATCH_TO_SPACE_ND")
    low.operands(bts, 3)
    block = [int(v) for v in _int_value(low, stb, 1, "block shape").reshape(-1)]
    if [int(v) for v in _int_value(low, bts, 1, "block shape").reshape(-1)] != block or len(block) != 2:
        raise low.fail(op, "SPACE_TO_BATCH_ND and BATCH_TO_SPACE_ND use different blocks")
    pads, crops = _int_value(low, stb, 2, "paddings"), _int_value(low, bts, 2, "crops")
    if min(block) < 1 or pads.size != 4 or crops.size != 4 or pads.min() < 0 or crops.min() < 0:
        raise low.fail(op, f"block {block}, paddings {pads.reshape(-1).tolist()} and crops "
                           f"{crops.reshape(-1).tolist()}: expected a block of at least 1 and 2x2 paddings and "
                           "crops of at least 0")
    pads, crops = pads.reshape(2, 2).astype(np.int64), crops.reshape(2, 2).astype(np.int64)
    if op.options.get("padding") != "VALID" or op.options.get("stride_h", 1) != 1 or op.options.get("stride_w", 1) != 1:
        raise low.fail(op, "a dilated convolution through SPACE_TO_BATCH_ND must be VALID with stride 1")
    return stb.inputs[0], block, pads, crops, bts


def _lower_conv_like(low: Lowering, op: tfl.Operator, depthwise: bool) -> None:
    g = low.g
    dil = [op.options.get("dilation_h_factor", 1), op.options.get("dilation_w_factor", 1)]
    stride = [op.options.get("stride_h", 1), op.options.get("stride_w", 1)]
    if min(stride + dil) < 1 or max(stride + dil) >= GEOM_MAX:
        raise low.fail(op, f"strides {stride} and dilations {dil} must be from 1 to {GEOM_MAX - 1}")
    pattern = _dilated_pattern(low, op)
    src = pattern[0] if pattern else op.inputs[0]
    dt = _act_dtype(low, op)
    x = low.act(src, op, dt)
    n, in_h, in_w, in_c = _nhwc(low, op, x)
    wt, w, s4 = _weights_of(low, op)
    if w.ndim != 4:
        raise low.fail(op, f"weights of rank {w.ndim}; expected 4")
    if depthwise:
        one, k_h, k_w, out_c = w.shape
        if one != 1:
            raise low.fail(op, f"weights of shape {w.shape}; expected [1, k_h, k_w, out_c]")
        if out_c % in_c:
            raise low.fail(op, f"{out_c} output channels for {in_c} input channels")
        extra = dict(depth_mult=out_c // in_c)
        fc = 1
    else:
        out_c, k_h, k_w, fc = w.shape
        if in_c % fc or out_c % (in_c // fc):
            raise low.fail(op, f"weights with {fc} input channels do not divide {in_c} input channels")
        extra = dict(groups=in_c // fc)
    final = op
    if pattern:
        _, block, pads, crops, final = pattern
        dil = [d * b for d, b in zip(dil, block, strict=True)]
        eff_h, eff_w = (k_h - 1) * dil[0] + 1, (k_w - 1) * dil[1] + 1
        out_h = in_h + pads[0].sum() - eff_h + 1 - crops[0].sum()
        out_w = in_w + pads[1].sum() - eff_w + 1 - crops[1].sum()
        pad_t, pad_l = int(pads[0][0] - crops[0][0]), int(pads[1][0] - crops[1][0])
        low.skip.add(final.index)
    else:
        out_h, pad_t = _out_size(in_h, k_h, stride[0], dil[0], op.options.get("padding", "SAME"))
        out_w, pad_l = _out_size(in_w, k_w, stride[1], dil[1], op.options.get("padding", "SAME"))
    if out_h <= 0 or out_w <= 0:
        raise low.fail(op, f"the kernel {k_h}x{k_w} does not fit the input {in_h}x{in_w}")
    # quantization comes from the op's own tensors; the output tensor is the pattern's last one
    y = low.out(final, 0, (n, int(out_h), int(out_w), out_c), dt)
    xin, yout = g.tensors[x], g.tensors[y]
    if pattern:
        if low._quant(op.outputs[0], f"output of op {op.index} ({op.opcode})", dt) != (yout.scale,
                                                                                       yout.zero_point):
            raise low.fail(op, "BATCH_TO_SPACE_ND changes the quantization")
    if dt == "int16":
        _lower_conv16(low, op, x, y, wt, w, s4, depthwise, extra, (n, in_h, in_w, in_c, int(out_h), int(out_w), out_c,
                                                                 k_h, k_w, stride[0], stride[1], dil[0], dil[1],
                                                                 pad_t, pad_l))
        return
    mult, shift, bias = _conv_quant(low, op, wt, xin, yout, out_c)
    lo, hi = _activation(low, op, yout)
    b = -1 if bias is None else g.const(f"{wt.name}/bias", bias)
    wi = g.const_int4(wt.name, w) if s4 else g.const(wt.name, w)
    inputs = [x, wi, b, g.const(f"{wt.name}/mult", mult), g.const(f"{wt.name}/shift", shift)]
    params = dict(_geom(n, in_h, in_w, in_c, int(out_h), int(out_w), out_c, k_h, k_w, stride[0], stride[1],
                        dil[0], dil[1], pad_t, pad_l),
                  input_offset=-xin.zero_point, output_offset=yout.zero_point, act_min=lo, act_max=hi, **extra)
    _check_geom(low, op, params)
    kind = "DEPTHWISE_CONV_2D" if depthwise else "CONV_2D"
    if s4:      # int4 weights: the S4 ops (depthwise for any multiplier), read packed
        scratch = 0 if depthwise else fmt.conv_s4_scratch(k_h, k_w, fc)
        g.ops.append(Op(kind + "_S4", inputs, [y], params, scratch=scratch, source=f"op {op.index} {op.opcode}"))
        return
    if depthwise and extra["depth_mult"] > 1:
        # A depth multiplier above 1 is a convolution grouped by input channel (output
        # channel ic * dm + m sees input channel ic only): the same sums, through the
        # faster im2col kernels. Weights [1, kh, kw, out_c] -> [out_c, kh, kw, 1].
        kind = "CONV_2D"
        t = g.tensors[inputs[1]]
        t.data = np.ascontiguousarray(np.transpose(w, (3, 1, 2, 0)))
        t.shape = tuple(t.data.shape)
        del params["depth_mult"]
        params["groups"] = in_c
        depthwise = False
    # convolution: two int16 im2col columns for the fast kernels
    scratch = 0 if depthwise else fmt.CONV_SCRATCH_PER_TAP * k_h * k_w * fc
    g.ops.append(Op(kind, inputs, [y], params, scratch=scratch, source=f"op {op.index} {op.opcode}"))


def _lower_conv16(low: Lowering, op: tfl.Operator, x: int, y: int, wt, w, s4: bool, depthwise: bool, extra: dict,
                  geom: tuple) -> None:
    """A convolution of a 16x8 model: CONV_2D_S16 / DEPTHWISE_CONV_2D_S16 (int16 in and out, zero points 0)."""
    g = low.g
    if s4:
        raise low.fail(op, "int4 weights with int16 activations are not supported")
    xin, yout = g.tensors[x], g.tensors[y]
    out_c = geom[6]
    mult, shift = _conv_mult(low, op, wt, xin, yout, out_c)
    bias, acc64 = _bias16(low, op, out_c)
    lo, hi = _activation(low, op, yout)
    inputs = [x, g.const(wt.name, w), bias, g.const(f"{wt.name}/mult", mult), g.const(f"{wt.name}/shift", shift)]
    params = dict(_geom(*geom), input_offset=0, output_offset=0, act_min=lo, act_max=hi, acc64=acc64, **extra)
    _check_geom(low, op, params)
    kind = "DEPTHWISE_CONV_2D_S16" if depthwise else "CONV_2D_S16"
    g.ops.append(Op(kind, inputs, [y], params, source=f"op {op.index} {op.opcode} (16x8)"))


def lower_conv(low: Lowering, op: tfl.Operator) -> None:
    _lower_conv_like(low, op, depthwise=False)


def lower_depthwise(low: Lowering, op: tfl.Operator) -> None:
    _lower_conv_like(low, op, depthwise=True)


def lower_space_to_batch(low: Lowering, op: tfl.Operator) -> None:
    """Only as the first half of a dilated convolution (handled by the conv)."""
    uses = low.consumers.get(op.outputs[0], [])
    if not (len(uses) == 1 and uses[0].opcode in ("CONV_2D", "DEPTHWISE_CONV_2D")):
        raise low.fail(op, "supported only in front of a convolution (dilated convolution)")
    _int_value(low, op, 1, "block shape")
    _int_value(low, op, 2, "paddings")
    low.skip.add(op.index)


def lower_batch_to_space(low: Lowering, op: tfl.Operator) -> None:
    raise low.fail(op, "supported only after a convolution that follows SPACE_TO_BATCH_ND")


def lower_pool(low: Lowering, op: tfl.Operator) -> None:
    g = low.g
    x = low.act(op.inputs[0], op)
    n, in_h, in_w, c = _nhwc(low, op, x)
    o = op.options     # absent options (schema defaults 0) fail the checks below
    k_h, k_w = o.get("filter_height", 0), o.get("filter_width", 0)
    s_h, s_w = o.get("stride_h", 0), o.get("stride_w", 0)
    if min(k_h, k_w, s_h, s_w) < 1 or max(k_h, k_w, s_h, s_w) >= GEOM_MAX:
        raise low.fail(op, f"filter {k_h}x{k_w} and strides {s_h}x{s_w} must be from 1 to {GEOM_MAX - 1}")
    if k_h * k_w >= POOL_WINDOW_MAX:
        raise low.fail(op, f"a {k_h}x{k_w} window has more than {POOL_WINDOW_MAX - 1} taps")
    out_h, pad_t = _out_size(in_h, k_h, s_h, 1, o.get("padding", "SAME"))
    out_w, pad_l = _out_size(in_w, k_w, s_w, 1, o.get("padding", "SAME"))
    if out_h <= 0 or out_w <= 0:
        raise low.fail(op, f"the window {k_h}x{k_w} does not fit the input {in_h}x{in_w}")
    y = low.out(op, 0, (n, out_h, out_w, c))
    xin, yout = g.tensors[x], g.tensors[y]
    if (xin.scale, xin.zero_point) != (yout.scale, yout.zero_point):
        raise low.fail(op, "pooling must keep the quantization of its input")
    lo, hi = _activation(low, op, yout)
    kind = "MAX_POOL_2D" if op.opcode == "MAX_POOL_2D" else "AVERAGE_POOL_2D"
    params = dict(_geom(n, in_h, in_w, c, out_h, out_w, c, k_h, k_w, s_h, s_w, 1, 1, pad_t, pad_l),
                  act_min=lo, act_max=hi)
    _check_geom(low, op, params)
    g.ops.append(Op(kind, [x], [y], params, source=f"op {op.index} {op.opcode}"))


def _broadcast(low: Lowering, op: tfl.Operator, a: tuple, b: tuple) -> tuple[tuple, list, list]:
    nd = max(len(a), len(b))
    if nd > 4:
        raise low.fail(op, f"{nd}-D broadcasting is not supported")
    a4, b4 = (1,) * (4 - len(a)) + tuple(a), (1,) * (4 - len(b)) + tuple(b)
    out = []
    for da, db in zip(a4, b4, strict=True):
        if da != db and 1 not in (da, db):
            raise low.fail(op, f"shapes {a} and {b} do not broadcast")
        out.append(max(da, db))

    def strides(s):
        natural = [int(np.prod(s[d + 1:])) for d in range(4)]
        return [0 if s[d] == 1 and out[d] != 1 else natural[d] for d in range(4)]

    shape = tuple(out[4 - nd:]) if nd else (1,)
    if max(strides(a4) + strides(b4)) >= GEOM_MAX:     # the loader's limit (check_binary)
        raise low.fail(op, f"shapes {a} and {b}: an axis steps over {GEOM_MAX} or more values")
    return shape, [out, strides(a4), strides(b4)], out


def _operand(low: Lowering, op: tfl.Operator, i: int) -> int:
    """An activation, or an int8 constant stored in the blob with its quantization."""
    v = low.value(i)
    if v is None:
        return low.act(i, op)
    t = low.tensor(i)
    scale, zp = low._quant(i, f"constant operand {i} ({t.name}) of op {op.index} ({op.opcode})")
    k = low.g.const(t.name, v.astype(np.int8).reshape(tuple(v.shape) or (1,)))
    low.g.tensors[k].scale, low.g.tensors[k].zero_point = scale, zp
    return k


def lower_binary(low: Lowering, op: tfl.Operator) -> None:
    g = low.g
    x1, x2 = _operand(low, op, op.inputs[0]), _operand(low, op, op.inputs[1])
    t1, t2 = g.tensors[x1], g.tensors[x2]
    shape, (dims, s1, s2), _ = _broadcast(low, op, t1.shape, t2.shape)
    y = low.out(op, 0, shape)
    yout = g.tensors[y]
    lo, hi = _activation(low, op, yout)
    p = dict(dims=dims, stride1=s1, stride2=s2, input1_offset=-t1.zero_point, input2_offset=-t2.zero_point,
             output_offset=yout.zero_point, act_min=lo, act_max=hi)
    if op.opcode == "ADD":
        p.update(_arith(low, op, quant.add_params, t1.scale, t2.scale, yout.scale))
        _check_shifts(low, op, p["input1_shift"], p["input2_shift"], p["output_shift"])
    else:
        m, sh = _arith(low, op, quant.mul_params, t1.scale, t2.scale, yout.scale)
        _check_shifts(low, op, sh)
        p.update(output_mult=m, output_shift=sh)
    # ADD: rescaling tables pay for themselves from about 1,000 elements
    scratch = fmt.ADD_SCRATCH if op.opcode == "ADD" and int(np.prod(shape)) >= 1024 else 0
    g.ops.append(Op(op.opcode, [x1, x2], [y], p, scratch=scratch, source=f"op {op.index} {op.opcode}"))


LUT_OPS = ("LOGISTIC", "TANH", "RELU", "RELU6", "RELU_N1_TO_1", "LEAKY_RELU", "HARD_SWISH", "ELU", "ABS", "RSQRT")


def lower_lut(low: Lowering, op: tfl.Operator) -> None:
    from .lut import lut

    g = low.g
    x = low.act(op.inputs[0], op)
    xin = g.tensors[x]
    y = low.out(op, 0, xin.shape)
    yout = g.tensors[y]
    options = {k: v for k, v in op.options.items() if k == "alpha"}
    if not all(math.isfinite(a) for a in options.values()):
        raise low.fail(op, f"alpha {options['alpha']} is not a finite number")
    table = _arith(low, op, lut, op.opcode, xin.scale, xin.zero_point, yout.scale, yout.zero_point, **options)
    t = g.const(f"{op.opcode.lower()}/table", np.asarray(table, np.int8))
    g.ops.append(Op("LUT", [x, t], [y], dict(count=xin.nbytes), source=f"op {op.index} {op.opcode}"))


def lower_quantize(low: Lowering, op: tfl.Operator) -> None:
    if low.tensor(op.inputs[0]).dtype != "int8":
        raise low.fail(op, "float QUANTIZE is supported only on the model input")
    lower_lut(low, op)


def lower_concat(low: Lowering, op: tfl.Operator) -> None:
    g = low.g
    low.operands(op, len(op.inputs))
    xs = [low.act(i, op) for i in op.inputs]
    shapes = [g.tensors[x].shape for x in xs]
    nd = len(shapes[0])
    axis = op.options.get("axis", 0)
    if not -nd <= axis < nd:
        raise low.fail(op, f"axis {axis} is outside the {nd}-D inputs")
    axis %= nd
    if any(len(s) != nd or s[:axis] + s[axis + 1:] != shapes[0][:axis] + shapes[0][axis + 1:] for s in shapes):
        raise low.fail(op, f"shapes {shapes} do not concatenate on axis {axis}")
    if len(xs) > CONCAT_MAX_INPUTS:
        raise low.fail(op, f"{len(xs)} inputs; micronn concatenates at most {CONCAT_MAX_INPUTS}")
    out_shape = shapes[0][:axis] + (sum(s[axis] for s in shapes),) + shapes[0][axis + 1:]
    y = low.out(op, 0, out_shape)
    yout = g.tensors[y]
    for x in xs:
        if (g.tensors[x].scale, g.tensors[x].zero_point) != (yout.scale, yout.zero_point):
            raise low.fail(op, "inputs must share the output's quantization")
    if op.options.get("fused_activation_function", "NONE") != "NONE":
        raise low.fail(op, "a fused activation on CONCATENATION is not supported")
    outer = int(np.prod(out_shape[:axis]))
    g.ops.append(Op("CONCATENATION", xs, [y], dict(outer=outer), source=f"op {op.index} CONCATENATION"))


def lower_pad(low: Lowering, op: tfl.Operator) -> None:
    g = low.g
    x = low.act(op.inputs[0], op)
    xin = g.tensors[x]
    pads = _int_value(low, op, 1, "paddings")
    nd = len(xin.shape)
    if nd > 4 or pads.size != 2 * nd or (pads < 0).any():
        raise low.fail(op, f"paddings {pads.reshape(-1).tolist()} do not fit the input {xin.shape}")
    pads = pads.reshape(nd, 2).astype(np.int64)
    out_shape = tuple(int(d + a + b) for d, (a, b) in zip(xin.shape, pads, strict=True))
    y = low.out(op, 0, out_shape)
    yout = g.tensors[y]
    if (xin.scale, xin.zero_point) != (yout.scale, yout.zero_point):
        raise low.fail(op, "padding must keep the quantization")
    value = yout.zero_point
    if op.opcode == "PADV2" and len(op.inputs) > 2 and op.inputs[2] >= 0:
        v = low.value(op.inputs[2])
        if v is None or low.tensor(op.inputs[2]).dtype != "int8" or v.size != 1:
            raise low.fail(op, "the pad value must be one constant int8")
        value = int(v.reshape(-1)[0])
    ext = 4 - nd
    dims = [1] * ext + list(xin.shape)
    before = [0] * ext + [int(a) for a, _ in pads]
    after = [0] * ext + [int(b) for _, b in pads]
    g.ops.append(Op("PAD", [x], [y], dict(in_dims=dims, before=before, after=after, value=value),
                    source=f"op {op.index} {op.opcode}"))


def lower_mean(low: Lowering, op: tfl.Operator) -> None:
    g = low.g
    x = low.act(op.inputs[0], op)
    xin = g.tensors[x]
    axes = _int_value(low, op, 1, "axes")
    nd = len(xin.shape)
    if not axes.size or axes.min() < -nd or axes.max() >= nd:
        raise low.fail(op, f"axes {axes.reshape(-1).tolist()} do not fit the {nd}-D input")
    axes = sorted({int(a) % nd for a in axes.reshape(-1)})
    if axes != list(range(axes[0], axes[-1] + 1)):
        raise low.fail(op, f"MEAN over non-adjacent axes {axes} is not supported")
    outer = int(np.prod(xin.shape[:axes[0]]))
    reduce = int(np.prod([xin.shape[a] for a in axes]))
    inner = int(np.prod(xin.shape[axes[-1] + 1:]))
    if reduce >= GEOM_MAX:      # the loader's limit (check_mean)
        raise low.fail(op, f"a mean over {reduce} values; micronn's limit is {GEOM_MAX - 1}")
    keep = op.options.get("keep_dims", False)
    out_shape = tuple(1 if d in axes else s for d, s in enumerate(xin.shape)) if keep else \
        tuple(s for d, s in enumerate(xin.shape) if d not in axes)
    y = low.out(op, 0, out_shape or (1,))
    yout = g.tensors[y]
    mode = "TRUNC" if (xin.scale, xin.zero_point) == (yout.scale, yout.zero_point) else "SCALED"
    mult, shift = _arith(low, op, quant.mean_multiplier, xin.scale, yout.scale, reduce)
    _check_shifts(low, op, shift)
    p = dict(outer=outer, reduce=reduce, inner=inner, mode=fmt.MEAN_MODES[mode], input_offset=-xin.zero_point,
             mult=mult, shift=shift, output_offset=yout.zero_point)
    g.ops.append(Op("MEAN", [x], [y], p, scratch=4 * inner, source=f"op {op.index} MEAN"))


def lower_alias(low: Lowering, op: tfl.Operator) -> None:
    """SQUEEZE / EXPAND_DIMS: like RESHAPE, the output shares the input's memory."""
    x = low.act(op.inputs[0], op)
    shape = list(low.g.tensors[x].shape)
    nd = len(shape)
    if op.opcode == "SQUEEZE":
        dims = op.options.get("squeeze_dims") or [d for d, s in enumerate(shape) if s == 1]
        if any(not -nd <= d < nd or shape[d] != 1 for d in dims):
            raise low.fail(op, f"cannot squeeze dimensions {dims} of shape {tuple(shape)}")
        dims = {d % nd for d in dims}
        shape = [s for d, s in enumerate(shape) if d not in dims]
    else:
        axis = _int_value(low, op, 1, "axis").reshape(-1)
        if axis.size != 1 or not -nd - 1 <= int(axis[0]) <= nd:
            raise low.fail(op, f"axis {axis.tolist()} does not fit the {nd}-D input")
        a = int(axis[0])
        shape.insert(a if a >= 0 else nd + 1 + a, 1)
    y = low.out(op, 0, tuple(shape))
    low.g.tensors[y].alias_of = x


# Inputs a lowering reads that must be present (default 1); every lowering writes output 0.
OPERANDS = {"FULLY_CONNECTED": 2, "CONV_2D": 2, "DEPTHWISE_CONV_2D": 2, "SPACE_TO_BATCH_ND": 3, "ADD": 2,
            "MUL": 2, "PAD": 2, "PADV2": 2, "MEAN": 2, "EXPAND_DIMS": 2}

LOWERINGS = {
    "FULLY_CONNECTED": lower_fully_connected,
    "SOFTMAX": lower_softmax,
    "RESHAPE": lower_reshape,
    "SQUEEZE": lower_alias,
    "EXPAND_DIMS": lower_alias,
    "CONV_2D": lower_conv,
    "DEPTHWISE_CONV_2D": lower_depthwise,
    "SPACE_TO_BATCH_ND": lower_space_to_batch,
    "BATCH_TO_SPACE_ND": lower_batch_to_space,
    "MAX_POOL_2D": lower_pool,
    "AVERAGE_POOL_2D": lower_pool,
    "ADD": lower_binary,
    "MUL": lower_binary,
    "CONCATENATION": lower_concat,
    "PAD": lower_pad,
    "PADV2": lower_pad,
    "MEAN": lower_mean,
    "QUANTIZE": lower_quantize,
    **{name: lower_lut for name in LUT_OPS},
}

# What each lowering accepts beyond int8 activations with per-tensor quantization (every
# op), for `micronn ops` and docs/ops.md: (the device op it becomes, its limits). Written
# from the constants above so that a changed limit changes the table; tests/test_ops.py
# checks that every entry of LOWERINGS has one and no other.
_FUSED = "fused activation NONE, RELU, RELU6 or RELU_N1_TO_1"
_GEOM = f"every size (batch, height, width, channels, kernel, stride, dilation) from 1 to {GEOM_MAX - 1}"
_REQUANT = f"rescaling factors (scale ratios such as input x weight / output) below 2**{MAX_SHIFT}"
_LUT = "a 256-entry table computed on the host (TFLite Micro's integer arithmetic for every int8 input)"
_LUT_EXTRA = {"LOGISTIC": "; output zero point -128 (TFLite Micro's check)", "LEAKY_RELU": "; finite alpha",
              "HARD_SWISH": "; output scale above input scale / 128 (TFLite Micro's check)",
              "RSQRT": "; an input below the zero point (a negative value) gives 127 where TFLite Micro fails the "
                       "inference"}
LIMITS = {
    "FULLY_CONNECTED": ("FULLY_CONNECTED (FULLY_CONNECTED_S4 with int4 weights)",
                        f"int8 or int4 weights (INT4 tensors, as TensorFlow's low-bit QAT conversion writes them) "
                        f"[outputs, depth], per-tensor or per-output-channel scales, "
                        f"int8 zero point; int32 bias; input of any shape whose size is a multiple of depth "
                        f"(keep_num_dims kept); weights format DEFAULT; {_FUSED}; {_REQUANT}"),
    "SOFTMAX": ("SOFTMAX", "over the last axis; output scale 1/256 and zero point -128; finite beta"),
    "RESHAPE": ("none (the output shares the input's memory)", "same size and quantization; new shape constant or "
                "host-evaluated"),
    "SQUEEZE": ("none (the output shares the input's memory)", "only dimensions of size 1"),
    "EXPAND_DIMS": ("none (the output shares the input's memory)", "a constant axis"),
    "CONV_2D": ("CONV_2D (CONV_2D_MAXPOOL with a following 2x2 MAX_POOL_2D; CONV_2D_S4 with int4 weights)",
                f"4-D NHWC; int8 or int4 weights [out_c, k_h, k_w, in_c / groups], symmetric (zero point 0), "
                f"per-channel or "
                f"per-tensor scales; int32 bias; grouped convolutions; SAME or VALID; {_GEOM}; fewer than "
                f"{GEOM_MAX // 4} output channels; {_FUSED}; {_REQUANT}"),
    "DEPTHWISE_CONV_2D": ("DEPTHWISE_CONV_2D (CONV_2D grouped by channel when the depth multiplier is above 1; "
                          "DEPTHWISE_CONV_2D_S4 with int4 weights)",
                          f"4-D NHWC; int8 or int4 weights [1, k_h, k_w, out_c], symmetric, per-channel or "
                          f"per-tensor scales; "
                          f"any depth multiplier; SAME or VALID; {_GEOM}; {_FUSED}; {_REQUANT}"),
    "SPACE_TO_BATCH_ND": ("part of the convolution's dilation", "only in front of a CONV_2D or DEPTHWISE_CONV_2D "
                          "followed by BATCH_TO_SPACE_ND with the same block (a dilated convolution as the converter "
                          "writes it); constant block and paddings; VALID, stride 1"),
    "BATCH_TO_SPACE_ND": ("part of the convolution's dilation", "only after such a convolution; constant crops"),
    "MAX_POOL_2D": ("MAX_POOL_2D", f"4-D NHWC; same quantization in and out; SAME or VALID; {_GEOM}; {_FUSED}"),
    "AVERAGE_POOL_2D": ("AVERAGE_POOL_2D", f"4-D NHWC; same quantization in and out; SAME or VALID; {_GEOM}; "
                        f"windows of fewer than {POOL_WINDOW_MAX} taps; {_FUSED}"),
    "ADD": ("ADD", f"NumPy broadcasting over at most 4 dimensions (each axis equal or 1 on one side), each axis "
            f"stepping over fewer than {GEOM_MAX} values; either input may be an int8 constant; {_FUSED}; "
            f"{_REQUANT}"),
    "MUL": ("MUL", f"NumPy broadcasting over at most 4 dimensions, each axis stepping over fewer than {GEOM_MAX} "
            f"values; either input may be an int8 constant; {_FUSED}; {_REQUANT}"),
    "CONCATENATION": ("CONCATENATION", f"any axis (negative counts from the end); 1 to {CONCAT_MAX_INPUTS} inputs, "
                      "all with the output's quantization; no fused activation"),
    "PAD": ("PAD", f"constant paddings, not negative, at most {fmt.MAX_DIMS}-D; same quantization in and out"),
    "PADV2": ("PAD", "as PAD; the pad value one constant int8"),
    "MEAN": ("MEAN", f"constant axes that are adjacent (e.g. height and width); keep_dims or not; fewer than "
             f"{GEOM_MAX} values per mean; {_REQUANT}"),
    "QUANTIZE": ("LUT", f"int8 to int8 (requantization): {_LUT}; a float QUANTIZE only on the model input, where "
                 "the board quantizes"),
    **{name: ("LUT", _LUT + _LUT_EXTRA.get(name, "")) for name in LUT_OPS},
    "RELU_N1_TO_1": ("never", "refused: TFLite Micro has no RELU_N1_TO_1 kernel, so there is nothing to match "
                     "(as a fused activation it is supported)"),
}


# CONV_2D_MAXPOOL is used for convolutions with at most this many taps (k_h * k_w
# * in_c): there a channel's int16 weights fit in registers and the cost is per
# output, not per MAC, so skipping three of four requantizations and the pooling
# pass pays; larger convolutions keep the im2col kernel.
FUSE_MAX_K = 16
# ... whose fast variant needs at most this much scratch (it holds the input as int16),
FUSE_MAX_SCRATCH = 16384
# ... and pooling windows of these sizes (the kernel keeps 2x2 windows unrolled;
# it runs any size, at a cost that does not pay).
FUSE_POOLS = {(2, 2)}


def _fusable_pool(g: Graph, conv: Op, pool: Op) -> bool:
    c, p = conv.params, pool.params
    if c.get("groups") != 1 or c["k_h"] * c["k_w"] * c["in_c"] > FUSE_MAX_K:
        return False
    if (p["k_h"], p["k_w"]) not in FUSE_POOLS:
        return False
    if (p["pad_top"], p["pad_left"]) != (0, 0) or (p["k_h"], p["k_w"]) != (p["stride_h"], p["stride_w"]):
        return False
    if (p["out_h"], p["out_w"]) != (c["out_h"] // p["k_h"], c["out_w"] // p["k_w"]):
        return False
    # requantization must be monotonic for the maximum to commute with it
    mult, shift = g.tensors[conv.inputs[3]].data, g.tensors[conv.inputs[4]].data
    if (mult < 0).any() or (shift > 0).any():
        return False
    return max(c["act_min"], p["act_min"]) <= min(c["act_max"], p["act_max"])


def fuse_conv_maxpool(g: Graph) -> None:
    """A CONV_2D whose output feeds only a MAX_POOL_2D over non-overlapping,
    unpadded windows becomes one CONV_2D_MAXPOOL: exact (see format.py), and
    the pooled-away convolution outputs are neither computed into memory nor
    requantized."""
    uses: dict[int, list[int]] = {}
    for k, op in enumerate(g.ops):
        for i in op.inputs:
            if i >= 0:
                uses.setdefault(i, []).append(k)
    aliased = {t.alias_of for t in g.tensors if t.alias_of is not None}
    drop = set()
    for k, conv in enumerate(g.ops):
        if conv.kind != "CONV_2D":
            continue
        t = conv.outputs[0]
        if t in g.outputs or t in aliased or len(uses.get(t, [])) != 1:
            continue
        pool = g.ops[uses[t][0]]
        if pool.kind != "MAX_POOL_2D" or not _fusable_pool(g, conv, pool):
            continue
        c, p = conv.params, pool.params
        params = dict(c, act_min=max(c["act_min"], p["act_min"]), act_max=min(c["act_max"], p["act_max"]),
                      pool_h=p["k_h"], pool_w=p["k_w"])
        scratch = fmt.conv_pool_scratch(c["k_h"] * c["k_w"] * c["in_c"], c["out_c"], p["k_h"], p["k_w"],
                                        c["in_h"] * c["in_w"] * c["in_c"])
        if scratch > FUSE_MAX_SCRATCH:
            continue
        g.ops[k] = Op("CONV_2D_MAXPOOL", conv.inputs, pool.outputs, params, scratch=scratch,
                      source=f"{conv.source} + {pool.source}")
        drop.add(uses[t][0])
    if drop:
        g.ops = [op for k, op in enumerate(g.ops) if k not in drop]
        g.compact()


def lower(model: tfl.Model) -> Graph:
    g = Lowering(model).run()
    fuse_conv_maxpool(g)
    return g


# The operator groups kept in modules of their own, merged into the tables above in this order.
GROUPS = ("lower_elementwise", "lower_movement", "lower_resize", "lower_reduce", "lower_matmul", "lower_state",
          "lower_svdf", "lower_sequence", "lower_lstm", "lower_s16x")
_OWN = (dict(LOWERINGS), dict(LIMITS), dict(OPERANDS))
_merging = False


def _merge_groups() -> None:
    """The groups (GROUPS) join the tables above. This module is the hub: the group
    modules import from it, and it imports them here, at its end; each group calls
    this again at its own end, so that importing a group module first works too (it
    imports this module, whose merge waits while a group is only partly imported,
    i.e. has no tables yet; the group's closing call then imports the others and
    merges). The tables are rebuilt in GROUPS' order whatever the import order."""
    global _merging
    import importlib
    import sys

    def partial(name: str) -> bool:
        m = sys.modules.get(f"{__package__}.{name}")
        return m is not None and not all(hasattr(m, t) for t in ("LOWERINGS", "LIMITS", "OPERANDS"))

    if _merging or any(partial(n) for n in GROUPS):
        return
    _merging = True
    try:
        mods = [importlib.import_module(f"{__package__}.{n}") for n in GROUPS]
    finally:
        _merging = False
    for table, own in zip((LOWERINGS, LIMITS, OPERANDS), _OWN, strict=True):
        table.clear()
        table.update(own)
    for mod in mods:
        LOWERINGS.update(mod.LOWERINGS)
        LIMITS.update(mod.LIMITS)
        OPERANDS.update(mod.OPERANDS)


_merge_groups()
