"""Keras to fully-int8 TFLite with TensorFlow's own converter and calibration data."""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
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


def _check_shape(model, x: np.ndarray, what: str) -> None:
    """Calibration samples must have the Keras model's input shape (where it knows it)."""
    inputs = getattr(model, "inputs", None)
    if not isinstance(inputs, (list, tuple)) or len(inputs) != 1:
        return
    want = tuple(getattr(inputs[0], "shape", None) or ())[1:]
    if len(want) != x.ndim - 1 or any(w is not None and w != g for w, g in zip(want, x.shape[1:], strict=True)):
        raise MicronnError(f"{what}: samples of shape {x.shape[1:]} do not fit the model's input "
                           f"{tuple(d if d is not None else 'N' for d in want)} (give (N, *input shape))")


def _tensorflow():
    """TensorFlow, imported without the C++ side's start-up chatter on stderr."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with _quiet():
        import tensorflow as tf
    return tf


# What TensorFlow and Keras raise for a damaged model file (checked: truncated or
# random .keras/.h5 contents, a zip without a model, a broken SavedModel).
_LOAD_ERRORS = (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile)


def _load_keras(model):
    tf = _tensorflow()
    if isinstance(model, (str, os.PathLike)):
        p = Path(model)
        try:
            with _quiet():
                if p.is_dir():
                    return tf.saved_model.load(str(p)), str(p)
                return tf.keras.models.load_model(p, compile=False), None
        except _LOAD_ERRORS as e:
            first = (str(e).strip().splitlines() or [""])[0]
            raise MicronnError(f"{p}: cannot load the model ({type(e).__name__}: {first})") from None
    return model, None


def keras_to_tflite(model, calib, *, float_io: bool = False, progress: bool = False) -> bytes:
    """Quantize a Keras model (object, file or SavedModel folder) to int8 .tflite bytes."""
    x = load_calibration(calib)
    if isinstance(model, (str, os.PathLike)):
        check_model_file(Path(model))
    tf = _tensorflow()
    model, saved_dir = _load_keras(model)
    _check_shape(model, x, "calibration data")
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
            yield [x[i:i + 1]]
        if progress and term:
            term[0].write("\n")

    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if not float_io:
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    try:
        with _quiet() as stderr:
            term.append(stderr)
            return conv.convert()
    except Exception as e:  # the converter raises many types; name the problem once
        raise MicronnError(f"TensorFlow's converter failed: {e}") from e


@contextlib.contextmanager
def _quiet():
    """Hide the converter's chatter on stdout and on the C++ side's stderr."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as err, contextlib.redirect_stdout(io.StringIO()), \
            os.fdopen(os.dup(saved), "w") as term:
        os.dup2(err.fileno(), 2)
        try:
            yield term
        finally:
            os.dup2(saved, 2)
            os.close(saved)
