"""Run blobs on a target, and check them against TensorFlow Lite Micro (micronn.reference)."""

from __future__ import annotations

import hashlib
import os
import sys
import time

import numpy as np

from . import blob as blobmod
from .errors import MicronnError
from .targets import open_target

PROGRESS_EVERY = 5.0        # seconds between progress lines when stderr is not a terminal
_progress_state: dict = {}  # the loop in progress: its first call's time, the last line's, a line shown yet


def _progress_every() -> float:
    """Seconds between progress lines: $MICRONN_PROGRESS_EVERY (0: a line per sample), else PROGRESS_EVERY."""
    text = os.environ.get("MICRONN_PROGRESS_EVERY")
    if text is None:
        return PROGRESS_EVERY
    try:
        every = float(text)
    except ValueError:
        every = -1.0
    if not every >= 0:
        raise MicronnError(f"MICRONN_PROGRESS_EVERY={text!r}: give the seconds between progress lines (0 or more)")
    return every


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02}:{s % 60:02}" if s >= 3600 else f"{s // 60}:{s % 60:02}"


def _progress(i: int, n: int, what: str) -> None:
    """Progress of a loop over n samples, called after sample i, on stderr (results go to stdout).
    On a terminal: one line redrawn in place with a bar, the rate and the time left. Otherwise
    (a pipe, a log file, CI) a line every MICRONN_PROGRESS_EVERY seconds (default 5) and a last
    one, so a long run is never silent; a loop done sooner prints nothing. The rate counts the
    samples after the first, timed from the first call."""
    now = time.monotonic()
    if i == 0:
        _progress_state.update(start=now, last=now, shown=False, every=_progress_every())
    st = _progress_state
    tty = sys.stderr.isatty()
    every = min(st["every"], 0.1) if tty else st["every"]
    last = i == n - 1
    if not (now - st["last"] >= every or (last and st["shown"])):
        return
    st["last"], st["shown"] = now, True
    elapsed = now - st["start"]
    rate = i / elapsed if i and elapsed > 0 else None
    speed = "-" if rate is None else f"{rate:.1f}" if rate < 100 else f"{rate:.0f}"
    left = "-" if rate is None else _clock((n - 1 - i) / rate)
    when = f"done in {_clock(elapsed * (i + 1) / i if i else elapsed)}" if last else f"ETA {left}"
    if tty:
        done = (i + 1) * 30 // n
        sys.stderr.write(f"\r{what} [{'#' * done}{'.' * (30 - done)}] {i + 1}/{n}, {speed} samples/s, {when}\x1b[K")
        if last:
            sys.stderr.write("\n")
    else:
        sys.stderr.write(f"{what}: {i + 1}/{n} ({(i + 1) * 100 // n}%), {speed} samples/s, {when}\n")
    sys.stderr.flush()


def quantize(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """float -> int8 as TFLite's QUANTIZE: round(x / scale) half away from zero, in float32."""
    r = np.asarray(x, dtype=np.float32) / np.float32(scale)
    r = np.sign(r) * np.floor(np.abs(r) + np.float32(0.5))
    return np.clip(r + zero_point, -128, 127).astype(np.int8)


def io(data: bytes) -> dict:
    """Shapes, dtypes and quantization of a blob's input and output, as the board presents them."""
    from . import format as fmt

    info = blobmod.read(data)
    flags = info["header"]["flags"]
    out = {}
    for key, idx, flag in (("input", info["inputs"][0], "FLOAT_INPUT"), ("output", info["outputs"][0],
                                                                         "FLOAT_OUTPUT")):
        t = info["tensors"][idx]
        out[key] = {"shape": tuple(t["shape"]), "scale": t["scale"], "zero_point": t["zero_point"],
                    "dtype": "float32" if flags & fmt.HEADER_FLAGS[flag] else t["dtype"]}
    return out


def prepare_input(data: bytes, x: np.ndarray) -> np.ndarray:
    """Check x against the blob's input; samples (N, *shape[1:]) of the dtype the board takes."""
    return _prepare(io(data)["input"], x)


def _prepare(t: dict, x: np.ndarray) -> np.ndarray:
    shape = t["shape"]
    x = np.asarray(x)
    per_sample = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    if x.ndim == 0 or int(np.prod(x.shape[1:])) != per_sample:
        raise MicronnError(f"input of shape {x.shape} does not fit the model input {shape}: "
                           f"expected (N, {', '.join(map(str, shape[1:]))})")
    if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
        raise MicronnError("the input holds NaN or infinite values")
    if t["dtype"] == "float32":
        if not np.issubdtype(x.dtype, np.floating):
            raise MicronnError(f"the model takes float32 input, not {x.dtype}")
        return x.astype(np.float32)
    if x.dtype == np.int8:
        return x
    if np.issubdtype(x.dtype, np.floating):
        return quantize(x, t["scale"], t["zero_point"])
    raise MicronnError(f"input dtype {x.dtype} is not supported: give int8 or float32 samples")


def _board_io(info: dict) -> dict:
    """io() of a blob already on the board, from the server's info."""
    def one(k):
        return {"shape": tuple(info[f"{k}_shape"]), "dtype": info[f"{k}_dtype"],
                "scale": info[f"{k}_scale"], "zero_point": info[f"{k}_zero_point"]}
    return {"input": one("input"), "output": one("output")}


def run(data, x: np.ndarray, target: str = "unix") -> tuple[np.ndarray, list[int]]:
    """Outputs (N, *output_shape[1:]) and the board's microseconds per sample.
    data: blob bytes, or the path of a blob on the board (str)."""
    ys, times = [], []
    with open_target(target) as t:
        if isinstance(data, str):
            blob_io = _board_io(t.link.open(data))
        else:
            blob_io = io(data)
            t.link.load(data)
        xq = _prepare(blob_io["input"], x)
        o = blob_io["output"]
        dtype = np.dtype(o["dtype"])
        for i, s in enumerate(xq):
            y, us = t.link.run(np.ascontiguousarray(s).tobytes())
            ys.append(np.frombuffer(y, dtype=dtype))
            times.append(us)
            _progress(i, len(xq), f"running on {target}")
    shape = (len(ys),) + o["shape"][1:]
    y = np.stack(ys).reshape(shape) if ys else np.zeros(shape, dtype)
    return y, times


def sample_inputs(data: bytes, samples: int, seed: int = 0) -> np.ndarray:
    """Random inputs: int8 values (all 256 when the input is a single number), or for a
    float-input model floats spread a little beyond the input's quantized range."""
    t = io(data)["input"]
    per_sample = t["shape"][1:] if len(t["shape"]) > 1 else ()
    rng = np.random.default_rng(seed)
    if t["dtype"] == "float32":
        lo, hi = (t["scale"] * (q - t["zero_point"]) for q in (-128, 127))
        pad = 0.1 * (hi - lo)
        return rng.uniform(lo - pad, hi + pad, size=(samples,) + per_sample).astype(np.float32)
    if int(np.prod(per_sample)) == 1:
        return np.arange(-128, 128, dtype=np.int8).reshape((256,) + per_sample)
    return rng.integers(-128, 128, size=(samples,) + per_sample, dtype=np.int8)


def check_reference(data: bytes, reference: bytes) -> None:
    """The reference must be a .tflite with one input and one output of the blob's sizes."""
    from . import tflite

    try:
        m = tflite.load(reference)
    except MicronnError as e:
        raise MicronnError(f"reference model: {e}") from None
    blob_io = io(data)
    for key, ids in (("input", m.inputs), ("output", m.outputs)):
        if len(ids) != 1:
            raise MicronnError(f"the reference model has {len(ids)} {key}s; the blob has one")
        shape, want = tuple(m.tensors[ids[0]].shape), blob_io[key]["shape"]
        if int(np.prod(shape)) != int(np.prod(want)):
            raise MicronnError(f"reference model {key} ({','.join(map(str, shape))}) does not match the blob's "
                               f"({','.join(map(str, want))})")


def verify(data: bytes, reference: bytes, target: str = "unix", samples: int = 20, seed: int = 0,
           x: np.ndarray | None = None, oracle: str = "auto") -> dict:
    """Compare a blob on a target with TFLite Micro on the reference .tflite. Where
    TFLite Micro cannot be trusted on the model (wrong static shapes, outputs that
    change with its arena), the comparison is with TFLite's reference kernels
    (BUILTIN_REF): ``oracle`` in the result says which, ``oracle_note`` why
    (micronn.reference). oracle: "auto", "tflm" or "builtin_ref"."""
    from .reference import reference_run

    check_reference(data, reference)
    info = blobmod.read(data)
    src = info["meta"].get("SOURCE_SHA256")
    warning = None
    if isinstance(src, bytes) and src != hashlib.sha256(reference).digest():
        warning = "the blob was not packed from this reference model (source checksum differs)"
    xq = prepare_input(data, x) if x is not None else sample_inputs(data, samples, seed)
    got, _ = run(data, xq, target)
    ref = reference_run(reference, xq, oracle)
    want = ref.y.reshape(got.shape)
    diff = np.argwhere(got != want)
    cast = float if got.dtype.kind == "f" else int
    mismatches = []
    for idx in diff[:10]:
        idx = tuple(int(i) for i in idx)
        mismatches.append({"sample": idx[0], "index": list(idx[1:]), "got": cast(got[idx]),
                           "want": cast(want[idx])})
    return {"samples": int(len(xq)), "values": int(got.size), "mismatched_values": int(len(diff)),
            "max_abs_diff": cast(np.abs(got.astype(np.float64) - want.astype(np.float64)).max()) if got.size else 0,
            "bit_exact": len(diff) == 0, "first_mismatches": mismatches, "warning": warning,
            "oracle": ref.oracle, "oracle_note": ref.note}


def trace(reference: bytes, sample: np.ndarray, target: str = "unix", oracle: str = "tflm") -> list[dict]:
    """Run one sample and compare the output of every op with the oracle's tensor
    (TFLite Micro's, or with oracle="builtin_ref" the reference kernels'); the
    first op that differs is where to look."""
    import copy

    from .packer import build_graph
    from .reference import reference_tensors

    g = build_graph(reference)
    want = reference_tensors(reference, sample, [t.source for t in g.tensors if t.source >= 0], oracle)
    rows = []
    with open_target(target) as t:
        for k, op in enumerate(g.ops):
            out = op.outputs[0]
            src = g.tensors[out].source
            gk = copy.copy(g)
            gk.outputs, gk.float_output = [out], False
            data = blobmod.write(gk)
            t.link.load(data)
            x = prepare_input(data, np.asarray(sample)[None])[0]
            y, _ = t.link.run(np.ascontiguousarray(x).tobytes())
            got = np.frombuffer(y, np.int8)
            ref = want.get(src)
            same = ref is not None and ref.size == got.size and np.array_equal(ref.reshape(-1), got)
            diff = int(np.abs(ref.reshape(-1).astype(int) - got).max()) if ref is not None and ref.size == got.size \
                else None
            rows.append({"op": k, "kind": op.kind, "source": op.source, "tensor": src, "equal": bool(same),
                         "max_abs_diff": diff})
    return rows


def evaluate(data, x: np.ndarray, labels: np.ndarray, target: str = "unix", reference: bytes | None = None,
             float_model=None, oracle: str = "auto") -> dict:
    """On-device accuracy: stream a labelled dataset through the board (top-1 of the output),
    with per-class figures, the confusion matrix and, given the reference .tflite (and a
    float Keras model), the host's accuracy beside the board's and the samples where they
    disagree; see micronn.evaluation.evaluate. Keys: samples, correct, accuracy, median_us,
    predictions, classes, per_class, confusion, reference, disagreements, float_model, warning."""
    from .evaluation import evaluate as explain

    return explain(data, x, labels, target, reference=reference, float_model=float_model, oracle=oracle)
