"""Keras to fully-int8 TFLite with TensorFlow's own converter and calibration data.

Models load as people save them: .keras, .h5 or SavedModel, from Keras 3 or tf_keras
(Keras 2, where tensorflow-model-optimization's quantization-aware training and pruning
live). TensorFlow's log lines and warnings are hidden unless set_verbose(True)."""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import tempfile
import warnings
import zipfile
from pathlib import Path

import numpy as np

from .errors import MicronnError


def load_calibration(calib) -> np.ndarray:
    """Calibration samples from an array, a .npy file or a .npz file (its first array, or 'x'):
    numbers, at least one sample, every value finite (the converter crashes or quietly
    leaves the model float on NaN and infinity)."""
    if calib is None:
        raise MicronnError("a Keras model needs calibration data (--calib CALIB.npy)")
    what = "calibration data"
    if isinstance(calib, (str, os.PathLike)):
        p = Path(calib)
        what = f"calibration data {p}"
        if not p.exists():
            raise MicronnError(f"{p}: no such file")
        try:
            data = np.load(p)
            if isinstance(data, np.lib.npyio.NpzFile):
                if not data.files:
                    raise MicronnError(f"{what}: the .npz holds no arrays")
                data = data["x"] if "x" in data.files else data[data.files[0]]
        except (OSError, ValueError, EOFError) as e:
            raise MicronnError(f"{what}: cannot read as .npy/.npz ({e})") from None
        calib = data
    try:
        x = np.asarray(calib)
    except ValueError as e:     # ragged nested lists
        raise MicronnError(f"{what} is not an array of numbers ({e})") from None
    if x.dtype.kind not in "biuf":
        raise MicronnError(f"{what} holds {x.dtype} values ({_KINDS.get(x.dtype.kind, 'not numbers')}); "
                           "expected numbers")
    if x.ndim == 0 or len(x) == 0:
        raise MicronnError(f"{what} holds no samples (shape {x.shape}); expected (N, *input shape)")
    x = x.astype(np.float32)
    if np.isnan(x).any():
        raise MicronnError(f"{what} holds NaN")
    if np.isinf(x).any():
        raise MicronnError(f"{what} holds infinite values (or values beyond float32)")
    return x


_KINDS = {"U": "text", "S": "bytes", "O": "Python objects", "c": "complex numbers", "M": "dates",
          "m": "time spans", "V": "records"}
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def check_model_file(p: Path) -> None:
    """Refuse a file TensorFlow could not load before importing it (which takes seconds)."""
    try:
        if p.is_dir():
            if not any((p / n).is_file() for n in ("saved_model.pb", "saved_model.pbtxt")):
                raise MicronnError(f"{p}: not a SavedModel folder (no saved_model.pb)")
        elif p.suffix == ".keras":
            if not zipfile.is_zipfile(p):
                raise MicronnError(f"{p}: not a .keras file (those are zip archives)")
        else:
            # HDF5's signature is at offset 0, or 512, 1024, 2048, ... after a user block
            size, off = p.stat().st_size, 0
            with open(p, "rb") as f:
                while off + 8 <= size:
                    f.seek(off)
                    if f.read(8) == HDF5_SIGNATURE:
                        return
                    off = 512 if off == 0 else 2 * off
            raise MicronnError(f"{p}: not an HDF5 (.h5) file")
    except OSError as e:
        raise MicronnError(f"{p}: {e.strerror or e}") from None


def _input_names(model) -> list[str]:
    return [str(getattr(t, "name", "") or "").split(":")[0] for t in (getattr(model, "inputs", None) or [])]


def calibration_inputs(model, calib) -> list[np.ndarray]:
    """Calibration samples for each input of a Keras model, in the model's input order.
    One input: as load_calibration. Several: a list or tuple of arrays (the model's
    order), a dict or .npz by input name (every name present), else an .npz's arrays
    in their order (np.savez(path, a, b): arr_0, arr_1)."""
    names = _input_names(model)
    if len(names) <= 1:
        return [load_calibration(calib)]
    what = "calibration data"
    if isinstance(calib, (str, os.PathLike)):
        p = Path(calib)
        what = f"calibration data {p}"
        if not p.exists():
            raise MicronnError(f"{p}: no such file")
        try:
            data = np.load(p)
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise MicronnError(f"{what}: the model has {len(names)} inputs ({', '.join(names)}): give an "
                                   ".npz with one array per input")
            calib = {k: data[k] for k in data.files}
        except (OSError, ValueError, EOFError) as e:
            raise MicronnError(f"{what}: cannot read as .npz ({e})") from None
    if isinstance(calib, dict):
        if all(n in calib for n in names):
            calib = [calib[n] for n in names]
        else:
            calib = list(calib.values())
    if not isinstance(calib, (list, tuple)) or len(calib) != len(names):
        got = len(calib) if isinstance(calib, (list, tuple)) else "one array"
        raise MicronnError(f"{what}: {got} for a model with {len(names)} inputs ({', '.join(names)}); "
                           "give one array per input (by name or in order)")
    xs = [load_calibration(c) for c in calib]
    if len({len(x) for x in xs}) > 1:
        raise MicronnError(f"{what}: the inputs hold different numbers of samples: {[len(x) for x in xs]}")
    for k, x in enumerate(xs):
        _check_shape(model, x, f"{what} for input {names[k]}", k)
    return xs


def _check_shape(model, x: np.ndarray, what: str, k: int | None = None) -> None:
    """Calibration samples must have the Keras model's input shape (where it knows it)."""
    inputs = getattr(model, "inputs", None)
    if not isinstance(inputs, (list, tuple)) or (len(inputs) != 1 and k is None):
        return
    want = tuple(getattr(inputs[k or 0], "shape", None) or ())[1:]
    if len(want) != x.ndim - 1 or any(w is not None and w != g for w, g in zip(want, x.shape[1:], strict=True)):
        raise MicronnError(f"{what}: samples of shape {x.shape[1:]} do not fit the model's input "
                           f"{tuple(d if d is not None else 'N' for d in want)} (give (N, *input shape))")


# micronn --verbose: TensorFlow's log lines, warnings and converter output reach the terminal.
VERBOSE = False


def set_verbose(on: bool) -> None:
    """Let TensorFlow's own output through (True) or hide it (False, the default)."""
    global VERBOSE
    VERBOSE = bool(on)


def _tensorflow():
    """TensorFlow, imported without the C++ side's start-up chatter on stderr (oneDNN,
    cuInit, absl): its log level must be set before the first import."""
    if not VERBOSE:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with _quiet():
        import tensorflow as tf
    return tf


def _keras2():
    """(tf_keras, tensorflow_model_optimization) as far as installed: Keras 2, in which
    quantization-aware training and pruning save their models. tfmot sets
    TF_USE_LEGACY_KERAS when imported; this process's tf.keras is left as it was."""
    saved = os.environ.get("TF_USE_LEGACY_KERAS")
    try:
        with _quiet():
            try:
                import tf_keras
            except ImportError:
                return None, None
            import tensorflow as tf

            getattr(tf.keras, "version", None)     # resolve the lazily loaded tf.keras before tfmot flips it
            try:
                import tensorflow_model_optimization as tfmot
            except Exception:       # absent, or an install that fails while it loads
                tfmot = None
    finally:
        if saved is None:
            os.environ.pop("TF_USE_LEGACY_KERAS", None)
        else:
            os.environ["TF_USE_LEGACY_KERAS"] = saved
    return tf_keras, tfmot


def _saved_config(p: Path) -> tuple[str | None, str]:
    """The Keras version that saved a model file and its layer configuration as text
    (both read without TensorFlow; (None, "") where they cannot be read)."""
    import json

    try:
        if p.is_dir():
            meta = p / "keras_metadata.pb"      # a tf_keras SavedModel (Keras 3 does not write them)
            return ("2", meta.read_bytes().decode("utf-8", "replace")) if meta.is_file() else (None, "")
        if zipfile.is_zipfile(p):
            with zipfile.ZipFile(p) as z:
                version = json.loads(z.read("metadata.json")).get("keras_version")
                return version, z.read("config.json").decode("utf-8", "replace")
        import h5py

        with h5py.File(p, "r") as f:
            version, config = f.attrs.get("keras_version"), f.attrs.get("model_config", "")
            text = lambda v: v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v or "")  # noqa: E731
            return text(version) or None, text(config)
    except Exception:       # damaged or unusual files: the loaders below say what is wrong
        return None, ""


def _pruned(model) -> bool:
    """The model holds tfmot's pruning wrappers (prune_low_magnitude)."""
    return any(type(m).__name__ == "PruneLowMagnitude" for m in getattr(model, "submodules", ()))


def _strip_pruning(model, tfmot):
    """A pruned model without its pruning wrappers (the masked weights stay zero)."""
    return tfmot.sparsity.keras.strip_pruning(model) if tfmot is not None and _pruned(model) else model


def _load_keras2(p: Path):
    """A model file loaded with tf_keras, tfmot's QAT and pruning layers known, pruning stripped."""
    tf_keras, tfmot = _keras2()
    if tf_keras is None:
        raise ImportError("tf_keras is not installed (pip install tf-keras tensorflow-model-optimization)")
    with contextlib.ExitStack() as scopes:
        if tfmot is not None:
            scopes.enter_context(tfmot.quantization.keras.quantize_scope())
            scopes.enter_context(tfmot.sparsity.keras.prune_scope())
        try:
            model = tf_keras.models.load_model(str(p), compile=False)
        except ValueError as e:
            if tfmot is None or not zipfile.is_zipfile(p) or "expected" not in str(e):
                raise
            model = _load_qat_keras(p, tf_keras)
    return _strip_pruning(model, tfmot)


def _load_qat_keras(p: Path, tf_keras):
    """A quantization-aware trained model from a tf_keras .keras file, which tf_keras
    cannot load back (tensorflow/model-optimization#1123): QuantizeLayer is built twice
    when its saved build config is replayed, and QuantizeWrapperV2 saved its inner
    layer's kernel among its own variables (kernel, bias, kernel, then its quantizer
    variables) where a rebuilt wrapper has kernel and quantizer variables only.

    So: the model is rebuilt from config.json without the layers' build configs (one
    build each) and called once (the wrapper detaches the kernel from its inner layer,
    as during training), then the weights file is read with a wrapper that takes its
    non-trainable (quantizer) variables from the end of what was saved, in order, and
    each trainable one from the first saved value of its shape. Tested equal, variable
    for variable, to the same model loaded from .h5 (tests/test_keras_models.py)."""
    import json

    from tensorflow_model_optimization.python.core.quantization.keras import quantize_wrapper

    def without_build(o):
        if isinstance(o, dict):
            return {k: without_build(v) for k, v in o.items() if k != "build_config"}
        return [without_build(v) for v in o] if isinstance(o, list) else o

    def load_own_variables(self, store):
        saved = [store[str(i)] for i in range(len(store.keys()))]
        trainable, fixed = self._trainable_weights, self._non_trainable_weights
        if len(saved) < len(trainable) + len(fixed):
            raise ValueError(f"layer {self.name!r}: {len(saved)} saved variables for {len(trainable) + len(fixed)}")
        head = saved[:len(saved) - len(fixed)]
        pairs = list(zip(fixed, saved[len(saved) - len(fixed):], strict=True))
        for v in trainable:
            match = next((s for s in head if tuple(s.shape) == tuple(v.shape)), None)
            if match is None:
                raise ValueError(f"layer {self.name!r}: no saved value of shape {tuple(v.shape)} for {v.name}")
            pairs.append((v, match))
        for v, s in pairs:
            if tuple(s.shape) != tuple(v.shape):
                raise ValueError(f"layer {self.name!r}: saved shape {tuple(s.shape)} for {v.name} {tuple(v.shape)}")
            v.assign(np.asarray(s))

    with zipfile.ZipFile(p) as z:
        config = without_build(json.loads(z.read("config.json")))
    model = tf_keras.saving.deserialize_keras_object(config)
    model(np.zeros((1, *model.inputs[0].shape[1:]), np.float32), training=False)
    classes = (quantize_wrapper.QuantizeWrapper, quantize_wrapper.QuantizeWrapperV2)
    before = [c.__dict__.get("load_own_variables") for c in classes]
    try:
        for c in classes:
            c.load_own_variables = load_own_variables
        model.load_weights(str(p))
    finally:
        for c, f in zip(classes, before, strict=True):
            if f is None:
                del c.load_own_variables
            else:
                c.load_own_variables = f
    return model


def _load_keras3(p: Path):
    import keras

    return keras.models.load_model(p, compile=False)


_UNKNOWN = (re.compile(r"Unknown (?:layer|object|class)[^']*'([^']+)'"),
            re.compile(r"Could not (?:locate|deserialize) (?:class|function|object) '([^']+)'"))


def _unknown_class(e: Exception) -> str | None:
    """The layer class a loader did not know, from its message."""
    for pattern in _UNKNOWN:
        m = pattern.search(str(e))
        if m:
            return m.group(1)
    return None


def _load_error(p: Path, errors: list[Exception]) -> MicronnError:
    """One line for a model no loader could read: the unknown layer class if that was it."""
    for e in errors:
        name = _unknown_class(e)
        if name:
            hint = ("a tensorflow-model-optimization layer: pip install tf-keras tensorflow-model-optimization"
                    if name.startswith(("Quantize", "Prune")) else
                    "a custom layer? load the model yourself with its class and pass the object to "
                    "micronn.pack(model, calib=...), or convert it to a .tflite first")
            return MicronnError(f"{p}: layer class '{name}' is unknown ({hint})")
    e = errors[0]
    first = (str(e).strip().splitlines() or [""])[0]
    return MicronnError(f"{p}: cannot load the model ({type(e).__name__}: {first[:300]})")


def _load_keras(model):
    """(model object, SavedModel folder to convert from or None).

    A .keras/.h5 file is loaded with the Keras that saved it, then with the other:
    Keras 3, or tf_keras (Keras 2) under tfmot's quantize and prune scopes, so
    quantization-aware trained and pruned models load; pruning wrappers are stripped.
    A SavedModel folder converts as it is, unless it holds pruning wrappers (then it
    is loaded with tf_keras and stripped)."""
    tf = _tensorflow()
    if not isinstance(model, (str, os.PathLike)):
        return (_strip_pruning(model, _keras2()[1]) if _pruned(model) else model), None
    p = Path(model)
    version, config = _saved_config(p)
    if p.is_dir() and "PruneLowMagnitude" not in config:
        try:
            with _quiet():
                return tf.saved_model.load(str(p)), str(p)
        except _LOAD_ERRORS as e:
            raise _load_error(p, [e]) from None
    loaders = [_load_keras2] if p.is_dir() else \
        [_load_keras2, _load_keras3] if (version or "").startswith("2") else [_load_keras3, _load_keras2]
    errors = []
    for load in loaders:
        try:
            with _quiet():
                return load(p), None
        except Exception as e:      # each Keras raises its own types for a model it cannot read
            errors.append(e)
    raise _load_error(p, errors)


# What TensorFlow raises for a damaged SavedModel folder.
_LOAD_ERRORS = (OSError, ValueError, KeyError, TypeError, RuntimeError)


ACTIVATIONS = ("int8", "int16")


def keras_to_tflite(model, calib, *, float_io: bool = False, progress: bool = False,
                    calib_method: str = "minmax", activations: str = "int8", weights="int8",
                    log=None) -> bytes:
    """Quantize a Keras model (object, .keras/.h5 file or SavedModel folder; Keras 3, or
    Keras 2 with quantization-aware training or pruning) to int8 .tflite bytes.
    calib: representative inputs, needed by TensorFlow 2.21's converter for every
    fully-int8 conversion, quantization-aware trained models included.
    calib_method: how each activation's range is chosen from the calibration data:
    "minmax" (TensorFlow's own conversion, unchanged), "percentile:P" or "mse"
    (micronn.calibrate: the same converter's calibrated model with its ranges
    replaced, quantized by TensorFlow's quantizer; still a standard fully-int8 model).
    activations: "int8", or "int16" for TensorFlow Lite's 16x8 mode (int16 activations,
    int8 weights, int64 biases; int16 input and output unless float_io), with minmax
    calibration; or "int16:LAYER,LAYER": those Keras layers int16, the others int8, one
    model mixing both (micronn.mixed). weights: "int8", or int4 weights (micronn.weights)
    for every layer with weights ("int4"), the layers named ("int4:conv2d_1,dense"), or
    those chosen so the output's SQNR drops by at most DB decibels ("auto:DB"; log(text)
    hears which)."""
    from . import weights as wq
    from .calibrate import parse_method, requantize
    from .mixed import parse

    kind, layers = parse(activations)
    wkind, warg = wq.parse(weights)
    if wkind != "int8":
        if kind != "int8":
            raise MicronnError("int4 weights are for int8 activations (16x8 layers keep int8 weights)")
        return _int4_weights(model, calib, wkind, warg, float_io=float_io, progress=progress,
                             calib_method=calib_method, log=log)
    method = parse_method(calib_method)     # a bad method string fails before TensorFlow loads
    if kind != "int8" and method[0] != "minmax":
        raise MicronnError("--calib-method other than minmax is for int8 activations (16x8 models use "
                           "TensorFlow's own ranges)")
    if kind == "mixed":
        from .mixed import mixed_tflite

        return mixed_tflite(model, calib, layers, float_io=float_io, progress=progress)
    if method[0] == "minmax":
        return _convert_keras(model, calib, float_io=float_io, progress=progress, activations=kind)
    x = load_calibration(calib)
    calibrated = _convert_keras(model, x, float_io=float_io, progress=progress, calibrate_only=True)
    return requantize(calibrated, x, method, float_io=float_io)


def _int4_weights(model, calib, kind, arg, *, float_io, progress, calib_method, log) -> bytes:
    """keras_to_tflite with int4 weights: the int8 model, then the chosen layers' weights
    requantized from the calibrated float model's (micronn.weights)."""
    from . import weights as wq

    if not isinstance(calib, (list, tuple, dict)):
        load_calibration(calib)
    keras_model = model
    if isinstance(model, (str, os.PathLike)):
        check_model_file(Path(model))
        if not Path(model).is_dir():
            keras_model, _ = _load_keras(model)
    int8 = keras_to_tflite(keras_model, calib, float_io=float_io, progress=progress, calib_method=calib_method)
    calibrated = calibrated_tflite(keras_model, calib)
    named = keras_model if hasattr(keras_model, "layers") else None
    xs = calibration_inputs(named, calib) if named is not None else [load_calibration(calib)]
    if kind == "int4":      # bias correction from the calibration samples (one input: the float model's)
        return wq.to_int4(int8, arg, float_model=calibrated, keras_model=named,
                          calib=xs[0] if len(xs) == 1 else None)
    if float_io:
        raise MicronnError("--weights auto:DB compares int8 outputs: leave out --float-io")
    if len(xs) != 1:
        raise MicronnError("--weights auto:DB is for models with one input; name the layers (int4:A,B)")
    model_out, names, sq = wq.auto(int8, calibrated, xs[0], arg, keras_model=named, log=log)
    if log:
        log(f"--weights auto:{arg:g}: int4 weights for {', '.join(names) or 'no layer'} (output SQNR "
            f"{sq['int8']:.1f} dB with int8 weights, {sq['int4']:.1f} dB now)")
    return model_out


def calibrated_tflite(model, calib, *, progress: bool = False) -> bytes:
    """The float .tflite TensorFlow's converter quantizes a Keras model from: float
    weights and activations, each activation's calibrated min/max recorded in it."""
    return _convert_keras(model, calib, progress=progress, calibrate_only=True)


def _convert_keras(model, calib, *, float_io: bool = False, progress: bool = False,
                   calibrate_only: bool = False, activations: str = "int8") -> bytes:
    """TensorFlow's fully-int8 conversion of a Keras model (or, calibrate_only, the
    calibrated float model it would quantize)."""
    if not isinstance(calib, (list, tuple, dict)):
        load_calibration(calib)     # bad data fails before TensorFlow loads
    if isinstance(model, (str, os.PathLike)):
        check_model_file(Path(model))
    tf = _tensorflow()
    model, saved_dir = _load_keras(model)
    xs = calibration_inputs(model, calib)
    x = xs[0]
    _check_shape(model, x, "calibration data")
    names = _input_names(model)
    _check_recurrent(model)
    with _quiet():
        if saved_dir:
            conv = tf.lite.TFLiteConverter.from_saved_model(saved_dir)
        else:
            conv = tf.lite.TFLiteConverter.from_keras_model(model)

    term = []      # the real stderr while the converter's is hidden

    def representative():
        n = len(x)
        for i in range(n):
            if progress and term and (i % max(1, n // 20) == 0 or i == n - 1):
                done = (i + 1) * 30 // n
                term[0].write(f"\rcalibrating [{'#' * done}{'.' * (30 - done)}] {i + 1}/{n}")
                term[0].flush()
            # several inputs by name: the converter orders a model's inputs its own way
            yield [x[i:i + 1]] if len(xs) == 1 else {nm: xk[i:i + 1] for nm, xk in zip(names, xs, strict=True)}
        if progress and term:
            term[0].write("\n")

    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    if activations == "int16":
        conv.target_spec.supported_ops = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    else:
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    io_type = tf.int16 if activations == "int16" else tf.int8
    if not float_io:
        conv.inference_input_type = io_type
        conv.inference_output_type = io_type
    conv._experimental_calibrate_only = calibrate_only
    try:
        with _quiet() as stderr:
            term.append(stderr)
            return conv.convert()
    except Exception as e:  # the converter raises many types; name the problem once
        first = (str(e).strip().splitlines() or [""])[0]
        raise MicronnError(f"TensorFlow's converter failed: {first}") from e


def _layers(model):
    """Every layer of a Keras model, nested models and wrappers (Bidirectional) included."""
    seen, todo = set(), list(getattr(model, "layers", []))
    while todo:
        layer = todo.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        yield layer
        todo += list(getattr(layer, "layers", []) or [])
        todo += [w for w in (getattr(layer, a, None) for a in ("layer", "forward_layer", "backward_layer"))
                 if w is not None and hasattr(w, "name")]


def _check_recurrent(model) -> None:
    """A recurrent layer (LSTM, GRU, SimpleRNN) converts to int8 only unrolled and with a
    fixed batch size: TensorFlow 2.21's converter fails on its loop (TensorList ops) with a
    free batch size and crashes the process (segmentation fault) quantizing the fused
    LSTM with a fixed one; unrolled, the cell becomes ordinary int8 ops that micronn and
    TFLite Micro run (FULLY_CONNECTED, LOGISTIC, TANH, MUL, ADD, SUB, SPLIT, UNPACK)."""
    rnns = [layer for layer in _layers(model) if hasattr(layer, "cell") and hasattr(layer, "unroll")]
    if not rnns:
        return
    looped = [layer for layer in rnns if not layer.unroll]
    if looped:
        layer = looped[0]
        raise MicronnError(f"layer {layer.name} ({type(layer).__name__}) loops over time steps, which TensorFlow's "
                           "int8 converter cannot quantize (it fails or crashes): build it with unroll=True, and "
                           "give the model's Input a fixed batch_size=1")
    batch = [tuple(t.shape)[0] for t in getattr(model, "inputs", [])]
    if any(b is None for b in batch):
        raise MicronnError(f"layer {rnns[0].name} ({type(rnns[0]).__name__}) needs a fixed batch size: give the "
                           "model's Input batch_size=1 (with a free one the unrolled cell keeps SHAPE and FILL ops "
                           "that TFLite Micro cannot run)")


@contextlib.contextmanager
def _quiet():
    """Hide TensorFlow's chatter: stdout, the C++ side's stderr (file descriptor 2) and
    Python warnings; with --verbose (set_verbose) all of it shows."""
    if VERBOSE:
        yield sys.stderr
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as err, contextlib.redirect_stdout(io.StringIO()), \
            os.fdopen(os.dup(saved), "w") as term, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        os.dup2(err.fileno(), 2)
        try:
            yield term
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
