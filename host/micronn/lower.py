"""Lower a fully-int8 TFLite graph into micronn device ops.

Each supported TFLite operator has one lowering function in ``LOWERINGS``;
it turns TFLite's tensors and options into the exact integer parameters the
device kernels use (TFLite Micro's preparation arithmetic, see ``quant``).
Anything the device cannot run stops here with a message naming the op and
its position in the graph.
"""

from __future__ import annotations

import numpy as np

from . import quant
from . import tflite as tfl
from .errors import MicronnError
from .graph import Graph, Op, Tensor


class Lowering:
    def __init__(self, model: tfl.Model):
        self.model = model
        self.g = Graph()
        self.map: dict[int, int] = {}           # tflite tensor index -> graph tensor index
        self.values: dict[int, np.ndarray] = {}  # tflite tensor index -> folded constant value

    def fail(self, op: tfl.Operator, why: str) -> MicronnError:
        return MicronnError(f"op {op.index} ({op.opcode}): {why}")

    def tensor(self, i: int) -> tfl.Tensor:
        return self.model.tensors[i]

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

    def _quant(self, i: int, where: str) -> tuple[float, int]:
        t = self.tensor(i)
        if t.dtype != "int8":
            raise MicronnError(f"{where} is {t.dtype}; micronn runs int8 activations "
                               "(quantize the model fully to int8)")
        if t.scale is None or t.zero_point is None or len(t.scale) != 1:
            raise MicronnError(f"{where} has no per-tensor quantization")
        return float(t.scale[0]), int(t.zero_point[0])

    def act(self, i: int, op: tfl.Operator | None = None) -> int:
        """The graph tensor of TFLite activation tensor i, which must exist already."""
        if i in self.map:
            return self.map[i]
        t = self.tensor(i)
        by = f" by op {op.index} ({op.opcode})" if op else ""
        if i not in self.model.inputs:
            if self.value(i) is not None:
                raise MicronnError(f"tensor {i} ({t.name}): a constant where an activation was expected{by}")
            raise MicronnError(f"tensor {i} ({t.name}) is used{by} before any op produces it")
        scale, zp = self._quant(i, f"input tensor {i} ({t.name})")
        shape = tuple(int(d) for d in t.shape) or (1,)
        self.map[i] = self.g.add(Tensor(t.name, "int8", shape, scale, zp))
        return self.map[i]

    def out(self, op: tfl.Operator, k: int, shape: tuple[int, ...]) -> int:
        """Create output k of op with the shape the lowering computed."""
        i = op.outputs[k]
        t = self.tensor(i)
        scale, zp = self._quant(i, f"output {k} of op {op.index} ({op.opcode})")
        self.map[i] = self.g.add(Tensor(t.name, "int8", tuple(int(d) for d in shape) or (1,), scale, zp))
        return self.map[i]

    # -- the graph -------------------------------------------------------------

    def run(self) -> Graph:
        m = self.model
        if m.subgraph_count != 1:
            raise MicronnError(f"the model has {m.subgraph_count} subgraphs; micronn runs single-subgraph models")
        for i in m.inputs:
            self.act(i)
        for op in m.operators:
            if fold(self, op):
                continue
            fn = LOWERINGS.get(op.opcode)
            if fn is None:
                raise self.fail(op, f"not supported by micronn (version {op.version})")
            fn(self, op)
        self.g.inputs = [self.act(i) for i in m.inputs]
        self.g.outputs = [self.act(i) for i in m.outputs]
        if len(self.g.inputs) != 1 or len(self.g.outputs) != 1:
            raise MicronnError(f"the model has {len(self.g.inputs)} inputs and {len(self.g.outputs)} outputs; "
                               "micronn runs single-input, single-output models")
        return self.g


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
    if op.opcode not in FOLDERS:
        return False
    vals = []
    for k, i in enumerate(op.inputs):
        v = low.value(i)
        if v is None and op.opcode == "SHAPE" and k == 0 and i in low.map:
            v = np.zeros(low.g.tensors[low.map[i]].shape, np.int8)    # only the shape matters
        if v is None:
            return False
        vals.append(v)
    try:
        result = FOLDERS[op.opcode](vals, op.options)
    except (ValueError, IndexError, TypeError, KeyError) as e:
        raise low.fail(op, f"cannot evaluate on the host: {e}") from None
    out = low.tensor(op.outputs[0])
    low.values[op.outputs[0]] = np.asarray(result).astype(out.dtype if out.dtype != "bool" else np.bool_)
    return True


def _activation(low: Lowering, op: tfl.Operator, out: Tensor) -> tuple[int, int]:
    act = op.options.get("fused_activation_function", "NONE")
    try:
        return quant.activation_range(act, out.scale, out.zero_point)
    except ValueError:
        raise low.fail(op, f"fused activation {act} is not supported") from None


def lower_fully_connected(low: Lowering, op: tfl.Operator) -> None:
    g = low.g
    if op.options.get("weights_format", "DEFAULT") != "DEFAULT":
        raise low.fail(op, f"weights format {op.options['weights_format']} is not supported")
    x = low.act(op.inputs[0], op)
    wt = low.const_of(op, 1, "int8")
    w = wt.array().astype(np.int8)
    if w.ndim != 2:
        raise low.fail(op, f"weights of rank {w.ndim}; expected 2")
    outs, depth = w.shape
    xin = g.tensors[x]
    n_in = int(np.prod(xin.shape))
    if n_in % depth:
        raise low.fail(op, f"input of {n_in} values does not split into rows of {depth}")
    batches = n_in // depth
    keep = op.options.get("keep_num_dims") and xin.shape[-1] == depth
    y = low.out(op, 0, xin.shape[:-1] + (outs,) if keep else (batches, outs))
    yout = g.tensors[y]
    per_channel = wt.scale is not None and len(wt.scale) > 1
    if wt.scale is None:
        raise low.fail(op, "weights are not quantized")
    w_zp = int(wt.zero_point[0]) if wt.zero_point is not None and len(wt.zero_point) else 0
    mult, shift = quant.conv_multipliers(xin.scale, wt.scale, yout.scale, per_channel)
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
    inputs = [x, g.const(wt.name, w), b, g.const(f"{wt.name}/mult", mult), g.const(f"{wt.name}/shift", shift)]
    g.ops.append(Op("FULLY_CONNECTED", inputs, [y], dict(
        input_offset=in_off, filter_offset=w_off, output_offset=yout.zero_point, act_min=lo, act_max=hi,
        batches=batches, accum_depth=depth, out_depth=outs), macs=batches * depth * outs,
        source=f"op {op.index} FULLY_CONNECTED"))


def lower_softmax(low: Lowering, op: tfl.Operator) -> None:
    g = low.g
    x = low.act(op.inputs[0], op)
    y = low.out(op, 0, g.tensors[x].shape)
    xin, yout = g.tensors[x], g.tensors[y]
    if yout.zero_point != -128 or abs(yout.scale - 1 / 256) > 1e-9:
        raise low.fail(op, f"int8 softmax output must have scale 1/256 and zero point -128 "
                           f"(has {yout.scale}, {yout.zero_point})")
    mult, shift, diff_min = quant.softmax_params(op.options.get("beta", 1.0), xin.scale)
    row = xin.shape[-1]
    g.ops.append(Op("SOFTMAX", [x], [y], dict(
        input_mult=mult, input_left_shift=shift, diff_min=diff_min, rows=xin.nbytes // row, row_size=row),
        source=f"op {op.index} SOFTMAX"))


def lower_reshape(low: Lowering, op: tfl.Operator) -> None:
    """A reshape moves no data: the output shares the input's memory."""
    x = low.act(op.inputs[0], op)
    xin = low.g.tensors[x]
    target = low.value(op.inputs[1]) if len(op.inputs) > 1 else None
    if target is None:
        target = op.options.get("new_shape")
    if target is None:
        target = low.tensor(op.outputs[0]).shape
    shape = [int(d) for d in np.asarray(target).reshape(-1)]
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


LOWERINGS = {
    "FULLY_CONNECTED": lower_fully_connected,
    "SOFTMAX": lower_softmax,
    "RESHAPE": lower_reshape,
}


def lower(model: tfl.Model) -> Graph:
    return Lowering(model).run()
