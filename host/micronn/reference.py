"""The oracle: TensorFlow Lite Micro's reference interpreter (PyPI tflite-micro)."""

from __future__ import annotations

import numpy as np

from .errors import MicronnError


def tflm_run(model: bytes, x: np.ndarray) -> np.ndarray:
    """Run every sample of x (shape (N, *input_shape[1:])) through TFLite Micro."""
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError as e:
        raise MicronnError("the reference needs tflite-micro: pip install 'micronn[tf]'") from e
    it = runtime.Interpreter.from_bytes(bytes(model))
    ind, outd = it.get_input_details(0), it.get_output_details(0)
    shape = tuple(int(d) for d in ind["shape"])
    x = np.asarray(x)
    if x.dtype != ind["dtype"]:
        raise MicronnError(f"reference input must be {np.dtype(ind['dtype']).name}, not {x.dtype}")
    if x.ndim == len(shape) - 1 or x.shape[1:] != shape[1:]:
        x = x.reshape((-1,) + shape[1:])
    ys = []
    for sample in x:
        it.set_input(sample.reshape(shape), 0)
        it.invoke()
        ys.append(np.array(it.get_output(0)).reshape(tuple(int(d) for d in outd["shape"]))[0])
    return np.stack(ys) if ys else np.zeros((0,), outd["dtype"])


def tflm_tensors(model: bytes, sample: np.ndarray, indices) -> dict[int, np.ndarray]:
    """The given tensors of one TFLite Micro inference (for tracing). The indices
    must exist: the binding does not check them."""
    from tflite_micro.python.tflite_micro import runtime

    it = runtime.Interpreter.from_bytes(bytes(model), intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors)
    shape = tuple(int(d) for d in it.get_input_details(0)["shape"])
    it.set_input(np.asarray(sample).reshape(shape), 0)
    it.invoke()
    out = {}
    for i in indices:
        t = it.GetTensor(int(i), 0)
        out[int(i)] = np.array((t[0] if isinstance(t, list) else t)["tensor_data"])
    return out


def tflm_arena_total(model: bytes) -> int:
    """TFLite Micro's "Arena allocation total" for a model (print_allocations())."""
    import os
    import re
    import sys
    import tempfile

    from tflite_micro.python.tflite_micro import runtime

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
