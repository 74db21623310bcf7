"""Read TensorFlow Lite ``.tflite`` files without TensorFlow.

A ``.tflite`` file is a FlatBuffer (schema ``tensorflow/lite/schema/schema.fbs``,
file identifier ``TFL3``). This module has two layers:

* a tiny generic FlatBuffer reader (:class:`_Reader`, :class:`_Table`): tables
  found through vtables, scalars, strings and vectors, all little-endian and
  every access bounds-checked, so an untrusted file can only ever fail with
  :class:`~micronn.errors.MicronnError`;
* a schema layer (:func:`load`) that turns the first subgraph into plain
  dataclasses: :class:`Model`, :class:`Tensor` and :class:`Operator`, with
  builtin options decoded into dicts (snake_case keys as in schema.fbs, enum
  values as their schema names, schema defaults for absent fields).

Only the standard library and numpy are used.
"""

from __future__ import annotations

import math
import os
import struct
from dataclasses import dataclass, field

import numpy as np

from micronn.errors import MicronnError

__all__ = ["Model", "Operator", "Tensor", "load"]

# --------------------------------------------------------------------------
# Generic FlatBuffer access
# --------------------------------------------------------------------------


class _Reader:
    """Bounds-checked little-endian reads from the whole file."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.size = len(data)
        # Vectors may be shared, so a small file could make us read the same
        # bytes over and over; cap the total (real models read each vector once).
        self.budget = 8 * self.size + 65536

    def check(self, pos: int, n: int, what: str) -> None:
        if pos < 0 or n < 0 or pos + n > self.size:
            raise MicronnError(
                f"tflite: truncated file: {what} needs {n} bytes at offset {pos}, the file has {self.size}"
            )

    def unpack(self, fmt: str, pos: int, what: str) -> tuple:
        self.check(pos, struct.calcsize(fmt), what)
        return struct.unpack_from(fmt, self.data, pos)

    def uoffset(self, pos: int, what: str) -> int:
        """Follow the unsigned 32-bit offset stored at ``pos``."""
        return pos + self.unpack("<I", pos, what)[0]


class _Table:
    """One FlatBuffer table. ``fields`` names its fields in schema order, so a
    field's position there is its slot (field id); deprecated slots are ""."""

    __slots__ = ("fields", "pos", "r", "size", "vt", "vt_size", "what")

    def __init__(self, r: _Reader, pos: int, what: str, fields: tuple) -> None:
        self.r, self.pos, self.what, self.fields = r, pos, what, fields
        self.vt = pos - r.unpack("<i", pos, what)[0]
        self.vt_size, self.size = r.unpack("<HH", self.vt, f"{what} vtable")
        if self.vt_size < 4 or self.vt_size % 2 or self.size < 4:
            raise MicronnError(f"tflite: corrupt vtable of {what} at offset {self.vt}")
        r.check(self.vt, self.vt_size, f"{what} vtable")
        r.check(pos, self.size, what)

    def _field(self, name: str, width: int) -> int | None:
        """Absolute position of a field's inline value, None if absent."""
        entry = 4 + 2 * self.fields.index(name)
        if entry + 2 > self.vt_size:
            return None
        off = self.r.unpack("<H", self.vt + entry, f"{self.what} vtable")[0]
        if off == 0:
            return None
        if off + width > self.size:
            raise MicronnError(f"tflite: {self.what} {name} lies outside its table")
        return self.pos + off

    def scalar(self, name: str, fmt: str, default: object = 0) -> object:
        pos = self._field(name, struct.calcsize(fmt))
        if pos is None:
            return default
        return self.r.unpack("<" + fmt, pos, f"{self.what} {name}")[0]

    def _target(self, name: str) -> int | None:
        pos = self._field(name, 4)
        return None if pos is None else self.r.uoffset(pos, f"{self.what} {name}")

    def table(self, name: str, fields: tuple[str, ...], what: str) -> _Table | None:
        pos = self._target(name)
        return None if pos is None else _Table(self.r, pos, what, fields)

    def _vector(self, name: str, elem_size: int) -> tuple[int, int] | None:
        """(start, count) of a vector field, None if absent."""
        pos = self._target(name)
        if pos is None:
            return None
        what = f"{self.what} {name}"
        count = self.r.unpack("<I", pos, what)[0]
        self.r.check(pos + 4, count * elem_size, what)
        self.r.budget -= count * elem_size
        if self.r.budget < 0:
            raise MicronnError(f"tflite: corrupt file: {what} re-reads shared data")
        return pos + 4, count

    def vector(self, name: str, fmt: str) -> list | None:
        """A vector of scalars (struct format character ``fmt``)."""
        vec = self._vector(name, struct.calcsize(fmt))
        if vec is None:
            return None
        start, count = vec
        return list(struct.unpack_from(f"<{count}{fmt}", self.r.data, start))

    def array(self, name: str, dtype: str) -> np.ndarray | None:
        """A vector of scalars as a numpy array (``dtype`` little-endian)."""
        dt = np.dtype(dtype)
        vec = self._vector(name, dt.itemsize)
        if vec is None:
            return None
        return np.frombuffer(self.r.data, dt, vec[1], vec[0]).copy()

    def raw(self, name: str) -> bytes | None:
        """A vector of bytes."""
        vec = self._vector(name, 1)
        return None if vec is None else self.r.data[vec[0] : vec[0] + vec[1]]

    def string(self, name: str) -> str | None:
        raw = self.raw(name)
        return None if raw is None else raw.decode("utf-8", "replace")

    def tables(self, name: str, fields: tuple[str, ...], what: str) -> list[_Table]:
        """A vector of tables; element i is labelled ``f"{what} {i}"``."""
        vec = self._vector(name, 4)
        if vec is None:
            return []
        start, count = vec
        return [
            _Table(self.r, self.r.uoffset(at, f"{what} {i}"), f"{what} {i}", fields)
            for i, at in enumerate(range(start, start + 4 * count, 4))
        ]


# --------------------------------------------------------------------------
# Schema facts (tensorflow/lite/schema/schema.fbs)
# --------------------------------------------------------------------------

# fmt: off
# Table fields in schema order (position = field id); only the ones read here
# and those before them are listed.
_MODEL = ("version", "operator_codes", "subgraphs", "description", "buffers",
          "metadata_buffer", "metadata")
_OPERATOR_CODE = ("deprecated_builtin_code", "custom_code", "version", "builtin_code")
_SUBGRAPH = ("tensors", "inputs", "outputs", "operators")
_TENSOR = ("shape", "type", "buffer", "name", "quantization", "is_variable",
           "sparsity", "shape_signature")
_QUANTIZATION = ("min", "max", "scale", "zero_point", "details_type", "details",
                 "quantized_dimension")
_BUFFER = ("data", "offset", "size")
_METADATA = ("name", "buffer")
_OPERATOR = ("opcode_index", "inputs", "outputs", "builtin_options_type",
             "builtin_options", "custom_options", "custom_options_format",
             "mutating_variable_inputs", "intermediates", "large_custom_options_offset",
             "large_custom_options_size", "builtin_options_2_type", "builtin_options_2")

# TensorType enum, in value order; the dtype of a Tensor is the lower-case name.
_TENSOR_TYPES = (
    "FLOAT32", "FLOAT16", "INT32", "UINT8", "INT64", "STRING", "BOOL", "INT16",
    "COMPLEX64", "INT8", "FLOAT64", "COMPLEX128", "UINT64", "RESOURCE", "VARIANT",
    "UINT32", "UINT16", "INT4", "BFLOAT16", "INT2", "UINT4",
)
# TensorTypes without a numpy equivalent (Tensor.array() refuses them).
_NO_NUMPY = {"string", "resource", "variant", "int4", "bfloat16", "int2", "uint4"}

# BuiltinOperator enum, in value order (0 .. 209).
_BUILTIN_OPS = (
    "ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D",
    "DEPTH_TO_SPACE", "DEQUANTIZE", "EMBEDDING_LOOKUP", "FLOOR", "FULLY_CONNECTED",
    "HASHTABLE_LOOKUP", "L2_NORMALIZATION", "L2_POOL_2D",
    "LOCAL_RESPONSE_NORMALIZATION", "LOGISTIC", "LSH_PROJECTION", "LSTM", "MAX_POOL_2D",
    "MUL", "RELU", "RELU_N1_TO_1", "RELU6", "RESHAPE", "RESIZE_BILINEAR", "RNN",
    "SOFTMAX", "SPACE_TO_DEPTH", "SVDF", "TANH", "CONCAT_EMBEDDINGS", "SKIP_GRAM",
    "CALL", "CUSTOM", "EMBEDDING_LOOKUP_SPARSE", "PAD", "UNIDIRECTIONAL_SEQUENCE_RNN",
    "GATHER", "BATCH_TO_SPACE_ND", "SPACE_TO_BATCH_ND", "TRANSPOSE", "MEAN", "SUB",
    "DIV", "SQUEEZE", "UNIDIRECTIONAL_SEQUENCE_LSTM", "STRIDED_SLICE",
    "BIDIRECTIONAL_SEQUENCE_RNN", "EXP", "TOPK_V2", "SPLIT", "LOG_SOFTMAX", "DELEGATE",
    "BIDIRECTIONAL_SEQUENCE_LSTM", "CAST", "PRELU", "MAXIMUM", "ARG_MAX", "MINIMUM",
    "LESS", "NEG", "PADV2", "GREATER", "GREATER_EQUAL", "LESS_EQUAL", "SELECT", "SLICE",
    "SIN", "TRANSPOSE_CONV", "SPARSE_TO_DENSE", "TILE", "EXPAND_DIMS", "EQUAL",
    "NOT_EQUAL", "LOG", "SUM", "SQRT", "RSQRT", "SHAPE", "POW", "ARG_MIN", "FAKE_QUANT",
    "REDUCE_PROD", "REDUCE_MAX", "PACK", "LOGICAL_OR", "ONE_HOT", "LOGICAL_AND",
    "LOGICAL_NOT", "UNPACK", "REDUCE_MIN", "FLOOR_DIV", "REDUCE_ANY", "SQUARE",
    "ZEROS_LIKE", "FILL", "FLOOR_MOD", "RANGE", "RESIZE_NEAREST_NEIGHBOR", "LEAKY_RELU",
    "SQUARED_DIFFERENCE", "MIRROR_PAD", "ABS", "SPLIT_V", "UNIQUE", "CEIL",
    "REVERSE_V2", "ADD_N", "GATHER_ND", "COS", "WHERE", "RANK", "ELU",
    "REVERSE_SEQUENCE", "MATRIX_DIAG", "QUANTIZE", "MATRIX_SET_DIAG", "ROUND",
    "HARD_SWISH", "IF", "WHILE", "NON_MAX_SUPPRESSION_V4", "NON_MAX_SUPPRESSION_V5",
    "SCATTER_ND", "SELECT_V2", "DENSIFY", "SEGMENT_SUM", "BATCH_MATMUL",
    "PLACEHOLDER_FOR_GREATER_OP_CODES", "CUMSUM", "CALL_ONCE", "BROADCAST_TO", "RFFT2D",
    "CONV_3D", "IMAG", "REAL", "COMPLEX_ABS", "HASHTABLE", "HASHTABLE_FIND",
    "HASHTABLE_IMPORT", "HASHTABLE_SIZE", "REDUCE_ALL", "CONV_3D_TRANSPOSE",
    "VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE", "BROADCAST_ARGS",
    "RANDOM_STANDARD_NORMAL", "BUCKETIZE", "RANDOM_UNIFORM", "MULTINOMIAL", "GELU",
    "DYNAMIC_UPDATE_SLICE", "RELU_0_TO_1", "UNSORTED_SEGMENT_PROD",
    "UNSORTED_SEGMENT_MAX", "UNSORTED_SEGMENT_SUM", "ATAN2", "UNSORTED_SEGMENT_MIN",
    "SIGN", "BITCAST", "BITWISE_XOR", "RIGHT_SHIFT", "STABLEHLO_LOGISTIC",
    "STABLEHLO_ADD", "STABLEHLO_DIVIDE", "STABLEHLO_MULTIPLY", "STABLEHLO_MAXIMUM",
    "STABLEHLO_RESHAPE", "STABLEHLO_CLAMP", "STABLEHLO_CONCATENATE",
    "STABLEHLO_BROADCAST_IN_DIM", "STABLEHLO_CONVOLUTION", "STABLEHLO_SLICE",
    "STABLEHLO_CUSTOM_CALL", "STABLEHLO_REDUCE", "STABLEHLO_ABS", "STABLEHLO_AND",
    "STABLEHLO_COSINE", "STABLEHLO_EXPONENTIAL", "STABLEHLO_FLOOR", "STABLEHLO_LOG",
    "STABLEHLO_MINIMUM", "STABLEHLO_NEGATE", "STABLEHLO_OR", "STABLEHLO_POWER",
    "STABLEHLO_REMAINDER", "STABLEHLO_RSQRT", "STABLEHLO_SELECT", "STABLEHLO_SUBTRACT",
    "STABLEHLO_TANH", "STABLEHLO_SCATTER", "STABLEHLO_COMPARE", "STABLEHLO_CONVERT",
    "STABLEHLO_DYNAMIC_SLICE", "STABLEHLO_DYNAMIC_UPDATE_SLICE", "STABLEHLO_PAD",
    "STABLEHLO_IOTA", "STABLEHLO_DOT_GENERAL", "STABLEHLO_REDUCE_WINDOW",
    "STABLEHLO_SORT", "STABLEHLO_WHILE", "STABLEHLO_GATHER", "STABLEHLO_TRANSPOSE",
    "DILATE", "STABLEHLO_RNG_BIT_GENERATOR", "REDUCE_WINDOW", "STABLEHLO_COMPOSITE",
    "STABLEHLO_SHIFT_LEFT", "STABLEHLO_CBRT", "STABLEHLO_CASE",
)

# Builtin options tables, declared as in schema.fbs ("name:type = default;").
_SCALARS = {"bool": "?", "byte": "b", "ubyte": "B", "int": "i", "long": "q", "float": "f"}
_ENUMS: dict[str, tuple[str, tuple[str, ...]]] = {  # name -> (storage, value names)
    "ActivationFunctionType": (
        "b", ("NONE", "RELU", "RELU_N1_TO_1", "RELU6", "TANH", "SIGN_BIT")),
    "Padding": ("b", ("SAME", "VALID")),
    "TensorType": ("b", _TENSOR_TYPES),
    "FullyConnectedOptionsWeightsFormat": ("b", ("DEFAULT", "SHUFFLED4x16INT8")),
    "MirrorPadMode": ("b", ("REFLECT", "SYMMETRIC")),
    "ReduceWindowFunction": (
        "i", ("UNSUPPORTED", "ADD", "MUL", "MINIMUM", "MAXIMUM", "ALL", "ANY")),
}
_CONV = "padding:Padding; stride_w:int; stride_h:int;"
_ACT = "fused_activation_function:ActivationFunctionType;"
_DIL = "dilation_w_factor:int = 1; dilation_h_factor:int = 1;"
_QBIAS = "quantized_bias_type:TensorType;"

# BuiltinOptions union value -> (table, fields). Other types (including the empty
# tables PadOptions, QuantizeOptions, DequantizeOptions, ExpandDimsOptions,
# SpaceToBatchNDOptions and BatchToSpaceNDOptions) decode to {}.
_BUILTIN_OPTION_DECLS = {
    1: ("Conv2DOptions", f"{_CONV} {_ACT} {_DIL} {_QBIAS}"),
    2: ("DepthwiseConv2DOptions", f"{_CONV} depth_multiplier:int; {_ACT} {_DIL}"),
    6: ("SVDFOptions", f"rank:int; {_ACT} asymmetric_quantize_inputs:bool;"),
    5: ("Pool2DOptions", f"{_CONV} filter_width:int; filter_height:int; {_ACT}"),
    8: ("FullyConnectedOptions", (
        f"{_ACT} weights_format:FullyConnectedOptionsWeightsFormat; keep_num_dims:bool;"
        f" asymmetric_quantize_inputs:bool; {_QBIAS}")),
    9: ("SoftmaxOptions", "beta:float;"),
    10: ("ConcatenationOptions", f"axis:int; {_ACT}"),
    11: ("AddOptions", f"{_ACT} pot_scale_int16:bool = true;"),
    12: ("L2NormOptions", _ACT),
    15: ("ResizeBilinearOptions", (
        "new_height:int (deprecated); new_width:int (deprecated);"
        " align_corners:bool; half_pixel_centers:bool;")),
    17: ("ReshapeOptions", "new_shape:[int];"),
    19: ("SpaceToDepthOptions", "block_size:int;"),
    21: ("MulOptions", _ACT),
    23: ("GatherOptions", "axis:int; batch_dims:int = 0;"),
    27: ("ReducerOptions", "keep_dims:bool;"),
    28: ("SubOptions", f"{_ACT} pot_scale_int16:bool = true;"),
    29: ("DivOptions", _ACT),
    30: ("SqueezeOptions", "squeeze_dims:[int];"),
    32: ("StridedSliceOptions", (
        "begin_mask:int; end_mask:int; ellipsis_mask:int; new_axis_mask:int;"
        " shrink_axis_mask:int; offset:bool;")),
    35: ("SplitOptions", "num_splits:int;"),
    37: ("CastOptions", "in_data_type:TensorType; out_data_type:TensorType;"),
    40: ("ArgMaxOptions", "output_type:TensorType;"),
    49: ("TransposeConvOptions", f"{_CONV} {_ACT} {_QBIAS}"),
    71: ("UnidirectionalSequenceLSTMOptions", (
        f"{_ACT} cell_clip:float; proj_clip:float; time_major:bool; asymmetric_quantize_inputs:bool;"
        " diagonal_recurrent_tensors:bool;")),
    55: ("ShapeOptions", "out_type:TensorType;"),
    57: ("ArgMinOptions", "output_type:TensorType;"),
    59: ("PackOptions", "values_count:int; axis:int;"),
    64: ("UnpackOptions", "num:int; axis:int;"),
    74: ("ResizeNearestNeighborOptions", "align_corners:bool; half_pixel_centers:bool;"),
    75: ("LeakyReluOptions", "alpha:float;"),
    77: ("MirrorPadOptions", "mode:MirrorPadMode;"),
    79: ("SplitVOptions", "num_splits:int;"),
    94: ("DepthToSpaceOptions", "block_size:int;"),
    101: ("BatchMatMulOptions", "adj_x:bool; adj_y:bool; asymmetric_quantize_inputs:bool;"),
    103: ("CallOnceOptions", "init_subgraph_index:int;"),
    111: ("VarHandleOptions", "container:string; shared_name:string;"),
    116: ("GeluOptions", "approximate:bool;"),
}
# BuiltinOptions2 union (StableHLO era): only a few simple tables are decoded.
_BUILTIN_OPTION_2_DECLS = {
    1: ("StablehloConcatenateOptions", "dimension:long;"),
    20: ("ReduceWindowOptions", "reduce_function:ReduceWindowFunction;"),
}
# fmt: on

# A parsed field: (name, struct format, default, enum value names or None); a
# format in brackets, e.g. "[i]", is a vector (absent: None). None marks a
# deprecated slot: a field's position in its list is its slot (field id).
_Field = tuple[str, str, object, tuple[str, ...] | None]


def _parse_fields(decls: str) -> list[_Field | None]:
    """Parse schema.fbs field declarations such as ``"axis:int; keep:bool = true;"``."""
    fields: list[_Field | None] = []
    for decl in filter(None, (d.strip() for d in decls.split(";"))):
        name, _, rest = decl.partition(":")
        ftype, _, default = (part.strip() for part in rest.partition("="))
        if ftype.endswith("(deprecated)"):
            fields.append(None)
        elif ftype.startswith("["):
            fields.append((name, f"[{_SCALARS[ftype[1:-1]]}]", None, None))
        elif ftype in _ENUMS:
            fmt, names = _ENUMS[ftype]
            fields.append((name, fmt, names.index(default) if default else 0, names))
        elif ftype == "bool":
            fields.append((name, "?", default == "true", None))
        elif ftype == "string":
            fields.append((name, "string", None, None))
        else:
            fmt = _SCALARS[ftype]
            value = (float if fmt == "f" else int)(default or 0)
            fields.append((name, fmt, value, None))
    return fields


_OPTIONS = {k: (t, _parse_fields(d)) for k, (t, d) in _BUILTIN_OPTION_DECLS.items()}
_OPTIONS_2 = {k: (t, _parse_fields(d)) for k, (t, d) in _BUILTIN_OPTION_2_DECLS.items()}


def _enum(names: tuple[str, ...], value: int, what: str) -> str:
    if not 0 <= value < len(names):
        raise MicronnError(f"tflite: {what}: bad enum value {value}")
    return names[value]


def _decode_options(op: _Table, slot: str, table_name: str, fields: list) -> dict:
    """Decode the options table of union field ``slot`` (defaults if it is absent)."""
    names = tuple(f[0] if f else "" for f in fields)
    table = op.table(slot, names, f"{op.what} {table_name}")
    out: dict = {}
    for key, fmt, default, enum in filter(None, fields):
        if fmt.startswith("["):
            out[key] = None if table is None else table.vector(key, fmt[1:-1])
            continue
        if fmt == "string":
            out[key] = None if table is None else table.string(key)
            continue
        value = default if table is None else table.scalar(key, fmt, default)
        if enum is not None:
            value = _enum(enum, value, f"{op.what} {table_name} {key}")
        out[key] = bool(value) if fmt == "?" else value
    return out


# --------------------------------------------------------------------------
# Public data model
# --------------------------------------------------------------------------


@dataclass(eq=False)
class Tensor:
    """One tensor of subgraph 0 (compared by identity: it holds numpy arrays)."""

    index: int
    name: str
    shape: tuple[int, ...]
    shape_signature: tuple[int, ...] | None
    dtype: str
    buffer: int
    data: bytes | None = field(repr=False)
    scale: np.ndarray | None
    zero_point: np.ndarray | None
    quantized_dimension: int
    is_variable: bool

    def array(self) -> np.ndarray:
        """The constant data viewed as ``dtype`` with ``shape`` (read-only)."""
        if self.data is None:
            raise MicronnError(f"tflite: tensor {self.index} ({self.name}) has no data")
        if self.dtype in _NO_NUMPY:
            raise MicronnError(f"tflite: tensor {self.index} ({self.name}): {self.dtype} has no numpy dtype")
        dt = np.dtype(self.dtype).newbyteorder("<")
        size = math.prod(self.shape) * dt.itemsize
        if min(self.shape, default=0) < 0 or size != len(self.data):
            raise MicronnError(
                f"tflite: tensor {self.index} ({self.name}): {len(self.data)} bytes of data"
                f" do not fit shape {self.shape} {self.dtype}"
            )
        return np.frombuffer(self.data, dt).reshape(self.shape)


@dataclass
class Operator:
    """One operator of subgraph 0; input -1 marks an omitted optional input."""

    index: int
    opcode: str
    version: int
    custom_code: str | None
    inputs: list[int]
    outputs: list[int]
    intermediates: list[int]
    options: dict


@dataclass
class Subgraph:
    """A subgraph after the first (the init subgraph a CALL_ONCE names)."""

    tensors: list[Tensor]
    operators: list[Operator]
    inputs: list[int]
    outputs: list[int]


@dataclass
class Model:
    """The parts of a ``.tflite`` model micronn uses (subgraph 0; the others in ``subgraphs``)."""

    version: int
    description: str
    tensors: list[Tensor]
    operators: list[Operator]
    inputs: list[int]
    outputs: list[int]
    subgraph_count: int
    metadata: dict[str, bytes]
    source_bytes: int
    subgraphs: list[Subgraph] = field(default_factory=list)     # subgraph k is subgraphs[k - 1]


# --------------------------------------------------------------------------
# Schema layer
# --------------------------------------------------------------------------


def _read_source(src: object) -> bytes:
    if isinstance(src, (bytes, bytearray)):
        return bytes(src)
    if isinstance(src, memoryview):
        return src.tobytes()
    if isinstance(src, (str, os.PathLike)):
        try:
            with open(src, "rb") as f:
                return f.read()
        except OSError as e:
            raise MicronnError(f"tflite: cannot read {os.fspath(src)}: {e.strerror or e}") from e
    raise TypeError(f"tflite.load() wants a path or bytes, not {type(src).__name__}")


def _buffer_data(r: _Reader, buf: _Table) -> bytes | None:
    """Buffer.data, or the external ``offset``/``size`` range (offset > 1)."""
    offset, size = buf.scalar("offset", "Q"), buf.scalar("size", "Q")
    if offset > 1:
        r.check(offset, size, f"{buf.what} external data")
        return r.data[offset : offset + size] or None
    return buf.raw("data") or None


def _check_index(value: int, count: int, what: str, optional: bool = False) -> None:
    if not (0 <= value < count or (optional and value == -1)):
        raise MicronnError(f"tflite: {what} {value} out of range (count {count})")


def _tensor(t: _Table, index: int, buffers: list[bytes | None]) -> Tensor:
    dtype = _enum(_TENSOR_TYPES, t.scalar("type", "b"), f"{t.what} type").lower()
    buffer = t.scalar("buffer", "I")
    _check_index(buffer, len(buffers), f"{t.what} buffer index")
    scale = zero_point = None
    quant = t.table("quantization", _QUANTIZATION, f"{t.what} quantization")
    if quant is not None:
        scale = quant.array("scale", "<f4")
        zero_point = quant.array("zero_point", "<i8")
    signature = t.vector("shape_signature", "i")
    return Tensor(
        index=index,
        name=t.string("name") or "",
        shape=tuple(t.vector("shape", "i") or ()),
        shape_signature=None if signature is None else tuple(signature),
        dtype=dtype,
        buffer=buffer,
        data=buffers[buffer],
        scale=scale if scale is not None and scale.size else None,
        zero_point=zero_point if zero_point is not None and zero_point.size else None,
        quantized_dimension=quant.scalar("quantized_dimension", "i") if quant else 0,
        is_variable=bool(t.scalar("is_variable", "?", False)),
    )


def _opcode(code: _Table) -> tuple[str, int, str | None]:
    """(name, version, custom_code) of an OperatorCode."""
    # Codes above 127 only fit builtin_code; old files only set the deprecated one.
    deprecated = code.scalar("deprecated_builtin_code", "b")
    builtin = max(deprecated, code.scalar("builtin_code", "i"))
    if builtin < 0:
        raise MicronnError(f"tflite: {code.what}: bad builtin code {builtin}")
    name = _BUILTIN_OPS[builtin] if builtin < len(_BUILTIN_OPS) else f"BUILTIN_{builtin}"
    return name, code.scalar("version", "i", 1), code.string("custom_code")


def _operator(op: _Table, index: int, opcodes: list, n_tensors: int) -> Operator:
    opcode_index = op.scalar("opcode_index", "I")
    _check_index(opcode_index, len(opcodes), f"{op.what} opcode index")
    name, version, custom = opcodes[opcode_index]
    inputs = op.vector("inputs", "i") or []
    outputs = op.vector("outputs", "i") or []
    mids = op.vector("intermediates", "i") or []
    for kind, ids in (("input", inputs), ("output", outputs), ("intermediate", mids)):
        what = f"{op.what} ({name}) {kind} tensor"
        for i in ids:
            _check_index(i, n_tensors, what, optional=kind == "input")
    options: dict = {}
    for slot, known in (("builtin_options", _OPTIONS), ("builtin_options_2", _OPTIONS_2)):
        union_type = op.scalar(f"{slot}_type", "B")
        if union_type in known:
            options = _decode_options(op, slot, *known[union_type])
            break
    return Operator(index, name, version, custom, inputs, outputs, mids, options)


def load(src: str | os.PathLike | bytes | bytearray | memoryview) -> Model:
    """Parse a ``.tflite`` file (path or its bytes); raises MicronnError if malformed."""
    data = _read_source(src)
    if len(data) < 8:
        raise MicronnError(f"tflite: truncated file ({len(data)} bytes)")
    if data[4:8] != b"TFL3":
        raise MicronnError(f"tflite: bad identifier {data[4:8]!r}, expected b'TFL3'")
    r = _Reader(data)
    root = _Table(r, r.uoffset(0, "root offset"), "model", _MODEL)

    buffers = [_buffer_data(r, b) for b in root.tables("buffers", _BUFFER, "buffer")]
    codes = root.tables("operator_codes", _OPERATOR_CODE, "operator code")
    opcodes = [_opcode(c) for c in codes]
    subgraphs = root.tables("subgraphs", _SUBGRAPH, "subgraph")
    if not subgraphs:
        raise MicronnError("tflite: model has no subgraphs")
    parsed = [_subgraph(sg, k, buffers, opcodes) for k, sg in enumerate(subgraphs)]
    tensors, operators, inputs, outputs = (parsed[0].tensors, parsed[0].operators, parsed[0].inputs,
                                           parsed[0].outputs)

    metadata: dict[str, bytes] = {}
    for m in root.tables("metadata", _METADATA, "metadata"):
        buffer = m.scalar("buffer", "I")
        _check_index(buffer, len(buffers), f"{m.what} buffer index")
        metadata[m.string("name") or ""] = buffers[buffer] or b""

    return Model(
        version=root.scalar("version", "I"),
        description=root.string("description") or "",
        tensors=tensors,
        operators=operators,
        inputs=inputs,
        outputs=outputs,
        subgraph_count=len(subgraphs),
        metadata=metadata,
        source_bytes=len(data),
        subgraphs=parsed[1:],
    )


def _subgraph(sg: _Table, k: int, buffers: list, opcodes: list) -> Subgraph:
    tensor_tables = sg.tables("tensors", _TENSOR, "tensor")
    tensors = [_tensor(t, i, buffers) for i, t in enumerate(tensor_tables)]
    op_tables = sg.tables("operators", _OPERATOR, "operator")
    operators = [_operator(op, i, opcodes, len(tensors)) for i, op in enumerate(op_tables)]
    inputs, outputs = sg.vector("inputs", "i") or [], sg.vector("outputs", "i") or []
    for kind, ids in (("input", inputs), ("output", outputs)):
        for i in ids:
            _check_index(i, len(tensors), f"subgraph {k} {kind} tensor")
    return Subgraph(tensors, operators, inputs, outputs)
