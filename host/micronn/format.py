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
metadata keys, trailing parameter fields and op codes (an unknown op code is
rejected by name at load).
"""

from __future__ import annotations

import struct
import sys
from dataclasses import dataclass
from pathlib import Path

from .errors import MicronnError

MAGIC = b"MNNB"
VERSION_MAJOR = 1
VERSION_MINOR = 0
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
    F("reserved", "u32", "zero", 4),
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
    F("flags", "u8", "zero"),
    F("dims", "u32", "shape, NHWC; unused dimensions are 1", MAX_DIMS),
    F("offset", "u32", "byte offset in the arena or in the CONST section"),
    F("nbytes", "u32", "bytes; equals the product of dims times the dtype size"),
    F("scale", "f32", "quantization scale (0 when not quantized)"),
    F("zero_point", "i32", "quantization zero point"),
], "One tensor of the graph.")

OP = Record("op", "MNN_OP", [
    F("opcode", "u8", "OPCODES value"),
    F("n_inputs", "u8", "input tensor indices that follow"),
    F("n_outputs", "u8", "output tensor indices that follow the inputs"),
    F("flags", "u8", "zero"),
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
DTYPES = {"int8": 1, "uint8": 2, "int16": 3, "int32": 4, "float32": 5, "int64": 6}
DTYPE_SIZES = {"int8": 1, "uint8": 1, "int16": 2, "int32": 4, "float32": 4, "int64": 8}
STORAGE = {"ARENA": 0, "CONST": 1}
META_KEYS = {"NAME": 1, "LABELS": 2, "PACKER": 3, "SOURCE_SHA256": 4, "INPUT_NAMES": 5,
             "OUTPUT_NAMES": 6, "PREPROCESS": 7, "SOURCE_BYTES": 8, "ARENA_LOWER_BOUND": 9}
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
                          ("metadata keys", META_KEYS), ("metadata value types", META_TYPES),
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
