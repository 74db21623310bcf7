"""``micronn.pack()``: a model file in, blob bytes out."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from . import __version__, blob, tflite
from .errors import MicronnError
from .graph import Graph
from .lower import lower

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")


def load_tflite(model, *, calib=None, float_io: bool = False, progress: bool = False,
                activations: str = "int8", weights="int8", log=None) -> tuple[bytes, str]:
    """The int8 .tflite bytes of ``model`` and a default name for it.

    ``model`` is a .tflite path or bytes, or a Keras model (object, .keras/.h5
    file or SavedModel folder), which is quantized with ``calib`` (activations
    "int16": TensorFlow Lite's 16x8 mode, int16 activations and int8 weights).
    weights: "int8" (as converted), or int4 weights as micronn.weights.parse reads
    (a .tflite's int8 weights are requantized; auto:DB needs a Keras model)."""
    from . import weights as wq

    kind, arg = wq.parse(weights)
    if kind != "int8" and not _is_keras(model):
        if kind == "auto":
            raise MicronnError("--weights auto:DB needs the Keras model (the float model is its reference); for "
                               "a .tflite name the layers: --weights int4 or int4:LAYER,LAYER")
        data, name = load_tflite(model, calib=calib, float_io=float_io, progress=progress, activations=activations)
        return wq.to_int4(data, arg), name
    if isinstance(model, (bytes, bytearray, memoryview)):
        return bytes(model), "model"
    if isinstance(model, (str, os.PathLike)):
        p = Path(model)
        if not p.exists():
            raise MicronnError(f"{p}: no such file or folder")
        if p.suffix == ".tflite":
            try:
                return p.read_bytes(), p.stem
            except OSError as e:
                raise MicronnError(f"{p}: {e.strerror or e}") from None
        if p.suffix in KERAS_SUFFIXES or p.is_dir():
            from .convert import keras_to_tflite

            return keras_to_tflite(p, calib, float_io=float_io, progress=progress, activations=activations,
                                   weights=weights, log=log), p.stem
        raise MicronnError(f"{p}: unknown model type (expected .tflite, .keras, .h5 or a SavedModel folder)")
    if hasattr(model, "predict"):
        from .convert import keras_to_tflite

        return (keras_to_tflite(model, calib, float_io=float_io, progress=progress, activations=activations,
                                weights=weights, log=log), getattr(model, "name", "model"))
    raise MicronnError(f"cannot pack a {type(model).__name__}")


def _is_keras(model) -> bool:
    """A Keras model object, file or SavedModel folder (not a .tflite)."""
    if hasattr(model, "predict"):
        return True
    if isinstance(model, (str, os.PathLike)):
        p = Path(model)
        return p.suffix in KERAS_SUFFIXES or p.is_dir()
    return False


def recipe_text(*, activations="int8", weights="int8", calib_method="minmax") -> str:
    """How a Keras model is quantized, as the blob's RECIPE records it."""
    from .calibrate import method_name
    from .weights import describe

    return f"activations={activations} weights={describe(weights)} calib-method={method_name(calib_method)}"


def read_recipe(text) -> dict:
    """{"activations", "weights", "calib_method"} from a RECIPE (defaults where absent)."""
    out = {"activations": "int8", "weights": "int8", "calib_method": "minmax"}
    for part in str(text or "").split():
        key, sep, value = part.partition("=")
        key = key.replace("-", "_")
        if sep and key in out:
            out[key] = value
    return out


def build_graph(data: bytes, *, name: str | None = None, labels=None, where: str | None = None,
                recipe: str | None = None) -> Graph:
    """Lower .tflite bytes to a graph with its metadata.

    A model with several operators micronn cannot run fails with one error listing
    them all (``where``, the file, heads it), not only the first."""
    model = tflite.load(data)
    try:
        g = lower(model)
    except MicronnError as first:
        from .ops import listing_error

        raise listing_error(model, first, where or name or "model") from None
    if labels is not None:
        labels = [str(s) for s in labels]
        out = g.tensors[g.outputs[0]]
        if len(labels) != out.nbytes:
            raise MicronnError(f"{len(labels)} labels for an output of {out.nbytes} values")
        if any("\n" in s for s in labels):
            raise MicronnError("labels must not contain newlines")
    g.meta = {
        "NAME": name or "model",
        "LABELS": labels,
        "PACKER": f"micronn {__version__}",
        "SOURCE_SHA256": hashlib.sha256(data).digest(),
        "RECIPE": recipe,
        "SOURCE_BYTES": len(data),
        # the .tflite's own input and output tensor names (a float model's, not its QUANTIZE's)
        "INPUT_NAMES": [_io_name(model, i, g.tensors[j].name) for i, j in zip(model.inputs, g.inputs, strict=False)],
        "OUTPUT_NAMES": [_io_name(model, i, g.tensors[j].name) for i, j in zip(model.outputs, g.outputs,
                                                                                strict=False)],
    }
    return g


def _io_name(model, i: int, fallback: str) -> str:
    name = model.tensors[i].name if 0 <= i < len(model.tensors) else ""
    return (name or fallback).replace("\n", " ")


def read_labels(path) -> list[str]:
    """Class labels, one per line of a UTF-8 text file (blank lines skipped)."""
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except OSError as e:
        raise MicronnError(f"labels {path}: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise MicronnError(f"labels {path}: not UTF-8 text (byte {e.start})") from None
    if "\0" in text:
        raise MicronnError(f"labels {path}: a binary file, not one label per line")
    return [s.strip() for s in text.splitlines() if s.strip()]


def pack(model, *, name: str | None = None, labels=None, calib=None, float_io: bool = False,
         progress: bool = False, where: str | None = None, weights="int8", recipe: str | None = None) -> bytes:
    """Pack a model into micronn blob bytes.

    model: a fully-int8 .tflite (path or bytes), or a Keras model / .keras /
    .h5 / SavedModel folder together with ``calib`` (representative inputs).
    labels: class names, one per output value (or a path to a text file).
    where: the model's file, named in the error listing operators micronn cannot run
    (default: ``model`` when it is a path, else the name).
    weights: "int8", "int4", "int4:LAYER,LAYER" or "auto:DB" (micronn.weights).
    recipe: what the blob records of how the model was quantized (default: these options
    for a Keras model, the weights choice for a .tflite given one).
    """
    data, default_name = load_tflite(model, calib=calib, float_io=float_io, progress=progress, weights=weights)
    if isinstance(labels, (str, os.PathLike)):
        labels = read_labels(labels)
    if where is None and isinstance(model, (str, os.PathLike)):
        where = str(model)
    if recipe is None and (_is_keras(model) or weights != "int8"):
        recipe = recipe_text(weights=weights)
    return blob.write(build_graph(data, name=name or default_name, labels=labels, where=where, recipe=recipe))
