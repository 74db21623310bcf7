"""Run blobs on a target, and check them against TensorFlow Lite Micro."""

from __future__ import annotations

import hashlib
import sys

import numpy as np

from . import blob as blobmod
from .errors import MicronnError
from .targets import open_target


def _progress(i: int, n: int, what: str) -> None:
    if n >= 50 and sys.stderr.isatty() and (i % max(1, n // 50) == 0 or i == n - 1):
        done = (i + 1) * 30 // n
        sys.stderr.write(f"\r{what} [{'#' * done}{'.' * (30 - done)}] {i + 1}/{n}")
        if i == n - 1:
            sys.stderr.write("\n")
        sys.stderr.flush()


def quantize(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """float -> int8 as TFLite's QUANTIZE: round(x / scale) half away from zero, in float32."""
    r = np.asarray(x, dtype=np.float32) / np.float32(scale)
    r = np.sign(r) * np.floor(np.abs(r) + np.float32(0.5))
    return np.clip(r + zero_point, -128, 127).astype(np.int8)


def prepare_input(data: bytes, x: np.ndarray) -> np.ndarray:
    """Check x against the blob's input and return it as int8 samples (N, *shape[1:])."""
    info = blobmod.read(data)
    t = info["tensors"][info["inputs"][0]]
    shape = tuple(t["shape"])
    x = np.asarray(x)
    per_sample = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    if x.ndim == 0 or int(np.prod(x.shape[1:])) != per_sample:
        raise MicronnError(f"input of shape {x.shape} does not fit the model input {shape}: "
                           f"expected (N, {', '.join(map(str, shape[1:]))})")
    if x.dtype == np.int8:
        return x
    if np.issubdtype(x.dtype, np.floating):
        return quantize(x, t["scale"], t["zero_point"])
    raise MicronnError(f"input dtype {x.dtype} is not supported: give int8 or float32 samples")


def run(data: bytes, x: np.ndarray, target: str = "unix") -> tuple[np.ndarray, list[int]]:
    """Outputs (N, *output_shape[1:]) int8 and the board's microseconds per sample."""
    xq = prepare_input(data, x)
    info = blobmod.read(data)
    oshape = tuple(info["tensors"][info["outputs"][0]]["shape"])
    ys, times = [], []
    with open_target(target) as t:
        t.link.load(data)
        for i, s in enumerate(xq):
            y, us = t.link.run(np.ascontiguousarray(s).tobytes())
            ys.append(np.frombuffer(y, dtype=np.int8))
            times.append(us)
            _progress(i, len(xq), f"running on {target}")
    y = np.stack(ys).reshape((len(ys),) + oshape[1:]) if ys else np.zeros((0,) + oshape[1:], np.int8)
    return y, times


def sample_inputs(data: bytes, samples: int, seed: int = 0) -> np.ndarray:
    """Random int8 inputs; all 256 values when the input is a single number."""
    info = blobmod.read(data)
    shape = tuple(info["tensors"][info["inputs"][0]]["shape"])
    per_sample = shape[1:] if len(shape) > 1 else ()
    if int(np.prod(per_sample)) == 1:
        return np.arange(-128, 128, dtype=np.int8).reshape((256,) + per_sample)
    rng = np.random.default_rng(seed)
    return rng.integers(-128, 128, size=(samples,) + per_sample, dtype=np.int8)


def verify(data: bytes, reference: bytes, target: str = "unix", samples: int = 20, seed: int = 0,
           x: np.ndarray | None = None) -> dict:
    """Compare a blob on a target with TFLite Micro on the reference .tflite."""
    from .reference import tflm_run

    info = blobmod.read(data)
    src = info["meta"].get("SOURCE_SHA256")
    warning = None
    if isinstance(src, bytes) and src != hashlib.sha256(reference).digest():
        warning = "the blob was not packed from this reference model (source checksum differs)"
    xq = prepare_input(data, x) if x is not None else sample_inputs(data, samples, seed)
    got, _ = run(data, xq, target)
    want = tflm_run(reference, xq).reshape(got.shape)
    diff = np.argwhere(got != want)
    mismatches = []
    for idx in diff[:10]:
        idx = tuple(int(i) for i in idx)
        mismatches.append({"sample": idx[0], "index": list(idx[1:]), "got": int(got[idx]),
                           "want": int(want[idx])})
    return {"samples": int(len(xq)), "values": int(got.size), "mismatched_values": int(len(diff)),
            "max_abs_diff": int(np.abs(got.astype(int) - want.astype(int)).max()) if got.size else 0,
            "bit_exact": len(diff) == 0, "first_mismatches": mismatches, "warning": warning}
