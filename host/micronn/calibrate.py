"""Calibration methods: how each activation's int8 range is chosen from calibration data.

TensorFlow's converter takes each activation's range as the min and max seen over the
calibration samples ("minmax"): one outlier in the calibration data widens the range
of every tensor it reaches and leaves few codes for the values that matter. Here the
converter's calibrated float model (its per-tensor min/max recorded in the
flatbuffer) gets other ranges, chosen from the activations of the same calibration
samples, and TensorFlow's own quantizer (mlir_quantize, as the converter calls it)
then makes the usual fully-int8 model, which TFLite Micro runs as any other:

- ``percentile:P``: from the (100 - P)th to the Pth percentile of the tensor's values
  (values beyond are clipped);
- ``mse``: the range, a fraction of the min/max range, whose int8 quantization of the
  calibration values has the least mean squared error.
"""

from __future__ import annotations

import numpy as np

from .errors import MicronnError

METHODS = ("minmax", "percentile:P", "mse")
# values kept per tensor to choose its range from (a random subset beyond that), and for the mse search
KEEP_VALUES = 1_000_000
MSE_VALUES = 100_000
MSE_GRID = np.linspace(0.05, 1.0, 96)


def parse_method(text) -> tuple[str, float | None]:
    """("minmax", None), ("percentile", P) with 50 < P <= 100, or ("mse", None) from
    "minmax", "percentile:P" or "mse"; anything else is the user's mistake."""
    if isinstance(text, tuple):
        return text
    s = str(text).strip().lower()
    if s in ("minmax", "mse"):
        return s, None
    kind, sep, value = s.partition(":")
    if kind == "percentile" and sep:
        try:
            p = float(value)
        except ValueError:
            p = float("nan")
        if not 50 < p <= 100:
            raise MicronnError(f"calibration method {text!r}: the percentile must be a number above 50 and at "
                               f"most 100 (e.g. percentile:99.99)")
        return "percentile", p
    raise MicronnError(f"unknown calibration method {text!r}: use minmax, percentile:P (e.g. percentile:99.99) "
                       f"or mse")


def method_name(method) -> str:
    """The method as the user writes it."""
    kind, p = parse_method(method)
    return f"percentile:{p:g}" if kind == "percentile" else kind


def _interpreter(model: bytes):
    """TFLite's interpreter on a float model, every tensor kept (no XNNPACK delegate,
    which would not keep the tensors inside the part it runs)."""
    import warnings

    from .convert import _quiet, _tensorflow

    tf = _tensorflow()
    with _quiet(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        it = tf.lite.Interpreter(
            model_content=bytes(model), experimental_preserve_all_tensors=True,
            experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        it.allocate_tensors()
    return it


def float_tensors(model: bytes, x: np.ndarray, indices, keep: int | None = None, seed: int = 0) -> dict:
    """{tensor index: float32 values over all samples of x} for a float .tflite. keep:
    at most about this many values per tensor (a random subset of each sample's)."""
    it = _interpreter(model)
    ind = it.get_input_details()[0]
    shape = tuple(int(d) for d in ind["shape"])
    x = np.asarray(x, np.float32).reshape((-1, *shape[1:]))
    rng = np.random.default_rng(seed)
    out: dict[int, list] = {int(i): [] for i in indices}
    for sample in x:
        it.set_tensor(ind["index"], sample.reshape(shape))
        it.invoke()
        for i, vals in out.items():
            v = np.asarray(it.get_tensor(i), np.float32).ravel()
            per = None if keep is None else max(1, keep // len(x))
            if per is not None and v.size > per:
                v = v[rng.choice(v.size, per, replace=False)]
            vals.append(v.copy())
    return {i: np.concatenate(v) for i, v in out.items()}


def int8_error(v: np.ndarray, lo: float, hi: float) -> float:
    """Mean squared error of v quantized to int8 over [lo, hi] as TFLite does (asymmetric,
    zero exactly representable)."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi - lo <= 0:
        return float(np.mean(v.astype(np.float64) ** 2))
    scale = (hi - lo) / 255.0
    zp = np.clip(np.round(-128 - lo / scale), -128, 127)
    q = np.clip(np.round(v / scale) + zp, -128, 127)
    return float(np.mean(((q - zp) * scale - v) ** 2))


def choose_range(v: np.ndarray, method, seed: int = 0) -> tuple[float, float]:
    """(lo, hi) for one tensor's calibration values v by the method; 0 always inside."""
    kind, p = parse_method(method)
    v = np.asarray(v, np.float32).ravel()
    lo, hi = float(v.min()), float(v.max())
    if kind == "percentile":
        lo, hi = (float(np.percentile(v, 100 - p)), float(np.percentile(v, p))) if p < 100 else (lo, hi)
    elif kind == "mse":
        s = v if v.size <= MSE_VALUES else np.random.default_rng(seed).choice(v, MSE_VALUES, replace=False)
        errors = [int8_error(s, lo * a, hi * a) for a in MSE_GRID]
        a = float(MSE_GRID[int(np.argmin(errors))])
        lo, hi = lo * a, hi * a
    return min(lo, 0.0), max(hi, 0.0)


def _stats_tensors(model_t) -> list[int]:
    """Indices of the tensors of subgraph 0 whose calibrated min/max are recorded (one each)."""
    out = []
    for i, t in enumerate(model_t.subgraphs[0].tensors):
        q = t.quantization
        if q is not None and q.min is not None and q.max is not None and len(q.min) == 1 and len(q.max) == 1:
            out.append(i)
    return out


def ranges(calibrated: bytes, x: np.ndarray, method) -> dict[int, tuple[float, float]]:
    """{tensor index: (lo, hi)} chosen by the method for every calibrated tensor of the
    model, from its activations on the calibration samples x."""
    from tensorflow.lite.tools import flatbuffer_utils

    model_t = flatbuffer_utils.convert_bytearray_to_object(bytearray(calibrated))
    indices = _stats_tensors(model_t)
    if parse_method(method)[0] == "minmax":
        return {i: (float(model_t.subgraphs[0].tensors[i].quantization.min[0]),
                    float(model_t.subgraphs[0].tensors[i].quantization.max[0])) for i in indices}
    values = float_tensors(calibrated, x, indices, keep=KEEP_VALUES)
    return {i: choose_range(values[i], method) for i in indices}


def requantize(calibrated: bytes, x: np.ndarray, method, *, float_io: bool = False) -> bytes:
    """The fully-int8 .tflite of a calibrated float model (the converter's, with
    _experimental_calibrate_only), each activation's range chosen by the method from
    the calibration samples x, quantized by TensorFlow's quantizer as the converter does."""
    from tensorflow.lite.tools import flatbuffer_utils

    from .convert import _quiet, _tensorflow

    tf = _tensorflow()
    from tensorflow.lite.python.convert import mlir_quantize

    model_t = flatbuffer_utils.convert_bytearray_to_object(bytearray(calibrated))
    for i, (lo, hi) in ranges(calibrated, x, method).items():
        q = model_t.subgraphs[0].tensors[i].quantization
        q.min, q.max = [np.float32(lo)], [np.float32(hi)]
    edited = bytes(flatbuffer_utils.convert_object_to_bytearray(model_t))
    io_type = tf.float32 if float_io else tf.int8
    try:
        with _quiet():
            return bytes(mlir_quantize(edited, input_data_type=io_type, output_data_type=io_type))
    except Exception as e:  # the quantizer raises many types; name the problem once
        first = (str(e).strip().splitlines() or [""])[0]
        raise MicronnError(f"TensorFlow's quantizer failed ({method_name(method)}): {first}") from e


def calibrate_float_tflite(model: bytes, x: np.ndarray) -> bytes:
    """A float .tflite calibrated on samples x as the converter calibrates (min/max per tensor)."""
    from .convert import _quiet, _tensorflow

    _tensorflow()
    from tensorflow.lite.python.optimize import calibrator

    def gen():
        for i in range(len(x)):
            yield [x[i:i + 1]]

    try:
        with _quiet():
            c = calibrator.Calibrator(calibrator.add_intermediate_tensors(bytes(model)))
            return bytes(c.calibrate(gen))
    except Exception as e:  # TFLite raises many types for models it cannot calibrate
        first = (str(e).strip().splitlines() or [""])[0]
        raise MicronnError(f"cannot calibrate the float .tflite: {first}") from e
