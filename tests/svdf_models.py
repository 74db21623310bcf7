"""Full-integer SVDF models written as flatbuffers (TensorFlow's converter does not
emit SVDF): float weights drawn from a seed, a float SVDF run over calibration
sequences for the ranges, then quantized the way TFLite's quantizer does it for
SVDF: input and output int8 asymmetric from their ranges, weights_feature int8
symmetric (max |w| / 127), weights_time int16 on 10 bits (max |w| / 512), the
activation state int16 symmetric (max |range| / 32767, zero point 0, a variable
tensor), the bias int32 with scale state scale * weights_time scale.

``tflm_sequence`` runs a sequence of calls through one TFLite Micro interpreter
(whole input tensors: the batch of an SVDF is part of the model, not of the
sequence), resetting it before the calls named in reset_at."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Svdf:
    batch: int
    input_size: int
    num_filters: int
    memory: int
    rank: int
    bias: bool = True
    relu: bool = False

    @property
    def units(self) -> int:
        return self.num_filters // self.rank


# name -> configuration: rank 1 and 2, batch 1 and 2, with and without bias, RELU
MODELS: dict[str, Svdf] = {
    "svdf_r1": Svdf(batch=1, input_size=12, num_filters=8, memory=5, rank=1),
    "svdf_r2_b2_relu": Svdf(batch=2, input_size=10, num_filters=12, memory=4, rank=2, relu=True),
    "svdf_r2_nobias": Svdf(batch=1, input_size=16, num_filters=8, memory=10, rank=2, bias=False, relu=True),
    "svdf_r1_b2_long": Svdf(batch=2, input_size=7, num_filters=6, memory=33, rank=1),
    "svdf_r2_relu": Svdf(batch=1, input_size=20, num_filters=16, memory=8, rank=2, relu=True),
}


def seed(name: str) -> int:
    return zlib.crc32(name.encode())


def float_weights(name: str) -> dict[str, np.ndarray]:
    c = MODELS[name]
    rng = np.random.default_rng(seed(name))
    return {
        "wf": (rng.normal(size=(c.num_filters, c.input_size)) * 0.4).astype(np.float32),
        "wt": (rng.normal(size=(c.num_filters, c.memory)) * 0.5).astype(np.float32),
        "bias": (rng.normal(size=(c.units,)) * 0.3).astype(np.float32),
    }


def float_inputs(name: str, n: int, salt: int = 0) -> np.ndarray:
    """n calls' inputs, float32 [n, batch, input_size]."""
    c = MODELS[name]
    rng = np.random.default_rng(seed(name) + 1 + salt)
    return (rng.normal(size=(n, c.batch, c.input_size)) * 1.5).astype(np.float32)


def float_run(name: str, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The float SVDF over a sequence: (outputs [n, batch, units], every state value seen)."""
    c, w = MODELS[name], float_weights(name)
    state = np.zeros((c.batch, c.num_filters, c.memory), np.float32)
    ys, states = [], []
    for x in xs:
        state = np.concatenate([state[:, :, 1:], (x @ w["wf"].T)[:, :, None]], axis=2)
        states.append(state.copy())
        per_filter = (state * w["wt"][None]).sum(axis=2)
        y = per_filter.reshape(c.batch, c.units, c.rank).sum(axis=2)
        if c.bias:
            y = y + w["bias"]
        ys.append(np.maximum(y, 0) if c.relu else y)
    return np.array(ys), np.array(states)


def _asymmetric(lo: float, hi: float) -> tuple[float, int]:
    """TFLite's int8 activation parameters for the range [lo, hi] (widened to hold 0)."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = (hi - lo) / 255.0
    zp = int(np.clip(round(-128 - lo / scale), -128, 127))
    return float(np.float32(scale)), zp


def quantization(name: str) -> dict:
    """Scales, zero points and integer weights of the model."""
    w = float_weights(name)
    ys, states = float_run(name, float_inputs(name, 64))
    xs = float_inputs(name, 64)
    q: dict = {}
    q["in"] = _asymmetric(float(xs.min()), float(xs.max()))
    q["out"] = _asymmetric(float(ys.min()), float(ys.max()))
    q["state"] = (float(np.float32(np.abs(states).max() / 32767.0)), 0)
    wf_scale = float(np.float32(np.abs(w["wf"]).max() / 127.0))
    wt_scale = float(np.float32(np.abs(w["wt"]).max() / 512.0))
    q["wf"] = (wf_scale, np.clip(np.round(w["wf"] / wf_scale), -127, 127).astype(np.int8))
    q["wt"] = (wt_scale, np.clip(np.round(w["wt"] / wt_scale), -32767, 32767).astype(np.int16))
    bias_scale = float(np.float32(q["state"][0]) * np.float32(wt_scale))
    q["bias"] = (bias_scale, np.round(w["bias"] / bias_scale).astype(np.int32))
    return q


def make_tflite(name: str, *, state_dtype: str = "int16") -> bytes:
    """The int8 SVDF model as .tflite bytes."""
    import flatbuffers
    from tensorflow.lite.python import schema_py_generated as s

    c, q = MODELS[name], quantization(name)
    model = s.ModelT()
    model.version = 3
    model.description = f"micronn test SVDF {name}"
    model.buffers = [s.BufferT()]
    sg = s.SubGraphT()
    sg.tensors = []

    def tensor(tname, ttype, shape, scale, zp, data=None, variable=False):
        t = s.TensorT()
        t.name, t.type, t.shape = tname, ttype, list(shape)
        t.quantization = s.QuantizationParametersT()
        t.quantization.scale, t.quantization.zeroPoint = [scale], [zp]
        buf = s.BufferT()
        if data is not None:
            buf.data = np.ascontiguousarray(data).astype(data.dtype.newbyteorder("<")).tobytes()
        model.buffers.append(buf)
        t.buffer = len(model.buffers) - 1
        t.isVariable = variable
        sg.tensors.append(t)
        return len(sg.tensors) - 1

    tt = s.TensorType
    x = tensor("input", tt.INT8, (c.batch, c.input_size), *q["in"])
    wf = tensor("weights_feature", tt.INT8, (c.num_filters, c.input_size), q["wf"][0], 0, q["wf"][1])
    wt = tensor("weights_time", tt.INT16, (c.num_filters, c.memory), q["wt"][0], 0, q["wt"][1])
    b = tensor("bias", tt.INT32, (c.units,), q["bias"][0], 0, q["bias"][1]) if c.bias else -1
    st_type = tt.INT16 if state_dtype == "int16" else tt.INT8
    st = tensor("activation_state", st_type, (c.batch, c.memory * c.num_filters), *q["state"], variable=True)
    y = tensor("output", tt.INT8, (c.batch, c.units), *q["out"])
    op = s.OperatorT()
    op.opcodeIndex = 0
    op.inputs, op.outputs = [x, wf, wt, b, st], [y]
    op.builtinOptionsType = s.BuiltinOptions.SVDFOptions
    op.builtinOptions = s.SVDFOptionsT()
    op.builtinOptions.rank = c.rank
    op.builtinOptions.fusedActivationFunction = (s.ActivationFunctionType.RELU if c.relu
                                                 else s.ActivationFunctionType.NONE)
    sg.operators = [op]
    sg.inputs, sg.outputs = [x], [y]
    sg.name = "main"
    code = s.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = s.BuiltinOperator.SVDF
    code.version = 3
    model.operatorCodes = [code]
    model.subgraphs = [sg]
    fb = flatbuffers.Builder(1024)
    fb.Finish(model.Pack(fb), file_identifier=b"TFL3")
    return bytes(fb.Output())


def int8_inputs(name: str, n: int, salt: int = 0) -> np.ndarray:
    """n calls' quantized inputs, int8 [n, batch, input_size]."""
    scale, zp = quantization(name)["in"]
    return np.clip(np.round(float_inputs(name, n, salt) / scale) + zp, -128, 127).astype(np.int8)


def tflm_sequence(tfl: bytes, xs: np.ndarray, reset_at=()) -> np.ndarray:
    """TFLite Micro's outputs of the calls xs [n, *input shape], one interpreter, reset before reset_at."""
    from micronn.reference import _tflm_runtime

    it = _tflm_runtime().Interpreter.from_bytes(bytes(tfl))
    ys = []
    for i, x in enumerate(xs):
        if i in reset_at:
            it.reset()
        it.set_input(x, 0)
        it.invoke()
        ys.append(np.array(it.get_output(0)).copy())
    return np.array(ys)
