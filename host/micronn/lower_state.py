"""Lowerings of the state operators (issue 18); lower.py merges the tables below
into its own (LOWERINGS, LIMITS, OPERANDS have the same meaning there).

A stateful model as TensorFlow's converter writes it (resource variables): the
variable is created by VAR_HANDLE (named by its shared_name), given its initial
value by ASSIGN_VARIABLE in an init subgraph that a CALL_ONCE at the start of
the model runs once, read by READ_VARIABLE and written by ASSIGN_VARIABLE. In a
full-int8 model the converter keeps the variable float32: a DEQUANTIZE of an
int8 tensor goes into ASSIGN_VARIABLE, and every READ_VARIABLE is followed by
QUANTIZE. So the variable only ever holds dequantized int8 values (and 0.0
after TFLite Micro's Reset(), which zeroes every variable; it does not run the
init subgraph again).

On the board the variable is an int8 STATE tensor with the quantization of the
values assigned to it: ASSIGN_VARIABLE becomes an ASSIGN (copy) into it, each
READ_VARIABLE -> QUANTIZE an ASSIGN out of it (plus a 256-entry table when the
QUANTIZE's quantization differs: TFLite Micro's float32 dequantize and quantize
of every int8 value), and the initial value a ONCE ASSIGN from a constant at
load. Reset sets the state to its zero point, which is 0.0, as TFLite Micro's
Reset() does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import tflite as tfl
from .errors import MicronnError
from .graph import Op, Tensor
from .lower import Lowering
from .lower_elementwise import _quantize_f32


@dataclass
class _Variable:
    name: str
    shape: tuple[int, ...]
    scale: float
    zero_point: int
    index: int = -1                     # the STATE tensor in the graph
    init: np.ndarray | None = None      # int8 initial value (None: the zero point)
    handles: set[int] = field(default_factory=set)     # resource tensors of subgraph 0 naming it


def _variables(low: Lowering) -> dict[str, _Variable]:
    """The model's variables, found on first use (cached on the lowering)."""
    cache = getattr(low, "_state_variables", None)
    if cache is None:
        cache = _find_variables(low)
        low._state_variables = cache
    return cache


def _name(op: tfl.Operator) -> str:
    o = op.options
    return f"{o.get('container') or ''}/{o.get('shared_name') or ''}"


def _dequantized(low: Lowering, op: tfl.Operator, i: int) -> tfl.Operator:
    """The DEQUANTIZE of an int8 tensor that produces the float value i assigned to a variable."""
    src = low.producer.get(i)
    if src is None or src.opcode != "DEQUANTIZE" or low.tensor(src.inputs[0]).dtype != "int8":
        raise low.fail(op, "the value assigned to a float variable must come from a DEQUANTIZE of an int8 "
                           "tensor (a full-int8 model as TensorFlow's converter writes it)")
    return src


def _find_variables(low: Lowering) -> dict[str, _Variable]:
    m = low.model
    handles: dict[int, str] = {}
    for op in m.operators:
        if op.opcode == "VAR_HANDLE" and op.outputs:
            handles[op.outputs[0]] = _name(op)
    out: dict[str, _Variable] = {}
    for op in m.operators:
        if op.opcode != "ASSIGN_VARIABLE" or len(op.inputs) != 2 or op.inputs[0] not in handles:
            continue
        name, v = handles[op.inputs[0]], op.inputs[1]
        t = low.tensor(v)
        if t.dtype == "float32":
            deq = _dequantized(low, op, v)
            src = deq.inputs[0]
            uses = low.consumers.get(v, [])
            if len(uses) == 1 and v not in low.outputs:
                low.skip.add(deq.index)     # the DEQUANTIZE only feeds the variable: absorbed
                low.status[deq.index] = "absorbed"
        elif t.dtype == "int8":
            src = v
        else:
            raise low.fail(op, f"a {t.dtype} variable; micronn keeps int8 state")
        st = low.tensor(src)
        scale, zp = low._quant(src, f"tensor {src} ({st.name}) assigned to variable {name!r}")
        shape = tuple(int(d) for d in st.shape) or (1,)
        var = out.get(name)
        if var is None:
            out[name] = _Variable(name, shape, scale, zp)
        elif (var.shape, var.scale, var.zero_point) != (shape, scale, zp):
            raise low.fail(op, f"variable {name!r} is assigned values of different shapes or quantizations "
                               f"({var.shape} {var.scale} {var.zero_point} and {shape} {scale} {zp}); micronn "
                               "keeps one int8 quantization per variable")
    # variables only read: their quantization is that of the QUANTIZE after the read (or the int8 read)
    for op in m.operators:
        if op.opcode != "READ_VARIABLE" or not op.inputs or op.inputs[0] not in handles:
            continue
        name = handles[op.inputs[0]]
        if name in out or not op.outputs:
            continue
        r = op.outputs[0]
        if low.tensor(r).dtype == "int8":
            q = r
        else:
            uses = low.consumers.get(r, [])
            if not uses or uses[0].opcode != "QUANTIZE":
                raise low.fail(op, "a float variable read by something other than QUANTIZE")
            q = uses[0].outputs[0]
        t = low.tensor(q)
        scale, zp = low._quant(q, f"tensor {q} ({t.name}) read from variable {name!r}")
        out[name] = _Variable(name, tuple(int(d) for d in t.shape) or (1,), scale, zp)
    for i, name in handles.items():
        if name in out:
            out[name].handles.add(i)
    return out


def _variable_of(low: Lowering, op: tfl.Operator) -> _Variable:
    for var in _variables(low).values():
        if op.inputs and op.inputs[0] in var.handles:
            if var.index < 0:
                var.index = low.g.state(f"state/{var.name}", "int8", var.shape, var.scale, var.zero_point)
            return var
    raise low.fail(op, "its resource is not a variable micronn knows (a VAR_HANDLE of this subgraph that an "
                       "ASSIGN_VARIABLE or READ_VARIABLE uses)")


def _same_size(low: Lowering, op: tfl.Operator, var: _Variable, shape) -> None:
    if int(np.prod(shape)) != int(np.prod(var.shape)):
        raise low.fail(op, f"variable {var.name!r} has shape {var.shape}; here it is used as {tuple(shape)}")


def lower_call_once(low: Lowering, op: tfl.Operator) -> None:
    """The init subgraph: ASSIGN_VARIABLE of constants to variables (their initial values)."""
    k = op.options.get("init_subgraph_index", 0)
    if not 1 <= k <= len(low.model.subgraphs):
        raise low.fail(op, f"init subgraph {k} does not exist")
    sg = low.model.subgraphs[k - 1]
    names: dict[int, str] = {}
    variables = _variables(low)
    for o in sg.operators:
        where = f"op {o.index} ({o.opcode}) of init subgraph {k}"
        if o.opcode == "VAR_HANDLE" and o.outputs:
            names[o.outputs[0]] = _name(o)
        elif o.opcode == "ASSIGN_VARIABLE" and len(o.inputs) == 2 and o.inputs[0] in names:
            t = sg.tensors[o.inputs[1]]
            if t.data is None:
                raise low.fail(op, f"{where}: micronn runs init subgraphs that assign constants")
            name = names[o.inputs[0]]
            var = variables.get(name)
            if var is None:
                continue        # a variable the model never uses
            value = t.array()
            if value.size != int(np.prod(var.shape)):
                raise low.fail(op, f"{where}: initial value of shape {t.shape} for variable {name!r} of shape "
                                   f"{var.shape}")
            var.init = _initial(low, op, var, value)
        else:
            raise low.fail(op, f"{where}: micronn runs init subgraphs of VAR_HANDLE and ASSIGN_VARIABLE of "
                               "constants only")
    for var in variables.values():
        if var.init is None:
            continue
        if var.index < 0:
            var.index = low.g.state(f"state/{var.name}", "int8", var.shape, var.scale, var.zero_point)
        c = low.g.const(f"state/{var.name}/initial", var.init.reshape(var.shape))
        # ONCE ops come first: they run at load, before any run
        low.g.ops.insert(0, Op("ASSIGN", [c], [var.index], {}, once=True,
                               source=f"op {op.index} CALL_ONCE (initial value of {var.name!r})"))


def _initial(low: Lowering, op: tfl.Operator, var: _Variable, value: np.ndarray) -> np.ndarray | None:
    """The int8 initial value, which must be exactly one of the variable's int8 values
    (the state is int8); None when it is the zero point everywhere (loading sets that)."""
    if value.dtype == np.int8:
        q = value.astype(np.int8).reshape(-1)
    elif value.dtype == np.float32:
        v = value.astype(np.float32).reshape(-1)
        q = _quantize_f32(v, var.scale, var.zero_point)
        back = np.float32(var.scale) * (q.astype(np.int32) - var.zero_point).astype(np.float32)
        if not np.array_equal(back, v):
            k = int(np.flatnonzero(back != v)[0])
            raise low.fail(op, f"initial value {float(v[k])!r} of variable {var.name!r} is not one of its int8 "
                               f"values (scale {var.scale}, zero point {var.zero_point}); micronn keeps the "
                               "state in int8: use an initial value such as 0")
    else:
        raise low.fail(op, f"a {value.dtype} initial value; micronn keeps int8 state")
    if (q == var.zero_point).all():
        return None
    return q


def lower_var_handle(low: Lowering, op: tfl.Operator) -> None:
    """Nothing on the board: the variable is found through its uses."""
    _variables(low)


def lower_read_variable(low: Lowering, op: tfl.Operator) -> None:
    var = _variable_of(low, op)
    r = op.outputs[0]
    t = low.tensor(r)
    _same_size(low, op, var, t.shape)
    if t.dtype == "int8":
        y = low.out(op, 0, var.shape)
        _check_same(low, op, var, low.g.tensors[y])
        low.g.ops.append(Op("ASSIGN", [var.index], [y], {}, source=f"op {op.index} READ_VARIABLE"))
        return
    if r in low.outputs:
        raise low.fail(op, "a variable's float value is a model output; micronn's outputs are int8 (or float "
                           "through a final DEQUANTIZE)")
    uses = low.consumers.get(r, [])
    if not uses or any(u.opcode != "QUANTIZE" or not u.outputs or low.tensor(u.outputs[0]).dtype != "int8"
                       for u in uses):
        # float ops between the read and QUANTIZE: the read is a DEQUANTIZE of the int8 state,
        # and what follows a float island (micronn's DEQUANTIZE lowering takes it from here)
        from .lower import LOWERINGS

        copy = low.g.add(Tensor(f"state/{var.name}/read", "int8", var.shape, var.scale, var.zero_point))
        low.g.ops.append(Op("ASSIGN", [var.index], [copy], {}, source=f"op {op.index} READ_VARIABLE"))
        low.map[r] = copy
        LOWERINGS["DEQUANTIZE"](low, tfl.Operator(op.index, "DEQUANTIZE", 1, None, [r], [r], [], {}))
        return
    copy = None
    for u in uses:
        qi = u.outputs[0]
        scale, zp = low._quant(qi, f"output of op {u.index} (QUANTIZE)")
        if (scale, zp) == (var.scale, var.zero_point):
            y = low.out(u, 0, var.shape)
            low.g.ops.append(Op("ASSIGN", [var.index], [y], {},
                                source=f"ops {op.index}, {u.index} READ_VARIABLE, QUANTIZE"))
        else:
            if copy is None:
                copy = low.g.add(Tensor(f"state/{var.name}/read", "int8", var.shape, var.scale, var.zero_point))
                low.g.ops.append(Op("ASSIGN", [var.index], [copy], {}, source=f"op {op.index} READ_VARIABLE"))
            y = low.out(u, 0, var.shape)
            q = np.arange(-128, 128, dtype=np.int32)
            v = np.float32(var.scale) * (q - var.zero_point).astype(np.float32)
            table = _quantize_f32(v, scale, zp)
            tab = low.g.const(f"state/{var.name}/requantize{u.index}", table)
            low.g.ops.append(Op("LUT", [copy, tab], [y], dict(count=low.g.tensors[copy].nbytes),
                                source=f"ops {op.index}, {u.index} READ_VARIABLE, QUANTIZE"))
        low.skip.add(u.index)
        low.status[u.index] = "absorbed"


def _check_same(low: Lowering, op: tfl.Operator, var: _Variable, t) -> None:
    if (t.scale, t.zero_point) != (var.scale, var.zero_point):
        raise low.fail(op, f"variable {var.name!r} is read with quantization ({t.scale}, {t.zero_point}) and "
                           f"written with ({var.scale}, {var.zero_point})")


def lower_assign_variable(low: Lowering, op: tfl.Operator) -> None:
    if len(op.inputs) != 2 or min(op.inputs) < 0:
        raise low.fail(op, f"needs 2 inputs, has {op.inputs}")
    var = _variable_of(low, op)
    v = op.inputs[1]
    src = _dequantized(low, op, v).inputs[0] if low.tensor(v).dtype == "float32" else v
    x = low.act(src, op)
    _same_size(low, op, var, low.g.tensors[x].shape)
    _check_same(low, op, var, low.g.tensors[x])
    low.g.ops.append(Op("ASSIGN", [x], [var.index], {}, source=f"op {op.index} ASSIGN_VARIABLE"))


def state_problem(model: tfl.Model) -> MicronnError | None:
    """Why the model's extra subgraphs are not just CALL_ONCE init subgraphs, or None."""
    called = {op.options.get("init_subgraph_index") for op in model.operators if op.opcode == "CALL_ONCE"}
    extra = set(range(1, model.subgraph_count))
    if extra <= called:
        return None
    return MicronnError(f"the model has {model.subgraph_count} subgraphs; micronn runs single-subgraph models "
                        "(and the init subgraphs of CALL_ONCE)")


_STATE = ("model state: int8 variables (a float variable holding dequantized int8 values, as the converter "
          "writes full-int8 models, becomes int8 state); the state lives in the model's own memory, kept "
          "between runs; Model.reset() zeroes it as TFLite Micro's Reset() does")
LOWERINGS: dict = {
    "CALL_ONCE": lower_call_once,
    "VAR_HANDLE": lower_var_handle,
    "READ_VARIABLE": lower_read_variable,
    "ASSIGN_VARIABLE": lower_assign_variable,
}
LIMITS: dict = {
    "CALL_ONCE": ("ASSIGN (ONCE, at load)", "an init subgraph of VAR_HANDLE and ASSIGN_VARIABLE of constants "
                  "(initial values that are int8 values of the variable's quantization)"),
    "VAR_HANDLE": ("none (names a variable)", _STATE),
    "READ_VARIABLE": ("ASSIGN (from the state; LUT when the QUANTIZE after it requantizes)",
                      "an int8 read, or a float read that only QUANTIZE ops to int8 use"),
    "ASSIGN_VARIABLE": ("ASSIGN (into the state)", "an int8 value, or the DEQUANTIZE of one; one shape and "
                        "quantization per variable"),
}
# None: the lowering checks its operands itself (CALL_ONCE and ASSIGN_VARIABLE have no outputs)
OPERANDS: dict = {"CALL_ONCE": None, "VAR_HANDLE": 0, "READ_VARIABLE": 1, "ASSIGN_VARIABLE": None}


# lower.py (the hub) takes this group's tables in; this call does it when this module is imported first
from .lower import _merge_groups  # noqa: E402

_merge_groups()
