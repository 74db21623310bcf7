"""Lowerings of the svdf operators (issue 18); lower.py merges the tables below
into its own (LOWERINGS, LIMITS, OPERANDS have the same meaning there).

SVDF -> SVDF. TFLite Micro's full-integer SVDF (svdf_common.cc): int8 input,
int8 feature weights [num_filters, input_size], int16 time weights
[num_filters, memory], optional int32 bias [units], and the activation state,
an int16 variable tensor [batch, memory * num_filters] that the op reads and
updates in place. On the board the state is a STATE tensor (the model's own
memory, kept between runs, zeroed by Model.reset() as TFLite Micro's Reset()
zeroes variable tensors). The two multipliers are TFLite Micro's: the scale
products and quotients in float32 (``in * wf / state``, ``state * wt / out``),
then QuantizeMultiplier. TFLite Micro's integer path applies no fused
activation (the output is only clamped to int8), so a RELU in the options
changes nothing, here as there.
"""

from __future__ import annotations

import numpy as np

from . import quant
from . import tflite as tfl
from .graph import Op
from .lower import GEOM_MAX, MAX_SHIFT, Lowering, _arith, _check_shifts, _weight_quant


def svdf_multiplier(a_scale: float, b_scale: float, c_scale: float) -> tuple[int, int]:
    """QuantizeMultiplier of (double)(float a * float b / float c), all in float32 as TFLite Micro's Prepare."""
    real = np.float32(np.float32(a_scale) * np.float32(b_scale)) / np.float32(c_scale)
    return quant.quantize_multiplier(float(np.float32(real)))


def _one_scale(low: Lowering, op: tfl.Operator, t: tfl.Tensor, what: str) -> float:
    if t.scale is None or len(t.scale) != 1 or not (np.isfinite(t.scale[0]) and t.scale[0] > 0):
        raise low.fail(op, f"{what} ({t.name}) needs one positive per-tensor scale")
    if t.zero_point is not None and len(t.zero_point) and int(t.zero_point[0]) != 0:
        raise low.fail(op, f"{what} ({t.name}) has zero point {int(t.zero_point[0])}; TFLite quantizes it "
                           "symmetrically (zero point 0), which micronn needs")
    return float(t.scale[0])


def lower_svdf(low: Lowering, op: tfl.Operator) -> None:
    g = low.g
    o = op.options
    if o.get("asymmetric_quantize_inputs"):
        raise low.fail(op, "hybrid SVDF (asymmetric_quantize_inputs) is not supported")
    if low.tensor(op.inputs[0]).dtype != "int8":
        raise low.fail(op, f"a {low.tensor(op.inputs[0]).dtype} SVDF (float or hybrid) is not supported; "
                           "micronn runs full-integer SVDF (int8 input)")
    act = o.get("fused_activation_function", "NONE")
    if act not in ("NONE", "RELU"):
        raise low.fail(op, f"fused activation {act} is not supported (NONE or RELU, which TFLite Micro's integer "
                           "SVDF does not apply)")
    if len(op.inputs) != 5 or op.inputs[4] < 0:
        raise low.fail(op, f"needs 5 inputs (the last the activation state), has {op.inputs}")
    x = low.act(op.inputs[0], op)
    xin = g.tensors[x]
    if len(xin.shape) != 2:
        raise low.fail(op, f"input of shape {xin.shape}; SVDF takes [batch, input_size]")
    batches, in_size = xin.shape
    wft = low.const_of(op, 1, "int8")
    wtt = low.const_of(op, 2, "int16") if low.tensor(op.inputs[2]).dtype != "int8" else None
    if wtt is None:
        raise low.fail(op, "int8 time weights and state are not supported (micronn runs the int16 state TFLite's "
                           "quantizer writes)")
    wf, wt = wft.array().astype(np.int8), wtt.array().astype(np.int16)
    if wf.ndim != 2 or wf.shape[1] != in_size:
        raise low.fail(op, f"weights_feature of shape {wf.shape}; expected [num_filters, {in_size}]")
    nf = wf.shape[0]
    if wt.ndim != 2 or wt.shape[0] != nf:
        raise low.fail(op, f"weights_time of shape {wt.shape}; expected [{nf}, memory]")
    mem = wt.shape[1]
    rank = int(o.get("rank", 0))
    if rank < 1 or nf % rank:
        raise low.fail(op, f"rank {rank} does not divide the {nf} filters")
    units = nf // rank
    if max(batches, in_size, nf, mem) >= GEOM_MAX or batches * nf * mem * 2 >= 2**31:
        raise low.fail(op, f"sizes batch {batches}, input {in_size}, filters {nf}, memory {mem}: micronn needs each "
                           f"below {GEOM_MAX} and a state below 2 GiB")
    _weight_quant(low, op, wft)
    wf_scale = _one_scale(low, op, wft, "weights_feature")
    wt_scale = _one_scale(low, op, wtt, "weights_time")
    bias = None
    if op.inputs[3] >= 0:
        bias = low.const_of(op, 3, "int32").array().astype(np.int32).reshape(-1)
        if bias.size != units:
            raise low.fail(op, f"bias has {bias.size} values; expected {units}")
    si = op.inputs[4]
    st = low.tensor(si)
    if not st.is_variable or st.data is not None:
        raise low.fail(op, f"the activation state ({st.name}) must be a variable tensor")
    if st.dtype != "int16":
        raise low.fail(op, f"a {st.dtype} activation state ({st.name}); micronn keeps int16 SVDF state")
    if tuple(int(d) for d in st.shape) != (batches, mem * nf):
        raise low.fail(op, f"activation state of shape {tuple(st.shape)}; expected {(batches, mem * nf)}")
    st_scale = _one_scale(low, op, st, "activation state")
    if si in low.map:
        s = low.map[si]
    else:
        s = low.map[si] = g.state(st.name, "int16", (batches, mem * nf), st_scale, 0)
    y = low.out(op, 0, (batches, units))
    yout = g.tensors[y]
    m1, s1 = _arith(low, op, svdf_multiplier, xin.scale, wf_scale, st_scale)
    m2, s2 = _arith(low, op, svdf_multiplier, st_scale, wt_scale, yout.scale)
    _check_shifts(low, op, s1, s2)
    b = -1 if bias is None else g.const(f"{wft.name}/svdf_bias", bias)
    inputs = [x, g.const(wft.name, wf), g.const(wtt.name, wt), b, s]
    p = dict(batches=batches, input_size=in_size, num_filters=nf, memory=mem, rank=rank,
             input_offset=-xin.zero_point, feature_mult=m1, feature_shift=s1, time_mult=m2, time_shift=s2,
             output_offset=yout.zero_point)
    g.ops.append(Op("SVDF", inputs, [y], p, source=f"op {op.index} SVDF"))


LOWERINGS: dict = {"SVDF": lower_svdf}
LIMITS: dict = {
    "SVDF": ("SVDF", "full-integer SVDF as TFLite Micro runs it: int8 input [batch, input_size] and output, int8 "
             "weights_feature and int16 weights_time (constants, per-tensor, zero point 0), optional int32 bias, "
             "an int16 variable activation state (zero point 0), kept in the model's state between runs and "
             "zeroed by Model.reset(); any rank dividing the filters; fused activation NONE or RELU (TFLite "
             f"Micro's integer SVDF applies neither); sizes below {GEOM_MAX}; rescaling factors below "
             f"2**{MAX_SHIFT}; no float, hybrid (asymmetric_quantize_inputs) or int8-state SVDF"),
}
# inputs 0-2 required; the lowering checks the optional bias and the state (input 4)
OPERANDS: dict = {"SVDF": 3}


# lower.py (the hub) takes this group's tables in; this call does it when this module is imported first
from .lower import _merge_groups  # noqa: E402

_merge_groups()
