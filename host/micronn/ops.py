"""Which TFLite operators micronn runs, and which of a model's it cannot (`micronn ops`).

The table of supported operators is read from the lowering itself: the ops of
``lower.LOWERINGS`` with the limits ``lower.LIMITS`` states beside them (written
from the same constants the lowering checks), and the shape arithmetic
``lower.FOLDERS`` evaluates on the host. So `micronn ops`, its ``--markdown``
form and docs/ops.md cannot drift from what ``micronn pack`` accepts.

``check(model)`` lowers every operator of a .tflite on its own terms, going on
past each failure (the failed op's outputs get a stand-in from their declared
shape and quantization), so one report names every operator micronn cannot run.
"""

from __future__ import annotations

from . import lower as low
from . import tflite
from .errors import MicronnError

COMMON = ("Every operator runs on int8 activations with per-tensor quantization (scale above 0, zero point in "
          "int8) and static shapes: each dimension from 1 to {geom}, fewer than 2**31 values per tensor, one "
          "subgraph (and the init subgraphs of CALL_ONCE), 1 to 16 inputs and 1 to 16 outputs (float inputs or "
          "outputs through QUANTIZE / DEQUANTIZE are converted on the board; a model's inputs are all float or all "
          "int8, and so are its outputs). 16x8 models (int16 activations with zero point 0, int8 weights: TensorFlow "
          "Lite's EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8, `micronn pack --activations int16`) "
          "run CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED (int64 or int32 bias), ADD, MUL, MAX_POOL_2D, "
          "AVERAGE_POOL_2D, SOFTMAX, TANH, LOGISTIC, QUANTIZE, RESHAPE, PAD and CONCATENATION, with int16 inputs "
          "and outputs, or float ones (QUANTIZE to int16, DEQUANTIZE of int16: converted on the board as TFLite "
          "Micro converts them). INT4 weights (two per byte) of FULLY_CONNECTED, CONV_2D and DEPTHWISE_CONV_2D "
          "run packed.")

# Issue 18: per device op (format.OPCODES), its CMSIS-NN-style DSP path on Cortex-M4/M7
# (MNN_DSP, mnn_simd.h; the variant names are mnn_kernels.h's MNN_VARIANTS, counted by
# micronn.kernel_variants()), or why the portable loop is enough. tests/test_ops.py checks
# that every op code has one.
_SMLAD = "SMLAD on int16 pairs widened by SXTB16 (SXTAB16 adds the input offset while widening)"
_COPY = "portable: no arithmetic, one load and one store per byte (contiguous runs through memcpy); memory-bound"
_REQ64 = ("portable: per element a few requantizations with 64-bit products, which have no 16-bit SIMD form; "
          "rare and small in the models that use it")
DSP_NOTES = {
    "FULLY_CONNECTED": f"FC_DSP (symmetric weights, the norm): rows in fours and pairs, {_SMLAD}; FC_PLAIN / "
                       "FC_OFFSET portable otherwise",
    "SOFTMAX": "portable: per value one fixed-point exponential (gemmlowp-style saturating 32-bit multiplies, no "
               "16-bit SIMD form) and one reciprocal per row; one pass over a model's few logits",
    "CONV_2D": f"CONV_IM2COL_W4 / _PLAIN: im2col to int16 columns, then two channels x two columns per step, "
               f"{_SMLAD}, inner loop and requantization in assembly (dot_pairs, requant2); CONV_DIRECT "
               "portable (no scratch)",
    "DEPTHWISE_CONV_2D": "DEPTHWISE_MULT1: four channels per word, SXTB16 then SMLABB/SMLATT; 3x3 without "
                         "dilation in assembly rectangles (128 instructions a pixel for four channels, requantization "
                         "included); DEPTHWISE_GENERIC (depth multiplier above 1) portable",
    "MAX_POOL_2D": "MAX_POOL: four channels per word, SSUB8 + SEL maxima",
    "AVERAGE_POOL_2D": "AVG_POOL: four channels at a time in 16-bit lanes (SADD16) for windows of up to 256 taps; "
                       "larger windows portable",
    "ADD": "portable: ADD_TABLES computes each input's rescaling once for all 256 values, leaving one "
           "requantization (a 64-bit product, no 16-bit SIMD form) per element",
    "MUL": "portable: one product and one requantization (a 64-bit product, no 16-bit SIMD form) per element",
    "LUT": "portable: one table load per byte; memory-bound, nothing to compute",
    "CONCATENATION": _COPY,
    "PAD": "portable: memset of the padding value, then memcpy of each input row; memory-bound",
    "MEAN": "portable: one addition per input value into int32 sums, one requantization per output; a small share "
            "of any model's work (a global average pool once per model)",
    "CONV_2D_MAXPOOL": "CONV_POOL_FAST: each channel's int16 weight pairs kept in registers across the window, "
                       "SMLAD window sums (mnn_dot2; the same sum in C without DSP); CONV_POOL_DIRECT portable",
    "SUB": _REQ64,
    "SQUARED_DIFFERENCE": _REQ64,
    "MAXIMUM": "four lanes per word with SSUB8 + SEL where neither input broadcasts; the broadcast loop portable",
    "MINIMUM": "as MAXIMUM (SEL with the operands swapped)",
    "PRELU": _REQ64,
    "STRIDED_COPY": _COPY,
    "GATHER": _COPY,
    "MIRROR_PAD": _COPY,
    "RESIZE_NEAREST": "portable: a copy through host-computed index tables; memory-bound",
    "RESIZE_BILINEAR": "portable: four products per value whose weights one pixel shares (one multiply each), which "
                       "SMLAD's pairs do not shorten; indices and weights from host tables",
    "TRANSPOSE_CONV": f"TRANSPOSE_CONV: its dot products take four values a step, {_SMLAD}",
    "ARG_MAX": "portable: one compare per value keeping one candidate in registers; SIMD compares do not pay for "
               "the one index a column yields",
    "ARG_MIN": "as ARG_MAX",
    "REDUCE_MAX": "REDUCE_MINMAX: four columns per word with SSUB8 + SEL maxima",
    "REDUCE_MIN": "as REDUCE_MAX (the minimum through the same SEL)",
    "L2_NORMALIZATION": "portable: one multiply-accumulate and one requantization per value, the inverse square "
                        "root once per row",
    "LOG_SOFTMAX": "portable: as SOFTMAX (fixed-point exponentials and a logarithm per row, 32-bit saturating "
                   "arithmetic)",
    "BATCH_MATMUL": "MATMUL_DSP: rows widened to int16 once (input offset added), SMLAD four columns or two rows x "
                    "three columns at a time; MATMUL_PLAIN the same blocking in C",
    "ASSIGN": "portable: one memmove of the state variable; memory-bound",
    "SVDF": "SVDF_DSP: feature sums widen four inputs (offset added, SXTAB16) and four weights (SXTB16) for two "
            "SMLADs, time sums one SMLAD per int16 pair; the state shifts a word at a time; SVDF portable (qemu-m4 "
            "4.5 instructions/MAC against 7.5 on qemu-m3 for 64 inputs, 128 filters, memory 16)",
    "LSTM": "LSTM_DSP: a unit's four gate rows in one pass over the input (and the hidden state), four values "
            "widened once (offset added, SXTAB16) for the four rows' SXTB16-widened weights, two SMLADs per row; LSTM "
            "the same loop in C; no scratch (qemu-m4 6.1 instructions/MAC against 6.5 on qemu-m3 for 5 inputs, 32 "
            "units, 10 steps)",
    "FULLY_CONNECTED_S16": "FC_S16_DSP: weight rows in pairs, each input pair packed once for both and taken by "
                           "SMLAD against SXTB16-widened weights, int32 blocks of 511 products added into the int64 "
                           "sums (mnn_dot2_s16); FC_S16 the same loop in C",
    "CONV_2D_S16": "CONV_S16_DSP: two output channels by two neighbouring pixels per pass, SMLAD on the int16 "
                   "input pairs as they lie against SXTB16-widened weights (an assembly inner loop), int32 sums "
                   "moved into int64 before 512 products, a cheaper requantization (one SMLAL) where the sums "
                   "stayed int32; blocks of 16 channels (qemu-m4 2.10 instructions/MAC against 5.28 before, 3x3 "
                   "on 16 channels); CONV_S16 one channel pair at a time in C",
    "DEPTHWISE_CONV_2D_S16": "DEPTHWISE_S16_DSP (depth multiplier 1, at most 511 taps or int32 sums): four "
                             "channels at a time, each pair's weights unpacked once per block for kernels of up "
                             "to 9 taps, SMLABB/SMLATT into the two channels' sums, padding taps read from a "
                             "zero buffer (qemu-m4 6.7 instructions/MAC against 15.8, 3x3 on 32 channels); "
                             "DEPTHWISE_S16 one product per tap and channel into int64 sums otherwise",
    "SOFTMAX_S8_S16": "portable: SOFTMAX's kernel (gemmlowp fixed point per value) with an int16 store; one pass "
                      "over a model's few logits",
    "ADD_S16": "portable: per element two rescalings and one requantization (64-bit products, no 16-bit SIMD "
               "form)",
    "MUL_S16": "portable: per element one product and one requantization (a 64-bit product)",
    "MAX_POOL_S16": "portable: one compare per tap on int16 values; a small share of a model's work",
    "AVG_POOL_S16": "portable: one addition per tap, one rounded division per output; a small share of a model's "
                    "work",
    "SOFTMAX_S16": "portable: two interpolated table lookups and one product per value (TFLite Micro's int16 "
                   "tables); one pass over a model's few logits",
    "TANH_S16": "portable: one multiply, shift and interpolated lookup in a 256-entry table per value",
    "LOGISTIC_S16": "as TANH_S16",
    "REQUANT": "portable: one requantization per value (a 64-bit product), at the int8/int16 boundaries only",
    "PAD_S16": "portable: fill and row copies of int16 values; memory-bound",
    "CONCATENATION_S16": "portable: memcpy per input chunk; memory-bound",
    "FULLY_CONNECTED_S4": "FC_S4_DSP: eight packed int4 weights become four int16 pairs in seven instructions, then "
                          "SMLAD against input pairs prepared once for two rows; FC_S4 portable",
    "CONV_2D_S4": "CONV_S4_COL: each pixel's receptive field copied once per block into an int16 column in "
                  "the order that a word of eight weights gives after two masks and four SXTB16, then SMLAD, two "
                  "channels per pass (the same groups in plain C without DSP); CONV_S4 direct loops without "
                  "scratch",
    "DEPTHWISE_CONV_2D_S4": "DEPTHWISE_S4_DSP: for kernels of up to 9 taps, each block's int4 weights unpacked "
                            "once to int16 pairs, padding taps read from a buffer of the input zero point, "
                            "SMLAD-style pair sums (qemu-m4 7.3 instructions/MAC against 9.6 before, 3x3 on 32 "
                            "channels); DEPTHWISE_S4 each tap once per pixel, two channels per weight byte",
}


def supported() -> dict:
    """The supported operators with their limits, as data (the order of ``lower.LOWERINGS``)."""
    missing = set(low.LOWERINGS) ^ set(low.LIMITS)
    if missing:     # a lowering without its limits (or limits without a lowering): a bug, caught by the tests
        raise AssertionError(f"lower.LIMITS and lower.LOWERINGS differ on {sorted(missing)}")
    ops = [{"op": name, "becomes": low.LIMITS[name][0], "limits": low.LIMITS[name][1],
            "lut": low.LIMITS[name][0] == "LUT"} for name in low.LOWERINGS]
    return {
        "common": COMMON.format(geom=low.GEOM_MAX - 1),
        "ops": ops,
        "host_evaluated": sorted(low.FOLDERS),
        "lut_ops": [n for n in (*low.LUT_OPS, "QUANTIZE") if low.LIMITS[n][0] == "LUT"],
        "dsp_paths": dsp_paths(),
    }


def dsp_paths() -> dict:
    """DSP_NOTES for the device ops of this micronn's format, in op code order (an op
    without a note says so: tests/test_ops.py fails on it)."""
    from . import format as fmt

    return {name: DSP_NOTES.get(name, "(no note)") for name in fmt.OPCODES}


def describe_supported(info: dict) -> str:
    """supported() as text for people."""
    lines = [info["common"], ""]
    width = max(len(o["op"]) for o in info["ops"])
    for o in info["ops"]:
        lines.append(f"{o['op']:<{width}}  -> {o['becomes']}")
        lines.append(f"{'':<{width}}     {o['limits']}")
    lines += ["", "evaluated on the host when all their inputs are constant (shape arithmetic): "
              + ", ".join(info["host_evaluated"])]
    width = max(len(n) for n in info["dsp_paths"])
    lines += ["", "device ops: DSP path on Cortex-M4/M7 (variant names as micronn.kernel_variants() counts them), "
              "or why the portable loop is enough:"]
    lines += [f"{name:<{width}}  {note}" for name, note in info["dsp_paths"].items()]
    return "\n".join(lines)


DIFFERENCES = """\
## Where micronn differs from TFLite Micro

In results: nowhere. Every supported operator gives TFLite Micro's output bytes
(its reference kernels' integer arithmetic, the same rounding), checked bit for
bit on the shared real models (`tests/test_shared_models.py`), the generated zoo
(`tests/test_zoo.py`), CMSIS-NN's own test vectors (`tests/test_cmsis_vectors.py`),
every lookup table against TFLite Micro (`tests/test_lut.py`), and any packed
model with `micronn verify`. The known exceptions, and where they are documented:

- **The oracle itself.** TFLite Micro allocates from the model's static shapes;
  where those are wrong (an open-batch dilated convolution's SPACE_TO_BATCH_ND) or
  its outputs change with its arena, `verify` compares with desktop TFLite's
  reference kernels (`BUILTIN_REF`) instead and says so (README.md,
  `tests/test_oracle.py`).
- **Internal rewrites, same bytes.** A CONV_2D followed by a 2x2 MAX_POOL_2D runs as
  one CONV_2D_MAXPOOL; a DEPTHWISE_CONV_2D with a depth multiplier above 1 runs as a
  grouped CONV_2D; unary operators and int8 QUANTIZE run as 256-entry tables (LUT);
  RESHAPE, SQUEEZE and EXPAND_DIMS move no data (Keras' UpSampling2D, EXPAND_DIMS -> TILE ->
  RESHAPE through 5-D tensors, runs as one strided copy); slices, splits, transposes and
  depth/space rearrangements run as strided copies, PACK as a concatenation, SUM as a MEAN
  without the division, and a float island (DEQUANTIZE, float elementwise ops of one value,
  QUANTIZE) as one table (with float splits and slices in it, a strided copy and a table
  per piece); a dilated convolution's
  SPACE_TO_BATCH_ND / BATCH_TO_SPACE_ND pair is folded into the convolution; shape
  arithmetic on constants is evaluated on the host. None changes an output byte
  (`tests/test_fusion.py`, docs/format.md).
- **Operators TFLite Micro lacks.** RELU_N1_TO_1 as an operator has no TFLite
  Micro kernel, so micronn refuses it rather than invent results (as a fused
  activation it is supported, as in TFLite Micro). TILE has none either, yet Keras 3
  writes every UpSampling2D (nearest) with it: there the oracle is desktop TFLite's
  reference kernels (`BUILTIN_REF`), whose TILE copies bytes, and micronn matches them.
  int8 NEG, SQRT, SQUARE, EXP, LOG, SIN and COS are refused: TFLite Micro fails on
  each of them in int8 (inside a float island they are supported). ARG_MAX and ARG_MIN with int64
  indices (TensorFlow's default `output_type`) fail in TFLite Micro ("Only int32_t
  are supported"); micronn writes the same first-on-ties index as for int32, in
  8 bytes (`tests/test_ops_reduce.py` checks it against NumPy).
- **Inputs where TFLite Micro stops.** An int8 RSQRT of a value below its zero
  point (a negative number) makes TFLite Micro fail the whole inference; micronn's
  table gives 127 there, TFLite Micro's answer at the zero point itself. A GATHER
  index out of range fails TFLite Micro's inference too; micronn's loader refuses
  such a blob (the indices are constants).
- **Models with state.** The converter keeps a full-int8 model's resource variables
  in float32, holding dequantized int8 values (a DEQUANTIZE before ASSIGN_VARIABLE, a
  QUANTIZE after READ_VARIABLE); micronn keeps each variable as int8 state in that
  quantization, which holds exactly the same values, so the outputs are the same. The
  state is each model's own memory (not the arena, which models may share). As in TFLite
  Micro, the initial values (CALL_ONCE's init subgraph, constants) are set just before the
  first run, and `Model.reset()` zeroes the state, like TFLite Micro's Reset(), without
  setting the initial values again. An initial value that is not one of the variable's
  int8 values is refused at pack time. Over the serial link, a run of a model with state
  is never sent twice after a fault, since the state would move on twice
  (`tests/test_state.py`, the zoo's `state_*` models).
- **Recurrent layers.** TensorFlow 2.21's int8 converter cannot quantize a Keras 3
  LSTM, GRU or SimpleRNN that loops over its time steps: it writes the loop as a WHILE
  (not a fused UNIDIRECTIONAL_SEQUENCE_LSTM), fails on the loop's TensorList ops with a
  free batch size, and crashes (a segmentation fault) quantizing the loop with a fixed
  one, int8 or 16x8 alike. Built with `unroll=True` and an Input of `batch_size=1`, the
  cell becomes ordinary int8 operators (FULLY_CONNECTED, LOGISTIC, TANH, MUL, ADD, SUB,
  SPLIT, UNPACK) that TFLite Micro and micronn both run; `micronn pack` refuses the
  other forms before the converter runs and says so (`tests/test_recurrent.py`). In
  about one conversion of four, at random, the converter keeps an LSTM's or GRU's gate
  SPLIT in float (DEQUANTIZE, SPLIT, QUANTIZE): micronn runs that as strided copies of
  the int8 value, the same bytes (`tests/test_float_regions.py`). A Keras 2 (tf-keras)
  LSTM does convert to an int8 UNIDIRECTIONAL_SEQUENCE_LSTM (int16 cell state) that
  TFLite Micro runs and micronn runs bit-exact as its LSTM op; its hidden and cell states
  (TFLite Micro's variable tensors) are the model's state, kept between runs and zeroed
  by `Model.reset()` (`tests/test_lstm.py`).
- **Not supported yet.** In 16x8 models: the operators not listed above; int4 weights
  with int16 activations; packing a Keras model with 4-bit weights (`--weights int4`: a
  .tflite with INT4 weight tensors, from TensorFlow's low-bit QAT conversion, packs).
  Every operator not in the table above: `micronn ops MODEL.tflite` names them.
"""


def markdown() -> str:
    """docs/ops.md: the table and the differences from TFLite Micro (tests/test_ops.py checks the file)."""
    info = supported()
    esc = lambda t: t.replace("|", "\\|")     # noqa: E731
    lines = ["# Operators", "",
             "<!-- GENERATED by `micronn ops --markdown > docs/ops.md`: do not edit; "
             "the table comes from host/micronn/lower.py (LOWERINGS, LIMITS) -->", "",
             "What `micronn pack` accepts, operator by operator (`micronn ops` prints the same; "
             "`micronn ops MODEL.tflite` checks a model and names every operator it cannot run).", "",
             info["common"], "",
             "| TFLite operator | runs as | limits |", "|---|---|---|"]
    for o in info["ops"]:
        lines.append(f"| `{o['op']}` | {esc(o['becomes'])} | {esc(o['limits'])} |")
    lines += ["", "Evaluated on the host when all their inputs are constant (the shape arithmetic the converter "
              "emits): " + ", ".join(f"`{n}`" for n in info["host_evaluated"]) + ".", "",
              "Computed as 256-entry lookup tables (host/micronn/lut.py): "
              + ", ".join(f"`{n}`" for n in info["lut_ops"]) + ".", "",
              "## DSP paths", "",
              "Per device op (the blob's op codes, docs/format.md): its CMSIS-NN-style path on cores with the DSP "
              "extension (Cortex-M4/M7: `MNN_DSP`, cmodule/kernels/mnn_simd.h; the names are the kernel variants "
              "`micronn.kernel_variants()` counts), or why the portable loop is enough.", "",
              "| device op | DSP path |", "|---|---|"]
    lines += [f"| `{name}` | {esc(note)} |" for name, note in info["dsp_paths"].items()]
    lines += ["", DIFFERENCES]
    return "\n".join(lines)


def check(model) -> dict:
    """Every operator of a .tflite (path, bytes or a loaded tflite.Model) with its status:
    lowered, folded (host-evaluated), absorbed (part of another op's pattern), float boundary,
    or unsupported with the reason; ``problems`` lists those micronn cannot run."""
    if not isinstance(model, tflite.Model):
        model = tflite.load(model)
    lw = low.Lowering(model, collect=True)
    lw.run()
    by_index = {p["index"]: p for p in lw.problems if p["index"] is not None}

    def names(ids):
        return [model.tensors[i].name if 0 <= i < len(model.tensors) else "-" for i in ids]

    ops = []
    for op in model.operators:
        p = by_index.get(op.index)
        ops.append({"index": op.index, "op": op.opcode, "inputs": names(op.inputs), "outputs": names(op.outputs),
                    "status": lw.status.get(op.index, "unsupported" if p else "not reached"),
                    "reason": p["reason"] if p else None, "after": p["after"] if p else []})
    return {"operators": len(model.operators), "ops": ops, "problems": lw.problems,
            "supported": not lw.problems}


def problem_line(p: dict) -> str:
    """One problem as one line: position, op, tensors, reason."""
    if p["index"] is None:
        return f"model: {p['reason']}"
    after = f" (follows from op {', '.join(map(str, p['after']))})" if p["after"] else ""
    return (f"op {p['index']} ({p['op']}) {', '.join(p['inputs'])} -> {', '.join(p['outputs'])}: "
            f"{p['reason']}{after}")


def listing_error(model: tflite.Model, first: MicronnError, where: str) -> MicronnError:
    """The error for a model lowering refused: ``first`` itself when it is the only problem
    (one line, as always), else one error listing every operator micronn cannot run."""
    try:
        problems = check(model)["problems"]
    except Exception:   # going on past a failure met something worse: the first problem still stands
        return first
    if len(problems) < 2:
        return first
    ops = [p for p in problems if p["index"] is not None]
    head = f"{where}: {len(ops)} operator{'s' if len(ops) != 1 else ''} micronn cannot run:" if ops else \
        f"{where}: {len(problems)} problems:"
    return MicronnError("\n".join([head] + ["  " + problem_line(p) for p in problems]))


def describe_check(where: str, r: dict) -> str:
    """check()'s result as a table for people."""
    lines = [f"{where}: {r['operators']} operators, "
             + ("all supported" if r["supported"] else
                f"{sum(1 for o in r['ops'] if o['status'] == 'unsupported')} micronn cannot run")]
    for o in r["ops"]:
        mark = "no " if o["status"] == "unsupported" else "yes"
        why = f": {o['reason']}" if o["reason"] else f" ({o['status']})" if o["status"] != "lowered" else ""
        after = f" (follows from op {', '.join(map(str, o['after']))})" if o["after"] else ""
        lines.append(f"{o['index']:>4}  {mark}  {o['op']}{why}{after}")
    for p in r["problems"]:
        if p["index"] is None:
            lines.append(f"model: {p['reason']}")
    return "\n".join(lines)
