"""The micronn blob format (``.mnb``): the one source of truth.

Everything the host writes and the device reads is described here; the C
header ``cmodule/mnn_format.h`` is generated from this module by
``python -m micronn.format --write`` and a test fails when it is stale.

A blob is one flat little-endian binary:

    header (HEADER, fixed size)
    section table (SECTION records)
    sections, each starting on a 16-byte boundary:
      TENSORS  tensor_count TENSOR records
      OPS      op_count op records (OP header, tensor indices, parameter record)
      IO       input tensor indices then output tensor indices (u16 each)
      CONST    constant data; every array starts on a 16-byte boundary
      META     metadata entries (META_ENTRY + value), optional

The CRC-32 (zlib polynomial) covers every byte after the ``crc32`` field up to
``total_size``. Readers reject a different major version and accept any minor
version of the same major: newer minors may only add optional sections,
metadata keys, trailing parameter fields, op codes, dtypes, storage kinds, flag
bits and header fields taken from ``reserved``. What a reader does not know it
refuses at load, saying what: an unknown op code, dtype, storage, tensor or op
flag, or a nonzero reserved header word (so a blob that needs a newer reader is
never run wrongly by an older one). Minor version 1 added model state (the
header's state_size, STATE storage, the ONCE op flag, ASSIGN and SVDF), the
16x8 and int4-weight op codes and the int4 dtype.
"""

from __future__ import annotations

import struct
import sys
from dataclasses import dataclass
from pathlib import Path

from .errors import MicronnError

MAGIC = b"MNNB"
VERSION_MAJOR = 1
VERSION_MINOR = 1   # 1: model state (STATE storage, state_size, ONCE ops, ASSIGN, SVDF)
ALIGN = 16          # alignment of sections and constant arrays
ARENA_ALIGN = 8     # alignment of activation tensors in the arena
MAX_DIMS = 4
# Scratch (the header's scratch_size, after the arena) that makes kernels take
# their fast variants; with less, the kernels fall back to loops without it.
CONV_SCRATCH_PER_TAP = 4    # CONV_2D: bytes per k_h * k_w * in_c / groups (two int16 im2col columns)
ADD_SCRATCH = 2048          # ADD: two 256-entry int32 rescaling tables


# CONV_2D_MAXPOOL: int16 weights, one int16 column per window tap (k rounded up
# to even each) and the input image (in_h * in_w * in_c values) as int16. One
# expression for both sides: the C header gets it as MNN_CONV_POOL_SCRATCH().
_CONV_POOL_SCRATCH = "2 * (((k) + ((k) & 1)) * ((out_c) + (taps)) + (image))"


def conv_pool_scratch(k: int, out_c: int, pool_h: int, pool_w: int, image: int) -> int:
    """Scratch bytes of CONV_2D_MAXPOOL's fast variant (k = k_h * k_w * in_c)."""
    return eval(_CONV_POOL_SCRATCH, {}, {"k": k, "out_c": out_c, "taps": pool_h * pool_w, "image": image})


MAX_TENSORS = 4096  # device-side limits; the loader rejects larger counts
MAX_OPS = 2048
MAX_SECTIONS = 32
MAX_IO = 16         # graph inputs, and graph outputs, a blob may have (each 1..MAX_IO)
NO_TENSOR = 0xFFFF  # an omitted optional operator input

_CTYPES = {"u8": "uint8_t", "u16": "uint16_t", "u32": "uint32_t", "i32": "int32_t", "f32": "float"}
_STRUCT = {"u8": "B", "u16": "H", "u32": "I", "i32": "i", "f32": "f"}
_RANGES = {"u8": (0, 0xFF), "u16": (0, 0xFFFF), "u32": (0, 0xFFFFFFFF), "i32": (-(1 << 31), (1 << 31) - 1)}


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    doc: str
    count: int = 1


class Record:
    """A fixed-layout little-endian record; offsets follow the field order."""

    def __init__(self, name: str, prefix: str, fields: list[Field], doc: str):
        self.name, self.prefix, self.fields, self.doc = name, prefix, fields, doc
        self.offsets: dict[str, int] = {}
        fmt, off = "<", 0
        for f in fields:
            size = struct.calcsize("<" + _STRUCT[f.type])
            if off % size:
                raise AssertionError(f"{name}.{f.name} is misaligned")
            self.offsets[f.name] = off
            fmt += f"{f.count}{_STRUCT[f.type]}"
            off += size * f.count
        if off % 4:
            raise AssertionError(f"{name} size {off} is not a multiple of 4")
        self.size = off
        self._struct = struct.Struct(fmt)

    def pack(self, **values) -> bytes:
        flat = []
        for f in self.fields:
            v = values.pop(f.name, [0] * f.count if f.count > 1 else 0)
            flat.extend(v if f.count > 1 else [v])
            lo, hi = _RANGES.get(f.type, (None, None))
            if lo is not None and not all(lo <= x <= hi for x in (v if f.count > 1 else [v])):
                # a model whose sizes or parameters the format cannot hold, not a bug
                raise MicronnError(f"{self.name} field {f.name} = {v} does not fit the blob format ({f.type})")
        if values:
            raise TypeError(f"{self.name}: unknown fields {sorted(values)}")
        return self._struct.pack(*flat)

    def unpack(self, buf, offset: int = 0) -> dict:
        flat = list(self._struct.unpack_from(buf, offset))
        out = {}
        for f in self.fields:
            if f.count > 1:
                out[f.name], flat = tuple(flat[: f.count]), flat[f.count:]
            else:
                out[f.name] = flat.pop(0)
        return out


F = Field

HEADER = Record("header", "MNN_HDR", [
    F("magic", "u8", "b'MNNB'", 4),
    F("version_major", "u16", "format major version; readers reject any other"),
    F("version_minor", "u16", "format minor version; readers accept any"),
    F("header_size", "u16", "bytes of this header (the section table follows)"),
    F("section_count", "u16", "entries in the section table"),
    F("total_size", "u32", "bytes of the whole blob"),
    F("crc32", "u32", "CRC-32 of bytes [crc32 offset + 4, total_size)"),
    F("flags", "u32", "HEADER_FLAGS bits"),
    F("arena_size", "u32", "bytes of activation memory the ops need"),
    F("scratch_size", "u32", "bytes of kernel scratch memory, placed after the arena"),
    F("tensor_count", "u16", "records in the TENSORS section"),
    F("op_count", "u16", "records in the OPS section"),
    F("input_count", "u16", "graph inputs (first entries of IO)"),
    F("output_count", "u16", "graph outputs (entries of IO after the inputs)"),
    F("const_size", "u32", "bytes of constant data (weights, biases, multipliers)"),
    F("macs", "u32", "multiply-accumulates of one inference (information)"),
    F("state_size", "u32", "bytes of model state (STATE tensors): the model's own memory, kept between runs "
                           "(minor version 1; zero before)"),
    F("reserved", "u32", "zero", 3),
], "Fixed blob header at offset 0.")

SECTION = Record("section", "MNN_SEC", [
    F("id", "u32", "SECTION_IDS value"),
    F("offset", "u32", "byte offset from the start of the blob (16-byte aligned)"),
    F("size", "u32", "bytes"),
    F("flags", "u32", "SECTION_FLAGS bits"),
], "One entry of the section table, which follows the header.")

TENSOR = Record("tensor", "MNN_TEN", [
    F("dtype", "u8", "DTYPES value"),
    F("ndim", "u8", "number of dimensions, 0..4"),
    F("storage", "u8", "STORAGE value"),
    F("flags", "u8", "zero (no flags are defined; readers refuse others)"),
    F("dims", "u32", "shape, NHWC; unused dimensions are 1", MAX_DIMS),
    F("offset", "u32", "byte offset in the arena, in the CONST section or in the model state"),
    F("nbytes", "u32", "bytes; equals the product of dims times the dtype size"),
    F("scale", "f32", "quantization scale (0 when not quantized)"),
    F("zero_point", "i32", "quantization zero point"),
], "One tensor of the graph.")

OP = Record("op", "MNN_OP", [
    F("opcode", "u8", "OPCODES value"),
    F("n_inputs", "u8", "input tensor indices that follow"),
    F("n_outputs", "u8", "output tensor indices that follow the inputs"),
    F("flags", "u8", "OP_FLAGS bits; readers refuse others"),
    F("size", "u16", "bytes of the whole op record, a multiple of 4"),
    F("params_size", "u16", "bytes of the parameter record at the end of the op record"),
], "Op record header; followed by u16 tensor indices (inputs then outputs, padded to 4 bytes) "
   "and the op's parameter record.")

META_ENTRY = Record("meta", "MNN_META", [
    F("key", "u16", "META_KEYS value"),
    F("type", "u16", "META_TYPES value"),
    F("size", "u32", "bytes of the value that follows (padded to 4 bytes in the blob)"),
], "One metadata entry; unknown keys are skipped.")

# --- enumerations ---------------------------------------------------------

HEADER_FLAGS = {"HAS_META": 1 << 0, "FLOAT_INPUT": 1 << 1, "FLOAT_OUTPUT": 1 << 2}
SECTION_IDS = {"TENSORS": 1, "OPS": 2, "IO": 3, "CONST": 4, "META": 5}
SECTION_FLAGS = {"OPTIONAL": 1 << 0}
REQUIRED_SECTIONS = ("TENSORS", "OPS", "IO", "CONST")
DTYPES = {"int8": 1, "uint8": 2, "int16": 3, "int32": 4, "float32": 5, "int64": 6,
          "int4": 7}   # int4: packed, two per byte (dtype_nbytes; the S4 section below)
DTYPE_SIZES = {"int8": 1, "uint8": 1, "int16": 2, "int32": 4, "float32": 4, "int64": 8}
# STATE: the model's state memory (header state_size), which only that model uses and
# which keeps its values between runs; reset fills every STATE tensor with its zero point.
STORAGE = {"ARENA": 0, "CONST": 1, "STATE": 2}
# ONCE: the op runs once, when the model is loaded (initial values of the state); ONCE
# ops come first in the op list and a run starts after them.
OP_FLAGS = {"ONCE": 1 << 0}
# RECIPE: how a Keras model was quantized ("activations=int8 weights=int4:dense calib-method=minmax"),
# so `verify --reference MODEL.keras` converts it again the same way; the board skips it.
META_KEYS = {"NAME": 1, "LABELS": 2, "PACKER": 3, "SOURCE_SHA256": 4, "INPUT_NAMES": 5,
             "OUTPUT_NAMES": 6, "PREPROCESS": 7, "SOURCE_BYTES": 8, "ARENA_LOWER_BOUND": 9, "RECIPE": 10}
META_TYPES = {"UTF8": 1, "BYTES": 2, "U32": 3, "F32_ARRAY": 4}

# Operator parameter records. Each op also lists its tensor operands; an
# input marked optional may be NO_TENSOR.
OP_PARAMS: dict[str, Record] = {}
OP_OPERANDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
OPCODES: dict[str, int] = {}


def _op(name: str, code: int, inputs: tuple[str, ...], outputs: tuple[str, ...],
        fields: list[Field], doc: str) -> None:
    OPCODES[name] = code
    OP_OPERANDS[name] = (inputs, outputs)
    OP_PARAMS[name] = Record(name.lower(), "MNN_P_" + name, fields, doc)


_REQUANT = [
    F("output_offset", "i32", "output zero point"),
    F("act_min", "i32", "lowest output value (fused activation)"),
    F("act_max", "i32", "highest output value (fused activation)"),
]

_op("FULLY_CONNECTED", 1, ("input", "weights", "bias?", "mult", "shift"), ("output",), [
    F("input_offset", "i32", "-input zero point; 0 when folded into the bias"),
    F("filter_offset", "i32", "-weight zero point"),
    *_REQUANT,
    F("batches", "u32", "rows of the input"),
    F("accum_depth", "u32", "input values per row (weights columns)"),
    F("out_depth", "u32", "output values per row (weights rows)"),
], "int8 fully connected: weights int8 [out_depth, accum_depth]; bias int32 [out_depth]; "
   "mult/shift int32 [out_depth] or [1] (per-tensor).")

_op("SOFTMAX", 2, ("input",), ("output",), [
    F("input_mult", "i32", "beta * input scale as a Q31 multiplier"),
    F("input_left_shift", "i32", "its left shift"),
    F("diff_min", "i32", "differences below this give the lowest output"),
    F("rows", "u32", "rows"),
    F("row_size", "u32", "values per row (softmax axis)"),
], "int8 softmax over the last axis; output scale 1/256, zero point -128.")


_GEOM = [
    F("batches", "u32", "N"),
    F("in_h", "u32", "input height"),
    F("in_w", "u32", "input width"),
    F("in_c", "u32", "input channels"),
    F("out_h", "u32", "output height"),
    F("out_w", "u32", "output width"),
    F("out_c", "u32", "output channels"),
    F("k_h", "u32", "kernel height"),
    F("k_w", "u32", "kernel width"),
    F("stride_h", "u32", "vertical stride"),
    F("stride_w", "u32", "horizontal stride"),
    F("dil_h", "u32", "vertical dilation"),
    F("dil_w", "u32", "horizontal dilation"),
    F("pad_top", "i32", "rows of implicit padding above the input"),
    F("pad_left", "i32", "columns of implicit padding left of the input"),
]

# Geometry comes first in conv, depthwise and pooling records, so its offsets are shared.
_op("CONV_2D", 3, ("input", "weights", "bias?", "mult", "shift"), ("output",), [
    *_GEOM, F("input_offset", "i32", "-input zero point"), *_REQUANT,
    F("groups", "u32", "channel groups; weights have in_c / groups input channels"),
], "int8 2-D convolution, NHWC: weights int8 [out_c, k_h, k_w, in_c/groups]; bias, mult, shift int32 [out_c].")

_op("DEPTHWISE_CONV_2D", 4, ("input", "weights", "bias?", "mult", "shift"), ("output",), [
    *_GEOM, F("input_offset", "i32", "-input zero point"), *_REQUANT,
    F("depth_mult", "u32", "output channels per input channel"),
], "int8 depthwise convolution: weights int8 [1, k_h, k_w, out_c]; out_c = in_c * depth_mult.")

_POOL = [
    *_GEOM,
    F("act_min", "i32", "lowest output value"),
    F("act_max", "i32", "highest output value"),
]
_op("MAX_POOL_2D", 5, ("input",), ("output",), _POOL,
    "int8 max pooling (in_c == out_c, dilation 1; same quantization in and out).")
_op("AVERAGE_POOL_2D", 6, ("input",), ("output",), _POOL,
    "int8 average pooling over the taps inside the input, rounding half away from zero.")

_BINARY = [
    F("dims", "u32", "output shape as 4-D", 4),
    F("stride1", "u32", "element strides of input 1 per output axis (0 broadcasts)", 4),
    F("stride2", "u32", "element strides of input 2 per output axis (0 broadcasts)", 4),
    F("input1_offset", "i32", "-zero point of input 1"),
    F("input2_offset", "i32", "-zero point of input 2"),
    *_REQUANT,
    F("left_shift", "i32", "ADD: left shift of both inputs"),
    F("input1_mult", "i32", "ADD: input 1 multiplier"),
    F("input1_shift", "i32", "ADD: input 1 shift"),
    F("input2_mult", "i32", "ADD: input 2 multiplier"),
    F("input2_shift", "i32", "ADD: input 2 shift"),
    F("output_mult", "i32", "output multiplier"),
    F("output_shift", "i32", "output shift"),
]
_op("ADD", 7, ("input1", "input2"), ("output",), _BINARY, "int8 addition with broadcasting (TFLite's scheme).")
_op("MUL", 8, ("input1", "input2"), ("output",), _BINARY, "int8 multiplication with broadcasting.")

_op("LUT", 9, ("input", "table"), ("output",), [
    F("count", "u32", "elements"),
], "Any int8 -> int8 elementwise op: table int8 [256], output = table[input + 128].")

_op("CONCATENATION", 10, ("input*",), ("output",), [
    F("outer", "u32", "blocks; each input contributes nbytes / outer bytes per block"),
], "Concatenation of 1..8 int8 tensors with one quantization.")

_op("PAD", 11, ("input",), ("output",), [
    F("in_dims", "u32", "input shape as 4-D", 4),
    F("before", "u32", "padding before, per axis", 4),
    F("after", "u32", "padding after, per axis", 4),
    F("value", "i32", "the pad value (the zero point)"),
], "int8 constant padding.")

_op("MEAN", 12, ("input",), ("output",), [
    F("outer", "u32", "outer size"),
    F("reduce", "u32", "size of the reduced (middle) axis"),
    F("inner", "u32", "inner size; needs inner * 4 bytes of scratch"),
    F("mode", "u32", "MEAN_MODES value: which of TFLite Micro's int8 means"),
    F("input_offset", "i32", "SCALED: -input zero point"),
    F("mult", "i32", "SCALED: multiplier of input scale / (reduce * output scale), TFLite's way (a lowered "
                     "SUM: of input scale / output scale)"),
    F("shift", "i32", "SCALED: its shift"),
    F("output_offset", "i32", "output zero point"),
], "int8 mean over the middle axis of [outer, reduce, inner], as TFLite Micro computes it.")

_op("CONV_2D_MAXPOOL", 13, ("input", "weights", "bias?", "mult", "shift"), ("output",), [
    *_GEOM, F("input_offset", "i32", "-input zero point"), *_REQUANT,
    F("groups", "u32", "must be 1"),
    F("pool_h", "u32", "pooling window height (also its vertical stride)"),
    F("pool_w", "u32", "pooling window width (also its horizontal stride)"),
], "CONV_2D (geometry and requantization of the convolution; groups 1) followed by max pooling over "
   "non-overlapping pool_h x pool_w windows without padding, in one pass: output [batches, out_h / pool_h, "
   "out_w / pool_w, out_c] (rounded down). Every shift <= 0 and multiplier >= 0, so requantization is monotonic "
   "and the kernel takes the maximum of the sums before requantizing. Its fast variant needs "
   "2 * (K2 * (out_c + pool_h * pool_w) + in_h * in_w * in_c) bytes of scratch, K2 = k_h * k_w * in_c "
   "rounded up to even.")

# === ELEMENTWISE: elementwise ops: SUB, SQUARED_DIFFERENCE, MAXIMUM, MINIMUM, PRELU (op codes 14-19) ===

# The BINARY record (ADD's layout) serves these too; fields an op does not name are zero.
_op("SUB", 14, ("input1", "input2"), ("output",), _BINARY,
    "int8 subtraction with broadcasting: ADD's parameters (left shift 20, both inputs rescaled to twice the "
    "larger input scale), then the rescaled input 2 subtracted from the rescaled input 1, as TFLite Micro does.")
_op("SQUARED_DIFFERENCE", 15, ("input1", "input2"), ("output",), _BINARY,
    "int8 (input1 - input2)**2 with broadcasting, TFLite Micro's way: inputs rescaled as for SUB but with "
    "left shift 7; the squared difference requantized by output_mult/output_shift.")
_op("MAXIMUM", 16, ("input1", "input2"), ("output",), _BINARY,
    "int8 elementwise maximum of the stored values with broadcasting (TFLite Micro ignores the quantization); "
    "only dims and strides are used, the other fields must be zero or the full int8 range.")
_op("MINIMUM", 17, ("input1", "input2"), ("output",), _BINARY, "As MAXIMUM, the minimum.")
_op("PRELU", 18, ("input", "alpha"), ("output",), _BINARY,
    "int8 parametric ReLU with broadcasting (alpha usually a constant): x = input + input1_offset; x >= 0 gives "
    "x requantized by input1_mult/input1_shift, else x * (alpha + input2_offset) requantized by "
    "output_mult/output_shift; plus output_offset, clamped to act_min..act_max.")

# === MOVEMENT: data movement: slices, splits, transpose, gather, depth/space, mirror pad (op codes 20-29) ===

COPY_DIMS = 6   # STRIDED_COPY's output axes

_op("STRIDED_COPY", 20, ("input",), ("output",), [
    F("dims", "u32", "output shape as 6-D (leading axes 1)", COPY_DIMS),
    F("strides", "i32", "signed step in input elements per output axis", COPY_DIMS),
    F("start", "u32", "input element of output element 0"),
], "int8 strided copy: output element (i0..i5) = input[start + sum(i_d * strides[d])]. SLICE, STRIDED_SLICE, "
   "TRANSPOSE, DEPTH_TO_SPACE, SPACE_TO_DEPTH and each output of SPLIT, SPLIT_V and UNPACK; same quantization "
   "in and out.")

_op("GATHER", 21, ("input", "indices"), ("output",), [
    F("outer", "u32", "product of the input axes before the gathered axis"),
    F("axis_size", "u32", "size of the gathered axis"),
    F("inner", "u32", "product of the input axes after it"),
    F("count", "u32", "indices (int32, each in [0, axis_size))"),
], "int8 gather along one axis with constant indices: output [outer, count, inner] = input[o, indices[k], i].")

_op("MIRROR_PAD", 22, ("input",), ("output",), [
    F("in_dims", "u32", "input shape as 4-D", 4),
    F("before", "u32", "padding before, per axis", 4),
    F("after", "u32", "padding after, per axis", 4),
    F("offset", "u32", "1: REFLECT (the edge is not repeated; pads below the axis size); "
      "0: SYMMETRIC (pads up to the axis size)"),
], "int8 mirror padding, TFLite's REFLECT and SYMMETRIC modes.")

# === RESIZE: resizing and transposed convolution (op codes 30-34) ===

_RESIZE = [
    F("batches", "u32", "N"),
    F("in_h", "u32", "input height"),
    F("in_w", "u32", "input width"),
    F("channels", "u32", "channels (input and output)"),
    F("out_h", "u32", "output height"),
    F("out_w", "u32", "output width"),
]
_op("RESIZE_NEAREST", 30, ("input", "y_index", "x_index"), ("output",), _RESIZE,
    "int8 nearest-neighbour resize, NHWC; y_index int32 [out_h] and x_index int32 [out_w] hold the input row and "
    "column of each output row and column (TFLite Micro's float index arithmetic, done on the host); input and "
    "output share one quantization.")
_op("RESIZE_BILINEAR", 31, ("input", "y_table", "x_table"), ("output",), _RESIZE,
    "int8 bilinear resize, NHWC, TFLite Micro's integer arithmetic: y_table int32 [out_h, 3] holds (y0, y1, dy) "
    "per output row (dy = scaled position - 1024 * y0, from -512 to 1024), x_table int32 [out_w, 3] likewise; "
    "output = (v00 (1024 - dy)(1024 - dx) + v10 dy (1024 - dx) + v01 (1024 - dy) dx + v11 dy dx) / 2**20, "
    "rounded half away from zero; input and output share one quantization.")
_op("TRANSPOSE_CONV", 32, ("input", "weights", "bias?", "mult", "shift"), ("output",), [
    F("batches", "u32", "N"),
    F("in_h", "u32", "input height"),
    F("in_w", "u32", "input width"),
    F("in_c", "u32", "input channels"),
    F("out_h", "u32", "output height"),
    F("out_w", "u32", "output width"),
    F("out_c", "u32", "output channels"),
    F("k_h", "u32", "kernel height"),
    F("k_w", "u32", "kernel width"),
    F("stride_h", "u32", "vertical stride"),
    F("stride_w", "u32", "horizontal stride"),
    F("pad_top", "u32", "rows cut from the top of the full transposed output"),
    F("pad_left", "u32", "columns cut from the left of the full transposed output"),
    F("input_offset", "i32", "-input zero point"),
    *_REQUANT,
], "int8 transposed convolution, NHWC: weights int8 [out_c, k_h, k_w, in_c]; bias, mult, shift int32 [out_c]. "
   "Input pixel (iy, ix) adds (x + input_offset) * w[oc, ky, kx, :] to output (iy * stride_h - pad_top + ky, "
   "ix * stride_w - pad_left + kx) when inside the output; each sum plus bias is requantized per channel.")

# === REDUCE: reductions and normalisations: arg max/min, sum, max, L2 norm, log softmax (op codes 35-41) ===

_REDUCE_SHAPE = [
    F("outer", "u32", "outer size"),
    F("reduce", "u32", "size of the reduced (middle) axis"),
    F("inner", "u32", "inner size"),
]
_op("ARG_MAX", 35, ("input",), ("output",), _REDUCE_SHAPE,
    "Index of the largest int8 value along the middle axis of [outer, reduce, inner], the first on ties "
    "(TFLite Micro's ArgMinMax); output int32 or int64 [outer, inner].")
_op("ARG_MIN", 36, ("input",), ("output",), _REDUCE_SHAPE,
    "As ARG_MAX, the index of the smallest value.")
_op("REDUCE_MAX", 37, ("input",), ("output",), _REDUCE_SHAPE,
    "int8 maximum over the middle axis of [outer, reduce, inner]; same quantization in and out.")
_op("REDUCE_MIN", 38, ("input",), ("output",), _REDUCE_SHAPE,
    "int8 minimum over the middle axis of [outer, reduce, inner]; same quantization in and out.")
_op("L2_NORMALIZATION", 39, ("input",), ("output",), [
    F("rows", "u32", "rows"),
    F("depth", "u32", "values per row (the normalised last axis)"),
    F("input_offset", "i32", "-input zero point"),
], "int8 L2 normalisation over the last axis (TFLite Micro's integer inverse square root); output scale "
   "1/128, zero point 0.")
_op("LOG_SOFTMAX", 40, ("input",), ("output",), [
    F("input_mult", "i32", "input scale * 2^26 as a Q31 multiplier (beta 1)"),
    F("input_left_shift", "i32", "its left shift"),
    F("reverse_mult", "i32", "multiplier of the inverse scaling (Q5.26 back to input steps)"),
    F("reverse_shift", "i32", "its shift (<= 0)"),
    F("diff_min", "i32", "differences below this give the lowest output"),
    F("rows", "u32", "rows"),
    F("row_size", "u32", "values per row (the last axis)"),
], "int8 log-softmax over the last axis as TFLite Micro computes it; output scale 16/256, zero point 127.")

# === MATMUL: matrix products: BATCH_MATMUL (op codes 42-45) ===

_op("BATCH_MATMUL", 42, ("lhs", "rhs"), ("output",), [
    F("lhs_batch", "u32", "batch dimensions of lhs (outer, inner), 1 where absent", 2),
    F("rhs_batch", "u32", "batch dimensions of rhs; each equals lhs's or one of them is 1 (broadcast)", 2),
    F("rows", "u32", "M: rows of lhs and of the output"),
    F("depth", "u32", "K: the summed axis"),
    F("cols", "u32", "N: columns of rhs and of the output"),
    F("adj_x", "u32", "1: lhs is stored [K, M] per batch, else [M, K]"),
    F("adj_y", "u32", "1: rhs is stored [N, K] per batch, else [K, N]"),
    F("lhs_offset", "i32", "-lhs zero point"),
    F("rhs_offset", "i32", "-rhs zero point"),
    F("output_mult", "i32", "output multiplier (lhs scale * rhs scale / output scale)"),
    F("output_shift", "i32", "its shift"),
    *_REQUANT,
], "int8 batched matrix product out[b] = lhs[b] x rhs[b] with per-tensor requantization; batch dimensions "
   "broadcast; output [batch..., M, N]; either input may be constant. Needs 2 * K2 * (N + 2) bytes of scratch, "
   "K2 = K rounded up to even (rhs transposed to int16 plus two lhs rows).")

# === STATE: model state: ASSIGN (op codes 46) ===

_op("ASSIGN", 46, ("source",), ("target",), [],
    "Copies source to target: same dtype and size. Reads and writes of model state (a READ_VARIABLE copies a "
    "STATE tensor into the arena, an ASSIGN_VARIABLE the arena into a STATE tensor; a ONCE ASSIGN from a "
    "constant gives a STATE tensor its initial value). The source may be in the arena, the CONST section or "
    "the state; the target in the arena or the state.")

# === SVDF: SVDF (op codes 47-49) ===

_op("SVDF", 47, ("input", "weights_feature", "weights_time", "bias?", "state"), ("output",), [
    F("batches", "u32", "rows of the input, the state and the output"),
    F("input_size", "u32", "values per input row"),
    F("num_filters", "u32", "filters (weights_feature rows)"),
    F("memory", "u32", "memory size: state values per filter"),
    F("rank", "u32", "filters per output unit; units = num_filters / rank"),
    F("input_offset", "i32", "-input zero point"),
    F("feature_mult", "i32", "multiplier of input scale * weights_feature scale / state scale"),
    F("feature_shift", "i32", "its shift"),
    F("time_mult", "i32", "multiplier of state scale * weights_time scale / output scale"),
    F("time_shift", "i32", "its shift"),
    F("output_offset", "i32", "output zero point"),
], "int8 SVDF (TFLite Micro's integer kernel): weights_feature int8 [num_filters, input_size], weights_time "
   "int16 [num_filters, memory], bias int32 [units], state int16 [batches, num_filters, memory] (STATE storage, "
   "zero point 0). Each run shifts every state row left by one value, writes each filter's "
   "sum((x + input_offset) * wf) requantized by feature_mult/shift and clamped to int16 into the row's last "
   "value; output[b, u] = bias[u] + the sum over the unit's rank filters of sum(state * weights_time), "
   "requantized by time_mult/shift, plus output_offset, clamped to int8 (no fused activation, as TFLite Micro).")

# === SEQUENCE: recurrent ops (op codes 50-53) ===

_op("LSTM", 50, ("input", "weights_input", "weights_recurrent", "bias", "table", "hidden_state", "cell_state"),
    ("output",), [
    F("batches", "u32", "sequences (batch rows of the state)"),
    F("steps", "u32", "time steps per run"),
    F("input_size", "u32", "values per input step"),
    F("units", "u32", "cells: values of the hidden and the cell state per batch row"),
    F("time_major", "u32", "1: input and output are [steps, batches, ...], 0: [batches, steps, ...]"),
    F("input_offset", "i32", "-input zero point"),
    F("hidden_zero_point", "i32", "hidden state zero point (the recurrent sums add -hidden_zero_point)"),
    F("input_mult", "i32", "per gate (input, forget, cell, output): multiplier of input scale * weight "
                           "scale / 2^-12", 4),
    F("input_shift", "i32", "their shifts", 4),
    F("recurrent_mult", "i32", "per gate: multiplier of hidden scale * recurrent weight scale / 2^-12", 4),
    F("recurrent_shift", "i32", "their shifts", 4),
    F("forget_mult", "i32", "multiplier of forget gate * cell state (2^-15 * cell scale / cell scale)"),
    F("forget_shift", "i32", "its shift"),
    F("update_mult", "i32", "multiplier of input gate * cell gate (2^-15 * 2^-15 / cell scale)"),
    F("update_shift", "i32", "its shift"),
    F("hidden_mult", "i32", "multiplier of tanh(cell) * output gate (2^-15 * 2^-15 / hidden scale)"),
    F("hidden_shift", "i32", "its shift"),
    F("cell_clip", "i32", "0: no clipping, else the cell state is clipped to [-cell_clip, cell_clip]"),
    F("cell_tanh_mult", "i32", "tanh(cell state): input multiplier, in [1, 32767]"),
    F("cell_tanh_shift", "i32", "its right shift, in [0, 31]"),
], "int8 LSTM (TFLite Micro's UNIDIRECTIONAL_SEQUENCE_LSTM, 8x8->16): input int8 [batches, steps, "
   "input_size] (or time major), weights_input int8 [4 * units, input_size] and weights_recurrent int8 "
   "[4 * units, units] (gates input, forget, cell, output, zero point 0), bias int32 [4 * units], table the "
   "int16 sigmoid table of TANH_S16, hidden_state int8 [batches, units] and cell_state int16 [batches, units] "
   "(STATE storage, cell zero point 0), output int8 [batches, steps, units]. Per step and gate: "
   "sat16(rq(W x + bias)) + sat16(rq(R h)) saturated to int16 (scale 2^-12), then LOGISTIC_S16 (the cell gate: "
   "TANH_S16) with multiplier 3, shift 0; cell = clip(sat16(rq(f * cell)) + sat16(rq(i * g))); "
   "hidden = clamp8(rq(tanh(cell) * o) + hidden_zero_point), tanh by cell_tanh_mult/shift; the output step "
   "is the new hidden state.")

# === S16: int16 activations with int8 weights (TFLite's 16x8 mode) (op codes 54-59) ===

# The int8 records' fields (geometry first, so the loader reads it alike) plus acc64, which says how the sums
# are requantized. Input and output are int16 with zero point 0 (so input_offset, output_offset and
# filter_offset are 0), act_min/act_max lie in int16, weights are int8, mult and shift int32 per channel
# (FULLY_CONNECTED_S16: or [1], per tensor).
_ACC64 = F("acc64", "u32",
           "1: bias int64 [out_c]; sums in int64, requantized with TFLite's 64-bit MultiplyByQuantizedMultiplier "
           "(the multiplier rounded to 16 bits: m16 = (mult + 2^15) >> 16, or 0x7FFF from 0x7FFF0000; "
           "(sum * m16 + 2^(14 - shift)) >> (15 - shift)); shift in [-31, 14]. 0: bias int32 [out_c]; sums "
           "wrap in int32 and are requantized as the int8 ops do (double rounding)")
_op("FULLY_CONNECTED_S16", 54, ("input", "weights", "bias?", "mult", "shift"), ("output",),
    [*OP_PARAMS["FULLY_CONNECTED"].fields, _ACC64],
    "16x8 fully connected: input int16 [batches, accum_depth], weights int8 [out_depth, accum_depth], output "
    "int16 [batches, out_depth]; offsets 0.")
_op("CONV_2D_S16", 55, ("input", "weights", "bias?", "mult", "shift"), ("output",),
    [*OP_PARAMS["CONV_2D"].fields, _ACC64],
    "16x8 2-D convolution, NHWC: input and output int16, weights int8 [out_c, k_h, k_w, in_c/groups]; offsets 0.")
_op("DEPTHWISE_CONV_2D_S16", 56, ("input", "weights", "bias?", "mult", "shift"), ("output",),
    [*OP_PARAMS["DEPTHWISE_CONV_2D"].fields, _ACC64],
    "16x8 depthwise convolution: input and output int16, weights int8 [1, k_h, k_w, out_c]; offsets 0.")
_op("SOFTMAX_S8_S16", 57, ("input",), ("output",), OP_PARAMS["SOFTMAX"].fields,
    "SOFTMAX with an int16 output (TFLite's int8 -> int16 softmax): scale 1/65536, zero point -32768; the "
    "arithmetic is SOFTMAX's up to the last division (by 2^(16 fewer bits) than int8's), values below diff_min "
    "give -32768.")

# === S16X: int16 activations: elementwise, pooling, softmax, activations, requantization (op codes 64-79) ===

# TFLite Micro's int16 kernels of the 16x8 mode. int16 activations have zero point 0 wherever TFLite
# requires it (ADD, MUL, pooling, SOFTMAX, TANH, LOGISTIC): those records carry no offsets that could
# differ, and the loader checks the operands' dtypes, sizes and storage as for the int8 ops.
_op("ADD_S16", 64, ("input1", "input2"), ("output",), _BINARY,
    "int16 addition with broadcasting (TFLite Micro's general int16 scaling, not the power-of-two one): "
    "ADD's arithmetic on int16 values with left_shift 15; offsets 0; activation range inside int16.")
_op("MUL_S16", 65, ("input1", "input2"), ("output",), _BINARY,
    "int16 multiplication with broadcasting: x1 * x2 requantized by output_mult/shift, clamped; "
    "offsets 0; activation range inside int16.")
_op("MAX_POOL_S16", 66, ("input",), ("output",), _POOL,
    "int16 max pooling (in_c == out_c, dilation 1; same quantization in and out, zero point 0).")
_op("AVG_POOL_S16", 67, ("input",), ("output",), _POOL,
    "int16 average pooling over the taps inside the input (fewer than 65536 per window), rounding half "
    "away from zero.")
_op("SOFTMAX_S16", 68, ("input", "exp_table", "recip_table"), ("output",), [
    F("input_mult", "i32", "input scale * beta / (10 / 65535) as a Q31 multiplier"),
    F("input_shift", "i32", "its shift, in [-31, 15]"),
    F("rows", "u32", "rows"),
    F("row_size", "u32", "values per row (softmax axis), at most 65535"),
], "int16 softmax over the last axis, input and output zero point 0, output scale 1/32768 (TFLite Micro's "
   "SoftmaxInt16). exp_table and recip_table are int16 [513], computed on the host as TFLite Micro's "
   "Prepare does: exp(x) on [-10, 0] and 1 / (1 + x) on [0, 1], read with interpolation between 512 "
   "steps; every exp_table value in [0, 32767] and its last two at least 1.")
_op("TANH_S16", 69, ("input", "table"), ("output",), [
    F("count", "u32", "elements"),
    F("input_mult", "i32", "input multiplier, in [0, 32767] (power-of-two scales: 3 << shift)"),
    F("input_shift", "i32", "input right shift, in [0, 31]"),
], "int16 tanh as TFLite Micro's: y = (x * input_mult + rounding) >> input_shift looked up with "
   "interpolation in table: uint16 [256] stored as int16 bit patterns, round(65536 * sigmoid(i / 24)) "
   "capped at 65535; input and output zero point 0, output scale 2^-15.")
_op("LOGISTIC_S16", 70, ("input", "table"), ("output",), OP_PARAMS["TANH_S16"].fields,
    "int16 logistic as TFLite Micro's, with TANH_S16's table and input scaling; output scale 2^-15.")
_op("REQUANT", 71, ("input",), ("output",), [
    F("count", "u32", "elements"),
    F("input_zero_point", "i32", "subtracted from each input value"),
    F("mult", "i32", "multiplier of input scale / output scale (TFLite's QuantizeMultiplier)"),
    F("shift", "i32", "its shift, in [-31, 30]"),
    F("output_offset", "i32", "output zero point"),
], "TFLite's Requantize (QUANTIZE between integer types): int8 or int16 in, int8 or int16 out; each "
   "value minus input_zero_point, requantized, plus output_offset, clamped to the output type. Zero "
   "points inside their dtypes.")
_op("PAD_S16", 72, ("input",), ("output",), OP_PARAMS["PAD"].fields,
    "PAD on int16 values: the pad value inside int16.")
_op("CONCATENATION_S16", 73, ("input*",), ("output",), OP_PARAMS["CONCATENATION"].fields,
    "CONCATENATION of 1..8 int16 tensors with one quantization (the bytes move as CONCATENATION's).")

# === S4: int8 activations with packed int4 weights (op codes 60-63) ===

# int4: signed 4-bit values in [-8, 7], two per byte over the flattened tensor (TFLite's and CMSIS-NN's
# packing): element 2k in bits 0-3 (the low nibble) of byte k, element 2k + 1 in bits 4-7; an odd count
# leaves the last high nibble 0. A tensor's dims are its logical shape and its nbytes is ceil(count / 2),
# so a row of a weight matrix may start in the middle of a byte. Only constants (weights) may be int4. On
# the host a Graph holds an int4 constant as the packed bytes (a uint8 array, Graph.const_int4), which
# the blob stores as they are.


def dtype_nbytes(dtype: str, count: int) -> int:
    """Bytes of `count` values of a dtype (int4: ceil(count / 2))."""
    return (count + 1) // 2 if dtype == "int4" else count * DTYPE_SIZES[dtype]


def pack_int4(values):
    """int values in [-8, 7] (any shape, flattened in C order) -> packed uint8 bytes."""
    import numpy as np

    v = np.asarray(values).reshape(-1).astype(np.int64)
    if v.size and (v.min() < -8 or v.max() > 7):
        raise MicronnError(f"int4 values must lie in [-8, 7], not [{v.min()}, {v.max()}]")
    nib = (v & 0xF).astype(np.uint8)
    if nib.size % 2:
        nib = np.append(nib, np.uint8(0))
    return (nib[0::2] | (nib[1::2] << 4)).astype(np.uint8)


def unpack_int4(packed, count: int):
    """The first `count` int4 values of packed bytes, as int8."""
    import numpy as np

    b = np.frombuffer(bytes(packed), dtype=np.uint8)
    nib = np.empty(b.size * 2, dtype=np.int16)
    nib[0::2], nib[1::2] = b & 0xF, b >> 4
    return np.where(nib >= 8, nib - 16, nib)[:count].astype(np.int8)


# CONV_2D_S4's fast variant: one input column of k_h * k_w * in_c / groups int16 values, rounded up to 8.
def conv_s4_scratch(k_h: int, k_w: int, fc: int) -> int:
    """Scratch bytes of CONV_2D_S4's column (fc = in_c / groups); without it the direct loops run."""
    return 2 * ((k_h * k_w * fc + 7) // 8 * 8)


# The int8 records' layouts (geometry first, so the C loader reads the geometry of all six alike), with the
# weights operand int4 packed as above; the arithmetic is the int8 ops' after unpacking. Their output_offset
# may lie anywhere in [-255, 255] (added before the clamp; CMSIS-NN's own int4 data has 128).
_op("FULLY_CONNECTED_S4", 60, ("input", "weights", "bias?", "mult", "shift"), ("output",),
    OP_PARAMS["FULLY_CONNECTED"].fields,
    "FULLY_CONNECTED with int4 weights [out_depth, accum_depth] packed over the flattened matrix (row o "
    "starts at value o * accum_depth, in the middle of a byte when both are odd); filter_offset in [-7, 8] "
    "(usually 0); output_offset in [-255, 255].")
_op("CONV_2D_S4", 61, ("input", "weights", "bias?", "mult", "shift"), ("output",),
    OP_PARAMS["CONV_2D"].fields,
    "CONV_2D with int4 weights [out_c, k_h, k_w, in_c/groups] packed over the flattened tensor (TFLite's "
    "OHWI order); output_offset in [-255, 255]. Its fast variant needs 2 * K8 bytes of scratch, K8 = k_h * k_w "
    "* in_c / groups rounded up to a multiple of 8 (one int16 column); with less, direct loops run.")
_op("DEPTHWISE_CONV_2D_S4", 62, ("input", "weights", "bias?", "mult", "shift"), ("output",),
    OP_PARAMS["DEPTHWISE_CONV_2D"].fields,
    "DEPTHWISE_CONV_2D with int4 weights [1, k_h, k_w, out_c] packed over the flattened tensor, so along "
    "the channel axis (value (ky * k_w + kx) * out_c + oc); no scratch; output_offset in [-255, 255].")

# TFLite Micro's int8 MEANs: TRUNC when input and output share quantization
# (sum / n, truncated), else SCALED (the offset sum requantized by a multiplier
# that folds in 1 / n).
MEAN_MODES = {"TRUNC": 1, "SCALED": 2}


def align(n: int, a: int = ALIGN) -> int:
    return (n + a - 1) // a * a


# --- C header generation --------------------------------------------------

def _c_record(rec: Record) -> list[str]:
    lines = [f"// {rec.doc}"]
    for f in rec.fields:
        lines.append(f"#define {rec.prefix}_{f.name.upper():<24} {rec.offsets[f.name]:>4}  "
                     f"// {f.type}{f'[{f.count}]' if f.count > 1 else ''}: {f.doc}")
    lines.append(f"#define {rec.prefix}_RECORD_SIZE{'':<14} {rec.size:>4}")
    return lines + [""]


def _c_enum(prefix: str, values: dict[str, int]) -> list[str]:
    return [f"#define {prefix}_{k:<28} {v}" for k, v in values.items()] + [""]


def c_header() -> str:
    """Return the text of cmodule/mnn_format.h."""
    out = [
        "// Generated by host/micronn/format.py: do not edit. Regenerate with",
        "//   python -m micronn.format --write",
        "#ifndef MICRONN_MNN_FORMAT_H",
        "#define MICRONN_MNN_FORMAT_H",
        "",
        f"#define MNN_MAGIC_0 0x{MAGIC[0]:02x}",
        f"#define MNN_MAGIC_1 0x{MAGIC[1]:02x}",
        f"#define MNN_MAGIC_2 0x{MAGIC[2]:02x}",
        f"#define MNN_MAGIC_3 0x{MAGIC[3]:02x}",
        f"#define MNN_VERSION_MAJOR {VERSION_MAJOR}",
        f"#define MNN_VERSION_MINOR {VERSION_MINOR}",
        f"#define MNN_ALIGN {ALIGN}",
        f"#define MNN_ARENA_ALIGN {ARENA_ALIGN}",
        f"#define MNN_MAX_DIMS {MAX_DIMS}",
        f"#define MNN_CONV_SCRATCH_PER_TAP {CONV_SCRATCH_PER_TAP}",
        f"#define MNN_ADD_SCRATCH {ADD_SCRATCH}",
        f"#define MNN_CONV_POOL_SCRATCH(k, out_c, taps, image) ({_CONV_POOL_SCRATCH})",
        f"#define MNN_MAX_TENSORS {MAX_TENSORS}",
        f"#define MNN_MAX_OPS {MAX_OPS}",
        f"#define MNN_MAX_SECTIONS {MAX_SECTIONS}",
        f"#define MNN_MAX_IO {MAX_IO}",
        f"#define MNN_NO_TENSOR 0x{NO_TENSOR:04x}",
        "",
    ]
    for rec in (HEADER, SECTION, TENSOR, OP, META_ENTRY):
        out += _c_record(rec)
    out += _c_enum("MNN_HDR_FLAG", HEADER_FLAGS)
    out += _c_enum("MNN_SECTION", SECTION_IDS)
    out += _c_enum("MNN_SECTION_FLAG", SECTION_FLAGS)
    out += _c_enum("MNN_DTYPE", {k.upper(): v for k, v in DTYPES.items()})
    out += _c_enum("MNN_STORAGE", STORAGE)
    out += _c_enum("MNN_OP_FLAG", OP_FLAGS)
    out += _c_enum("MNN_META", META_KEYS)
    out += _c_enum("MNN_META_TYPE", META_TYPES)
    out += _c_enum("MNN_OPCODE", OPCODES)
    out += _c_enum("MNN_MEAN", MEAN_MODES)
    out.append(f"#define MNN_OPCODE_MAX {max(OPCODES.values())}")
    out.append("")
    for name, rec in OP_PARAMS.items():
        ins, outs = OP_OPERANDS[name]
        out.append(f"// {name}: inputs {', '.join(ins)}; outputs {', '.join(outs)}")
        variadic = ins[-1].endswith("*")
        out.append(f"#define MNN_OPERANDS_{name}_IN {0 if variadic else len(ins)}{'  // variable' if variadic else ''}")
        out.append(f"#define MNN_OPERANDS_{name}_OUT {len(outs)}")
        out += _c_record(rec)
    out.append("#endif // MICRONN_MNN_FORMAT_H")
    return "\n".join(out) + "\n"


def _md_record(rec: Record) -> list[str]:
    rows = [f"**{rec.name}** ({rec.size} bytes): {rec.doc}", "", "| offset | field | type | meaning |",
            "|---:|---|---|---|"]
    for f in rec.fields:
        typ = f"{f.type}[{f.count}]" if f.count > 1 else f.type
        rows.append(f"| {rec.offsets[f.name]} | `{f.name}` | {typ} | {f.doc} |")
    return rows + [""]


def markdown() -> str:
    """The record and enum tables of docs/format.md (between its GENERATED markers)."""
    out = []
    for rec in (HEADER, SECTION, TENSOR, OP, META_ENTRY):
        out += _md_record(rec)
    for title, values in (("section ids", SECTION_IDS), ("dtypes", DTYPES), ("storage", STORAGE),
                          ("op flags", OP_FLAGS), ("metadata keys", META_KEYS), ("metadata value types", META_TYPES),
                          ("op codes", OPCODES), ("mean modes", MEAN_MODES)):
        out.append(f"**{title}**: " + ", ".join(f"`{k}` = {v}" for k, v in values.items()))
        out.append("")
    for name, rec in OP_PARAMS.items():
        ins, outs = OP_OPERANDS[name]
        out.append(f"### {name} (op code {OPCODES[name]})")
        out.append("")
        out.append(f"Inputs: {', '.join(ins)} (`?`: optional, may be {NO_TENSOR:#x}; `*`: 1 to 8 inputs); "
                   f"outputs: {', '.join(outs)}.")
        out.append("")
        out += _md_record(rec)
    return "\n".join(out)


DOC_BEGIN = "<!-- GENERATED by python -m micronn.format --write: do not edit below -->"
DOC_END = "<!-- GENERATED end -->"
HEADER_PATH = Path(__file__).resolve().parents[2] / "cmodule" / "mnn_format.h"
DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "format.md"


def doc_text(current: str) -> str:
    """docs/format.md with its generated part brought up to date."""
    head, _, rest = current.partition(DOC_BEGIN)
    _, _, tail = rest.partition(DOC_END)
    return f"{head}{DOC_BEGIN}\n\n{markdown()}\n{DOC_END}{tail}"


def main(argv: list[str]) -> int:
    files = {HEADER_PATH: c_header(), DOC_PATH: doc_text(DOC_PATH.read_text())}
    if "--write" in argv:
        for path, text in files.items():
            path.write_text(text)
            print(f"wrote {path}")
        return 0
    if "--check" in argv:
        stale = [p for p, text in files.items() if not p.exists() or p.read_text() != text]
        for p in stale:
            print(f"{p} is stale: run python -m micronn.format --write")
        if not stale:
            print("generated files up to date")
        return 1 if stale else 0
    sys.stdout.write(files[HEADER_PATH])
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
