"""Per-layer quantization report: where int8 loses against the float model, layer by layer.

The float side is the calibrated float model TensorFlow's converter quantizes (a
Keras model's, or a float .tflite calibrated the same way); the int8 side is the
fully-int8 model micronn packs, run by TFLite Micro (every tensor kept), which the
board equals bit for bit. Tensors are matched by name (the quantizer keeps them).
For each layer output, over the samples: SQNR in dB (10 log10 of the float signal's
energy over the energy of float minus dequantized int8), max and mean absolute error
in output steps (units of the int8 scale), the share of float values outside the
int8 range (clipped), scale and zero point, and how many of the 256 codes occur.

TensorFlow's QuantizationDebugger gives per-op errors with each op fed the previous
op's quantized output and its own min/max calibration; the numbers here are end to
end (float model against the int8 model as deployed) for any calibration method.

``report()`` returns a dict; ``describe()`` is the text, ``write_html()`` the page
with one histogram per layer (PNG, also embedded in the page).
"""

from __future__ import annotations

import base64
import html
import io
import os
from pathlib import Path

import numpy as np

from . import calibrate
from .errors import MicronnError

WORST = 3               # layers named as costing the most
HISTOGRAM_VALUES = 200_000


def _layer_name(name: str) -> str:
    """A TFLite tensor name shortened for people: its first ';'-separated part."""
    return name.split(";")[0]


def _calibrated(model, x: np.ndarray) -> bytes:
    """The calibrated float .tflite of a Keras model or of a float .tflite (bytes or path)."""
    if isinstance(model, (bytes, bytearray)):
        return calibrate.calibrate_float_tflite(bytes(model), x)
    if isinstance(model, (str, os.PathLike)) and Path(model).suffix == ".tflite":
        p = Path(model)
        try:
            data = p.read_bytes()
        except OSError as e:
            raise MicronnError(f"{p}: {e.strerror or e}") from None
        return calibrate.calibrate_float_tflite(data, x)
    from .convert import calibrated_tflite

    return calibrated_tflite(model, x)


def _float_input(tfl) -> bool:
    """The .tflite's first input is float (a float model, not an int8 one)."""
    return tfl.tensors[tfl.inputs[0]].dtype == "float32"


def int8_model(model, x: np.ndarray, method="minmax", calibrated: bytes | None = None) -> bytes:
    """The fully-int8 .tflite micronn packs for the model with the given calibration method."""
    from .convert import keras_to_tflite

    is_tflite = isinstance(model, (bytes, bytearray)) or (
        isinstance(model, (str, os.PathLike)) and Path(model).suffix == ".tflite")
    if not is_tflite:
        return keras_to_tflite(model, x, calib_method=method)
    return calibrate.requantize(calibrated if calibrated is not None else _calibrated(model, x), x, method)


def _tflm_tensors(model: bytes, x: np.ndarray, indices) -> dict[int, np.ndarray]:
    """{tensor index: values over all samples} of TFLite Micro running the int8 model on x
    (float samples, quantized as the model's input says), every tensor kept."""
    from .reference import _tflm_runtime
    from .run import quantize

    runtime = _tflm_runtime()
    it = runtime.Interpreter.from_bytes(bytes(model), intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors)
    ind = it.get_input_details(0)
    shape = tuple(int(d) for d in ind["shape"])
    scale, zp = ind["quantization_parameters"]["scales"], ind["quantization_parameters"]["zero_points"]
    out: dict[int, list] = {int(i): [] for i in indices}
    for sample in np.asarray(x, np.float32).reshape((-1, *shape[1:])):
        q = quantize(sample, float(scale[0]), int(zp[0])) if ind["dtype"] == np.int8 else sample
        it.set_input(q.reshape(shape).astype(ind["dtype"]), 0)
        it.invoke()
        for i, vals in out.items():
            t = it.GetTensor(i, 0)
            vals.append(np.array((t[0] if isinstance(t, list) else t)["tensor_data"]).ravel())
    return {i: np.concatenate(v) for i, v in out.items()}


def sqnr_db(f: np.ndarray, deq: np.ndarray) -> float:
    """Signal to quantization noise in dB: 10 log10(sum f^2 / sum (f - deq)^2); inf where equal."""
    f, deq = np.asarray(f, np.float64), np.asarray(deq, np.float64)
    noise = float(np.sum((f - deq) ** 2))
    signal = float(np.sum(f ** 2))
    if noise == 0:
        return float("inf")
    if signal == 0:
        return float("-inf")
    return 10 * np.log10(signal / noise)


def layer_stats(f: np.ndarray, q: np.ndarray, scale: float, zero_point: int) -> dict:
    """One layer's numbers from its float values f and int8 values q (same samples)."""
    deq = (q.astype(np.float64) - zero_point) * scale
    err = np.abs(f.astype(np.float64) - deq) / scale
    lo, hi = (-128 - zero_point) * scale, (127 - zero_point) * scale
    clipped = np.count_nonzero((f < lo - scale / 2) | (f > hi + scale / 2))
    return {
        "sqnr_db": sqnr_db(f, deq),
        "max_abs_error_steps": float(err.max()) if err.size else 0.0,
        "mean_abs_error_steps": float(err.mean()) if err.size else 0.0,
        "clipped": clipped / max(1, f.size),
        "codes_used": int(np.unique(q).size),
        "scale": float(scale),
        "zero_point": int(zero_point),
        "int8_range": [float(lo), float(hi)],
        "float_range": [float(f.min()), float(f.max())] if f.size else [0.0, 0.0],
    }


def _layers(int8: bytes, calibrated: bytes) -> list[tuple[int, int, str, str]]:
    """(int8 tensor index, float tensor index, name, op) of every int8 activation with a
    float twin: the model's input and each op's int8 output, in the order they run."""
    from . import tflite

    q, f = tflite.load(int8), tflite.load(calibrated)
    by_name = {t.name: t.index for t in f.tensors if t.dtype == "float32" and t.data is None}
    seen, out = set(), []
    producers = [("input", i) for i in q.inputs] + [(op.opcode, o) for op in q.operators for o in op.outputs]
    for op, i in producers:
        t = q.tensors[i]
        if i in seen or t.dtype != "int8" or t.scale is None or len(t.scale) != 1 or t.name not in by_name:
            continue
        seen.add(i)
        out.append((i, by_name[t.name], t.name, op))
    return out


def _accuracy(y: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(y.reshape(len(labels), -1), axis=1) == labels))


def _weights_model(model, int8: bytes, calibrated: bytes, x: np.ndarray, choice) -> tuple[bytes, list[str]]:
    """The int8 model with int4 weights as `choice` says (micronn.weights), and the
    names of the layers that got them."""
    from . import weights as wq

    kind, arg = wq.parse(choice)
    keras_model = None
    if not isinstance(model, (bytes, bytearray)) and not (
            isinstance(model, (str, os.PathLike)) and (Path(model).suffix == ".tflite" or Path(model).is_dir())):
        from .convert import _load_keras, _quiet

        with _quiet():
            keras_model = _load_keras(model)[0]
        keras_model = keras_model if hasattr(keras_model, "layers") else None
    if kind == "auto":
        out, names, _ = wq.auto(int8, calibrated, x, arg, keras_model=keras_model)
        return out, names
    found = wq.weighted_layers(int8, keras_model)
    chosen = wq.select(found, arg)
    return (wq.to_int4(int8, arg, float_model=calibrated, keras_model=keras_model, calib=x),
            [c.name for c in chosen])


def _blob_bytes(tfl: bytes) -> int:
    from . import blob
    from .packer import build_graph

    return len(blob.write(build_graph(tfl)))


def report(model, calib, *, data=None, labels=None, method="minmax", samples: int = 200,
           int8: bytes | None = None, calibrated: bytes | None = None, values: bool = False,
           weights=None) -> dict:
    """Per-layer comparison of the float model with its int8 model on samples.

    model: Keras (object, .keras/.h5, SavedModel folder) or a float .tflite (path or bytes).
    calib: calibration samples (array, .npy/.npz). data: samples to compare on (default:
    the calibration samples), at most ``samples`` of them; labels: their classes, for
    top-1 accuracy of both models. method: the calibration method. int8/calibrated: the
    models, if already made. values: also return each layer's float values (for plots).
    weights: also the model with int4 weights ("int4", "int4:A,B", "auto:DB";
    micronn.weights): each layer's SQNR with them, its accuracy and blob size."""
    from .convert import load_calibration

    x = load_calibration(calib)
    method = calibrate.parse_method(method)
    every = x if data is None else load_calibration(data)
    lab = None
    if labels is not None:
        from .evaluation import check_labels

        lab = check_labels(labels, len(every))[:samples]
    xs = every[:samples]
    if calibrated is None:
        calibrated = _calibrated(model, x)
    if int8 is None:
        int8 = int8_model(model, x, method, calibrated)
    layers = _layers(int8, calibrated)
    if not layers:
        raise MicronnError("no int8 layer of the model has a float twin to compare with")
    fl = calibrate.float_tensors(calibrated, xs, [fi for _, fi, _, _ in layers])
    from . import tflite

    qm = tflite.load(int8)
    qt = qm.tensors
    ql = _tflm_tensors(int8, xs, [qi for qi, _, _, _ in layers])
    rows = []
    for qi, fi, name, op in layers:
        t = qt[qi]
        row = {"name": name, "layer": _layer_name(name), "op": op, "tensor": qi, "shape": list(t.shape)}
        row.update(layer_stats(fl[fi], ql[qi], float(t.scale[0]), int(t.zero_point[0])))
        if values:
            row["values"] = fl[fi]
        rows.append(row)
    w4 = None
    if weights is not None:
        from . import weights as wq

        w4, chosen = _weights_model(model, int8, calibrated, x, weights)
        q4 = _tflm_tensors(w4, xs, [qi for qi, _, _, _ in layers])
        for row, (qi, fi, _, _) in zip(rows, layers, strict=True):
            t = qt[qi]
            row["sqnr_db_w4"] = sqnr_db(fl[fi], (q4[qi].astype(np.float64) - int(t.zero_point[0])) * float(t.scale[0]))
    ranked = sorted(rows, key=lambda r: r["sqnr_db"])
    out = {
        "method": calibrate.method_name(method),
        "samples": len(xs),
        "on": "calibration samples" if data is None else "test samples",
        "layers": rows,
        "worst": [r["name"] for r in ranked[:WORST]],
        "int8_bytes": len(int8),
    }
    if lab is not None:
        # the model's output (its int8 producer's with float output: the last layer compared)
        last_q, last_f = next(((q, f) for q, f, _, _ in layers if q in qm.outputs), layers[-1][:2])
        out["accuracy"] = {"float": _accuracy(fl[last_f], lab), "int8": _accuracy(ql[last_q], lab)}
        if w4 is not None:
            out["accuracy"]["int4"] = _accuracy(q4[last_q], lab)
    if w4 is not None:
        last = next((r for r in rows if r["tensor"] in qm.outputs), rows[-1])
        out["weights"] = {"choice": wq.describe(weights), "layers": chosen, "int8_blob": _blob_bytes(int8),
                          "int4_blob": _blob_bytes(w4), "output_sqnr_db": {"int8": last["sqnr_db"],
                                                                         "int4": last["sqnr_db_w4"]}}
        out["int4_model"] = w4
    return out


def compare(model, calib, methods, *, data=None, labels=None, samples: int = 200) -> dict:
    """report() for each calibration method, the calibrated model made once: {method: report}."""
    from .convert import load_calibration

    x = load_calibration(calib)
    parsed = [calibrate.parse_method(m) for m in methods]
    calibrated = _calibrated(model, x)
    return {calibrate.method_name(m): report(model, x, data=data, labels=labels, method=m, samples=samples,
                                             calibrated=calibrated) for m in parsed}


def _fmt_db(v: float) -> str:
    return "inf" if v == float("inf") else f"{v:.1f}"


def _describe_weights(r: dict) -> list[str]:
    """The lines about int4 weights: which layers, blob bytes, output SQNR, accuracy."""
    w = r.get("weights")
    if not w:
        return []
    share = w["int4_blob"] / max(1, w["int8_blob"])
    lines = [f"int4 weights ({w['choice']}): {', '.join(w['layers']) or 'no layer'}; blob {w['int8_blob']:,} -> "
             f"{w['int4_blob']:,} bytes ({share:.1%}); output SQNR {_fmt_db(w['output_sqnr_db']['int8'])} -> "
             f"{_fmt_db(w['output_sqnr_db']['int4'])} dB"]
    acc = r.get("accuracy")
    if acc and "int4" in acc:
        change = (acc["int4"] - acc["int8"]) * 100
        lines.append(f"top-1 accuracy with int4 weights: {acc['int4']:.2%} ({change:+.2f} points against int8)")
    return lines


def describe(r: dict) -> str:
    """The report as a text table, the worst layers named."""
    lines = [f"per-layer quantization report ({r['method']} calibration; {r['samples']} {r['on']}; "
             f"float model against the int8 model as TFLite Micro runs it)"]
    w = max(12, min(48, max(len(x["layer"]) for x in r["layers"])))
    w4 = "weights" in r
    lines.append(f"{'layer':<{w}} {'op':<16} {'SQNR dB':>8} {'max err':>8} {'mean err':>8} {'clipped':>8} "
                 f"{'codes':>5} {'scale':>10} {'zp':>5}" + (f" {'SQNR w4':>8}" if w4 else ""))
    for x in r["layers"]:
        lines.append(f"{x['layer'][-w:]:<{w}} {x['op'][:16]:<16} {_fmt_db(x['sqnr_db']):>8} "
                     f"{x['max_abs_error_steps']:>8.2f} {x['mean_abs_error_steps']:>8.3f} {x['clipped']:>8.3%} "
                     f"{x['codes_used']:>5} {x['scale']:>10.4g} {x['zero_point']:>5}"
                     + (f" {_fmt_db(x['sqnr_db_w4']):>8}" if w4 else ""))
    by = {x["name"]: x for x in r["layers"]}
    lines.append("costing the most (lowest SQNR): " + ", ".join(
        f"{by[n]['layer']} ({_fmt_db(by[n]['sqnr_db'])} dB)" for n in r["worst"]))
    if "accuracy" in r:
        lines.append(f"top-1 accuracy: float {r['accuracy']['float']:.2%}, int8 {r['accuracy']['int8']:.2%}")
    lines += _describe_weights(r)
    return "\n".join(lines)


def describe_compare(reports: dict) -> str:
    """Methods side by side: accuracy (if labelled data) and each layer's SQNR in dB."""
    methods = list(reports)
    first = reports[methods[0]]
    w = max(12, min(48, max(len(x["layer"]) for x in first["layers"])))
    col = max(12, *(len(m) for m in methods))
    lines = [f"calibration methods compared on {first['samples']} {first['on']} (SQNR in dB per layer)",
             f"{'layer':<{w}} " + " ".join(f"{m:>{col}}" for m in methods)]
    names = [x["name"] for x in first["layers"]]
    for n in names:
        cells = []
        for m in methods:
            row = next((x for x in reports[m]["layers"] if x["name"] == n), None)
            cells.append(f"{_fmt_db(row['sqnr_db']) if row else '-':>{col}}")
        lines.append(f"{_layer_name(n)[-w:]:<{w}} " + " ".join(cells))
    if all("accuracy" in r for r in reports.values()):
        lines.append(f"{'int8 accuracy':<{w}} " + " ".join(f"{reports[m]['accuracy']['int8']:>{col}.2%}"
                                                          for m in methods))
        lines.append(f"(float accuracy {first['accuracy']['float']:.2%})")
    return "\n".join(lines)


def histogram_png(row: dict, values: np.ndarray) -> bytes:
    """A PNG: the layer's float activations, its int8 range marked."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    v = np.asarray(values, np.float32)
    if v.size > HISTOGRAM_VALUES:
        v = np.random.default_rng(0).choice(v, HISTOGRAM_VALUES, replace=False)
    fig = Figure(figsize=(6, 2.6), dpi=80)
    ax = fig.add_subplot()
    lo, hi = row["int8_range"]
    span = (min(lo, float(v.min())), max(hi, float(v.max())))
    ax.hist(v, bins=120, range=span if span[1] > span[0] else None, color="#4878a8", log=True)
    for edge in (lo, hi):
        ax.axvline(edge, color="#c03030", linestyle="--", linewidth=1)
    ax.set_title(f"{row['layer'][-60:]}  ({_fmt_db(row['sqnr_db'])} dB, {row['clipped']:.2%} clipped)", fontsize=8)
    ax.set_xlabel("float activation (dashed: int8 range)", fontsize=8)
    ax.tick_params(labelsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def write_html(r: dict, path, title: str = "model") -> list[Path]:
    """Write the page (every histogram embedded as a data URI) and one PNG per layer into
    PATH's folder, PATH's stem + "-png/"; r must come from report(..., values=True).
    Returns the PNG paths."""
    path = Path(path)
    folder = path.with_name(path.stem + "-png")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise MicronnError(f"cannot write {folder}: {e.strerror or e}") from None
    pngs, rows = [], []
    worst = set(r["worst"])
    for k, x in enumerate(r["layers"]):
        png = histogram_png(x, x["values"])
        safe = "".join(c if c.isalnum() else "_" for c in x["layer"])[-60:]
        p = folder / f"{k:02d}-{safe}.png"
        try:
            p.write_bytes(png)
        except OSError as e:
            raise MicronnError(f"cannot write {p}: {e.strerror or e}") from None
        pngs.append(p)
        cls = ' class="worst"' if x["name"] in worst else ""
        rows.append(
            f"<tr{cls}><td title=\"{html.escape(x['name'])}\">{html.escape(x['layer'])}</td><td>{x['op']}</td>"
            f"<td>{_fmt_db(x['sqnr_db'])}</td><td>{x['max_abs_error_steps']:.2f}</td>"
            f"<td>{x['mean_abs_error_steps']:.3f}</td><td>{x['clipped']:.3%}</td><td>{x['codes_used']}</td>"
            f"<td>{x['scale']:.4g}</td><td>{x['zero_point']}</td></tr>"
            f"<tr><td colspan=\"9\"><img alt=\"{html.escape(x['layer'])}\" "
            f"src=\"data:image/png;base64,{base64.b64encode(png).decode()}\"></td></tr>")
    by = {x["name"]: x for x in r["layers"]}
    worst_text = ", ".join(f"{html.escape(by[n]['layer'])} ({_fmt_db(by[n]['sqnr_db'])} dB)" for n in r["worst"])
    acc = ""
    if "accuracy" in r:
        acc = (f"<p>top-1 accuracy: float {r['accuracy']['float']:.2%}, "
               f"int8 {r['accuracy']['int8']:.2%}</p>")
    acc += "".join(f"<p>{html.escape(line)}</p>" for line in _describe_weights(r))
    page = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>micronn quantization report: {html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}}
td,th{{padding:2px 8px;text-align:right;border-bottom:1px solid #ddd}} td:first-child{{text-align:left}}
tr.worst td{{background:#fde2e2}}</style></head><body>
<h1>Quantization report: {html.escape(title)}</h1>
<p>{html.escape(r['method'])} calibration; {r['samples']} {html.escape(r['on'])}; the float model against the
int8 model as TFLite Micro runs it (the board is bit-exact with it). Errors are in output steps (the int8 scale);
clipped: share of float values outside the int8 range; codes: how many of the 256 int8 values occur.</p>
<p>Costing the most (lowest SQNR): {worst_text}</p>{acc}
<table><tr><th>layer</th><th>op</th><th>SQNR dB</th><th>max err</th><th>mean err</th><th>clipped</th>
<th>codes</th><th>scale</th><th>zero point</th></tr>
{chr(10).join(rows)}
</table></body></html>
"""
    try:
        path.write_text(page)
    except OSError as e:
        raise MicronnError(f"cannot write {path}: {e.strerror or e}") from None
    return pngs


def to_json(r: dict) -> dict:
    """The report without the raw values, infinities as strings (JSON has none)."""
    def fix(v):
        if isinstance(v, dict):
            return {k: fix(x) for k, x in v.items() if k not in ("values", "int4_model")}
        if isinstance(v, (list, tuple)):
            return [fix(x) for x in v]
        if isinstance(v, np.generic):
            v = v.item()
        if isinstance(v, float) and not np.isfinite(v):
            return "inf" if v > 0 else "-inf"
        return v
    return fix(r)
