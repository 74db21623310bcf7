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
    """Shapes, dtypes and quantization of a blob's inputs and outputs, as the board
    presents them: "inputs" and "outputs" (lists, the blob's order; with "name" from its
    INPUT_NAMES/OUTPUT_NAMES metadata; "stored": the graph tensor's own dtype, int8 or
    int16 behind a float one), "input" and "output" (the first of each)."""
    from . import format as fmt

    info = blobmod.read(data)
    flags = info["header"]["flags"]
    out = {}
    for key, flag in (("input", "FLOAT_INPUT"), ("output", "FLOAT_OUTPUT")):
        names = info["meta"].get(f"{key.upper()}_NAMES")
        names = names.split("\n") if isinstance(names, str) else []
        rows = []
        for k, idx in enumerate(info[f"{key}s"]):
            t = info["tensors"][idx]
            rows.append({"shape": tuple(t["shape"]), "scale": t["scale"], "zero_point": t["zero_point"],
                         "dtype": "float32" if flags & fmt.HEADER_FLAGS[flag] and t["dtype"] in ("int8", "int16")
                         else t["dtype"], "name": names[k] if k < len(names) else None,
                         "stored": t["dtype"]})      # the graph tensor's dtype (int16: a 16x8 model's)
        out[key + "s"] = rows
        out[key] = rows[0]
    return out


def _many(ios: dict, key: str) -> bool:
    return len(ios[key + "s"]) > 1


def prepare_input(data: bytes, x):
    """Check x against the blob's input; samples (N, *shape[1:]) of the dtype the board
    takes. A blob with several inputs takes (and gives) a list, one array per input."""
    return _prepare_all(io(data), x)


def _prepare_all(blob_io: dict, x):
    ins = blob_io["inputs"]
    if len(ins) == 1 and not isinstance(x, (list, tuple)):
        return _prepare(ins[0], x, single=True)
    if not isinstance(x, (list, tuple)):
        raise MicronnError(f"the model has {len(ins)} inputs: give one array per input")
    if len(x) != len(ins):
        raise MicronnError(f"{len(x)} input arrays for a model with {len(ins)} inputs")
    xs = [_prepare(t, xk) for t, xk in zip(ins, x, strict=True)]
    if len({len(a) for a in xs}) > 1:
        raise MicronnError(f"the inputs hold different numbers of samples: {[len(a) for a in xs]}")
    return xs


def _prepare(t: dict, x: np.ndarray, single: bool = False) -> np.ndarray:
    shape = t["shape"]
    x = np.asarray(x)
    per_sample = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    if x.ndim == 0 or int(np.prod(x.shape[1:])) != per_sample:
        # the one input of a model is "the model input"; of several, each by its name
        what = f"input {t['name']!r}" if t.get("name") and not single else "the model input"
        raise MicronnError(f"input of shape {x.shape} does not fit {what} {shape}: "
                           f"expected (N, {', '.join(map(str, shape[1:]))})")
    if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
        raise MicronnError("the input holds NaN or infinite values")
    if t["dtype"] == "float32":
        if not np.issubdtype(x.dtype, np.floating):
            raise MicronnError(f"the model takes float32 input, not {x.dtype}")
        return x.astype(np.float32)
    if t["dtype"] == "int16":       # 16x8 models: int16 values, or floats quantized as TFLite does to int16
        if x.dtype == np.int16:
            return x.astype("<i2")
        if np.issubdtype(x.dtype, np.floating):
            r = np.asarray(x, dtype=np.float32) / np.float32(t["scale"])
            r = np.sign(r) * np.floor(np.abs(r) + np.float32(0.5))
            return np.clip(r + t["zero_point"], -32768, 32767).astype("<i2")
        raise MicronnError(f"the model takes int16 input, not {x.dtype}: give int16 or float32 samples")
    if x.dtype == np.int8:
        return x
    if np.issubdtype(x.dtype, np.floating):
        return quantize(x, t["scale"], t["zero_point"])
    raise MicronnError(f"input dtype {x.dtype} is not supported: give int8 or float32 samples")


def _board_io(info: dict) -> dict:
    """io() of a blob already on the board, from the server's info."""
    def one(k):
        return {"shape": tuple(info[f"{k}_shape"]), "dtype": info[f"{k}_dtype"],
                "scale": info[f"{k}_scale"], "zero_point": info[f"{k}_zero_point"], "name": None}
    out = {"input": one("input"), "output": one("output")}
    for key in ("input", "output"):
        rows = info.get(key + "s")      # servers before several inputs/outputs do not send them
        out[key + "s"] = [dict(d, shape=tuple(d["shape"])) for d in rows] if rows else [out[key]]
        out[key] = out[key + "s"][0]
    return out


_ITEM = {"float32": 4, "int8": 1, "uint8": 1, "int16": 2, "int32": 4, "int64": 8}


def nbytes(t: dict) -> int:
    """Bytes of one sample of an input or output as the board takes or gives it."""
    return int(np.prod(t["shape"])) * _ITEM[t["dtype"]]


def pack_sample(xs, i: int) -> bytes:
    """The run frame's payload for sample i: every input's bytes, in order."""
    if not isinstance(xs, list):
        return np.ascontiguousarray(xs[i]).tobytes()
    return b"".join(np.ascontiguousarray(a[i]).tobytes() for a in xs)


def split_result(y: bytes, outs: list[dict]) -> list[np.ndarray]:
    """A run result's bytes split into one array per output."""
    want = sum(nbytes(t) for t in outs)
    if len(y) != want:
        raise MicronnError(f"the board answered {len(y)} bytes; the model's outputs have {want}")
    res, at = [], 0
    for t in outs:
        n = nbytes(t)
        res.append(np.frombuffer(y[at:at + n], dtype=np.dtype(t["dtype"]).newbyteorder("<")))
        at += n
    return res


def run(data, x, target: str = "unix"):
    """Outputs (N, *output_shape[1:]) and the board's microseconds per sample.
    data: blob bytes, or the path of a blob on the board (str). A model with several
    inputs takes a list (one array per input); with several outputs the outputs are a
    list (one array per output)."""
    times = []
    with open_target(target) as t:
        if isinstance(data, str):
            blob_io = _board_io(t.link.open(data))
        else:
            blob_io = io(data)
            t.link.load(data)
        xq = _prepare_all(blob_io, x)
        outs = blob_io["outputs"]
        n = len(xq[0]) if isinstance(xq, list) else len(xq)
        ys: list[list] = [[] for _ in outs]
        for i in range(n):
            y, us = t.link.run(pack_sample(xq, i))
            for k, a in enumerate(split_result(y, outs)):
                ys[k].append(a)
            times.append(us)
            _progress(i, n, f"running on {target}")
    res = []
    for o, yk in zip(outs, ys, strict=True):
        shape = (len(yk),) + tuple(o["shape"][1:])
        res.append(np.stack(yk).reshape(shape) if yk else np.zeros(shape, np.dtype(o["dtype"])))
    return (res if len(outs) > 1 else res[0]), times


def sample_inputs(data: bytes, samples: int, seed: int = 0):
    """Random inputs: int8 values (all 256 when the input is a single number), or for a
    float-input model floats spread a little beyond the input's quantized range. A blob
    with several inputs gets a list (one array per input, all with the same count)."""
    ins = io(data)["inputs"]
    if len(ins) == 1:
        return _sample(ins[0], samples, np.random.default_rng(seed))
    rng = np.random.default_rng(seed)
    return [_sample(t, samples, rng, whole=False) for t in ins]


def _sample(t: dict, samples: int, rng, whole: bool = True) -> np.ndarray:
    per_sample = t["shape"][1:] if len(t["shape"]) > 1 else ()
    if t["dtype"] == "float32":
        q_lo, q_hi = (-32768, 32767) if t.get("stored") == "int16" else (-128, 127)
        lo, hi = (t["scale"] * (q - t["zero_point"]) for q in (q_lo, q_hi))
        pad = 0.1 * (hi - lo)
        return rng.uniform(lo - pad, hi + pad, size=(samples,) + per_sample).astype(np.float32)
    if t["dtype"] == "int16":       # 16x8 models
        return rng.integers(-32768, 32768, size=(samples,) + per_sample).astype("<i2")
    if whole and int(np.prod(per_sample)) == 1:
        return np.arange(-128, 128, dtype=np.int8).reshape((256,) + per_sample)
    return rng.integers(-128, 128, size=(samples,) + per_sample, dtype=np.int8)


def check_reference(data: bytes, reference: bytes) -> None:
    """The reference must be a .tflite with the blob's inputs and outputs (count and sizes)."""
    from . import tflite

    try:
        m = tflite.load(reference)
    except MicronnError as e:
        raise MicronnError(f"reference model: {e}") from None
    blob_io = io(data)
    for key, ids in (("input", m.inputs), ("output", m.outputs)):
        mine = blob_io[key + "s"]
        if len(ids) != len(mine):
            raise MicronnError(f"the reference model has {len(ids)} {key}s; the blob has {len(mine)}")
        for k, (i, t) in enumerate(zip(ids, mine, strict=True)):
            shape, want = tuple(m.tensors[i].shape), t["shape"]
            if int(np.prod(shape)) != int(np.prod(want)):
                which = f"{key} {k}" if len(ids) > 1 else key
                raise MicronnError(f"reference model {which} ({','.join(map(str, shape))}) does not match the "
                                   f"blob's ({','.join(map(str, want))})")


def _flat(y) -> np.ndarray:
    """Outputs (an array, or a list of them) as one (N, values) array, for comparing."""
    if not isinstance(y, list):
        return y
    return np.concatenate([np.asarray(a).reshape(len(a), -1) for a in y], axis=1)


def verify(data: bytes, reference: bytes, target: str = "unix", samples: int = 20, seed: int = 0,
           x=None, oracle: str = "auto") -> dict:
    """Compare a blob on a target with TFLite Micro on the reference .tflite. Where
    TFLite Micro cannot be trusted on the model (wrong static shapes, outputs that
    change with its arena), the comparison is with TFLite's reference kernels
    (BUILTIN_REF): ``oracle`` in the result says which, ``oracle_note`` why
    (micronn.reference). oracle: "auto", "tflm" or "builtin_ref". A model with several
    outputs is compared on all of them: a mismatch's "index" then counts the values of
    every output of a sample one after the other, and "output" names which output it is."""
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
    many = isinstance(got, list)
    if many:
        if not isinstance(ref.y, list) or len(ref.y) != len(got):
            raise MicronnError("the reference does not give the blob's outputs")
        sizes = [int(np.prod(a.shape[1:])) for a in got]
        want = _flat([np.asarray(w).reshape(g.shape) for w, g in zip(ref.y, got, strict=True)])
        got = _flat(got)
    else:
        want = ref.y.reshape(got.shape)
    diff = np.argwhere(got != want)
    cast = float if got.dtype.kind == "f" else int
    mismatches = []
    for idx in diff[:10]:
        idx = tuple(int(i) for i in idx)
        row = {"sample": idx[0], "index": list(idx[1:]), "got": cast(got[idx]), "want": cast(want[idx])}
        if many:
            row["output"] = int(np.searchsorted(np.cumsum(sizes), idx[1], side="right"))
        mismatches.append(row)
    return {"samples": int(len(got)), "values": int(got.size), "mismatched_values": int(len(diff)),
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
    if len(g.inputs) > 1:
        raise MicronnError(f"trace runs models with one input; this one has {len(g.inputs)}")
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
