"""Per-tensor requantization multipliers: TensorFlow Lite Micro computes
``(double)in_scale * (double)filter_scale / (double)out_scale`` for fully
connected, convolution and depthwise layers alike (desktop TFLite's fully
connected kernels multiply the two scales in float32 first).

Each case converts a small Keras model with one layer (per-tensor weights),
moves the weight scale by a few float32 steps to where the float32-first and the
double products give different multipliers (asserted), finds the accumulators
on which the two multipliers give different output bytes, changes random inputs
until one output's sum is such an accumulator (so the comparison tells the two
apart, also asserted), and checks the blob on the unix firmware byte for byte
against TFLite Micro on those inputs.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")
sg = pytest.importorskip("tensorflow.lite.python.schema_py_generated")

from micronn import pack, quant, tflite  # noqa: E402
from micronn.reference import tflm_run  # noqa: E402

f32, f64 = np.float32, np.float64
TAPS = 256          # accumulation depth: large sums make rounding ties reachable


def _layer(kind):
    """(Keras layers, input shape, TFLite opcode) of one case."""
    bias = keras.initializers.RandomNormal(stddev=0.2)
    if kind == "fc":
        return [keras.layers.Dense(12, bias_initializer=bias)], (TAPS,), "FULLY_CONNECTED"
    if kind == "conv":
        return [keras.layers.Conv2D(12, 1, bias_initializer=bias)], (1, 1, TAPS), "CONV_2D"
    return [keras.layers.DepthwiseConv2D(16, bias_initializer=bias)], (16, 16, 6), "DEPTHWISE_CONV_2D"


def _convert(kind) -> bytes:
    layers, shape, _ = _layer(kind)
    keras.utils.set_random_seed(17)
    x = keras.Input(shape, batch_size=1)
    y = x
    for layer in layers:
        y = layer(y)
    calib = np.random.default_rng(1).uniform(-1, 1, size=(32, *shape)).astype(np.float32)
    conv = tf.lite.TFLiteConverter.from_keras_model(keras.Model(x, y))
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([calib[i:i + 1]] for i in range(len(calib)))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = tf.int8
    conv._experimental_disable_per_channel_quantization_for_dense_layers = True
    return conv.convert()


def _multipliers(si, sw, so):
    """(float32-first, double) (multiplier, shift) of in * filter / out."""
    first = quant.quantize_multiplier(float(f64(f32(f32(si) * f32(sw))) / f64(f32(so))))
    double = quant.quantize_multiplier(float(f64(f32(si)) * f64(f32(sw)) / f64(f32(so))))
    return first, double


def _requantize(acc, mult, shift, zero_point):
    """TFLite's MultiplyByQuantizedMultiplier (shift <= 0) plus the zero point, clamped; int64 arrays."""
    assert shift <= 0
    ab = np.asarray(acc, np.int64) * mult
    s = ab + np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    high = np.where(s >= 0, s >> 31, -((-s) >> 31))
    mask = (1 << -shift) - 1
    out = (high >> -shift) + ((high & mask) > (mask >> 1) + (high < 0))
    return np.clip(out + zero_point, -128, 127)


def _telling_sums(mults, zero_point):
    """Accumulators (a symmetric range covering every unclamped output) on which
    the two multipliers give different output bytes."""
    q, shift = mults[0]
    reach = int(300 * 2.0 ** (31 - shift) / q)
    acc = np.arange(-reach, reach + 1, dtype=np.int64)
    a, b = (_requantize(acc, m, s, zero_point) for m, s in mults)
    return acc[a != b]


def _per_tensor(tfl: bytes, opcode: str):
    """The model with one per-tensor weight scale, moved a few float32 steps to
    where the two products give different multipliers that round some
    accumulators differently; returns (tflite, (si, sw, so), telling sums)."""
    model = sg.ModelT.InitFromPackedBuf(bytearray(tfl), 0)
    sub = model.subgraphs[0]
    codes = {v: k for k, v in vars(sg.BuiltinOperator).items() if not k.startswith("_")}
    (op,) = [o for o in sub.operators if codes[model.operatorCodes[o.opcodeIndex].builtinCode] == opcode]
    t_in, t_w, t_b = (sub.tensors[i] for i in op.inputs)
    t_out = sub.tensors[op.outputs[0]]
    si, so = f32(t_in.quantization.scale[0]), f32(t_out.quantization.scale[0])
    zo = int(t_out.quantization.zeroPoint[0])
    base = f32(max(t_w.quantization.scale))     # per-channel conv scales become one

    def scale(k):
        return f32(base + k * np.spacing(base))

    def gap(k):
        (qa, sa), (qb, sb) = _multipliers(si, scale(k), so)
        return abs(qa - qb) if sa == sb else 0

    for k in sorted(range(-64, 65), key=gap, reverse=True):
        sums = _telling_sums(_multipliers(si, scale(k), so), zo)
        if len(sums):
            break
    sw = scale(k)
    t_w.quantization.scale = np.array([sw], np.float32)
    t_w.quantization.zeroPoint = np.array([0], np.int64)
    t_w.quantization.quantizedDimension = 0
    t_b.quantization.scale = np.array([f32(si * sw)], np.float32)
    t_b.quantization.zeroPoint = np.array([0], np.int64)
    import flatbuffers

    b = flatbuffers.Builder(1024)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output()), (si, sw, so), sums


def _dot_products(m: tflite.Model, op):
    """Each output of the layer as (input indices, weights, bias): one sum per output."""
    x_t, w_t, b_t = (m.tensors[i] for i in op.inputs)
    w = w_t.array().astype(np.int64)
    bias = b_t.array().astype(np.int64)
    n = int(np.prod(x_t.shape))
    if op.opcode == "DEPTHWISE_CONV_2D":          # VALID, kernel as large as the input: one sum per channel
        c = w.shape[-1]
        return [(np.arange(n).reshape(-1, c)[:, u], w.reshape(-1, c)[:, u], bias[u]) for u in range(c)]
    w = w.reshape(w.shape[0], -1)                 # FC [out, in], 1x1 conv [out, 1, 1, in]
    return [(np.arange(n), w[u], bias[u]) for u in range(len(w))]


def _input_for(x, zero_point, idx, w, bias, target):
    """x changed (within int8) so that bias + sum(w * (x[idx] - zero_point)) == target, or None."""
    x = x.astype(np.int64).copy()
    need = target - (bias + int(w @ (x[idx] - zero_point)))
    for j in np.argsort(-np.abs(w), kind="stable"):
        if need == 0:
            break
        if w[j]:
            k = int(np.clip(np.trunc(need / w[j]), -128 - x[idx[j]], 127 - x[idx[j]]))
            x[idx[j]] += k
            need -= int(w[j]) * k
    return x.astype(np.int8) if need == 0 else None


def _telling_inputs(m: tflite.Model, op, sums, n_want=4):
    """Random int8 inputs (seeded), each changed so that one output's
    accumulator is one of the telling sums nearest to where it was."""
    x_t = m.tensors[op.inputs[0]]
    zi = int(x_t.zero_point[0])
    rng = np.random.default_rng(3)
    found = []
    for idx, w, bias in _dot_products(m, op):
        x = rng.integers(-128, 128, size=x_t.shape, dtype=np.int8).reshape(-1)
        acc = bias + int(w @ (x[idx].astype(np.int64) - zi))
        for target in sums[np.argsort(np.abs(sums - acc), kind="stable")][:8]:
            y = _input_for(x, zi, idx, w, bias, int(target))
            if y is not None:
                found.append(y.reshape(x_t.shape[1:]))
                break
        if len(found) == n_want:
            break
    return found


def _outputs(m: tflite.Model, op, x, mults):
    """The layer's output bytes for samples x under each (multiplier, shift)."""
    zi, zo = int(m.tensors[op.inputs[0]].zero_point[0]), int(m.tensors[op.outputs[0]].zero_point[0])
    flat = np.asarray(x, np.int64).reshape(len(x), -1) - zi
    acc = np.stack([flat[:, idx] @ w + bias for idx, w, bias in _dot_products(m, op)], axis=1)
    return [_requantize(acc, q, s, zo) for q, s in mults]


@pytest.mark.parametrize("kind", ["fc", "conv", "depthwise"])
def test_per_tensor_multiplier(unix, kind):
    opcode = _layer(kind)[2]
    tfl, (si, sw, so), sums = _per_tensor(_convert(kind), opcode)
    m = tflite.load(tfl)
    (op,) = [o for o in m.operators if o.opcode == opcode]
    assert m.tensors[op.inputs[1]].scale.size == 1, "weights not per-tensor"
    x_shape = m.tensors[op.inputs[0]].shape[1:]
    first, double = _multipliers(si, sw, so)
    assert first[1] == double[1] and first[0] != double[0], (first, double)
    assert len(sums), "no accumulator tells the two multipliers apart"
    found = _telling_inputs(m, op, sums)
    assert found, "no input reaches a telling accumulator"
    x = np.concatenate([np.stack(found), np.random.default_rng(4).integers(-128, 128, (4, *x_shape), np.int8)])
    by_first, by_double = _outputs(m, op, x, [first, double])
    assert (by_first != by_double)[:len(found)].any(axis=1).all()
    want = tflm_run(tfl, x).reshape(len(x), -1)
    # TFLite Micro takes the double product; the float32-first one gives other bytes here
    assert np.array_equal(want, by_double)
    assert np.array_equal(quant.conv_multipliers(si, [sw], so)[0], [double[0]])
    data = pack(tfl, name=f"per_tensor_{kind}")
    unix.link.load(data)
    got = np.stack([np.frombuffer(unix.link.run(s.tobytes())[0], np.int8) for s in x])
    diff = got != want
    assert not diff.any(), f"{diff.sum()} of {diff.size} values differ from TFLite Micro: {got[diff]} vs {want[diff]}"
