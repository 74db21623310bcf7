"""Lowering of the fused LSTM (issue 18); lower.py merges the tables below into its own
(LOWERINGS, LIMITS, OPERANDS have the same meaning there).

UNIDIRECTIONAL_SEQUENCE_LSTM -> LSTM. TFLite Micro's integer 8x8->16 LSTM
(lstm_eval.h, lstm_eval_common.cc, unidirectional_sequence_lstm.cc), the form a looping
Keras 2 (tf-keras) LSTM converts to: int8 input, eight int8 weight matrices (per tensor,
zero point 0), four int32 biases, an int8 hidden state and an int16 cell state, both
variable tensors that TFLite Micro keeps from one Invoke to the next. On the board they
are STATE tensors (the model's own memory, zeroed to their zero points by
Model.reset(), as TFLite Micro's Reset() does). No peephole, projection, layer
normalisation or CIFG (TFLite Micro refuses them too).

The integers are those TFLite Micro's Prepare computes:
* each gate's input and recurrent sums go to int16 in 2^-12 steps: QuantizeMultiplier of
  (double)(float(in_scale * w_scale)) / 2^-12 (GetQuantizedConvolutionMultipler's
  float product), the recurrent one with the hidden state's scale;
* the products between gates: QuantizeMultiplier of (double)a * (double)b / (double)c,
  gates in 2^-15 steps: forget * cell -> cell, input * cell gate -> cell,
  tanh(cell) * output -> hidden (with the hidden zero point);
* tanh of the cell state scales it by 2^(12 + p) with 3 folded in, p = the rounded
  log2 of the cell scale (CheckedLog2): multiplier 3 << (12 + p) or 3 and shift -(12 + p);
* cell_clip / cell scale as a double, clamped to int16 and truncated (0: no clipping).
"""

from __future__ import annotations

import numpy as np

from . import quant
from . import tflite as tfl
from .graph import Op
from .lower import GEOM_MAX, MAX_SHIFT, Lowering, _arith, _check_shifts, _weight_quant
from .quant import SIGMOID_TABLE_U16

GATE_SCALE = 2.0 ** -12       # the gates' int16 sums before their activation (Q3.12)
ACT_SCALE = 2.0 ** -15        # the activations' outputs (Q0.15)


def fc_multiplier(in_scale: float, w_scale: float) -> tuple[int, int]:
    """A gate's sum to 2^-12 steps as TFLite Micro: the scale product in float32, then double."""
    prod = float(np.float32(np.float32(in_scale) * np.float32(w_scale)))
    return quant.quantize_multiplier(prod / GATE_SCALE)


def mul_multiplier(a: float, b: float, c: float) -> tuple[int, int]:
    """CreateInterGateMulParams: (double)a * (double)b / (double)c of float32 scales."""
    a, b, c = (float(np.float32(v)) for v in (a, b, c))
    return quant.quantize_multiplier(a * b / c)


def cell_tanh_params(cell_scale: float) -> tuple[int, int] | None:
    """tanh(cell state)'s input multiplier and right shift (TFLite Micro's Tanh, its
    power-of-two case unfolded), or None when the multiplier would exceed 32767."""
    x = np.float32(cell_scale)
    power = int(np.round(np.float32(np.log(x)) * np.float32(1.0 / np.log(np.float32(2.0)))))
    left = 15 + power - 3
    if left < 0:
        return (3, -left) if -left <= 31 else None
    return (3 << left, 0) if (3 << left) <= 32767 else None


def _scale(low: Lowering, op: tfl.Operator, t: tfl.Tensor, what: str, zero: bool = True) -> float:
    if t.scale is None or len(t.scale) != 1 or not (np.isfinite(t.scale[0]) and t.scale[0] > 0):
        raise low.fail(op, f"{what} ({t.name}) needs one positive per-tensor scale (TFLite Micro's LSTM has "
                           "no per-channel weights)")
    if zero and t.zero_point is not None and len(t.zero_point) and int(t.zero_point[0]) != 0:
        raise low.fail(op, f"{what} ({t.name}) has zero point {int(t.zero_point[0])}; the LSTM needs 0")
    return float(t.scale[0])


def _state(low: Lowering, op: tfl.Operator, k: int, dtype: str, what: str) -> tfl.Tensor:
    i = op.inputs[k] if len(op.inputs) > k else -1
    if i < 0:
        raise low.fail(op, f"the {what} (input {k}) is missing")
    t = low.tensor(i)
    if not t.is_variable or t.data is not None:
        raise low.fail(op, f"the {what} ({t.name}) must be a variable tensor")
    if t.dtype != dtype:
        raise low.fail(op, f"a {t.dtype} {what} ({t.name}); micronn runs the {dtype} one of the int8 LSTM")
    return t


def lower_lstm(low: Lowering, op: tfl.Operator) -> None:
    g = low.g
    o = op.options
    ins = list(op.inputs) + [-1] * (24 - len(op.inputs))
    if len(op.inputs) != 24:
        raise low.fail(op, f"needs 24 inputs, has {len(op.inputs)}")
    if low.tensor(ins[0]).dtype != "int8":
        raise low.fail(op, f"a {low.tensor(ins[0]).dtype} LSTM (float, hybrid or 16x8) is not supported; micronn "
                           "runs the full-integer int8 LSTM (int8 input, int16 cell state)")
    for k, what in ((9, "peephole"), (10, "peephole"), (11, "peephole"), (16, "projection"), (17, "projection"),
                    (20, "layer normalisation"), (21, "layer normalisation"), (22, "layer normalisation"),
                    (23, "layer normalisation")):
        if ins[k] >= 0:
            raise low.fail(op, f"an LSTM with {what} weights (input {k}) is not supported (TFLite Micro's "
                               "integer LSTM has none: the Keras LSTM's form only)")
    if ins[1] < 0 or ins[5] < 0 or ins[12] < 0:
        raise low.fail(op, "a CIFG LSTM (no input gate) is not supported (TFLite Micro refuses it too)")
    missing = [k for k in (2, 3, 4, 6, 7, 8, 13, 14, 15) if ins[k] < 0]
    if missing:
        raise low.fail(op, f"inputs {missing} (weights and biases of the gates) are missing")
    if o.get("diagonal_recurrent_tensors"):
        raise low.fail(op, "diagonal recurrent weights are not supported")
    act = o.get("fused_activation_function", "TANH")
    if act != "TANH":
        raise low.fail(op, f"cell gate activation {act} is not supported (TANH; TFLite Micro runs no other)")
    time_major = bool(o.get("time_major", False))
    if time_major:
        # the kernel has the layout, but no converter of a Keras LSTM writes it, so nothing checks it
        # against TFLite Micro: refused until something does
        raise low.fail(op, "a time-major LSTM is not supported (the converter writes Keras LSTMs batch major)")
    x = low.act(ins[0], op)
    xin = g.tensors[x]
    if len(xin.shape) != 3:
        raise low.fail(op, f"input of shape {xin.shape}; the LSTM takes [batch, time, input]")
    steps, batches, in_size = xin.shape if time_major else (xin.shape[1], xin.shape[0], xin.shape[2])
    ht = _state(low, op, 18, "int8", "hidden state")
    ct = _state(low, op, 19, "int16", "cell state")
    units = int(np.prod(ht.shape)) // max(batches, 1)
    if units < 1 or int(np.prod(ht.shape)) != batches * units or int(np.prod(ct.shape)) != batches * units:
        raise low.fail(op, f"hidden state {tuple(ht.shape)} and cell state {tuple(ct.shape)} do not hold "
                           f"{batches} rows")
    if max(batches, steps, in_size, units) >= GEOM_MAX or batches * steps * max(in_size, units) >= 2**31 \
            or 16 * units * max(in_size, units) >= 2**31:
        raise low.fail(op, f"sizes batch {batches}, steps {steps}, input {in_size}, units {units}: micronn needs "
                           f"each below {GEOM_MAX} and the tensors below 2 GiB")
    w_in, w_rec, bias, m_in, s_in, m_rec, s_rec = [], [], [], [], [], [], []
    h_scale = _scale(low, op, ht, "hidden state", zero=False)
    h_zp = int(ht.zero_point[0]) if ht.zero_point is not None and len(ht.zero_point) else 0
    if not -128 <= h_zp <= 127:
        raise low.fail(op, f"hidden state zero point {h_zp} lies outside int8")
    c_scale = _scale(low, op, ct, "cell state")
    for ki, kr, kb in ((1, 5, 12), (2, 6, 13), (3, 7, 14), (4, 8, 15)):
        wi, wr = low.const_of(op, ki, "int8"), low.const_of(op, kr, "int8")
        for w, shape, what in ((wi, (units, in_size), "input"), (wr, (units, units), "recurrent")):
            _weight_quant(low, op, w)
            if tuple(w.shape) != shape:
                raise low.fail(op, f"{what} weights {w.name} of shape {tuple(w.shape)}; expected {shape}")
        bt = low.const_of(op, kb, "int32")
        b = bt.array().astype(np.int32).reshape(-1)
        if b.size != units:
            raise low.fail(op, f"gate bias {bt.name} has {b.size} values; expected {units}")
        w_in.append(wi.array().astype(np.int8))
        w_rec.append(wr.array().astype(np.int8))
        bias.append(b)
        mi, si = _arith(low, op, fc_multiplier, xin.scale, _scale(low, op, wi, "input weights"))
        mr, sr = _arith(low, op, fc_multiplier, h_scale, _scale(low, op, wr, "recurrent weights"))
        m_in.append(mi)
        s_in.append(si)
        m_rec.append(mr)
        s_rec.append(sr)
    mf, sf = _arith(low, op, mul_multiplier, ACT_SCALE, c_scale, c_scale)
    mu, su = _arith(low, op, mul_multiplier, ACT_SCALE, ACT_SCALE, c_scale)
    mh, sh = _arith(low, op, mul_multiplier, ACT_SCALE, ACT_SCALE, h_scale)
    _check_shifts(low, op, *s_in, *s_rec, sf, su, sh)
    tanh = cell_tanh_params(c_scale)
    if tanh is None:
        raise low.fail(op, f"cell state scale {c_scale} is outside what the int16 tanh takes (below 2**2)")
    clip_f = float(np.float32(o.get("cell_clip", 0.0)))
    clip = 0
    if clip_f > 0:
        clip = int(min(max(clip_f / float(np.float32(c_scale)), -32768.0), 32767.0))
        if clip <= 0:
            raise low.fail(op, f"cell_clip {clip_f} is below one step of the cell state ({c_scale})")
    for k, t, dtype, scale, zp in ((18, ht, "int8", h_scale, h_zp), (19, ct, "int16", c_scale, 0)):
        i = ins[k]
        if i not in low.map:
            low.map[i] = g.state(t.name, dtype, (batches, units), scale, zp)
    y = low.out(op, 0, (steps, batches, units) if time_major else (batches, steps, units))
    inputs = [x, g.const(f"{low.tensor(ins[1]).name}/lstm_input_weights", np.concatenate(w_in)),
              g.const(f"{low.tensor(ins[5]).name}/lstm_recurrent_weights", np.concatenate(w_rec)),
              g.const(f"{low.tensor(ins[12]).name}/lstm_bias", np.concatenate(bias)),
              g.const("lstm/sigmoid_table", np.array(SIGMOID_TABLE_U16, dtype=np.uint16).view(np.int16)),
              low.map[ins[18]], low.map[ins[19]]]
    p = dict(batches=batches, steps=steps, input_size=in_size, units=units, time_major=int(time_major),
             input_offset=-xin.zero_point, hidden_zero_point=h_zp,
             input_mult=m_in, input_shift=s_in, recurrent_mult=m_rec, recurrent_shift=s_rec,
             forget_mult=mf, forget_shift=sf, update_mult=mu, update_shift=su, hidden_mult=mh, hidden_shift=sh,
             cell_clip=clip, cell_tanh_mult=tanh[0], cell_tanh_shift=tanh[1])
    g.ops.append(Op("LSTM", inputs, [y], p, source=f"op {op.index} UNIDIRECTIONAL_SEQUENCE_LSTM"))


LOWERINGS: dict = {"UNIDIRECTIONAL_SEQUENCE_LSTM": lower_lstm}
LIMITS: dict = {
    "UNIDIRECTIONAL_SEQUENCE_LSTM": (
        "LSTM", "the full-integer LSTM TFLite Micro runs (a looping tf-keras LSTM converted to int8): int8 input "
        "[batch, time, input] (not time major) and output, eight int8 weight matrices (constants, per tensor, zero "
        "point 0), four int32 biases, an int8 hidden state and an int16 cell state (variable tensors, kept in the "
        "model's state between runs and zeroed by Model.reset()); cell gate TANH; cell_clip; no "
        "peephole, projection, layer normalisation or CIFG; a cell state scale below 2**2; sizes below "
        f"{GEOM_MAX}; rescaling factors below 2**{MAX_SHIFT}"),
}
# input 0 required; the lowering checks the weights, biases and states (and names a CIFG LSTM)
OPERANDS: dict = {"UNIDIRECTIONAL_SEQUENCE_LSTM": 1}


# lower.py (the hub) takes this group's tables in; this call does it when this module is imported first
from .lower import _merge_groups  # noqa: E402

_merge_groups()
