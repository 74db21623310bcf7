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
          "subgraph, 1 to 16 inputs and 1 to 16 outputs (float inputs or outputs through QUANTIZE / DEQUANTIZE are "
          "converted on the board; a model's inputs are all float or all int8, and so are its outputs). "
          "int16 activations and int4 weights are not supported yet.")


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
    }


def describe_supported(info: dict) -> str:
    """supported() as text for people."""
    lines = [info["common"], ""]
    width = max(len(o["op"]) for o in info["ops"])
    for o in info["ops"]:
        lines.append(f"{o['op']:<{width}}  -> {o['becomes']}")
        lines.append(f"{'':<{width}}     {o['limits']}")
    lines += ["", "evaluated on the host when all their inputs are constant (shape arithmetic): "
              + ", ".join(info["host_evaluated"])]
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
  QUANTIZE) as one table; a dilated convolution's
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
- **Recurrent layers.** TensorFlow 2.21's int8 converter cannot quantize a Keras
  LSTM, GRU or SimpleRNN that loops over its time steps (it fails on the loop's
  TensorList ops with a free batch size and crashes, a segmentation fault, on the
  fused UNIDIRECTIONAL_SEQUENCE_LSTM with a fixed one), so there is no int8 fused
  LSTM to match. Built with `unroll=True` and an Input of `batch_size=1`, the cell
  becomes ordinary int8 operators (FULLY_CONNECTED, LOGISTIC, TANH, MUL, ADD, SUB,
  SPLIT, UNPACK) that TFLite Micro and micronn both run; `micronn pack` refuses the
  other forms before the converter runs and says so (`tests/test_recurrent.py`). In
  about one conversion of four the converter keeps an LSTM's or GRU's first SPLIT in
  float (DEQUANTIZE, SPLIT, QUANTIZE), which micronn does not lower yet: `pack` names
  those operators; converting again usually gives the int8 form.
- **Not supported yet.** int16 activations and int4 weights (the CMSIS-NN vectors
  of those kinds are excluded, with the reason, in `make test`'s "what ran"), and
  every operator not in the table above: `micronn ops MODEL.tflite` names them.
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
              + ", ".join(f"`{n}`" for n in info["lut_ops"]) + ".", "", DIFFERENCES]
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
