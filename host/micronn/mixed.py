"""One model mixing int8 and int16 activations, chosen per Keras layer (issue 14).

TensorFlow's converter makes a model all int8 or all 16x8 (int16 activations, int8
weights); it never mixes them. ``activations="int16:conv2d_1,dense"`` asks for those
layers with int16 activations and the rest int8. The Keras model is converted twice with
the same calibration data (int8, then 16x8: the same float ranges, so the same operators
in the same order, which is checked), and one .tflite is written from the two: each
operator with its weights, biases and output tensors (and their quantization) from the
model of its layer's precision, and a QUANTIZE (int8 -> int16 or int16 -> int8, which
TensorFlow Lite Micro runs and micronn lowers to REQUANT) wherever a tensor crosses from
one precision to the other.

Which layer an operator belongs to: the Keras layer names in its output tensors' names
(and its weights' names), e.g. "functional_1/conv2d_1_2/Relu;..." (the converter's trace makes
each layer's name scope unique with a number, "conv2d_1" for layer conv2d under Keras 3; the
scope of each layer is found from all the names, see _scopes). An operator that
fuses several layers (a convolution with its batch normalization) runs int16 if any of
them is chosen. The operator giving a one-output model its output (whose tensor is named
after the signature, not the layer; before the DEQUANTIZE of a float output) belongs to the
layer giving the Keras model its output.
Operators of no layer take the precision of their first input computed by another
operator; those reading only the model's input that of the next operator that belongs to
a layer. The model's input has the precision of the first operator reading it, its output
that of the operator writing it: int16 input (or output) when the first (last) layer is
chosen, else int8. A float input or output (float_io) is quantized to (dequantized from) int8,
as in the int8 conversion, and requantized to int16 where the layer is int16 (the board could
also take floats to int16 directly and save that REQUANT; not done yet).
"""

from __future__ import annotations

import copy
import re

from .errors import MicronnError

INT8, INT16 = "int8", "int16"


def parse(activations: str) -> tuple[str, list[str] | None]:
    """("int8", None), ("int16", None) for all, or ("mixed", [layer names]) from
    "int8", "int16" or "int16:NAME,NAME"."""
    s = str(activations).strip()
    if s in (INT8, INT16):
        return s, None
    kind, sep, rest = s.partition(":")
    if kind.strip() == INT16 and sep:
        names = [n.strip() for n in rest.split(",") if n.strip()]
        if not names:
            raise MicronnError(f"activations {activations!r}: name the layers after int16: "
                               "(int16:LAYER,LAYER, Keras layer names)")
        return "mixed", list(dict.fromkeys(names))
    raise MicronnError(f"activations {activations!r}: expected int8, int16 or int16:LAYER,LAYER "
                       "(the Keras layers to run with int16 activations)")


def layer_names(model) -> list[str]:
    """The names of a Keras model's layers (nested models and their layers included), input
    layers left out, in the model's order."""
    from .convert import _layers

    if not hasattr(model, "layers"):
        raise MicronnError("activations chosen per layer need a Keras model (.keras, .h5 or a model object); "
                           "this one has no layers (a SavedModel folder?)")
    names = [layer.name for layer in _layers(model) if type(layer).__name__ != "InputLayer"]
    order = {layer.name: i for i, layer in enumerate(model.layers)}
    return sorted(dict.fromkeys(names), key=lambda n: order.get(n, len(order)))


def output_layers(model) -> list[str]:
    """The names of the layers giving a Keras model its outputs (where Keras says)."""
    names = []
    for t in getattr(model, "outputs", None) or []:
        hist = getattr(t, "_keras_history", None)
        layer = getattr(hist, "operation", None) or getattr(hist, "layer", None)
        if layer is None and isinstance(hist, tuple) and hist:
            layer = hist[0]
        names.append(getattr(layer, "name", None))
    return names


def _parts(name: str) -> list[str]:
    return [c for part in (name or "").split(";") for c in part.split("/") if c]


def _scopes(layers: list[str], names: list[str]) -> dict[str, str]:
    """{name scope in the tensor names: layer name}. The converter's trace gives each layer one
    scope, its name or its name made unique with a number ("conv2d_1" for layer conv2d under
    Keras 3, whose "conv2d_1" layer then gets "conv2d_1_2"): each layer gets the one scope only it
    can have, repeatedly, then where two remain the model's habit decides (most layers' own names
    present: the plain name; else the numbered one)."""
    parts = {c for n in names for c in _parts(n)}
    cands = {layer: {c for c in parts if c == layer or re.fullmatch(re.escape(layer) + r"_\d+", c)}
             for layer in layers}
    plain = sum(1 for layer in layers if layer in parts) * 2 >= sum(1 for c in cands.values() if c)
    scope: dict[str, str] = {}
    while True:
        open_ = {layer: c - set(scope) for layer, c in cands.items() if layer not in scope.values()}
        open_ = {layer: c for layer, c in open_.items() if c}
        if not open_:
            return scope
        sure = sorted(((layer, next(iter(c))) for layer, c in open_.items() if len(c) == 1),
                      key=lambda lc: (lc[0] == lc[1]) != plain)     # the model's habit first
        if sure:
            layer, c = sure[0]
        else:
            layer, c = next(iter(open_.items()))
            numbered = sorted((x for x in c if x != layer), key=lambda x: (len(x), x))
            c = layer if plain and layer in c else numbered[0] if numbered else layer
        scope[c] = layer


DEQUANTIZE, QUANTIZE = 6, 114      # BuiltinOperator codes
FLOAT32 = 0                         # the TensorType


def _code(m, op) -> int:
    c = m.operatorCodes[op.opcodeIndex]
    return max(c.builtinCode, c.deprecatedBuiltinCode)


def _name(t) -> str:
    n = t.name
    return n.decode("utf-8", "replace") if isinstance(n, bytes) else str(n or "")


def _has_data(m, t) -> bool:
    return bool(t.buffer) and m.buffers[t.buffer].data is not None and len(m.buffers[t.buffer].data) > 0


def _same_graph(a, b) -> dict[int, int]:
    """{tensor index in a: tensor index in b}, the two conversions checked to be one graph."""
    if len(a.subgraphs) != 1 or len(b.subgraphs) != 1:
        raise MicronnError("activations chosen per layer: models with several subgraphs are not supported")
    ga, gb = a.subgraphs[0], b.subgraphs[0]
    code = lambda m, op: (m.operatorCodes[op.opcodeIndex].builtinCode, m.operatorCodes[op.opcodeIndex].customCode)  # noqa: E731
    ops_a = [code(a, op) for op in ga.operators]
    ops_b = [code(b, op) for op in gb.operators]
    if ops_a != ops_b:
        first = next((i for i, (x, y) in enumerate(zip(ops_a, ops_b, strict=False)) if x != y),
                     min(len(ops_a), len(ops_b)))
        raise MicronnError(f"activations chosen per layer: TensorFlow's int8 and 16x8 conversions of the model differ "
                           f"({len(ops_a)} and {len(ops_b)} operators, first difference at operator {first}); "
                           "convert it all int8 or all int16")
    pairs = [(list(ga.inputs), list(gb.inputs)), (list(ga.outputs), list(gb.outputs))]
    for oa, ob in zip(ga.operators, gb.operators, strict=True):
        for f in ("inputs", "outputs", "intermediates"):
            pairs.append((list(getattr(oa, f) if getattr(oa, f) is not None else []),
                          list(getattr(ob, f) if getattr(ob, f) is not None else [])))
    to_b: dict[int, int] = {}
    for xs, ys in pairs:
        if len(xs) != len(ys):
            raise MicronnError("activations chosen per layer: TensorFlow's int8 and 16x8 conversions of the model "
                               "connect their operators differently; convert it all int8 or all int16")
        for x, y in zip(xs, ys, strict=True):
            if (x < 0) != (y < 0) or (x >= 0 and to_b.setdefault(x, y) != y):
                raise MicronnError("activations chosen per layer: TensorFlow's int8 and 16x8 conversions of the "
                                   "model connect their operators differently; convert it all int8 or all int16")
    return to_b


def precisions(model_t, layers: list[str], chosen: list[str], outputs: list) -> list[str]:
    """Each operator's precision (int8 or int16) in a converted model (object API)."""
    g = model_t.subgraphs[0]
    missing = [n for n in chosen if n not in layers]
    if missing:
        raise MicronnError(f"no layer named {', '.join(missing)} in the model; its layers are: {', '.join(layers)}")
    names = [_name(t) for t in g.tensors]
    scoped = _scopes(layers, names)
    producer = {o: k for k, op in enumerate(g.operators) for o in op.outputs}
    last = set()        # the operators giving the outputs (before a float output's DEQUANTIZE)
    for i in g.outputs:
        k = producer.get(i)
        if k is not None and _code(model_t, g.operators[k]) == DEQUANTIZE and g.operators[k].inputs[0] in producer:
            k = producer[g.operators[k].inputs[0]]
        last.add(k)
    owners: list[set] = []
    for op in g.operators:
        own = set()
        for i in op.outputs:
            own |= {scoped[c] for c in _parts(names[i]) if c in scoped}
        for i in op.inputs:
            if i >= 0 and _has_data(model_t, g.tensors[i]):
                own |= {scoped[c] for c in _parts(names[i]) if c in scoped}
        if not own and len(outputs) == 1 and outputs[0] in layers and len(owners) in last:
            own = {outputs[0]}
        owners.append(own)
    owned = set().union(*owners) if owners else set()
    idle = [n for n in chosen if n not in owned]
    if idle:
        raise MicronnError(f"layer {', '.join(idle)} has no operator of its own in the converted model (TensorFlow "
                           f"folded it into another or removed it); layers with operators: "
                           f"{', '.join(n for n in layers if n in owned)}")
    want = set(chosen)
    explicit = [None if not own else INT16 if own & want else INT8 for own in owners]
    prec: list[str | None] = [None] * len(g.operators)
    for k, op in enumerate(g.operators):
        if explicit[k]:
            prec[k] = explicit[k]
            continue
        if _code(model_t, op) == DEQUANTIZE or (_code(model_t, op) == QUANTIZE and op.inputs[0] >= 0
                                                 and g.tensors[op.inputs[0]].type == FLOAT32):
            prec[k] = INT8      # float in and out (float_io) through int8, which the board converts
            continue
        src = next((producer[i] for i in op.inputs if i in producer), None)
        if src is not None:
            prec[k] = prec[src]
        else:       # reads the model's input only: the next layer's precision
            prec[k] = next((p for p in explicit[k + 1:] if p), INT8)
    return prec


def splice(int8_tflite: bytes, int16_tflite: bytes, prec: list[str]) -> bytes:
    """One .tflite from an int8 and a 16x8 conversion of one model: operator k (with its
    constants and outputs) from the model prec[k] names, QUANTIZE between precisions."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils as fbu

    a = fbu.convert_bytearray_to_object(bytearray(int8_tflite))
    b = fbu.convert_bytearray_to_object(bytearray(int16_tflite))
    to_b = _same_graph(a, b)
    ga, gb = a.subgraphs[0], b.subgraphs[0]
    models = {INT8: (a, ga, lambda i: i), INT16: (b, gb, lambda i: to_b[i])}

    buffers = [schema.BufferT()]
    buf_of: dict = {}

    def buffer(m, idx: int) -> int:
        buf = m.buffers[idx] if idx else None
        if buf is None or buf.data is None or len(buf.data) == 0:
            return 0
        if (id(m), idx) not in buf_of:
            buf_of[(id(m), idx)] = len(buffers)
            buffers.append(copy.deepcopy(buf))
        return buf_of[(id(m), idx)]

    tensors: list = []
    version_of: dict = {}

    def version(i: int, p: str) -> int:
        """The new index of tensor i (an index in the int8 model) as model p has it."""
        if (i, p) not in version_of:
            m, g, idx = models[p]
            t = copy.deepcopy(g.tensors[idx(i)])
            t.buffer = buffer(m, t.buffer)
            version_of[(i, p)] = len(tensors)
            tensors.append(t)
        return version_of[(i, p)]

    codes: list = []
    code_of: dict = {}

    def opcode(c) -> int:
        key = (c.builtinCode, c.deprecatedBuiltinCode, c.customCode, c.version)
        if key not in code_of:
            code_of[key] = len(codes)
            codes.append(copy.deepcopy(c))
        return code_of[key]

    def quantize_code(dst: str) -> int:
        c = schema.OperatorCodeT()
        c.builtinCode = c.deprecatedBuiltinCode = schema.BuiltinOperator.QUANTIZE
        c.version = 3 if dst == INT16 else 2
        return opcode(c)

    def same(t, u) -> bool:
        q = lambda x: (None if x.quantization is None else  # noqa: E731
                       (list(x.quantization.scale if x.quantization.scale is not None else []),
                        list(x.quantization.zeroPoint if x.quantization.zeroPoint is not None else [])))
        return t.type == u.type and q(t) == q(u)

    producer = {o: k for k, op in enumerate(ga.operators) for o in op.outputs}
    graph_inputs = list(ga.inputs)
    first_reader = {i: next((k for k, op in enumerate(ga.operators) if i in op.inputs), None) for i in graph_inputs}
    in_prec = {i: prec[k] if k is not None else INT8 for i, k in first_reader.items()}

    def source(i: int) -> str | None:
        """The precision a computed tensor is written in (None: a constant or other unwritten tensor)."""
        if i in producer:
            return prec[producer[i]]
        return in_prec.get(i)

    ops: list = []
    bridged: dict = {}
    names = {INT8: "int8", INT16: "int16"}
    for k, (oa, p) in enumerate(zip(ga.operators, prec, strict=True)):
        m, g, idx = models[p]
        op = copy.deepcopy(g.operators[k])
        op.opcodeIndex = opcode(m.operatorCodes[op.opcodeIndex])
        inputs = []
        for i in oa.inputs:
            src = source(i) if i >= 0 else None
            if i < 0:
                inputs.append(i)
            elif src is None or src == p:
                inputs.append(version(i, p))
            else:
                have, need = models[src][1].tensors[models[src][2](i)], g.tensors[idx(i)]
                if same(have, need):
                    inputs.append(version(i, src))
                    continue
                if {have.type, need.type} != {schema.TensorType.INT8, schema.TensorType.INT16}:
                    raise MicronnError(f"activations chosen per layer: tensor {_name(have)} is read by operator {k} "
                                       "in a type neither int8 nor int16; it cannot cross between precisions")
                if (i, p) not in bridged:
                    t = copy.deepcopy(need)
                    t.buffer = 0
                    t.name = f"{_name(need)}/{names[p]}"
                    bridged[(i, p)] = len(tensors)
                    tensors.append(t)
                    q = schema.OperatorT()
                    q.opcodeIndex = quantize_code(p)
                    q.inputs, q.outputs = [version(i, src)], [bridged[(i, p)]]
                    q.builtinOptionsType = schema.BuiltinOptions.QuantizeOptions
                    q.builtinOptions = schema.QuantizeOptionsT()
                    ops.append(q)
                inputs.append(bridged[(i, p)])
        op.inputs = inputs
        op.outputs = [version(i, p) if i >= 0 else i for i in oa.outputs]
        if oa.intermediates is not None and len(oa.intermediates):
            op.intermediates = [version(i, p) if i >= 0 else i for i in oa.intermediates]
        ops.append(op)

    new_in = [version(i, in_prec[i]) for i in graph_inputs]
    new_out = [version(i, source(i) or INT8) for i in ga.outputs]
    out = copy.deepcopy(a)
    g = out.subgraphs[0]
    g.tensors, g.operators, g.inputs, g.outputs = tensors, ops, new_in, new_out
    out.operatorCodes = codes
    remap = dict(zip(ga.inputs, new_in, strict=True)) | dict(zip(ga.outputs, new_out, strict=True))
    for sig in out.signatureDefs or []:
        for tm in list(sig.inputs or []) + list(sig.outputs or []):
            tm.tensorIndex = remap.get(tm.tensorIndex, tm.tensorIndex)
    for md in out.metadata or []:
        md.buffer = buffer(a, md.buffer) if md.buffer else md.buffer
        if md.buffer == 0:      # metadata with an empty buffer: keep one of its own
            buffers.append(schema.BufferT())
            md.buffer = len(buffers) - 1
    out.metadataBuffer = None
    out.buffers = buffers
    return bytes(fbu.convert_object_to_bytearray(out))


def mixed_tflite(model, calib, layers: list[str], *, float_io: bool = False, progress: bool = False) -> bytes:
    """A Keras model (object, .keras/.h5 file) converted with int16 activations in the named
    layers and int8 in the others (see the module's description)."""
    from pathlib import Path

    from .convert import _convert_keras, _load_keras, check_model_file, load_calibration
    from .tflite import load

    if not isinstance(calib, (list, tuple, dict)):
        load_calibration(calib)     # bad data fails before TensorFlow loads
    if isinstance(model, (str, bytes)) or hasattr(model, "__fspath__"):
        check_model_file(Path(model))
    model, _ = _load_keras(model)
    names = layer_names(model)
    missing = [n for n in layers if n not in names]
    if missing:
        raise MicronnError(f"no layer named {', '.join(missing)} in the model; its layers are: {', '.join(names)}")
    i8 = _convert_keras(model, calib, float_io=float_io, progress=progress, activations=INT8)
    i16 = _convert_keras(model, calib, float_io=float_io, progress=progress, activations=INT16)
    from tensorflow.lite.tools import flatbuffer_utils as fbu

    prec = precisions(fbu.convert_bytearray_to_object(bytearray(i8)), names, layers, output_layers(model))
    data = splice(i8, i16, prec)
    load(data)      # micronn's own reader takes what was written
    return data

