"""Accuracy on a board, explained: per class, as a confusion matrix, beside the
accuracy TFLite Micro gets on the host from the .tflite the blob was packed from
(and the float Keras model's, when given), with the samples whose outputs differ
between board and host (bit-exactness makes that list empty).

``micronn.run.evaluate`` is the entry point; ``describe`` and ``plot_confusion``
turn its result into text and a PNG for ``micronn eval``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from . import blob as blobmod
from .errors import MicronnError

# Text tables stop being readable beyond this many classes (--json and --plot still have them all).
TEXT_CLASSES = 30
# Disagreeing sample indices listed in text (--json lists them all).
TEXT_INDICES = 20


def check_labels(labels, samples: int) -> np.ndarray:
    """Labels as class indices (int64, one per sample): a user's labels that are one-hot,
    text, fractions or of the wrong count are refused before anything runs."""
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[0] == samples and labels.shape[1] > 1:
        raise MicronnError(f"labels of shape {labels.shape} look one-hot: give class indices (their argmax)")
    kind = labels.dtype.kind
    if kind not in "biuf" or (kind == "f" and not (np.isfinite(labels).all() and (labels == np.round(labels)).all())):
        raise MicronnError(f"labels must be class indices (whole numbers), not {labels.dtype} values")
    labels = labels.reshape(-1)
    if len(labels) != samples:
        raise MicronnError(f"{len(labels)} labels for {samples} samples")
    return labels.astype(np.int64)


def _check_classes(labels: np.ndarray, classes: int) -> None:
    """eval's class is the top-1 output: every label must name one of the outputs."""
    if len(labels) and (labels.min() < 0 or labels.max() >= classes):
        raise MicronnError(f"labels run from {labels.min()} to {labels.max()}, but the model has {classes} output "
                           f"value{'s' if classes != 1 else ''} (classes 0 to {classes - 1}; eval takes the "
                           "largest output as the class)")


def _check_outputs(what: str, outputs: int, classes: int | None) -> None:
    if classes is not None and outputs != classes:
        raise MicronnError(f"{what} gives {outputs} output values per sample; the blob {classes}")


def _tflite_io(reference: bytes) -> dict:
    """The reference .tflite's input and output, in run.io()'s form (for a blob already on the board,
    whose own description needs the board)."""
    from . import tflite

    try:
        m = tflite.load(reference)
    except MicronnError as e:
        raise MicronnError(f"reference model: {e}") from None
    out = {}
    for key, ids in (("input", m.inputs), ("output", m.outputs)):
        if len(ids) != 1:
            raise MicronnError(f"the reference model has {len(ids)} {key}s; eval needs one")
        t = m.tensors[ids[0]]
        out[key] = {"shape": tuple(t.shape), "dtype": t.dtype,
                    "scale": float(t.scale[0]) if t.scale is not None else 0.0,
                    "zero_point": int(t.zero_point[0]) if t.zero_point is not None else 0}
    return out


def split_references(paths: list[str]) -> tuple[str | None, str | None]:
    """eval's --reference files: the int8 .tflite and the float Keras model (.keras/.h5), each at most once."""
    from .packer import KERAS_SUFFIXES

    tfl = [p for p in paths if Path(p).suffix == ".tflite"]
    keras = [p for p in paths if Path(p).suffix in KERAS_SUFFIXES]
    other = [p for p in paths if p not in tfl and p not in keras]
    if other:
        raise MicronnError(f"--reference {other[0]}: give the .tflite the blob was packed from, or a Keras model "
                           "(.keras, .h5)")
    for kind, given in (("a .tflite", tfl), ("a Keras model", keras)):
        if len(given) > 1:
            raise MicronnError(f"--reference: {kind} given {len(given)} times ({', '.join(given)})")
    return (tfl[0] if tfl else None), (keras[0] if keras else None)


def class_names(classes: int, labels) -> list[str]:
    """The blob's labels when it has one per output, else the class indices."""
    if isinstance(labels, list) and len(labels) == classes:
        return [str(s) for s in labels]
    return [str(i) for i in range(classes)]


def confusion(labels: np.ndarray, predictions: np.ndarray, classes: int) -> np.ndarray:
    """(classes, classes) counts: row the true class, column the predicted one."""
    m = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(m, (np.asarray(labels, np.int64), np.asarray(predictions, np.int64)), 1)
    return m


def per_class(matrix: np.ndarray, names: list[str]) -> list[dict]:
    """Per class: its samples, how many the board got right, the accuracy among them (None
    without samples) and how often the class was predicted."""
    rows = []
    for c, name in enumerate(names):
        n, ok = int(matrix[c].sum()), int(matrix[c, c])
        rows.append({"class": c, "label": name, "samples": n, "correct": ok, "accuracy": ok / n if n else None,
                     "predicted": int(matrix[:, c].sum())})
    return rows


def _score(predictions: np.ndarray, labels: np.ndarray) -> dict:
    correct = int((predictions == labels).sum())
    return {"correct": correct, "accuracy": correct / max(len(labels), 1), "predictions": predictions.tolist()}


def float_predictions(model, x: np.ndarray, input_io: dict | None) -> tuple[np.ndarray, int]:
    """Top-1 of a float Keras model (object, or .keras/.h5 file) on the samples, and its number of
    outputs. int8 samples are dequantized with the blob's input scale and zero point first."""
    from .convert import _load_keras, _quiet
    from .packer import KERAS_SUFFIXES

    if isinstance(model, (str, os.PathLike)):
        p = Path(model)
        if p.is_dir() or p.suffix not in KERAS_SUFFIXES:
            raise MicronnError(f"{p}: the float model must be a .keras or .h5 file")
        if not p.exists():
            raise MicronnError(f"{p}: no such file")
        from .convert import check_model_file

        check_model_file(p)
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        if input_io is None or input_io["dtype"] == "float32" or not input_io["scale"]:
            raise MicronnError(f"the float model needs float samples, not {x.dtype} ones (or the blob's input "
                               "quantization, to dequantize them)")
        x = (x.astype(np.float32) - np.float32(input_io["zero_point"])) * np.float32(input_io["scale"])
    x = x.astype(np.float32)
    keras_model = _load_keras(model)[0]      # (model, ...): the loader's other answers are for the converter
    if not hasattr(keras_model, "predict"):
        raise MicronnError("the float model must be a Keras model (.keras or .h5)")
    want = tuple(getattr(keras_model.inputs[0], "shape", ()) or ())[1:] if getattr(keras_model, "inputs", None) \
        else ()
    if want and all(d is not None for d in want) and int(np.prod(want)) == int(np.prod(x.shape[1:])):
        x = x.reshape((len(x),) + tuple(int(d) for d in want))
    try:
        with _quiet():
            y = np.asarray(keras_model.predict(x, batch_size=256, verbose=0))
    except (ValueError, TypeError) as e:
        first = (str(e).strip().splitlines() or [""])[0]
        raise MicronnError(f"the float model cannot take the samples of shape {x.shape[1:]} ({first})") from None
    y = y.reshape(len(x), -1)
    return y.argmax(axis=1), y.shape[1]


def evaluate(data, x: np.ndarray, labels, target: str = "unix", reference: bytes | None = None,
             float_model=None, oracle: str = "auto") -> dict:
    """Stream a labelled dataset through the board and explain the accuracy.

    data: blob bytes, or the path of a blob on the board (str). reference: the int8
    .tflite the blob was packed from: TFLite Micro (or, where it cannot be trusted,
    TFLite's reference kernels: micronn.reference) runs the same samples on the host,
    and every sample whose output bytes differ from the board's is listed. float_model:
    a Keras model (object or .keras/.h5 path) whose float accuracy goes beside them.

    The result keeps the keys of the first eval (samples, correct, accuracy, median_us,
    predictions) and adds classes (names), per_class, confusion (rows: true class),
    reference (oracle, its correct/accuracy/predictions, or None), disagreements
    (outputs and predictions: sample indices, or None without a reference), float_model
    and warning.

    A model with several inputs takes x as a list (one array per input, the blob's
    order); with several outputs the accuracy is the first output's top-1 (the blob's
    first: ``micronn inspect`` lists them), and a sample's outputs disagree with the
    reference when any of its outputs does."""
    from .reference import reference_run
    from .run import _prepare, _prepare_all, check_reference, io, run

    several = isinstance(x, (list, tuple))
    if several:
        x = [np.asarray(a) for a in x]
        if float_model is not None:
            raise MicronnError("a float Keras model beside a model with several inputs is not supported")
        if any(a.ndim == 0 for a in x):
            raise MicronnError("the samples are a single number: give arrays (N, *input_shape[1:])")
        n = len(x[0])
    else:
        x = np.asarray(x)
        if x.ndim == 0:
            raise MicronnError("the samples are a single number: give an array (N, *input_shape[1:])")
        n = len(x)
    labels = check_labels(labels, n)
    remote = isinstance(data, str)
    blob_io = None if remote else io(data)
    ref_io, warning = None, None
    if reference is not None:
        reference = bytes(reference)
        if remote:
            ref_io = _tflite_io(reference)
        else:
            check_reference(data, reference)
            src = blobmod.read(data)["meta"].get("SOURCE_SHA256")
            if isinstance(src, bytes) and src != hashlib.sha256(reference).digest():
                warning = "the blob was not packed from this reference model (source checksum differs)"
    known = blob_io or ref_io
    xq, classes = x, None
    if known is not None:
        classes = int(np.prod(known["output"]["shape"][1:]))
        _check_classes(labels, classes)
        # what the board takes, and the host with it
        xq = _prepare_all(known, x) if several or len(known.get("inputs", [1])) > 1 else _prepare(known["input"], x)
    floats = outputs = None
    if float_model is not None:         # before the board: a model that cannot load fails at once
        floats, outputs = float_predictions(float_model, x, known["input"] if known else None)
        _check_outputs("the float model", outputs, classes)

    y, times = run(data, xq, target)
    every = y if isinstance(y, list) else [y]
    y = every[0]            # the first output is the one scored
    got = y.reshape(len(y), -1)
    classes = got.shape[1]
    _check_classes(labels, classes)
    pred = got.argmax(axis=1)
    matrix = confusion(labels, pred, classes)
    names = class_names(classes, None if remote else blobmod.read(data)["meta"].get("LABELS"))
    r = {**_score(pred, labels), "samples": len(y),
         "median_us": int(np.median(times)) if times else 0,
         "classes": names, "per_class": per_class(matrix, names), "confusion": matrix.tolist(),
         "reference": None, "disagreements": None, "float_model": None, "warning": warning}
    if floats is not None:
        _check_outputs("the float model", outputs, classes)
        r["float_model"] = _score(floats, labels)
    if reference is not None:
        ref = reference_run(reference, xq, oracle)
        wants = ref.y if isinstance(ref.y, list) else [ref.y]
        if len(wants) != len(every):
            raise MicronnError(f"the reference model has {len(wants)} outputs; the blob has {len(every)}")
        want = np.asarray(wants[0]).reshape(len(y), -1)
        _check_outputs("the reference model", want.shape[1], classes)
        ref_pred = want.argmax(axis=1)
        differ = np.zeros(len(y), bool)
        for g, w in zip(every, wants, strict=True):
            differ |= (g.reshape(len(g), -1) != np.asarray(w).reshape(len(g), -1)).any(axis=1)
        r["reference"] = {"oracle": ref.oracle, "oracle_note": ref.note, **_score(ref_pred, labels)}
        r["disagreements"] = {"outputs": np.flatnonzero(differ).tolist(),
                              "predictions": np.flatnonzero(pred != ref_pred).tolist()}
    return r


def _samples(indices: list[int]) -> str:
    shown = ", ".join(map(str, indices[:TEXT_INDICES]))
    more = f", ... ({len(indices) - TEXT_INDICES} more)" if len(indices) > TEXT_INDICES else ""
    return f"{len(indices)} sample{'s' if len(indices) != 1 else ''}: {shown}{more}"


def describe(r: dict, target: str) -> str:
    """evaluate()'s result as text: the accuracies side by side, disagreements, per-class
    figures and the confusion matrix."""
    from .reference import NAMES

    n = r["samples"]
    lines = []
    if r["warning"]:
        lines.append(f"warning: {r['warning']}")
    ref = r["reference"]
    if ref and ref["oracle_note"]:
        lines.append(f"note: {ref['oracle_note']}")
    rows = [(f"on {target}", r, f"median {r['median_us']} us per inference")]
    if ref:
        rows.append((f"in {NAMES[ref['oracle']]}", ref, "on the host"))
    if r["float_model"]:
        rows.append(("of the float model", r["float_model"], "Keras, on the host"))
    width = max(len(w) for w, _, _ in rows)
    for where, s, how in rows:
        lines.append(f"accuracy {where:<{width}}  {s['accuracy']:7.2%} ({s['correct']}/{n}), {how}")
    if ref is None:
        lines.append("(TFLite Micro's accuracy beside the board's needs --reference MODEL.tflite)")
    else:
        d, oracle = r["disagreements"], NAMES[ref["oracle"]]
        if not d["outputs"]:
            lines.append(f"board and {oracle}: bit-exact, the same output bytes on all {n} samples")
        else:
            lines.append(f"MISMATCH: outputs differ from {oracle}'s on {_samples(d['outputs'])}")
            if d["predictions"]:
                lines.append(f"predictions differ on {_samples(d['predictions'])}")
    names = r["classes"]
    if len(names) > TEXT_CLASSES:
        lines.append(f"{len(names)} classes: per-class figures and the confusion matrix are in --json and --plot")
        return "\n".join(lines)
    w = max(5, *(len(s) for s in names))
    lines.append("")
    lines.append(f"{'class':<{w}}  samples  correct  accuracy")
    for c in r["per_class"]:
        acc = f"{c['accuracy']:8.2%}" if c["accuracy"] is not None else f"{'-':>8}"
        lines.append(f"{c['label']:<{w}}  {c['samples']:>7}  {c['correct']:>7}  {acc}")
    m = r["confusion"]
    cw = max(len(str(len(names) - 1)), *(len(str(v)) for row in m for v in row)) + 1
    lines.append("")
    lines.append("confusion matrix (rows: true class, columns: predicted class)")
    lines.append(f"{'':<{w}}  " + "".join(f"{i:>{cw}}" for i in range(len(names))))
    for name, row in zip(names, m, strict=True):
        lines.append(f"{name:<{w}}  " + "".join(f"{v:>{cw}}" for v in row))
    return "\n".join(lines)


def check_plot(path) -> None:
    """Before a long run: --plot needs matplotlib and a folder to write into."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise MicronnError("--plot needs matplotlib: pip install matplotlib") from None
    folder = Path(path).resolve().parent
    if not folder.is_dir():
        raise MicronnError(f"cannot write {path}: no folder {folder}")


def plot_confusion(r: dict, path, title: str = "") -> None:
    """The confusion matrix as a PNG (matplotlib's Agg backend: no display needed)."""
    check_plot(path)
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    m = np.asarray(r["confusion"])
    names = r["classes"]
    k = len(names)
    side = min(4 + 0.45 * k, 24)
    fig, ax = plt.subplots(figsize=(side + 1.5, side))
    try:
        im = ax.imshow(m, cmap="Blues")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
        if k <= TEXT_CLASSES:
            ax.set_xticks(range(k), names, rotation=90 if max(map(len, names)) > 2 else 0)
            ax.set_yticks(range(k), names)
            top = m.max() if m.size else 0
            for (i, j), v in np.ndenumerate(m):
                if v:
                    ax.text(j, i, str(v), ha="center", va="center", fontsize=8,
                            color="white" if v > top / 2 else "black")
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        ax.set_title(title or f"accuracy {r['accuracy']:.2%} ({r['correct']}/{r['samples']})")
        fig.tight_layout()
        try:
            fig.savefig(path, format="png", dpi=100)
        except OSError as e:
            raise MicronnError(f"cannot write {path}: {e.strerror or e}") from None
    finally:
        plt.close(fig)
