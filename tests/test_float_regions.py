"""Float regions (host/micronn/lower_sequence.py): DEQUANTIZE -> float movement and
elementwise ops with branches -> QUANTIZEs, as TensorFlow's converter leaves them in
unrolled LSTMs and GRUs (a gate SPLIT in float) and around float-only ops (NEG), packed
to STRIDED_COPY and LUT ops and run on the unix port bit-exact with TFLite Micro.

The converter leaves the GRU's SPLIT in float at random (about one conversion in four of
the same model), so besides the converter's own regions these tests make them
deterministically: _floatify() turns chosen int8 ops of a converted model into their
float forms between DEQUANTIZE and QUANTIZE, exactly the converter's pattern, and can
give the QUANTIZEs other quantizations (tables that are not the identity)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from micronn import blob
from micronn import lower as _lower  # noqa: F401  (first: lower.py imports the group modules)
from micronn.errors import MicronnError

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

keras = pytest.importorskip("keras")

SAMPLES = 24
MOVES = ("SPLIT", "SPLIT_V", "STRIDED_SLICE", "SLICE", "UNPACK", "RESHAPE", "CONCATENATION")


def _convert(fn, shape, batch=None, seed=0, int8_form=True):
    """The converted model; int8_form: with the converter's random float SPLITs undone."""
    from micronn.convert import keras_to_tflite

    keras.utils.set_random_seed(seed)
    x = keras.Input(shape, batch_size=batch)
    calib = (np.random.default_rng(seed).normal(size=(32, *shape)) * 1.5).astype(np.float32)
    tb = keras_to_tflite(keras.Model(x, fn(x)), calib)
    return _int8_form(tb) if int8_form else tb


def _opcodes(tb: bytes) -> list[str]:
    from micronn import tflite as tfl

    return [o.opcode for o in tfl.load(tb).operators]


def _model(tb: bytes):
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

    return fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(tb, 0)), fb


def _write(m) -> bytes:
    import flatbuffers

    b = flatbuffers.Builder(0)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def _int8_form(tb: bytes) -> bytes:
    """The converter's random float SPLITs undone: DEQUANTIZE -> one movement op -> a
    QUANTIZE per output (all one quantization) becomes that op in int8, so that tests start
    from one form."""
    m, fb = _model(tb)
    sg = m.subgraphs[0]
    code = {k: max(oc.builtinCode, oc.deprecatedBuiltinCode) for k, oc in enumerate(m.operatorCodes)}
    is_op = lambda op, name: code[op.opcodeIndex] == getattr(fb.BuiltinOperator, name)     # noqa: E731
    readers = {}
    for op in sg.operators:
        for i in op.inputs:
            readers.setdefault(i, []).append(op)
    drop = set()
    for d in sg.operators:
        users = readers.get(d.outputs[0], []) if is_op(d, "DEQUANTIZE") else []
        if len(users) != 1:
            continue
        mid = users[0]
        if not any(is_op(mid, name) for name in MOVES):
            continue
        quants = [readers.get(o, []) for o in mid.outputs]
        if not all(len(q) <= 1 and all(is_op(u, "QUANTIZE") for u in q) for q in quants):
            continue
        mid.inputs = [d.inputs[0] if i == d.outputs[0] else i for i in mid.inputs]
        mid.outputs = list(mid.outputs)
        for k, q in enumerate(quants):
            if q:
                mid.outputs[k] = q[0].outputs[0]
            else:       # an output nothing reads: int8 too
                t = sg.tensors[mid.outputs[k]]
                t.type, t.quantization = fb.TensorType.INT8, sg.tensors[d.inputs[0]].quantization
        drop |= {id(d)} | {id(q[0]) for q in quants if q}
    sg.operators = [op for op in sg.operators if id(op) not in drop]
    return _write(m)


def _floatify(tb: bytes, pick, requant=None) -> bytes:
    """The model with the int8 ops pick(k, opcode) chooses turned float: the tensors
    between chosen ops become float32, each int8 activation a chosen op reads comes
    through a new DEQUANTIZE, each output read elsewhere goes through a new QUANTIZE.
    requant(k) -> (scale factor, zero point shift) gives output k of the region's
    QUANTIZEs another quantization (the ops reading it follow it)."""
    m, fb = _model(tb)
    sg = m.subgraphs[0]
    names = {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}

    def name_of(op):
        oc = m.operatorCodes[op.opcodeIndex]
        return names[max(oc.builtinCode, oc.deprecatedBuiltinCode)]

    def code(name):
        c = getattr(fb.BuiltinOperator, name)
        for k, oc in enumerate(m.operatorCodes):
            if max(oc.builtinCode, oc.deprecatedBuiltinCode) == c:
                return k
        oc = fb.OperatorCodeT()
        oc.builtinCode, oc.deprecatedBuiltinCode, oc.version = c, min(c, 127), 1
        m.operatorCodes.append(oc)
        return len(m.operatorCodes) - 1

    def is_const(i):
        b = sg.tensors[i].buffer
        return b > 0 and m.buffers[b].data is not None and len(m.buffers[b].data) > 0

    def float_copy(i):
        src = sg.tensors[i]
        t = fb.TensorT()
        t.shape, t.type, t.buffer = list(src.shape), fb.TensorType.FLOAT32, 0
        t.name = (src.name.decode() if isinstance(src.name, bytes) else src.name) + "/float"
        sg.tensors.append(t)
        return len(sg.tensors) - 1

    def new_op(name, i, o):
        op = fb.OperatorT()
        op.opcodeIndex, op.inputs, op.outputs = code(name), [i], [o]
        return op

    chosen = [k for k, op in enumerate(sg.operators) if pick(k, name_of(op))]
    assert chosen, "nothing to floatify"
    made = {o for k in chosen for o in sg.operators[k].outputs}
    readers = {}
    for k, op in enumerate(sg.operators):
        for i in op.inputs:
            readers.setdefault(i, set()).add(k)
    fl = {}         # int8 tensor -> its float stand-in
    ops, n_out = [], 0
    for k, op in enumerate(sg.operators):
        if k not in chosen:
            ops.append(op)
            continue
        ins = list(op.inputs)
        for j, i in enumerate(ins):
            if i < 0 or is_const(i) or sg.tensors[i].type != fb.TensorType.INT8:
                continue
            if i not in fl:
                fl[i] = float_copy(i)
                if i not in made:
                    ops.append(new_op("DEQUANTIZE", i, fl[i]))
            ins[j] = fl[i]
        op.inputs = ins
        outs = list(op.outputs)
        quants = []
        for j, o in enumerate(outs):
            fl[o] = float_copy(o)
            outs[j] = fl[o]
            if readers.get(o, set()) - set(chosen) or o in sg.outputs:
                quants.append(new_op("QUANTIZE", fl[o], o))
                if requant is not None:
                    f, dz = requant(n_out)
                    q = sg.tensors[o].quantization
                    q.scale = [float(np.float32(q.scale[0] * f))]
                    q.zeroPoint = [int(np.clip(q.zeroPoint[0] + dz, -128, 127))]
                n_out += 1
        op.outputs = outs
        ops.append(op)
        ops.extend(quants)
    sg.operators = ops
    return _write(m)


def _check(unix, tb: bytes, kinds=("STRIDED_COPY",)) -> dict:
    """Packs tb, runs it on the unix port and compares with TFLite Micro; returns the blob's ops by kind."""
    from micronn import pack
    from micronn.reference import tflm_run
    from micronn.run import pack_sample, sample_inputs, split_result

    data = pack(tb)
    counts = {}
    for o in blob.read(data)["ops"]:
        counts[o["kind"]] = counts.get(o["kind"], 0) + 1
    for k in kinds:
        assert counts.get(k), (k, counts)
    x = sample_inputs(data, SAMPLES, 7)
    want = tflm_run(tb, x)
    unix.link.load(data)
    got = []
    for i in range(SAMPLES):
        y, _ = unix.link.run(pack_sample([x], i))
        got.append(split_result(y, [{"shape": (1, *want.shape[1:]), "dtype": want.dtype.name}])[0])
    got = np.stack(got).reshape(want.shape)
    assert np.array_equal(got, want), f"{np.count_nonzero(got != want)} of {want.size} differ"
    assert (want != want[:1]).any(), "the output does not depend on the input"
    return counts


# --- regions the converter writes ----------------------------------------------------

def test_converter_region_neg_then_two_slices(unix):
    """NEG has no int8 kernel: DEQUANTIZE -> NEG -> two STRIDED_SLICEs -> QUANTIZE each."""
    K = keras.ops
    tb = _convert(lambda x: K.negative(K.concatenate([K.negative(x)[:, :4], K.negative(x)[:, 6:]], axis=-1)), (12,),
                  int8_form=False)
    ops = _opcodes(tb)
    first = ops[:ops.index("CONCATENATION")]
    assert first.count("STRIDED_SLICE") == 2 and first.count("QUANTIZE") == 2 and "NEG" in first, ops
    counts = _check(unix, tb, ("STRIDED_COPY", "LUT"))
    assert "CONCATENATION" in counts


def _gru(x):
    return keras.layers.Dense(3)(keras.layers.GRU(8, unroll=True)(x))


def test_gru_with_its_split_in_float(unix):
    """An unrolled GRU whose first gate SPLIT the converter left in float (it does so at
    random: when this conversion did not, the same pattern is made from its int8 SPLIT)."""
    tb = _convert(_gru, (5, 4), batch=1, seed=3, int8_form=False)
    ops = _opcodes(tb)
    if "DEQUANTIZE" not in ops:
        first = ops.index("SPLIT")
        tb = _floatify(tb, lambda k, name: k == first)
        ops = _opcodes(tb)
    at = ops.index("DEQUANTIZE")
    assert ops[at + 1] == "SPLIT" and ops[at + 2] == "QUANTIZE", ops
    counts = _check(unix, tb)
    assert "LUT" in counts      # the cell's LOGISTIC and TANH


# --- regions made from int8 models -----------------------------------------------------

def _dense_pieces(split):
    """Dense(12) -> split into pieces -> Dense(3) of each -> one concatenated output."""
    L = keras.layers

    def build(x):
        y = L.Dense(12)(x)
        return L.Concatenate()([L.Dense(3)(p) for p in split(y)])
    return build


def _models():
    K = keras.ops
    return {
        "SPLIT": (_dense_pieces(lambda y: K.split(y, 3, axis=-1)), (6,)),
        "SPLIT_V": (_dense_pieces(lambda y: K.split(y, [5], axis=-1)), (6,)),
        "STRIDED_SLICE": (_dense_pieces(lambda y: [y[:, 1:11:3], y[:, ::-2]]), (6,)),
        "UNPACK": (_dense_pieces(lambda y: K.unstack(K.reshape(y, (-1, 3, 4)), axis=1)), (6,)),
    }


@pytest.mark.parametrize("opcode", ["SPLIT", "SPLIT_V", "STRIDED_SLICE", "UNPACK"])
@pytest.mark.parametrize("requant", [False, True], ids=["same", "requantized"])
def test_float_movement_is_tflite_micro(unix, opcode, requant):
    """DEQUANTIZE -> one float movement op -> QUANTIZE of each output, the outputs with
    their input's quantization (copies only) or others (a copy and a table each)."""
    fn, shape = _models()[opcode]
    tb = _convert(fn, shape, seed=len(opcode))
    assert opcode in _opcodes(tb)
    rng = np.random.default_rng(len(opcode))
    re = (lambda k: (float(rng.uniform(0.6, 1.8)), int(rng.integers(-20, 20)))) if requant else None
    tb = _floatify(tb, lambda k, name: name == opcode, re)
    counts = _check(unix, tb, ("STRIDED_COPY", "LUT") if requant else ("STRIDED_COPY",))
    assert opcode not in counts


@pytest.mark.parametrize("order,kind", [((0, 1), "STRIDED_COPY"), ((2, 0), "GATHER")])
def test_split_then_concatenation_of_its_pieces(unix, order, kind):
    """SPLIT -> CONCATENATION of two of its pieces, all float: one strided copy of the
    DEQUANTIZE's input when the pieces stay in order, a GATHER when they do not."""
    K = keras.ops
    fn = _dense_pieces(lambda y: [K.concatenate([K.split(y, 3, axis=-1)[k] for k in order], axis=-1)])
    tb = _convert(fn, (6,), seed=5)
    ops = _opcodes(tb)
    assert "SPLIT" in ops and "CONCATENATION" in ops
    first = ops.index("SPLIT")
    tb = _floatify(tb, lambda k, name: k in (first, first + 1))
    assert _opcodes(tb)[first:first + 4] == ["DEQUANTIZE", "SPLIT", "CONCATENATION", "QUANTIZE"]
    counts = _check(unix, tb, (kind,))
    assert "CONCATENATION" not in counts


def test_elementwise_ops_around_movement(unix):
    """NEG -> float SPLIT -> QUANTIZE: tables after copies, with the NEG in each."""
    K = keras.ops
    tb = _convert(_dense_pieces(lambda y: K.split(K.negative(y), 3, axis=-1)), (6,), seed=9)
    ops = _opcodes(tb)
    assert ops[ops.index("NEG") + 1:ops.index("NEG") + 3] == ["QUANTIZE", "SPLIT"], ops
    # the converter quantizes after NEG: make the SPLIT float too (DEQUANTIZE -> NEG -> SPLIT -> QUANTIZEs)
    split = ops.index("SPLIT")
    tb = _floatify(tb, lambda k, name: k == split)
    ops = _opcodes(tb)
    from micronn import tflite as tfl

    m = tfl.load(tb)
    # drop the QUANTIZE -> DEQUANTIZE pair between NEG and SPLIT: NEG's float output feeds the SPLIT
    q = next(o for o in m.operators if o.opcode == "QUANTIZE" and o.index == ops.index("NEG") + 1)
    d = next(o for o in m.operators if o.opcode == "DEQUANTIZE" and o.inputs == q.outputs)
    assert d is not None
    tb2 = _bypass(tb, q.index, d.index)
    counts = _check(unix, tb2, ("STRIDED_COPY", "LUT"))
    assert "SPLIT" not in counts


def _bypass(tb: bytes, q: int, d: int) -> bytes:
    """Remove the QUANTIZE q and DEQUANTIZE d after it: d's readers read q's float input."""
    m, _ = _model(tb)
    sg = m.subgraphs[0]
    src, dst = sg.operators[q].inputs[0], sg.operators[d].outputs[0]
    for op in sg.operators:
        op.inputs = [src if i == dst else i for i in op.inputs]
    sg.operators = [op for k, op in enumerate(sg.operators) if k not in (q, d)]
    return _write(m)


# --- refusals ------------------------------------------------------------------------------

def test_region_reading_another_float_value_is_refused():
    """A float op that joins two regions (two DEQUANTIZEs) is not one value's function."""
    from micronn import pack

    fn = _dense_pieces(lambda y: [keras.ops.concatenate([y[:, :4], y[:, 6:]], axis=-1)])
    tb = _convert(fn, (6,), seed=2)
    ops = _opcodes(tb)
    cat = ops.index("CONCATENATION")
    tb = _floatify(tb, lambda k, name: k == cat)        # each input through its own DEQUANTIZE
    with pytest.raises(MicronnError, match=r"also reads the float value .* from outside the region"):
        pack(tb)


def test_unsupported_float_op_in_a_region_is_refused():
    from micronn import pack

    tb = _convert(_dense_pieces(lambda y: keras.ops.split(y, 3, axis=-1)), (6,), seed=4)
    ops = _opcodes(tb)
    split = ops.index("SPLIT")
    fc = ops.index("FULLY_CONNECTED", split)
    tb = _floatify(tb, lambda k, name: k in (split, fc))      # a float FULLY_CONNECTED inside
    with pytest.raises(MicronnError, match=r"\(FULLY_CONNECTED\) of the float region after op \d+ \(DEQUANTIZE\)"):
        pack(tb)
