"""Weight precision per layer: int4 weights for chosen layers of an int8 .tflite.

TensorFlow's converter writes int4 weights only for models trained with 4-bit fake
quantization. Here an ordinary fully-int8 .tflite gets them after the fact, for the
layers asked for (CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED):

- each output channel's (or the tensor's, if the int8 layer is per-tensor) int4 scale
  is the clipping range over 7 whose rounding of the float weights has the least
  squared error (a grid from 0.5 to 1 of the largest magnitude; values in [-7, 7],
  symmetric, as TensorFlow's own 4-bit narrow range);
- the float weights are the calibrated float model's when one is given (a Keras
  model's), else the int8 weights dequantized (a .tflite);
- the int32 bias is requantized to the new scale (input scale times weight scale);
- the tensor becomes an INT4 tensor, packed two per byte, first value in the low
  nibble, as TensorFlow writes them and TFLite Micro reads them.

The result is still a standard .tflite that TFLite Micro runs: it is the oracle.

``layers`` name the layers: Keras layer names where the Keras model is known (matched
to operators by their weights, which survives TensorFlow's renaming and batch-norm
folding), else the names in the weight tensors (``sequential/conv2d_1/convolution``
gives ``conv2d_1``). ``auto:DB`` chooses layers greedily, largest saving per decibel
first, while the model output's SQNR against the float model drops by at most DB.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import MicronnError

WEIGHTED = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
CLIP_GRID = np.linspace(0.5, 1.0, 51)
INT4_MAX = 7
AUTO_SAMPLES = 100
TFLITE_INT4 = 17        # schema TensorType.INT4


def parse(text) -> tuple[str, object]:
    """("int8", None), ("int4", None) for every weighted layer, ("int4", [names]), or
    ("auto", dB) from "int8", "int4", "int4:a,b" or "auto:DB"."""
    if isinstance(text, tuple):
        return text
    s = str(text or "int8").strip()
    kind, sep, rest = s.partition(":")
    kind = kind.lower()
    if kind == "int8" and not sep:
        return "int8", None
    if kind == "int4":
        if not sep:
            return "int4", None
        names = [n.strip() for n in rest.split(",") if n.strip()]
        if not names:
            raise MicronnError(f"--weights {s!r}: name the layers after int4: (e.g. int4:conv2d_1,dense)")
        return "int4", names
    if kind == "auto" and sep:
        try:
            db = float(rest)
        except ValueError:
            db = float("nan")
        if not db >= 0 or db == float("inf"):
            raise MicronnError(f"--weights {s!r}: auto takes the SQNR loss allowed in dB, a number >= 0 "
                               "(e.g. auto:1.5)")
        return "auto", db
    raise MicronnError(f"--weights {s!r}: use int8, int4, int4:LAYER,LAYER or auto:DB")


def describe(choice) -> str:
    kind, v = parse(choice)
    if kind == "int4":
        return "int4" if v is None else "int4:" + ",".join(v)
    return f"auto:{v:g}" if kind == "auto" else kind


def _model_t(data: bytes):
    from tensorflow.lite.tools import flatbuffer_utils

    from .convert import _tensorflow

    _tensorflow()
    return flatbuffer_utils.convert_bytearray_to_object(bytearray(data))


def _to_bytes(model_t) -> bytes:
    from tensorflow.lite.tools import flatbuffer_utils

    return bytes(flatbuffer_utils.convert_object_to_bytearray(model_t))


def _opname(model_t, op) -> str:
    from tensorflow.lite.python import schema_py_generated as schema

    code = model_t.operatorCodes[op.opcodeIndex]
    b = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    return names.get(b, str(b))


def _buffer(model_t, t) -> np.ndarray | None:
    data = model_t.buffers[t.buffer].data if 0 < t.buffer < len(model_t.buffers) else None
    return None if data is None or len(data) == 0 else np.asarray(data, np.uint8)


def _name(t) -> str:
    return t.name.decode() if isinstance(t.name, bytes) else str(t.name or "")


def _tensor_layer(name: str) -> str:
    """The layer a weight tensor's name points at: its last-but-one path part."""
    parts = name.split(";")[0].split("/")
    return parts[-2] if len(parts) >= 2 else parts[0]


@dataclass
class Layer:
    """One operator with int8 (or int4) constant weights."""

    index: int                  # the operator's
    opcode: str
    axis: int                   # the output channels' axis of the weights
    names: list[str]            # every name the layer answers to; names[0] is shown
    keras: str | None           # the Keras layer's name, where known
    count: int                  # weight values
    dtype: str                  # "int8" or "int4"

    @property
    def name(self) -> str:
        return self.names[0]

    @property
    def saved(self) -> int:
        """Blob bytes int4 weights save against int8."""
        return self.count - (self.count + 1) // 2


def _channel_signature(w: np.ndarray, axis: int) -> np.ndarray:
    """Per output channel, its magnitudes sorted and scaled to a maximum of 1: the same
    for a layer's Keras kernel and the converter's weights, whatever their layout and
    per-channel scaling (batch normalization folded in)."""
    v = np.moveaxis(np.asarray(w, np.float64), axis, 0).reshape(w.shape[axis], -1)
    v = np.sort(np.abs(v), axis=1)
    top = v[:, -1:]
    return np.divide(v, top, out=np.zeros_like(v), where=top > 0)


def _keras_kernels(keras_model) -> list[tuple[str, np.ndarray]]:
    """(layer name, kernel as [channel, values]) of each Keras layer with a kernel."""
    from .convert import _layers

    out = []
    for layer in _layers(keras_model):
        for attr in ("kernel", "depthwise_kernel", "pointwise_kernel"):
            k = getattr(layer, attr, None)
            if k is None:
                continue
            try:
                k = np.asarray(k.numpy() if hasattr(k, "numpy") else k, np.float32)
            except Exception:       # noqa: BLE001 (a variable that cannot be read: leave it unnamed)
                continue
            if k.ndim >= 2:
                out.append((layer.name, k))
    return out


def weighted_layers(data: bytes, keras_model=None) -> list[Layer]:
    """The weighted layers of an int8 (or part-int4) .tflite, in operator order."""
    from . import tflite

    m = tflite.load(data)
    kernels = _keras_kernels(keras_model) if keras_model is not None else []
    out = []
    for k, op in enumerate(m.operators):
        if op.opcode not in WEIGHTED or len(op.inputs) < 2 or op.inputs[1] < 0:
            continue
        t = m.tensors[op.inputs[1]]
        if t.data is None or t.dtype not in ("int8", "int4"):
            continue
        axis = 3 if op.opcode == "DEPTHWISE_CONV_2D" else 0
        names, keras_name = [], None      # the Keras layer's name first, where its kernel matches
        if kernels and t.dtype == "int8" and t.scale is not None:
            w = np.frombuffer(bytes(t.data), np.int8).reshape(t.shape).astype(np.float64)
            sig = _channel_signature(w, axis)
            # the int8 rounding: a step of the channel's largest code
            top = np.abs(np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)).max(axis=1, keepdims=True)
            tol = 1.0 / np.maximum(top, 1) + 1e-6
            for lname, kern in kernels:
                c = int(t.shape[axis])
                if kern.size != w.size or kern.size % c:
                    continue
                ks = _channel_signature(kern.reshape(-1, c), 1)
                if ks.shape == sig.shape and np.all(np.abs(ks - sig) <= tol):
                    names.append(lname)
                    keras_name = lname
                    break
        names.append(_tensor_layer(t.name))
        if t.name not in names:
            names.append(t.name)
        out.append(Layer(k, op.opcode, axis, names, keras_name, int(np.prod(t.shape)), t.dtype))
    return out


def select(found: list[Layer], names) -> list[Layer]:
    """The layers named (every weighted layer for None); an unknown name is an error."""
    if names is None:
        return [x for x in found if x.dtype == "int8"]
    chosen = []
    for n in names:
        # a Keras layer's own name first: TensorFlow renames layers in tensor names (dense -> dense_1)
        hit = [x for x in found if x.keras == n] or [x for x in found if n in x.names]
        if not hit:
            known = ", ".join(dict.fromkeys(x.name for x in found)) or "none"
            raise MicronnError(f"--weights int4:{n}: no layer with weights of that name (layers with weights: "
                               f"{known})")
        chosen += [x for x in hit if x not in chosen]
    return chosen


def _float_op(model_t, float_t, op_index: int):
    """The calibrated float model's operator for the int8 model's op_index: the same
    operator with weights of the same name (or None)."""
    if float_t is None:
        return None
    ft = float_t.subgraphs[0].tensors
    qop = model_t.subgraphs[0].operators[op_index]
    want = _name(model_t.subgraphs[0].tensors[qop.inputs[1]])
    same = [f for f in float_t.subgraphs[0].operators if len(f.inputs) > 1 and f.inputs[1] >= 0
            and _name(ft[f.inputs[1]]) == want and _opname(float_t, f) == _opname(model_t, qop)]
    return same[0] if len(same) == 1 else None


def _float_weights(model_t, float_t, op_index: int) -> tuple[np.ndarray, np.ndarray | None] | None:
    """(weights, bias) in float from the calibrated float model's operator of the same
    place, if it is the same operator with float weights of the same shape."""
    fop = _float_op(model_t, float_t, op_index)
    if fop is None:
        return None
    qop = model_t.subgraphs[0].operators[op_index]
    ft = float_t.subgraphs[0].tensors
    wt = ft[fop.inputs[1]]
    raw = _buffer(float_t, wt)
    qshape = tuple(model_t.subgraphs[0].tensors[qop.inputs[1]].shape)
    if wt.type != 0 or raw is None or tuple(wt.shape) != qshape:
        return None
    w = raw.view(np.float32).reshape(qshape)
    b = None
    if len(fop.inputs) > 2 and fop.inputs[2] >= 0:
        braw = _buffer(float_t, ft[fop.inputs[2]])
        if braw is not None and ft[fop.inputs[2]].type == 0:
            b = braw.view(np.float32)
    return w.astype(np.float64), b


def quantize4(w: np.ndarray, axis: int, per_channel: bool) -> tuple[np.ndarray, np.ndarray]:
    """(int4 values, scales): symmetric, [-7, 7], each scale the clip (a share of the
    largest magnitude) with the least squared rounding error."""
    v = np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1) if per_channel else w.reshape(1, -1)
    scales = np.empty(len(v))
    for c, row in enumerate(v):
        top = float(np.abs(row).max())
        if top == 0:
            scales[c] = 1.0
            continue
        best = None
        for a in CLIP_GRID:
            s = top * a / INT4_MAX
            err = float(np.sum((np.clip(np.round(row / s), -INT4_MAX, INT4_MAX) * s - row) ** 2))
            if best is None or err < best[0]:
                best = (err, s)
        scales[c] = best[1]
    s = scales.reshape((-1,) + (1,) * (w.ndim - 1)) if per_channel else scales.reshape((1,) * w.ndim)
    s = np.moveaxis(s, 0, axis) if per_channel else s
    q = np.clip(np.round(w / s), -INT4_MAX, INT4_MAX).astype(np.int8)
    return q, scales.astype(np.float32)


def _input_scale(model_t, op) -> float:
    t = model_t.subgraphs[0].tensors[op.inputs[0]]
    if t.quantization is None or t.quantization.scale is None or len(t.quantization.scale) != 1:
        raise MicronnError(f"operator {_name(t)}: its input has no single int8 scale")
    return float(t.quantization.scale[0])


def _new_buffer(model_t, data: np.ndarray) -> int:
    from tensorflow.lite.python import schema_py_generated as schema

    b = schema.BufferT()
    b.data = np.asarray(data, np.uint8)
    model_t.buffers.append(b)
    return len(model_t.buffers) - 1


def _drop_buffer(model_t, index: int) -> None:
    """Empty a buffer that no other tensor uses (its int8 data would stay in the file)."""
    users = sum(t.buffer == index for sg in model_t.subgraphs for t in sg.tensors)
    if index > 0 and users <= 1:
        model_t.buffers[index].data = None


def _input_means(float_model: bytes, float_t, model_t, chosen: list[Layer], x) -> dict[int, np.ndarray]:
    """{op index: the mean of its float input per input value of a row (FULLY_CONNECTED)
    or per channel (convolutions)} over the samples x, from the calibrated float model."""
    from .calibrate import float_tensors

    want = {}
    for layer in chosen:
        fop = _float_op(model_t, float_t, layer.index)
        if fop is not None:
            want[layer.index] = fop.inputs[0]
    if not want:
        return {}
    values = float_tensors(float_model, np.asarray(x, np.float32)[:AUTO_SAMPLES], sorted(set(want.values())))
    out = {}
    for layer in chosen:
        if layer.index not in want:
            continue
        t = model_t.subgraphs[0].tensors[model_t.subgraphs[0].operators[layer.index].inputs[1]]
        width = int(t.shape[1]) if layer.opcode == "FULLY_CONNECTED" else \
            int(float_t.subgraphs[0].tensors[want[layer.index]].shape[-1])
        v = values[want[layer.index]]
        if width > 0 and v.size % width == 0:
            out[layer.index] = v.reshape(-1, width).astype(np.float64).mean(axis=0)
    return out


def _expected_error(err: np.ndarray, opcode: str, mean: np.ndarray) -> np.ndarray | None:
    """Per output channel, the mean change of the sums that the weights' rounding error err
    makes over inputs of the given mean (padding ignored); None where the shapes say
    otherwise (grouped convolutions)."""
    if opcode == "FULLY_CONNECTED":
        return err @ mean if err.shape[1] == mean.size else None
    if opcode == "CONV_2D":
        return err.sum(axis=(1, 2)) @ mean if err.shape[3] == mean.size else None
    out_c = err.shape[3]            # DEPTHWISE_CONV_2D: [1, k_h, k_w, in_c * multiplier]
    if out_c % mean.size:
        return None
    return err.sum(axis=(0, 1, 2)) * np.repeat(mean, out_c // mean.size)


def to_int4(data: bytes, layers=None, *, float_model: bytes | None = None, keras_model=None,
            calib=None) -> bytes:
    """The .tflite with int4 weights for the layers named (names as above; None: every
    CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED with int8 weights). float_model: the
    calibrated float .tflite the int8 one was quantized from (better weights); with
    calib, its samples, each bias also takes away the mean change that the weights'
    rounding makes to the sums (bias correction)."""
    from . import format as fmt

    found = weighted_layers(data, keras_model)
    chosen = select(found, layers)
    if not chosen:
        return bytes(data)
    model_t = _model_t(data)
    float_t = _model_t(float_model) if float_model is not None else None
    means = _input_means(float_model, float_t, model_t, chosen, calib) if calib is not None and float_t else {}
    g = model_t.subgraphs[0]
    for layer in chosen:
        op = g.operators[layer.index]
        t = g.tensors[op.inputs[1]]
        q8 = _buffer(model_t, t)
        if t.type != 9 or q8 is None:       # INT8
            continue
        shape = tuple(int(d) for d in t.shape)
        qz = t.quantization
        s8 = np.asarray(qz.scale, np.float64)
        # TFLite Micro runs int4 FULLY_CONNECTED per-tensor only
        per_channel = len(s8) > 1 and layer.opcode != "FULLY_CONNECTED"
        was_per_channel = len(s8) > 1
        fw = _float_weights(model_t, float_t, layer.index)
        if fw is not None:
            w, _ = fw
        else:
            sb = (np.moveaxis(s8.reshape((-1,) + (1,) * (len(shape) - 1)), 0, layer.axis) if was_per_channel
                  else s8.reshape((1,) * len(shape)))
            w = q8.view(np.int8).reshape(shape).astype(np.float64) * sb
        q4, s4 = quantize4(w, layer.axis, per_channel)
        t.type = TFLITE_INT4
        _drop_buffer(model_t, t.buffer)
        t.buffer = _new_buffer(model_t, np.frombuffer(fmt.pack_int4(q4), np.uint8))
        qz.scale = s4
        qz.zeroPoint = np.zeros(len(s4), np.int64)
        qz.min = qz.max = None
        if len(op.inputs) > 2 and op.inputs[2] >= 0:
            bt = g.tensors[op.inputs[2]]
            braw = _buffer(model_t, bt)
            if braw is not None and bt.type == 2:     # INT32
                sin = _input_scale(model_t, op)
                b8 = braw.view(np.int32).astype(np.float64)
                bias_float = b8 * sin * (s8 if was_per_channel else s8[0])
                if layer.index in means:
                    s4b = np.moveaxis(s4.reshape((-1,) + (1,) * (len(shape) - 1)), 0, layer.axis) if per_channel \
                        else s4.reshape((1,) * len(shape))
                    shift = _expected_error(q4 * s4b.astype(np.float64) - w, layer.opcode, means[layer.index])
                    if shift is not None:
                        bias_float = bias_float - shift
                b4 = np.round(bias_float / (sin * s4.astype(np.float64)))
                if np.abs(b4).max(initial=0) >= 2 ** 31:
                    raise MicronnError(f"layer {layer.name}: its bias does not fit int32 at int4 scales")
                _drop_buffer(model_t, bt.buffer)
                bt.buffer = _new_buffer(model_t, b4.astype(np.int32).view(np.uint8))
                bq = bt.quantization
                bq.scale = (sin * s4.astype(np.float64)).astype(np.float32)
                bq.zeroPoint = np.zeros(len(s4), np.int64)
                if not per_channel:
                    bq.quantizedDimension = 0
    return _to_bytes(model_t)


def _outputs(model: bytes, x: np.ndarray) -> np.ndarray:
    """The first output of the model on the samples, dequantized (TFLite Micro)."""
    from . import tflite
    from .reference import tflm_run
    from .run import quantize

    m = tflite.load(model)
    ti, to = m.tensors[m.inputs[0]], m.tensors[m.outputs[0]]
    xq = quantize(x, float(ti.scale[0]), int(ti.zero_point[0])).astype(np.int8)
    y = np.asarray(tflm_run(model, xq.reshape((len(x), *ti.shape[1:]))), np.float64)
    return (y - int(to.zero_point[0])) * float(to.scale[0])


def auto(data: bytes, float_model: bytes, x: np.ndarray, db: float, *, keras_model=None,
         log=None) -> tuple[bytes, list[str], dict]:
    """Layers chosen for int4 so that the output SQNR (against the float model, on up to
    AUTO_SAMPLES of x) drops by at most db: (model, names, {"int8": dB, "int4": dB})."""
    from . import tflite
    from .calibrate import float_tensors
    from .report import sqnr_db

    xs = np.asarray(x, np.float32)[:AUTO_SAMPLES]
    fm = tflite.load(float_model)
    ref = float_tensors(float_model, xs, [fm.outputs[0]])[fm.outputs[0]].astype(np.float64)
    base = sqnr_db(ref, _outputs(data, xs).ravel())
    found = [x for x in weighted_layers(data, keras_model) if x.dtype == "int8"]
    # each layer alone: its loss; then greedily the most bytes per dB lost
    alone = {}
    for layer in found:
        m = to_int4(data, [layer.names[-1]], float_model=float_model, calib=xs)
        alone[layer.index] = max(0.0, base - sqnr_db(ref, _outputs(m, xs).ravel()))
    order = sorted(found, key=lambda L: (alone[L.index] / max(1, L.saved), -L.saved))
    chosen, model, now = [], bytes(data), base
    for layer in order:
        if alone[layer.index] <= db:
            trial_names = [c.names[-1] for c in chosen] + [layer.names[-1]]
            m = to_int4(data, trial_names, float_model=float_model, calib=xs)
            s = sqnr_db(ref, _outputs(m, xs).ravel())
            if base - s <= db:
                chosen.append(layer)
                model, now = m, s
        if log:
            log(f"  {layer.name}: {layer.saved:,} bytes saved, {alone[layer.index]:.2f} dB lost alone: "
                f"{'int4' if layer in chosen else 'int8'}")
    return model, [c.name for c in chosen], {"int8": base, "int4": now}
