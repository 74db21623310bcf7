"""The oracles: TensorFlow Lite Micro's interpreter (PyPI tflite-micro), and where
it cannot be trusted on a model, desktop TFLite's reference kernels.

TFLite Micro allocates every tensor from the flatbuffer's static shapes. A
dilated convolution converted with the batch left open comes out as
SPACE_TO_BATCH_ND -> CONV_2D -> BATCH_TO_SPACE_ND whose static shapes say batch
1 where the real batch is dilation_h * dilation_w, so TFLite Micro reads memory
it never wrote and its outputs change with the arena it is given.
``tf.lite.Interpreter(..., experimental_op_resolver_type=BUILTIN_REF)`` runs
TFLite's reference kernels and resizes tensors as it goes: it is deterministic
and computes those models correctly. :func:`reference_run` asks TFLite Micro
first, checks that the model's static shapes are the ones the reference kernels
compute and that TFLite Micro gives the same bytes with a second, differently
sized arena (on some of these models it is wrong the same way every time), and
otherwise falls back to BUILTIN_REF and says why.

Facts (tests/test_oracle.py): BUILTIN_REF equals TFLite Micro byte for byte on
convolutions, depthwise convolutions, pooling, MEAN, ADD, MUL, PAD,
CONCATENATION and the activations. It does not on FULLY_CONNECTED: there it
requantizes per-channel layers with one rounding where TFLite Micro rounds twice,
and multiplies per-tensor scales in float32 first where TFLite Micro uses double,
so some values come out a step or a few apart (23 of hello_world's 256 outputs).
TFLite Micro stays the oracle wherever it can be trusted.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np

from .errors import MicronnError

TFLM, BUILTIN_REF = "tflm", "builtin_ref"
ORACLES = (TFLM, BUILTIN_REF)
NAMES = {TFLM: "TFLite Micro", BUILTIN_REF: "TFLite's reference kernels (BUILTIN_REF)"}


class Reference(NamedTuple):
    """Reference outputs, the oracle that gave them, and why it is not TFLite Micro (or None)."""

    y: np.ndarray
    oracle: str
    note: str | None


def _tflm_runtime():
    from .convert import _quiet

    try:
        with _quiet():      # its TensorFlow's start-up lines on stderr
            from tflite_micro.python.tflite_micro import runtime
    except ImportError as e:
        raise MicronnError("the reference needs tflite-micro: pip install 'micronn[tf]'") from e
    return runtime


def _samples(x, shape: tuple, dtype) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype != dtype:
        raise MicronnError(f"reference input must be {np.dtype(dtype).name}, not {x.dtype}")
    if x.ndim == len(shape) - 1 or x.shape[1:] != shape[1:]:
        x = x.reshape((-1,) + shape[1:])
    return x


def _io_counts(model: bytes) -> tuple[int, int]:
    from .tflite import load

    m = load(bytes(model))
    return len(m.inputs), len(m.outputs)


def _as_inputs(x, n_in: int) -> list:
    """x as a list with one array of samples per model input: a model with
    several inputs takes a list or tuple (one array per input, in the model's order)."""
    if isinstance(x, (list, tuple)):
        if len(x) != n_in:
            raise MicronnError(f"{len(x)} input arrays for a model with {n_in} inputs")
        return list(x)
    if n_in != 1:
        raise MicronnError(f"the model has {n_in} inputs: give a list of {n_in} arrays")
    return [x]


def _stack(ys: list, dtype) -> np.ndarray:
    return np.stack(ys) if ys else np.zeros((0,), dtype)


def tflm_run(model: bytes, x, arena_size: int | None = None, reset_at=()):
    """Run every sample of x (shape (N, *input_shape[1:])) through TFLite Micro.
    A model with several inputs takes a list of such arrays (one per input, the
    model's order); with several outputs the result is a list (one array per output).
    arena_size: bytes of tensor arena (None: the binding's default, ten times the model).
    The samples run in order through one interpreter, so a model with state carries it
    from one sample to the next; reset_at: sample indices before which the interpreter
    is reset (its state zeroed, as Model.reset() does on a board)."""
    runtime = _tflm_runtime()
    n_in, n_out = _io_counts(model)
    xs = _as_inputs(x, n_in)
    it = runtime.Interpreter.from_bytes(bytes(model), arena_size=arena_size)
    inds = [it.get_input_details(k) for k in range(n_in)]
    outds = [it.get_output_details(k) for k in range(n_out)]
    shapes = [tuple(int(d) for d in ind["shape"]) for ind in inds]
    samples = [_samples(xk, shape, ind["dtype"]) for xk, shape, ind in zip(xs, shapes, inds, strict=True)]
    if len({len(s) for s in samples}) > 1:
        raise MicronnError(f"the inputs hold different numbers of samples: {[len(s) for s in samples]}")
    ys: list[list] = [[] for _ in outds]
    for i in range(len(samples[0])):
        if i in reset_at:
            it.reset()
        for k in range(n_in):
            it.set_input(samples[k][i].reshape(shapes[k]), k)
        it.invoke()
        for k, outd in enumerate(outds):
            ys[k].append(np.array(it.get_output(k)).reshape(tuple(int(d) for d in outd["shape"]))[0])
    out = [_stack(y, outd["dtype"]) for y, outd in zip(ys, outds, strict=True)]
    return out[0] if n_out == 1 else out


# Operator versions the converter writes that BUILTIN_REF does not register although its
# kernel computes them the same way: int8 TILE is version 3 (the version counts dtypes;
# the reference kernel copies bytes of any type).
_REF_VERSIONS = {"TILE": 2}


def _ref_compatible(model: bytes, tf) -> bytes:
    from .tflite import load

    if not any(op.opcode in _REF_VERSIONS and op.version > _REF_VERSIONS[op.opcode]
               for op in load(model).operators):
        return model
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils as fbu

    codes = {getattr(schema.BuiltinOperator, name): v for name, v in _REF_VERSIONS.items()}
    m = fbu.convert_bytearray_to_object(bytearray(model))
    for oc in m.operatorCodes:
        code = max(oc.builtinCode, oc.deprecatedBuiltinCode)
        if code in codes and oc.version > codes[code]:
            oc.version = codes[code]
    return bytes(fbu.convert_object_to_bytearray(m))


def _builtin_ref(model: bytes, preserve: bool = False):
    from .convert import _tensorflow

    try:
        tf = _tensorflow()
    except ImportError as e:
        raise MicronnError("the BUILTIN_REF reference needs tensorflow: pip install 'micronn[tf]'") from e
    model = _ref_compatible(model, tf)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")      # tf.lite.Interpreter's deprecation notice
        try:
            it = tf.lite.Interpreter(model_content=bytes(model), experimental_preserve_all_tensors=preserve,
                                     experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_REF)
            it.allocate_tensors()
        except (RuntimeError, ValueError) as e:
            first = str(e).strip().split(".")[0][:200]
            raise MicronnError(f"TFLite's reference kernels cannot run the model: {first}") from None
    return it


def builtin_ref_run(model: bytes, x):
    """Run every sample of x through desktop TFLite's reference kernels (BUILTIN_REF);
    several inputs and outputs as tflm_run."""
    it = _builtin_ref(model)
    inds, outds = it.get_input_details(), it.get_output_details()
    xs = _as_inputs(x, len(inds))
    shapes = [tuple(int(d) for d in ind["shape"]) for ind in inds]
    samples = [_samples(xk, shape, ind["dtype"]) for xk, shape, ind in zip(xs, shapes, inds, strict=True)]
    ys: list[list] = [[] for _ in outds]
    for i in range(len(samples[0])):
        for k, ind in enumerate(inds):
            it.set_tensor(ind["index"], samples[k][i].reshape(shapes[k]))
        it.invoke()
        for k, outd in enumerate(outds):
            ys[k].append(it.get_tensor(outd["index"])[0].copy())
    out = [_stack(y, outd["dtype"]) for y, outd in zip(ys, outds, strict=True)]
    return out[0] if len(outds) == 1 else out


def _wrong_static_shapes(model: bytes) -> list[str]:
    """Tensors whose static shape in the flatbuffer (all TFLite Micro looks at)
    differs from the shape the reference kernels compute for them."""
    from .tflite import load

    try:
        it = _builtin_ref(model)
    except MicronnError:        # no TensorFlow, or a model it cannot run: nothing to compare
        return []
    static = load(model).tensors
    wrong = []
    for d in it.get_tensor_details():
        i, shape = int(d["index"]), tuple(int(v) for v in d["shape"])
        if i < len(static) and tuple(static[i].shape) != shape:
            wrong.append(f"{static[i].name} {tuple(static[i].shape)} is really {shape}")
    return wrong


def tflm_doubt(model: bytes, x: np.ndarray, y: np.ndarray | None = None) -> str | None:
    """Why TFLite Micro's outputs for x cannot be trusted, or None. Two checks:
    the static shapes it allocates from must be the shapes the reference kernels
    compute, and the same samples with a second arena of another size (other
    memory, other leftovers) must give the same bytes. y: the outputs of a first
    run, if already at hand."""
    reasons = []
    wrong = _wrong_static_shapes(model)
    if wrong:
        more = f" and {len(wrong) - 1} more" if len(wrong) > 1 else ""
        reasons.append(f"the model's static shapes, which TFLite Micro allocates from, are wrong "
                       f"({wrong[0]}{more})")
    first = tflm_run(model, x) if y is None else y
    arena = 2 * 10 * len(model) + 4096      # the binding's default is ten times the model
    second = tflm_run(model, x, arena_size=arena)
    if isinstance(first, list):     # several outputs: compare them all at once
        first = np.concatenate([np.asarray(a, np.int64).reshape(len(a), -1) for a in first], axis=1)
        second = np.concatenate([np.asarray(a, np.int64).reshape(len(a), -1) for a in second], axis=1)
    if not (first.shape == second.shape and np.array_equal(first, second)):
        n = int(np.count_nonzero(first != second)) if first.shape == second.shape else first.size
        reasons.append(f"TFLite Micro is not deterministic on this model ({n} of {first.size} output values "
                       f"change with its arena)")
    return "; ".join(reasons) or None


def reference_run(model: bytes, x: np.ndarray, oracle: str = "auto") -> Reference:
    """Reference outputs for the samples x. oracle: "tflm", "builtin_ref", or
    "auto": TFLite Micro if it is deterministic on the model (and can run it),
    else BUILTIN_REF, with the reason in ``note``."""
    if oracle not in (*ORACLES, "auto"):
        raise MicronnError(f"unknown oracle {oracle!r}: use one of {', '.join(ORACLES)} or auto")
    if oracle == BUILTIN_REF:
        return Reference(builtin_ref_run(model, x), BUILTIN_REF, None)
    try:
        y = tflm_run(model, x)
    except RuntimeError as e:
        if oracle == TFLM:
            raise MicronnError(f"TFLite Micro cannot run the model: {e}") from None
        note = f"TFLite Micro cannot run this model ({str(e).strip().splitlines()[0]})"
    else:
        note = tflm_doubt(model, x, y) if oracle == "auto" else None
        if note is None:
            return Reference(y, TFLM, None)
    try:
        y = builtin_ref_run(model, x)
    except MicronnError as e:
        raise MicronnError(f"no oracle for this model: {note}, and {str(e)[0].lower()}{str(e)[1:]}") from None
    return Reference(y, BUILTIN_REF, f"{note}; compared with {NAMES[BUILTIN_REF]} instead")


def tflm_tensors(model: bytes, sample: np.ndarray, indices) -> dict[int, np.ndarray]:
    """The given tensors of one TFLite Micro inference (for tracing). The indices
    must exist: the binding does not check them."""
    runtime = _tflm_runtime()
    it = runtime.Interpreter.from_bytes(bytes(model), intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors)
    shape = tuple(int(d) for d in it.get_input_details(0)["shape"])
    it.set_input(np.asarray(sample).reshape(shape), 0)
    it.invoke()
    out = {}
    for i in indices:
        t = it.GetTensor(int(i), 0)
        out[int(i)] = np.array((t[0] if isinstance(t, list) else t)["tensor_data"])
    return out


def builtin_ref_tensors(model: bytes, sample: np.ndarray, indices) -> dict[int, np.ndarray]:
    """The given tensors of one BUILTIN_REF inference (for tracing)."""
    it = _builtin_ref(model, preserve=True)
    ind = it.get_input_details()[0]
    it.set_tensor(ind["index"], np.asarray(sample).reshape(tuple(int(d) for d in ind["shape"])))
    it.invoke()
    return {int(i): it.get_tensor(int(i)).copy() for i in indices}


def reference_tensors(model: bytes, sample: np.ndarray, indices, oracle: str = TFLM) -> dict[int, np.ndarray]:
    """Tensors of one inference by the given oracle ("tflm" or "builtin_ref")."""
    if oracle == BUILTIN_REF:
        return builtin_ref_tensors(model, sample, indices)
    return tflm_tensors(model, sample, indices)


def tflm_arena_total(model: bytes) -> int:
    """TFLite Micro's "Arena allocation total" for a model (print_allocations())."""
    import os
    import re
    import sys
    import tempfile

    runtime = _tflm_runtime()
    it = runtime.Interpreter.from_bytes(bytes(model))
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile() as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
        try:
            it.print_allocations()
        finally:
            for fd, old in zip((1, 2), saved, strict=True):
                os.dup2(old, fd)
                os.close(old)
        f.seek(0)
        text = f.read().decode(errors="replace")
    m = re.search(r"Arena allocation total (\d+) bytes", text)
    if not m:
        raise MicronnError("tflite-micro did not report its arena total")
    return int(m.group(1))
