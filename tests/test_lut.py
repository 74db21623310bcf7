"""micronn.lut against TFLite Micro: all 256 int8 inputs through one-op models, bit for bit.

The models come from TensorFlow's converter (int8 input and output, several
calibration ranges so that scales and zero points vary). ELU, which the converter
keeps in float, and extra quantizations (random ones, and scale pairs where a
float32 instead of a double step, or a different expf, would change the table)
come from editing a converted model's flatbuffer.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import flatbuffers  # noqa: E402
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from tflite_micro.python.tflite_micro import runtime  # noqa: E402
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb  # noqa: E402

from micronn import tflite  # noqa: E402
from micronn.errors import MicronnError  # noqa: E402
from micronn.lut import lut  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:Statistics for quantized inputs were expected")

# Calibration ranges: each gives the model input its own scale and zero point.
RANGES = [(-4.0, 4.0), (-1.0, 7.0), (-12.0, 2.0), (-0.3, 0.5), (-40.0, 25.0)]
ALPHAS = [0.2, 0.01, 0.5, 0.9, 0.1]  # LEAKY_RELU negative slope per range


def _quantize_model(x, i):
    # x feeds two concatenations with different output scales; one needs a requantized copy of x.
    return [keras.layers.Concatenate()([x, x * 5.0]), keras.layers.Concatenate()([x, x * (0.5 + 0.1 * i)])]


# op -> (opcode, layer on the (1, 256) model input for range i)
MODELS = {
    "sigmoid": ("LOGISTIC", lambda x, i: keras.layers.Activation("sigmoid")(x)),
    "tanh": ("TANH", lambda x, i: keras.layers.Activation("tanh")(x)),
    "relu": ("RELU", lambda x, i: keras.layers.Activation("relu")(x)),
    "relu6": ("RELU6", lambda x, i: keras.layers.ReLU(max_value=6.0)(x)),
    "leaky_relu": ("LEAKY_RELU", lambda x, i: keras.layers.LeakyReLU(negative_slope=ALPHAS[i])(x)),
    "hard_silu": ("HARD_SWISH", lambda x, i: keras.layers.Activation("hard_silu")(x)),
    "abs": ("ABS", lambda x, i: keras.layers.Lambda(tf.abs)(x)),
    "requantize": ("QUANTIZE", _quantize_model),
}


def _convert(build, i):
    lo, hi = RANGES[i]
    inp = keras.Input((256,))
    model = keras.Model(inp, build(inp, i))
    calib = np.random.default_rng(i).uniform(lo, hi, (16, 1, 256)).astype(np.float32)
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([x] for x in calib)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    return conv.convert()


def _find(data: bytes, opcode: str) -> int:
    """Index of the operator with this opcode, which must read the model input."""
    m = tflite.load(data)
    found = [k for k, op in enumerate(m.operators) if op.opcode == opcode]
    assert found, f"no {opcode} in the model: {[op.opcode for op in m.operators]}"
    assert m.operators[found[0]].inputs[0] == m.inputs[0], f"{opcode} does not read the model input"
    return found[0]


def _tflm(data: bytes, k: int) -> np.ndarray:
    """Operator k's output in TFLM when the model input is -128..127."""
    out = tflite.load(data).operators[k].outputs[0]
    it = runtime.Interpreter.from_bytes(
        data, arena_size=1 << 16, intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors
    )
    it.set_input(np.arange(-128, 128, dtype=np.int8).reshape(1, 256), 0)
    it.invoke()
    return np.asarray(it.GetTensor(out, 0)["tensor_data"]).reshape(-1)


def _lut(data: bytes, k: int) -> np.ndarray:
    """micronn's table for operator k, from the quantization in the file."""
    m = tflite.load(data)
    op = m.operators[k]
    i, o = m.tensors[op.inputs[0]], m.tensors[op.outputs[0]]
    options = {"alpha": op.options["alpha"]} if op.opcode == "LEAKY_RELU" else {}
    return lut(op.opcode, float(i.scale[0]), int(i.zero_point[0]), float(o.scale[0]), int(o.zero_point[0]), **options)


def _edit(data: bytes, opcode=None, q_in=None, q_out=None, k=0, **options) -> bytes:
    """Change operator k's opcode, input/output (scale, zero point) and builtin options."""
    m = fb.ModelT.InitFromObj(fb.Model.GetRootAs(data, 0))
    sg = m.subgraphs[0]
    op = sg.operators[k]
    if opcode:
        code = m.operatorCodes[op.opcodeIndex]
        code.builtinCode = getattr(fb.BuiltinOperator, opcode)
        code.deprecatedBuiltinCode = min(code.builtinCode, 127)
    for t, q in ((op.inputs[0], q_in), (op.outputs[0], q_out)):
        if q:
            sg.tensors[t].quantization.scale, sg.tensors[t].quantization.zeroPoint = [q[0]], [q[1]]
    for name, value in options.items():
        setattr(op.builtinOptions, name, value)
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


@pytest.fixture(scope="module")
def bases():
    """One-operator models to edit: a converted RELU (no options) and LEAKY_RELU."""
    relu = _convert(MODELS["relu"][1], 0)
    leaky = _convert(MODELS["leaky_relu"][1], 0)
    assert [op.opcode for op in tflite.load(relu).operators] == ["RELU"]
    assert [op.opcode for op in tflite.load(leaky).operators] == ["LEAKY_RELU"]
    return {"RELU": relu, "LEAKY_RELU": leaky}


def _base(bases, opcode):
    data = bases.get(opcode) or _edit(bases["RELU"], opcode=opcode)
    assert tflite.load(data).operators[0].opcode == opcode
    return data


@pytest.mark.parametrize("case", range(len(RANGES)))
@pytest.mark.parametrize("name", list(MODELS))
def test_converted_model_bit_exact(name, case):
    opcode, build = MODELS[name]
    data = _convert(build, case)
    k = _find(data, opcode)
    got, want = _tflm(data, k), _lut(data, k)
    assert np.array_equal(got, want), f"{np.count_nonzero(got != want)} of 256 differ"
    assert len(np.unique(want)) > 8  # the table is not trivially constant


OPS = ["LOGISTIC", "TANH", "RELU", "RELU6", "LEAKY_RELU", "HARD_SWISH", "QUANTIZE", "ABS", "ELU"]


@pytest.mark.parametrize("opcode", OPS)
def test_random_quantizations(bases, opcode):
    """Random scales and zero points (and alphas of either sign): TFLM and lut agree,
    including on which ones TFLM's Prepare rejects."""
    data = _base(bases, opcode)
    rng = np.random.default_rng(OPS.index(opcode))
    checked = 0
    for n in range(30):
        s_in, s_out = (float(np.float32(10 ** rng.uniform(-3, 0.5))) for _ in "io")
        z_in, z_out = (int(rng.integers(-128, 128)) for _ in "io")
        if opcode == "LOGISTIC" and n % 5:
            z_out = -128  # any output scale is accepted (and ignored)
        if opcode == "ABS" and n % 4 == 0:
            s_out = s_in  # the no-rescale path
        options = {"alpha": float(np.float32(rng.uniform(-2, 2)))} if opcode == "LEAKY_RELU" else {}
        edited = _edit(data, q_in=(s_in, z_in), q_out=(s_out, z_out), **options)
        try:
            want = lut(opcode, s_in, z_in, s_out, z_out, **options)
        except MicronnError:
            with pytest.raises(RuntimeError):
                _tflm(edited, 0)
            continue
        got = _tflm(edited, 0)
        assert np.array_equal(got, want), (s_in, z_in, s_out, z_out, options)
        checked += 1
    assert checked >= 20


# Scale pairs (float32 values) where one step in the other precision, the sign of a
# negative alpha applied before the multiply, or a correctly rounded exp would give
# a different table: they pin down how TFLM's Prepare computes its parameters.
SUBTLE = [
    ("RELU", (0.01257256232202053, 0, 0.018341150134801865, -64), {}),  # double in / out
    ("RELU", (0.22638511657714844, 0, 0.19940657913684845, -64), {}),
    ("QUANTIZE", (0.01257256232202053, 0, 0.018341150134801865, -64), {}),
    ("QUANTIZE", (0.005604883190244436, 0, 0.00016607061843387783, -64), {}),
    ("ABS", (0.04882025718688965, 0, 0.09472586959600449, -64), {}),
    ("LEAKY_RELU", (0.01257256232202053, 0, 0.018341150134801865, -64), {"alpha": 0.2}),
    ("LEAKY_RELU", (0.0970480889081955, 0, 0.33625122904777527, 0), {"alpha": 0.32218319177627563}),
    ("LEAKY_RELU", (0.0970480889081955, 0, 0.33625122904777527, 0), {"alpha": -0.32218319177627563}),
    ("LEAKY_RELU", (0.05, 0, 0.05, 0), {"alpha": -0.5}),  # ties: sign applied after rounding
    ("HARD_SWISH", (0.0238261166960001, 106, 0.007887638173997402, 85), {}),  # double, then int16
    ("HARD_SWISH", (0.10965546220541, -41, 0.1452292799949646, -8), {}),
    ("RELU6", (0.06629834324121475, -92, 0.06629834324121475, -92), {}),  # float32 6.0f / scale
    ("RELU6", (0.11650485545396805, -107, 0.11650485545396805, -107), {}),
    ("ELU", (0.11687742173671722, 0, 0.07353715598583221, 0), {}),  # libm expf, not exp rounded
    ("ELU", (0.902778148651123, 0, 0.3963721990585327, 0), {}),
]


@pytest.mark.parametrize(("opcode", "q", "options"), SUBTLE)
def test_precision_sensitive_scales(bases, opcode, q, options):
    edited = _edit(_base(bases, opcode), q_in=q[:2], q_out=q[2:], **options)
    assert np.array_equal(_tflm(edited, 0), lut(opcode, *q, **options))


def test_tflm_rejections(bases):
    logistic = _edit(bases["RELU"], opcode="LOGISTIC", q_out=(1 / 256, -100))
    with pytest.raises(RuntimeError):
        _tflm(logistic, 0)
    with pytest.raises(MicronnError, match="zero point -128"):
        lut("LOGISTIC", 0.03, 0, 1 / 256, -100)
    hard_swish = _edit(bases["RELU"], opcode="HARD_SWISH", q_in=(0.5, 0), q_out=(0.5 / 128, 0))
    with pytest.raises(RuntimeError):
        _tflm(hard_swish, 0)
    with pytest.raises(MicronnError, match="HARD_SWISH"):
        lut("HARD_SWISH", 0.5, 0, 0.5 / 128, 0)


def test_relu_n1_to_1_has_no_tflm_kernel():
    data = _convert(lambda x, i: keras.layers.Lambda(lambda t: tf.clip_by_value(t, -1.0, 1.0))(x), 0)
    k = _find(data, "RELU_N1_TO_1")
    with pytest.raises(RuntimeError):
        _tflm(data, k)
    with pytest.raises(MicronnError, match="no kernel"):
        _lut(data, k)


def test_bad_arguments():
    with pytest.raises(MicronnError, match="no int8 lookup table"):
        lut("SOFTMAX", 0.1, 0, 0.1, 0)
    with pytest.raises(MicronnError, match="alpha"):
        lut("LEAKY_RELU", 0.1, 0, 0.1, 0)
    with pytest.raises(MicronnError, match="options"):
        lut("RELU", 0.1, 0, 0.1, 0, alpha=0.1)
    with pytest.raises(MicronnError, match="positive"):
        lut("RELU", 0.0, 0, 0.1, 0)
    table = lut("TANH", 0.05, 3, 1 / 128, 0)
    assert table.dtype == np.int8 and table.shape == (256,)
