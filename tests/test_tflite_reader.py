"""Tests for micronn.tflite, the dependency-free .tflite reader.

The reader is checked against TensorFlow's own generated flatbuffer code
(``tensorflow.lite.python.schema_py_generated``), against the facts listed in
``../shared/models/MODELS.md``, against a freshly converted Keras model, and
with truncated and corrupted files.
"""

import os
import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from micronn import tflite
from micronn.errors import MicronnError

from .conftest import missing

SHARED = Path(os.environ.get("MICRONN_SHARED", Path(__file__).resolve().parents[2] / "shared"))
MODELS = SHARED / "models"

# Facts from MODELS.md: bytes, input (shape, scale, zp), output (shape, scale, zp), ops.
FACTS = {
    "mlperf_tiny_ic_resnet8": (
        98_496,
        ((1, 32, 32, 3), 1.0, -128),
        ((1, 10), 1 / 256, -128),
        {"CONV_2D": 9, "ADD": 3, "AVERAGE_POOL_2D": 1, "RESHAPE": 1,
         "FULLY_CONNECTED": 1, "SOFTMAX": 1},
    ),
    "mlperf_tiny_kws_dscnn": (
        53_936,
        ((1, 49, 10, 1), 0.584703, 83),
        ((1, 12), 1 / 256, -128),
        {"CONV_2D": 5, "DEPTHWISE_CONV_2D": 4, "AVERAGE_POOL_2D": 1, "RESHAPE": 1,
         "FULLY_CONNECTED": 1, "SOFTMAX": 1},
    ),
    "tflm_hello_world_int8": (
        2_704,
        ((1, 1), 0.0244801, -128),
        ((1, 1), 0.00829096, 5),
        {"FULLY_CONNECTED": 3},
    ),
    "tflm_micro_speech_int8": (
        18_800,
        ((1, 1960), 0.101716, -128),
        ((1, 4), 1 / 256, -128),
        {"RESHAPE": 1, "DEPTHWISE_CONV_2D": 1, "FULLY_CONNECTED": 1, "SOFTMAX": 1},
    ),
    "tflm_person_detection_int8": (
        300_568,
        ((1, 96, 96, 1), 0.00784314, -1),
        ((1, 2), 1 / 256, -128),
        {"DEPTHWISE_CONV_2D": 14, "CONV_2D": 14, "AVERAGE_POOL_2D": 1, "RESHAPE": 1,
         "SOFTMAX": 1},
    ),
}  # fmt: skip
WEIGHTED_OPS = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"}


def model_path(name: str) -> Path:
    path = MODELS / f"{name}.tflite"
    if not path.is_file():
        missing(f"shared model {path} not found (set MICRONN_SHARED)")
    return path


@pytest.fixture(scope="module")
def sg():
    """TensorFlow's generated schema module (the reference parser)."""
    from tensorflow.lite.python import schema_py_generated

    return schema_py_generated


def enum_names(enum_class) -> dict[int, str]:
    return {v: k for k, v in vars(enum_class).items() if not k.startswith("_")}


def camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


# Option keys whose values are enum names, and the enum class they come from.
ENUM_KEYS = {
    "padding": "Padding",
    "fused_activation_function": "ActivationFunctionType",
    "weights_format": "FullyConnectedOptionsWeightsFormat",
    "quantized_bias_type": "TensorType",
    "out_type": "TensorType",
}


def check_against_tensorflow(model: tflite.Model, buf: bytes, sg) -> None:
    """Every decoded field equals what TensorFlow's own parser reads."""
    ref = sg.ModelT.InitFromPackedBuf(bytearray(buf), 0)
    assert model.version == ref.version
    assert model.description == (ref.description or b"").decode()
    assert model.subgraph_count == len(ref.subgraphs)
    assert model.source_bytes == len(buf)

    def buffer_bytes(index: int) -> bytes | None:
        b = ref.buffers[index]
        if b.offset > 1:
            return buf[b.offset : b.offset + b.size] or None
        return None if b.data is None or len(b.data) == 0 else b.data.tobytes()

    assert model.metadata == {m.name.decode(): buffer_bytes(m.buffer) or b"" for m in ref.metadata or []}
    sub = ref.subgraphs[0]
    assert model.inputs == list(sub.inputs)
    assert model.outputs == list(sub.outputs)

    types = {k: v.lower() for k, v in enum_names(sg.TensorType).items()}
    assert len(model.tensors) == len(sub.tensors)
    for t, r in zip(model.tensors, sub.tensors, strict=True):
        assert t.name == r.name.decode()
        assert t.shape == tuple(r.shape if r.shape is not None else ())
        sig = r.shapeSignature
        assert t.shape_signature == (None if sig is None else tuple(sig))
        assert t.dtype == types[r.type]
        assert t.buffer == r.buffer
        assert t.data == buffer_bytes(r.buffer)
        assert t.is_variable == r.isVariable
        q = r.quantization
        scale = None if q is None or q.scale is None or not len(q.scale) else q.scale
        zp = None if q is None or q.zeroPoint is None or not len(q.zeroPoint) else q.zeroPoint
        for ours, theirs, dtype in (
            (t.scale, scale, np.float32),
            (t.zero_point, zp, np.int64),
        ):
            if theirs is None:
                assert ours is None
            else:
                assert ours.dtype == dtype
                np.testing.assert_array_equal(ours, theirs)
        assert t.quantized_dimension == (q.quantizedDimension if q else 0)

    op_names = enum_names(sg.BuiltinOperator)
    option_names = enum_names(sg.BuiltinOptions)
    assert len(model.operators) == len(sub.operators)
    for op, r in zip(model.operators, sub.operators, strict=True):
        code = ref.operatorCodes[r.opcodeIndex]
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        assert op.opcode == op_names.get(builtin, f"BUILTIN_{builtin}")
        assert op.version == code.version
        assert op.custom_code == (None if code.customCode is None else code.customCode.decode())
        assert op.inputs == list(r.inputs)
        assert op.outputs == list(r.outputs)
        assert op.intermediates == list(r.intermediates if r.intermediates is not None else [])
        if r.builtinOptionsType == 0:
            assert op.options == {}
            continue
        fields = vars(r.builtinOptions)
        assert {camel(k) for k in op.options} == set(fields), option_names[r.builtinOptionsType]
        for key, value in op.options.items():
            expected = fields[camel(key)]
            if key in ENUM_KEYS:
                assert value == enum_names(getattr(sg, ENUM_KEYS[key]))[expected], key
            elif isinstance(expected, np.ndarray) or value is None:
                assert value == (None if expected is None else list(expected)), key
            else:
                assert value == expected, key
                assert type(value) is type(expected), key


# ---------------------------------------------------------------- real models


@pytest.mark.parametrize("name", sorted(FACTS))
def test_matches_tensorflow(name, sg):
    path = model_path(name)
    buf = path.read_bytes()
    check_against_tensorflow(tflite.load(path), buf, sg)


@pytest.mark.parametrize("name", sorted(FACTS))
def test_models_md_facts(name):
    size, (in_shape, in_s, in_zp), (out_shape, out_s, out_zp), ops = FACTS[name]
    m = tflite.load(model_path(name))
    assert m.source_bytes == size
    assert m.subgraph_count == 1
    assert Counter(op.opcode for op in m.operators) == Counter(ops)
    for ids, shape, scale, zp in ((m.inputs, in_shape, in_s, in_zp),
                                  (m.outputs, out_shape, out_s, out_zp)):  # fmt: skip
        (t,) = (m.tensors[i] for i in ids)
        assert (t.shape, t.dtype) == (shape, "int8")
        assert t.scale[0] == pytest.approx(scale, rel=1e-5)
        assert t.zero_point.tolist() == [zp]
    # Fully int8: int8 weights with zero point 0 and int32 biases.
    for op in m.operators:
        if op.opcode not in WEIGHTED_OPS:
            continue
        w, b = m.tensors[op.inputs[1]], m.tensors[op.inputs[2]]
        assert w.dtype == "int8" and not w.zero_point.any()
        assert b.dtype == "int32" and b.array().shape == b.shape
        channels = w.shape[3] if op.opcode == "DEPTHWISE_CONV_2D" else w.shape[0]
        per_channel = op.opcode != "FULLY_CONNECTED"
        assert w.scale.size == (channels if per_channel else 1)
        assert w.array().shape == w.shape
        assert {t.dtype for t in (m.tensors[op.inputs[0]], m.tensors[op.outputs[0]])} == {"int8"}


def test_model_quirks():
    kws = tflite.load(model_path("mlperf_tiny_kws_dscnn"))
    assert kws.tensors[kws.operators[0].inputs[1]].shape[1:3] == (10, 4)
    pools = [op.options for op in kws.operators if op.opcode == "AVERAGE_POOL_2D"]
    assert [(p["filter_height"], p["filter_width"]) for p in pools] == [(25, 5)]

    speech = tflite.load(model_path("tflm_micro_speech_int8"))
    (dw,) = (op for op in speech.operators if op.opcode == "DEPTHWISE_CONV_2D")
    assert dw.options["depth_multiplier"] == 8
    assert speech.tensors[dw.inputs[1]].shape == (1, 10, 8, 8)
    assert speech.operators[0].options == {"new_shape": [-1, 49, 40, 1]}

    person = tflite.load(model_path("tflm_person_detection_int8"))
    odd = [t for t in person.tensors if len(t.shape) == 1 and t.quantized_dimension == 3]
    assert len(odd) == 14 and {t.dtype for t in odd} == {"int32"}
    # An old (TOCO) file: its operator codes only set deprecated_builtin_code.
    assert person.operators[0].opcode == "DEPTHWISE_CONV_2D"
    assert person.operators[0].options["depth_multiplier"] == 8
    activations = set()
    for name in FACTS:
        for op in tflite.load(model_path(name)).operators:
            activations.add(op.options.get("fused_activation_function", "NONE"))
    assert activations == {"NONE", "RELU", "RELU6"}


def test_load_sources(tmp_path):
    path = model_path("tflm_hello_world_int8")
    buf = path.read_bytes()
    ref = tflite.load(path)
    for src in (str(path), buf, bytearray(buf), memoryview(buf)):
        m = tflite.load(src)
        assert [t.name for t in m.tensors] == [t.name for t in ref.tensors]
        assert m.operators == ref.operators
    with pytest.raises(MicronnError, match="cannot read"):
        tflite.load(tmp_path / "missing.tflite")
    with pytest.raises(TypeError):
        tflite.load(42)


# ---------------------------------------------------------------- Keras model


@pytest.mark.filterwarnings("ignore:Statistics for quantized inputs")
def test_converted_keras_model(sg):
    import tensorflow as tf

    keras = tf.keras
    inp = keras.Input((16, 16, 3), batch_size=1)
    x = keras.layers.Conv2D(8, (3, 5), strides=(2, 1), padding="same", activation="relu6")(inp)
    x = keras.layers.DepthwiseConv2D(
        (3, 3),
        depth_multiplier=2,
        padding="valid",
        dilation_rate=(2, 2),
        activation="relu",
    )(x)
    x = keras.layers.MaxPooling2D((2, 3), strides=(2, 2), padding="valid")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(10)(x)
    out = keras.layers.Softmax()(x)
    net = keras.Model(inp, out)
    rng = np.random.default_rng(0)

    def representative():
        for _ in range(8):
            yield [rng.standard_normal((1, 16, 16, 3)).astype(np.float32)]

    conv = tf.lite.TFLiteConverter.from_keras_model(net)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = tf.int8
    buf = conv.convert()

    m = tflite.load(buf)
    check_against_tensorflow(m, buf, sg)
    ops = {op.opcode: op for op in m.operators}
    assert list(ops) == ["CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D", "RESHAPE",
                         "FULLY_CONNECTED", "SOFTMAX"]  # fmt: skip
    assert ops["CONV_2D"].options == {
        "padding": "SAME", "stride_w": 1, "stride_h": 2,
        "fused_activation_function": "RELU6", "dilation_w_factor": 1,
        "dilation_h_factor": 1, "quantized_bias_type": "FLOAT32",
    }  # fmt: skip
    assert ops["DEPTHWISE_CONV_2D"].options == {
        "padding": "VALID", "stride_w": 1, "stride_h": 1, "depth_multiplier": 2,
        "fused_activation_function": "RELU", "dilation_w_factor": 2,
        "dilation_h_factor": 2,
    }  # fmt: skip
    assert ops["MAX_POOL_2D"].options == {
        "padding": "VALID", "stride_w": 2, "stride_h": 2, "filter_width": 3,
        "filter_height": 2, "fused_activation_function": "NONE",
    }  # fmt: skip
    assert ops["FULLY_CONNECTED"].options["fused_activation_function"] == "NONE"
    assert ops["SOFTMAX"].options == {"beta": 1.0}
    (i,), (o,) = m.inputs, m.outputs
    assert (m.tensors[i].shape, m.tensors[i].dtype) == ((1, 16, 16, 3), "int8")
    assert (m.tensors[o].shape, m.tensors[o].dtype) == ((1, 10), "int8")

    # Per-channel int8 conv weights (OHWI) dequantize back to the Keras kernel (HWIO).
    w = m.tensors[ops["CONV_2D"].inputs[1]]
    assert w.shape == (8, 3, 5, 3) and w.quantized_dimension == 0
    kernel = net.layers[1].get_weights()[0].transpose(3, 0, 1, 2)
    scale = w.scale.reshape(-1, 1, 1, 1)
    assert np.all(np.abs(w.array() * scale - kernel) <= scale / 2 + 1e-6)


# ------------------------------------------------------ hand-built flatbuffers


def buffer(sg, data=None, offset=0, size=0):
    b = sg.BufferT()
    b.data, b.offset, b.size = data, offset, size
    return b


def build(sg, **changes) -> bytes:
    """A tiny model built with TensorFlow's object API; ``changes`` tweak it."""
    import flatbuffers

    def tensor(name, shape, ttype, buffer, scale=None, zp=None, qdim=0):
        t = sg.TensorT()
        t.name, t.shape, t.type, t.buffer = name.encode(), shape, ttype, buffer
        if scale is not None:
            t.quantization = sg.QuantizationParametersT()
            t.quantization.scale, t.quantization.zeroPoint = scale, zp
            t.quantization.quantizedDimension = qdim
        return t

    tensors = [
        tensor("in", [1, 4], sg.TensorType.INT8, 0, [0.5], [3]),
        tensor("w", [2, 4], sg.TensorType.INT8, 1, [0.25, 0.125], [0, 0]),
        tensor("scalar", None, sg.TensorType.FLOAT32, 2),
        tensor("out", [1, 2], sg.TensorType.INT8, 0, [1.0], [0]),
    ]
    weights = list(np.arange(-4, 4, dtype=np.int8).tobytes())
    scalar = list(np.float32(2.5).tobytes())
    buffers = [buffer(sg, d) for d in (None, weights, scalar, list(b"v1.2"))]
    codes = []
    for code in ((9, 9, None), (32, 32, b"MyOp"), (127, 250, None)):  # FC, CUSTOM, new
        c = sg.OperatorCodeT()
        c.deprecatedBuiltinCode, c.builtinCode, c.customCode = code
        codes.append(c)
    ops = []
    for index, inputs in ((0, [0, 1, -1]), (1, [3]), (2, [2])):
        op = sg.OperatorT()
        op.opcodeIndex, op.inputs, op.outputs = index, inputs, [3 if index == 0 else 2]
        ops.append(op)
    ops[0].builtinOptionsType = sg.BuiltinOptions.FullyConnectedOptions
    ops[0].builtinOptions = sg.FullyConnectedOptionsT()
    ops[0].builtinOptions.fusedActivationFunction = sg.ActivationFunctionType.RELU
    sub = sg.SubGraphT()
    sub.tensors, sub.operators, sub.inputs, sub.outputs = tensors, ops, [0], [3]
    meta = sg.MetadataT()
    meta.name, meta.buffer = b"version", 3
    model = sg.ModelT()
    model.version, model.description = 3, b"hand built"
    model.operatorCodes, model.subgraphs, model.buffers = codes, [sub], buffers
    model.metadata = [meta]
    for path, value in changes.items():
        obj = model
        *parents, leaf = path.split("__")
        for part in parents:
            obj = obj[int(part)] if part.isdigit() else getattr(obj, part)
        if leaf.isdigit():
            obj[int(leaf)] = value
        else:
            setattr(obj, leaf, value)
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def test_hand_built_model(sg):
    buf = build(sg)
    m = tflite.load(buf)
    check_against_tensorflow(m, buf, sg)
    assert m.description == "hand built" and m.metadata == {"version": b"v1.2"}
    w, scalar = m.tensors[1], m.tensors[2]
    assert w.array().tolist() == [[-4, -3, -2, -1], [0, 1, 2, 3]]
    assert (scalar.shape, scalar.array().shape, float(scalar.array())) == ((), (), 2.5)
    assert scalar.scale is None and scalar.zero_point is None
    assert m.tensors[3].data is None
    fc, custom, future = m.operators
    assert fc.inputs == [0, 1, -1]
    assert fc.options["fused_activation_function"] == "RELU"
    assert (custom.opcode, custom.custom_code, custom.options) == ("CUSTOM", "MyOp", {})
    assert future.opcode == "BUILTIN_250"


def test_external_buffer(sg):
    """Buffer.offset/size (large-model layout) point past the flatbuffer."""
    payload = bytes(range(8))
    size = len(build(sg, buffers__1=buffer(sg, None, 16, 8)))
    offset = (size + 15) // 16 * 16
    buf = build(sg, buffers__1=buffer(sg, None, offset, 8))
    assert len(buf) == size
    buf = buf + bytes(offset - size) + payload
    m = tflite.load(buf)
    check_against_tensorflow(m, buf, sg)
    assert m.tensors[1].data == payload
    with pytest.raises(MicronnError, match="truncated file.*buffer 1 external data"):
        tflite.load(buf[:-1])


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"subgraphs__0__tensors__1__buffer": 99}, "tensor 1 buffer index 99 out of range"),
        ({"subgraphs__0__tensors__1__type": 99}, "tensor 1 type: bad enum value 99"),
        ({"subgraphs__0__operators__1__inputs": [7]},
         r"operator 1 \(CUSTOM\) input tensor 7 out of range"),
        ({"subgraphs__0__operators__0__outputs": [-1]}, "operator 0 .* output tensor -1"),
        ({"subgraphs__0__operators__2__opcodeIndex": 5}, "operator 2 opcode index 5"),
        ({"subgraphs__0__outputs": [4]}, "subgraph 0 output tensor 4 out of range"),
        ({"metadata__0__buffer": 9}, "metadata 0 buffer index 9 out of range"),
        ({"operatorCodes__0__builtinCode": -3, "operatorCodes__0__deprecatedBuiltinCode": -3},
         "bad builtin code -3"),
        ({"subgraphs": []}, "no subgraphs"),
    ],
)  # fmt: skip
def test_bad_references(sg, changes, message):
    with pytest.raises(MicronnError, match=message):
        tflite.load(build(sg, **changes))


def test_bad_headers_and_arrays(sg):
    buf = build(sg)
    with pytest.raises(MicronnError, match="truncated file"):
        tflite.load(buf[:7])
    with pytest.raises(MicronnError, match="bad identifier"):
        tflite.load(buf[:4] + b"TFL2" + buf[8:])
    m = tflite.load(buf)
    with pytest.raises(MicronnError, match="has no data"):
        m.tensors[0].array()
    m.tensors[1].shape = (3, 4)
    with pytest.raises(MicronnError, match="do not fit shape"):
        m.tensors[1].array()


def test_shared_vector_bomb(sg):
    """Thousands of tensors sharing one huge shape vector are refused quickly."""
    import flatbuffers

    n = 4000
    b = flatbuffers.Builder(0)
    b.StartVector(4, n, 4)
    for _ in range(n):
        b.PrependInt32(1)
    shape = b.EndVector()
    sg.TensorStart(b)
    sg.TensorAddShape(b, shape)
    tensor = sg.TensorEnd(b)
    b.StartVector(4, n, 4)
    for _ in range(n):
        b.PrependUOffsetTRelative(tensor)
    tensors = b.EndVector()
    sg.SubGraphStart(b)
    sg.SubGraphAddTensors(b, tensors)
    sub = sg.SubGraphEnd(b)
    b.StartVector(4, 1, 4)
    b.PrependUOffsetTRelative(sub)
    subs = b.EndVector()
    sg.BufferStart(b)
    empty = sg.BufferEnd(b)
    b.StartVector(4, 1, 4)
    b.PrependUOffsetTRelative(empty)
    buffers = b.EndVector()
    sg.ModelStart(b)
    sg.ModelAddSubgraphs(b, subs)
    sg.ModelAddBuffers(b, buffers)
    b.Finish(sg.ModelEnd(b), file_identifier=b"TFL3")
    with pytest.raises(MicronnError, match="re-reads shared data"):
        tflite.load(bytes(b.Output()))


# ---------------------------------------------------------------- corruption


def load_or_reject(buf: bytes) -> None:
    """Loading may succeed or raise MicronnError; anything else is a bug."""
    try:
        m = tflite.load(buf)
    except MicronnError:
        return
    for t in m.tensors:
        if t.data is not None:
            try:
                t.array()
            except MicronnError:
                pass


def test_truncation():
    small = model_path("tflm_hello_world_int8").read_bytes()
    for n in range(len(small)):
        load_or_reject(small[:n])
    big = model_path("tflm_person_detection_int8").read_bytes()
    rng = random.Random(1)
    for n in rng.sample(range(len(big)), 300):
        load_or_reject(big[:n])
    with pytest.raises(MicronnError, match="truncated file"):
        tflite.load(big[: len(big) // 2])


def test_byte_corruption():
    small = model_path("tflm_hello_world_int8").read_bytes()
    for pos in range(len(small)):  # every byte, two ways
        for value in (0xFF, small[pos] ^ 0x80):
            load_or_reject(small[:pos] + bytes([value]) + small[pos + 1 :])
    rng = random.Random(2)
    for name in FACTS:
        buf = model_path(name).read_bytes()
        # Aim most flips at the structure rather than at the weight bytes.
        is_data = np.zeros(len(buf), bool)
        for t in tflite.load(buf).tensors:
            if t.data is not None and len(t.data) >= 16:
                at = buf.find(t.data)
                is_data[at : at + len(t.data)] = True
        structure = np.flatnonzero(~is_data).tolist()
        for _ in range(150):
            bad = bytearray(buf)
            for _ in range(rng.randint(1, 6)):
                pool = structure if rng.random() < 0.8 else range(len(bad))
                bad[rng.choice(pool)] = rng.choice((0, 0xFF, 0x7F, 0x80, rng.randrange(256)))
            load_or_reject(bytes(bad))
