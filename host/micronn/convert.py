"""Keras to fully-int8 TFLite with TensorFlow's own converter and calibration data."""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from .errors import MicronnError


def load_calibration(calib) -> np.ndarray:
    """Calibration samples from an array, a .npy file or a .npz file (its first array, or 'x')."""
    if calib is None:
        raise MicronnError("a Keras model needs calibration data (--calib CALIB.npy)")
    if isinstance(calib, (str, os.PathLike)):
        p = Path(calib)
        if not p.exists():
            raise MicronnError(f"{p}: no such file")
        data = np.load(p)
        if isinstance(data, np.lib.npyio.NpzFile):
            calib = data["x"] if "x" in data.files else data[data.files[0]]
        else:
            calib = data
    return np.asarray(calib, dtype=np.float32)


def _load_keras(model):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    if isinstance(model, (str, os.PathLike)):
        p = Path(model)
        if p.is_dir():
            return tf.saved_model.load(str(p)), str(p)
        return tf.keras.models.load_model(p, compile=False), None
    return model, None


def keras_to_tflite(model, calib, *, float_io: bool = False, progress: bool = False) -> bytes:
    """Quantize a Keras model (object, file or SavedModel folder) to int8 .tflite bytes."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    x = load_calibration(calib)
    model, saved_dir = _load_keras(model)
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
