"""Mutated blobs on the unix firmware and on its sanitizer build (unix-asan).

Seven single-op base blobs (fully connected per channel and per tensor, convolution
with scratch in two im2col variants and without, depthwise with multiplier 1 and
2), each mutated three ways (the CRC fixed up, so that the loader's checks and
not the checksum meet every change):

- every byte of the blob (but the CRC) set to five other values;
- every value field set to edge values: the op's offsets, activation range,
  strides, dilations and padding, and each bias, multiplier and shift;
- every truncation.

A mutant differs from its base in value fields only (constants or the op's
offsets, activation range and geometry), in information only (the header's MAC
count, tensor scales and zero points, metadata), or in structure. Every mutant
ends in a ValueError naming the problem, a MemoryError (a changed arena size),
or loads and runs. One that loads runs twice in a fresh model, with its blob in
a buffer surrounded by other bytes each time and its arena followed by guard
bytes: the outputs and predict() are the same both times, and the guard bytes
are untouched. On the sanitizer build the blob and the arena sit in malloc
blocks of their exact size instead (boards/unix-asan/mnasan.c): a read or write
one byte outside either aborts the run, as does undefined behaviour.

A value mutant is still a model: the loader must take it when its values are
in TFLite's ranges and refuse it when they are outside the documented limits
(shifts in [-31, 30], output offset and activation range in int8, geometry
below 2^24), and its outputs must equal the reference below, TFLite's integer
arithmetic written out in numpy (accumulators wrap at 32 bits, as
docs/security.md says), wherever its multipliers are not negative (TFLite's are
in [0, 2^31); micronn computes negative ones differently, by design). A mutant
that changes information only gives the base's outputs.
"""

from __future__ import annotations

import os
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from micronn import blob
from micronn import format as fmt
from micronn.graph import Graph, Op, Tensor

from .blobtools import fix_crc as _fix_crc
from .conftest import need_firmware
from .test_format import GRAPH_KNOWN, _graph

BUILDS = ["unix", "unix-asan"]
CRC_AT = fmt.HEADER.offsets["crc32"]
I32 = (-(1 << 31), (1 << 31) - 1)
GEOM_MAX = 1 << 24          # docs/security.md: geometry values below 2^24
SANITIZER_ENV = {"ASAN_OPTIONS": "abort_on_error=0:detect_leaks=1", "UBSAN_OPTIONS": "print_stacktrace=1"}


def run_firmware(board: str, script: str, cwd: Path, timeout: float = 300) -> str:
    """Run a script on the unix firmware ``board`` (unix or unix-asan); return its
    stdout. Fails on a non-zero exit or any sanitizer report."""
    exe = need_firmware(board)
    p = subprocess.run([str(exe), "-c", script], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                       env={**os.environ, **SANITIZER_ENV})
    reports = [ln for ln in p.stderr.splitlines() if "Sanitizer" in ln or "runtime error" in ln]
    assert p.returncode == 0 and not reports, (f"{board} firmware exited {p.returncode}\n"
                                               f"stdout: {p.stdout[-3000:]}\nstderr: {p.stderr[-6000:]}")
    return p.stdout


# --- the oracle: TFLite's integer arithmetic, written out ----------------------

def _wrap32(v):
    """int64 values taken modulo 2^32 as int32 (the accumulators wrap)."""
    v = np.asarray(v, np.int64)
    return ((v + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def _srdhm(a, b):
    """SaturatingRoundingDoublingHighMul(a, b) of gemmlowp/TFLite."""
    a, b = np.broadcast_arrays(np.asarray(a, np.int64), np.asarray(b, np.int64))
    ab = a * b
    num = ab + np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    q = np.abs(num) // (1 << 31) * np.sign(num)     # C's division truncates toward zero
    return np.where((a == I32[0]) & (b == I32[0]), I32[1], q)


def _rdbpot(x, e):
    """RoundingDivideByPOT(x, e): x / 2^e rounded half away from zero."""
    x, e = np.broadcast_arrays(np.asarray(x, np.int64), np.asarray(e, np.int64))
    mask = (np.int64(1) << e) - 1
    threshold = (mask >> 1) + (x < 0)
    return (x >> e) + ((x & mask) > threshold)


def _requantize(acc, mult, shift):
    """MultiplyByQuantizedMultiplier: the left shift (wrapping like the int32
    product it is in C), the doubling high multiply, then the rounding right shift."""
    shift = np.asarray(shift, np.int64)
    left, right = np.maximum(shift, 0), np.maximum(-shift, 0)
    return _rdbpot(_srdhm(_wrap32(np.asarray(acc, np.int64) << left), mult), right)


def _finish(acc, p, a):
    """Bias, requantization per output channel (last axis), output offset, clamp."""
    if a.get("bias") is not None:
        acc = acc + a["bias"].astype(np.int64)
    acc = _wrap32(acc)
    y = _wrap32(_requantize(acc, a["mult"].astype(np.int64), a["shift"].astype(np.int64)) + p["output_offset"])
    return np.minimum(np.maximum(y, p["act_min"]), p["act_max"]).astype(np.int8)


def reference(kind: str, p: dict, a: dict, x: np.ndarray) -> np.ndarray:
    """The op's int8 output for input x, from its parameters p and constants a."""
    if kind == "FULLY_CONNECTED":
        n, d, o = p["batches"], p["accum_depth"], p["out_depth"]
        xs = x.reshape(n, d).astype(np.int64) + p["input_offset"]
        w = a["weights"].reshape(o, d).astype(np.int64) + p["filter_offset"]
        return _finish(xs @ w.T, p, a).reshape(-1)
    n, h, w_, c = p["batches"], p["in_h"], p["in_w"], p["in_c"]
    oh, ow, oc, kh, kw = p["out_h"], p["out_w"], p["out_c"], p["k_h"], p["k_w"]
    xs = x.reshape(n, h, w_, c).astype(np.int64) + p["input_offset"]
    acc = np.zeros((n, oh, ow, oc), np.int64)
    oy = np.arange(oh, dtype=np.int64) * p["stride_h"] - p["pad_top"]
    ox = np.arange(ow, dtype=np.int64) * p["stride_w"] - p["pad_left"]
    for ky in range(kh):
        iy = oy + ky * p["dil_h"]
        for kx in range(kw):
            ix = ox + kx * p["dil_w"]
            inside = ((iy >= 0) & (iy < h))[:, None] & ((ix >= 0) & (ix < w_))[None, :]
            # taps outside the input add nothing (TFLite skips them)
            patch = xs[:, np.clip(iy, 0, h - 1)][:, :, np.clip(ix, 0, w_ - 1)] * inside[None, :, :, None]
            if kind == "DEPTHWISE_CONV_2D":
                wk = a["weights"].reshape(kh, kw, oc)[ky, kx].astype(np.int64)
                acc += patch[..., np.arange(oc) // p["depth_mult"]] * wk
            else:
                groups = p["groups"]
                fc, og = c // groups, oc // groups
                wk = a["weights"].reshape(oc, kh, kw, fc)[:, ky, kx, :].astype(np.int64)
                for g in range(groups):
                    acc[..., g * og:(g + 1) * og] += patch[..., g * fc:(g + 1) * fc] @ wk[g * og:(g + 1) * og].T
    return _finish(acc, p, a).reshape(-1)


def test_reference_on_values_worked_out_by_hand():
    """The oracle itself, on test_format's blob whose outputs were worked out by hand."""
    g = _graph()
    op = g.ops[0]
    a = {"weights": g.tensors[op.inputs[1]].data, "bias": None, "mult": g.tensors[op.inputs[3]].data,
         "shift": g.tensors[op.inputs[4]].data}
    for x, want in GRAPH_KNOWN.items():
        got = reference("FULLY_CONNECTED", op.params, a, np.frombuffer(x, np.int8))
        assert got.tolist() == want, (x, got)


# --- the base blobs ------------------------------------------------------------

def _single_op(kind, x_shape, w, y_shape, params, x_zp, rng, per_channel=True, scratch=0):
    """A one-op graph: random bias, multipliers in [2^30, 2^31) and shifts that
    spread the outputs over int8."""
    g = Graph()
    n_out = y_shape[-1]
    q = n_out if per_channel else 1
    x = g.add(Tensor("x", "int8", x_shape, 0.05, x_zp))
    wt = g.const("weights", w)
    b = g.const("bias", rng.integers(-3000, 3000, n_out).astype(np.int32))
    m = g.const("mult", rng.integers(1 << 30, 1 << 31, q).astype(np.int32))
    s = g.const("shift", rng.integers(-10, -7, q).astype(np.int32))
    y = g.add(Tensor("y", "int8", y_shape, 0.1, params["output_offset"]))
    g.ops.append(Op(kind, [x, wt, b, m, s], [y], dict(params, input_offset=-x_zp), scratch=scratch))
    g.inputs, g.outputs = [x], [y]
    g.meta = {"NAME": kind.lower()}
    if kind == "FULLY_CONNECTED":
        g.meta["LABELS"] = [f"class {i}" for i in range(y_shape[-1])]
    return g


def _geom(x_shape, y_shape, k, stride, dil, pad):
    return dict(batches=x_shape[0], in_h=x_shape[1], in_w=x_shape[2], in_c=x_shape[3], out_h=y_shape[1],
                out_w=y_shape[2], out_c=y_shape[3], k_h=k, k_w=k, stride_h=stride, stride_w=stride, dil_h=dil,
                dil_w=dil, pad_top=pad, pad_left=pad)


def _weights(rng, *shape):
    return rng.integers(-127, 128, shape).astype(np.int8)


def _conv(rng, in_c, groups, scratch):
    xs, ys = (1, 6, 7, in_c), (1, 6, 7, 4 * groups)
    taps = 9 * in_c // groups
    p = dict(_geom(xs, ys, 3, 1, 1, 1), output_offset=-3, act_min=-120, act_max=115, groups=groups)
    return _single_op("CONV_2D", xs, _weights(rng, ys[3], 3, 3, in_c // groups), ys, p, -7, rng,
                      scratch=fmt.CONV_SCRATCH_PER_TAP * taps if scratch else 0)


def _depthwise(rng, x_shape, mult, stride, dil, pad, y_hw):
    ys = (1, *y_hw, x_shape[3] * mult)
    p = dict(_geom(x_shape, ys, 3, stride, dil, pad), output_offset=4, act_min=-128, act_max=127, depth_mult=mult)
    return _single_op("DEPTHWISE_CONV_2D", x_shape, _weights(rng, 1, 3, 3, ys[3]), ys, p, 9, rng)


def _fc(rng):
    p = dict(filter_offset=0, output_offset=-3, act_min=-100, act_max=110, batches=2, accum_depth=16, out_depth=6)
    return _single_op("FULLY_CONNECTED", (2, 16), _weights(rng, 6, 16), (2, 6), p, 5, rng)


# name -> (graph builder, kernel variants the base must run); inputs are random
# but for test_format's blob, whose random inputs mostly saturate
BASES = {
    "fc": (lambda r: _fc(r), {"FC_OFFSET"}),
    "fc_per_tensor": (lambda r: _graph(), {"FC_OFFSET"}),
    "conv_im2col": (lambda r: _conv(r, 3, 1, True), {"CONV_IM2COL_PLAIN"}),
    "conv_im2col_w4_groups": (lambda r: _conv(r, 8, 2, True), {"CONV_IM2COL_W4"}),
    "conv_direct": (lambda r: _conv(r, 3, 1, False), {"CONV_DIRECT"}),
    "depthwise_mult1": (lambda r: _depthwise(r, (1, 7, 6, 8), 1, 2, 1, 1, (4, 3)), {"DEPTHWISE_MULT1"}),
    "depthwise_mult2_dilated": (lambda r: _depthwise(r, (1, 5, 6, 3), 2, 1, 2, 2, (5, 6)), {"DEPTHWISE_GENERIC"}),
}
OPERANDS = ("weights", "bias", "mult", "shift")     # op inputs 1..4
GEOMETRY = ("stride_h", "stride_w", "dil_h", "dil_w")
PADDING = ("pad_top", "pad_left")
VALUE_PARAMS = {
    "FULLY_CONNECTED": ("input_offset", "filter_offset", "output_offset", "act_min", "act_max"),
    "CONV_2D": ("input_offset", "output_offset", "act_min", "act_max", *GEOMETRY, *PADDING),
}
VALUE_PARAMS["DEPTHWISE_CONV_2D"] = VALUE_PARAMS["CONV_2D"]


class Base:
    """A base blob and where its value and information-only fields lie."""

    def __init__(self, name: str, g: Graph, variants: set[str], rng):
        self.name, self.variants = name, variants
        self.data = blob.write(g)       # sets the tensors' offsets
        op = g.ops[0]
        self.kind, self.params = op.kind, dict(op.params)
        h = fmt.HEADER.unpack(self.data)
        self.sections = {}
        for k in range(h["section_count"]):
            s = fmt.SECTION.unpack(self.data, h["header_size"] + k * fmt.SECTION.size)
            self.sections[s["id"]] = (s["offset"], s["size"])
        ops_at = self.sections[fmt.SECTION_IDS["OPS"]][0]
        n_idx = len(op.inputs) + len(op.outputs)
        self.params_at = ops_at + fmt.OP.size + fmt.align(2 * n_idx, 4)
        rec = fmt.OP_PARAMS[self.kind]
        assert rec.unpack(self.data, self.params_at) == {f.name: op.params.get(f.name, 0) for f in rec.fields}
        const_at, const_size = self.sections[fmt.SECTION_IDS["CONST"]]
        self.arrays = {}        # operand name -> (blob offset, dtype, count)
        for operand, i in zip(OPERANDS, op.inputs[1:5], strict=True):
            if i >= 0:
                t = g.tensors[i]
                self.arrays[operand] = (const_at + t.offset, "<i1" if t.dtype == "int8" else "<i4", int(t.data.size))
        # byte positions: value fields (the constants, the op's value parameters) and information only
        value = np.zeros(len(self.data), bool)
        value[const_at:const_at + const_size] = True
        for f in VALUE_PARAMS[self.kind]:
            at = self.params_at + rec.offsets[f]
            value[at:at + 4] = True
        info = np.zeros(len(self.data), bool)
        macs = fmt.HEADER.offsets["macs"]
        info[macs:macs + 4] = True
        ten_at = self.sections[fmt.SECTION_IDS["TENSORS"]][0]
        for k in range(len(g.tensors)):
            for f in ("scale", "zero_point"):
                at = ten_at + k * fmt.TENSOR.size + fmt.TENSOR.offsets[f]
                info[at:at + 4] = True
        if fmt.SECTION_IDS["META"] in self.sections:
            at, size = self.sections[fmt.SECTION_IDS["META"]]
            info[at:at + size] = True
        self.value_bytes, self.info_bytes = value, info
        self.x = rng.integers(-128, 128, g.tensors[g.inputs[0]].nbytes).astype(np.int8)
        if name == "fc_per_tensor":
            self.x = np.arange(8, dtype=np.int8)
        self.want = self.expected(self.data)

    def decode(self, data: bytes) -> tuple[dict, dict]:
        """The parameters and constants of a mutant whose structure is the base's."""
        p = fmt.OP_PARAMS[self.kind].unpack(data, self.params_at)
        a = {name: np.frombuffer(data, dt, n, at).copy() for name, (at, dt, n) in self.arrays.items()}
        a.setdefault("bias", None)
        return p, a

    def expected(self, data: bytes) -> np.ndarray:
        p, a = self.decode(data)
        return reference(self.kind, p, a, self.x)

    def verdict(self, data: bytes) -> tuple[str | None, bool]:
        """For a value mutant: whether the loader must take it ("load"), must refuse
        it ("refuse") or either (None), and whether the reference applies."""
        p, a = self.decode(data)

        def int8(v):
            return -128 <= v <= 127

        geom = [p[f] for f in GEOMETRY] if self.kind != "FULLY_CONNECTED" else [1]
        pads = [p[f] for f in PADDING] if self.kind != "FULLY_CONNECTED" else [0]
        if (not all(-31 <= s <= 30 for s in a["shift"].tolist()) or not int8(p["output_offset"])
                or not int8(p["act_min"]) or not int8(p["act_max"])
                or not all(1 <= v < GEOM_MAX for v in geom) or not all(abs(v) < GEOM_MAX for v in pads)):
            return "refuse", False
        tflite_like = (-127 <= p["input_offset"] <= 128 and -127 <= p.get("filter_offset", 0) <= 128
                       and p["act_min"] <= p["act_max"] and all(v <= 1 << 16 for v in geom)
                       and all(abs(v) <= 1 << 16 for v in pads))
        return ("load" if tflite_like else None), bool((a["mult"] >= 0).all())

    def classify(self, data: bytes) -> str:
        """value, info or structure: what a mutant of the same length changes."""
        diff = np.flatnonzero(np.frombuffer(data, np.uint8) != np.frombuffer(self.data, np.uint8))
        diff = diff[(diff < CRC_AT) | (diff >= CRC_AT + 4)]
        if len(diff) and self.value_bytes[diff].all():
            return "value"
        if len(diff) and self.info_bytes[diff].all():
            return "info"
        return "structure"


def _byte_mutants(data: bytes) -> list[bytes]:
    out = []
    for pos in range(len(data)):
        if CRC_AT <= pos < CRC_AT + 4:
            continue        # the CRC has its own test (test_blob_validation)
        for new in sorted({data[pos] ^ 0xFF, data[pos] ^ 0x01, 0x00, 0x80, 0x7F} - {data[pos]}):
            b = bytearray(data)
            b[pos] = new
            out.append(_fix_crc(b))
    return out


OFFSETS = [I32[0], -(1 << 16), -256, -255, -128, -127, -1, 0, 1, 127, 128, 129, 255, 256, 1 << 16, I32[1]]
ACTIVATION = [I32[0], -129, -128, -127, -1, 0, 1, 126, 127, 128, I32[1]]
STEPS = [0, 1, 2, 3, 5, 1000, (1 << 16), GEOM_MAX - 1, GEOM_MAX, 0xFFFFFFFF]
PADS = [I32[0], -GEOM_MAX, -GEOM_MAX + 1, -1000, -5, -2, -1, 0, 1, 2, 3, 5, 7, 1000, GEOM_MAX - 1, GEOM_MAX, I32[1]]
ELEMENTS = {
    "bias": [I32[0], I32[0] + 1, -(1 << 24), -1, 0, 1 << 24, I32[1]],
    "mult": [I32[0], -1, 0, 1, 1 << 30, I32[1]],
    "shift": [I32[0], -32, -31, -30, -1, 0, 1, 29, 30, 31, I32[1]],
    "weights": [-128, 0, 127],
}


def _field_mutants(base: Base) -> list[bytes]:
    out = []
    rec = fmt.OP_PARAMS[base.kind]
    for f in VALUE_PARAMS[base.kind]:
        values = (STEPS if f in GEOMETRY else PADS if f in PADDING
                  else ACTIVATION if f.startswith(("act_", "output_")) else OFFSETS)
        for v in values:
            b = bytearray(base.data)
            struct.pack_into("<I" if f in GEOMETRY else "<i", b, base.params_at + rec.offsets[f], v)
            out.append(_fix_crc(b))
    for name, (at, dt, n) in base.arrays.items():
        size = np.dtype(dt).itemsize
        for k in range(n) if name != "weights" else range(0, n, max(1, n // 7)):
            for v in ELEMENTS[name]:
                b = bytearray(base.data)
                b[at + k * size:at + (k + 1) * size] = np.array([v], dt).tobytes()
                out.append(_fix_crc(b))
    return [m for m in out if m != base.data]


DEVICE = """
import micronn, struct, binascii
try:
    import mnasan       # the sanitizer build: blob and arena in malloc blocks of their exact size
except ImportError:
    mnasan = None
GUARD = 64
TAIL = bytes([0xA5]) * GUARD

def placed(b, fill):
    if mnasan:
        buf = mnasan.buffer(len(b))
        buf[:] = b
        return buf
    around = bytes([fill]) * GUARD
    return memoryview(around + b + around)[GUARD:GUARD + len(b)]

def release(*bufs):
    if mnasan:
        for b in bufs:
            mnasan.release(b)

def once(b, x, need, fill):
    bb = placed(b, fill)
    if mnasan:
        a = mnasan.buffer(need)
    else:
        a = bytearray(need + GUARD)
        a[need:] = TAIL
    m = micronn.Model(bb, arena=a)
    y = bytes(m.run(x))
    p = repr(m.predict(x))
    ok = mnasan or a[need:] == TAIL
    m = None
    release(bb, a)
    return y, p, ok

def trial(b, x):
    bb = placed(b, 0x00)
    try:
        m = micronn.Model(bb)
    except (ValueError, MemoryError) as e:
        release(bb)
        return type(e).__name__ + ('' if str(e).startswith('micronn: ') else ' unnamed')
    need = m.arena_size
    n = 1
    for d in m.input_shape:
        n *= d
    m = None
    release(bb)
    if len(x) != n:
        x = bytes((i * 37 + 11) & 0xFF for i in range(n))
    try:
        y1, p1, ok1 = once(b, x, need, 0x00)
        y2, p2, ok2 = once(b, x, need, 0xFF)
    except MemoryError:
        return 'ran big'           # the arena fits the heap once, not with the copies here
    flags = ('' if (y1, p1) == (y2, p2) else ' differs') + ('' if ok1 and ok2 else ' guard')
    return 'ran ' + binascii.hexlify(y1).decode() + flags

f = open('mutants.bin', 'rb')
(nbases,) = struct.unpack('<I', f.read(4))
xs = []
for k in range(nbases):
    (n,) = struct.unpack('<I', f.read(4))
    b = f.read(n)
    (n,) = struct.unpack('<I', f.read(4))
    x = f.read(n)
    xs.append(x)
    micronn.kernel_variants(True)
    print('base', k, trial(b, x), ' '.join(sorted(micronn.kernel_variants(True))))
(count,) = struct.unpack('<I', f.read(4))
for i in range(count):
    n, k = struct.unpack('<IB', f.read(5))
    try:
        print(trial(f.read(n), xs[k]))
    except Exception as e:
        print('other', type(e).__name__, e)
"""


class Mutants:
    """The bases, the mutants [(base index, source, blob)], and what the host knows
    of each mutant (worked out once for both builds, when first asked)."""

    def __init__(self):
        rng = np.random.default_rng(19)
        self.bases = [Base(name, build(rng), variants, rng) for name, (build, variants) in BASES.items()]
        self.cases = []
        for k, base in enumerate(self.bases):
            self.cases += [(k, "byte", m) for m in _byte_mutants(base.data)]
            self.cases += [(k, "field", m) for m in _field_mutants(base)]
            self.cases += [(k, "truncation", base.data[:n]) for n in range(len(base.data))]
        self._known: dict[int, tuple] = {}

    def known(self, i: int) -> tuple[str, str | None, bool, list[int] | None]:
        """(value, info or structure; for a value mutant the loader's duty and
        whether the reference applies; the outputs it must give, if any)."""
        if i not in self._known:
            k, _, m = self.cases[i]
            base = self.bases[k]
            what = base.classify(m) if len(m) == len(base.data) else "structure"
            must, exact, want = None, False, None
            if what == "value":
                must, exact = base.verdict(m)
                want = base.expected(m).tolist() if exact else None
            elif what == "info":
                want = base.want.tolist()
            self._known[i] = (what, must, exact, want)
        return self._known[i]


@pytest.fixture(scope="module")
def mutants():
    return Mutants()


def _write(path: Path, bases, cases) -> None:
    with open(path, "wb") as f:
        f.write(struct.pack("<I", len(bases)))
        for b in bases:
            f.write(struct.pack("<I", len(b.data)) + b.data + struct.pack("<I", b.x.size) + b.x.tobytes())
        f.write(struct.pack("<I", len(cases)))
        for k, _, m in cases:
            f.write(struct.pack("<IB", len(m), k) + m)


@pytest.mark.parametrize("board", BUILDS)
def test_mutants(board, mutants, tmp_path):
    bases, cases = mutants.bases, mutants.cases
    _write(tmp_path / "mutants.bin", bases, cases)
    lines = run_firmware(board, DEVICE, tmp_path, timeout=600).splitlines()
    base_lines, results = lines[:len(bases)], lines[len(bases):]
    assert len(results) == len(cases), lines[-5:]

    for base, line in zip(bases, base_lines, strict=True):
        _, _, status, out, *variants = line.split()
        assert status == "ran" and np.frombuffer(bytes.fromhex(out), np.int8).tolist() == base.want.tolist(), \
            f"{base.name}: the base blob does not give the reference outputs: {line}"
        assert base.variants <= set(variants), f"{base.name} ran {variants}, not {base.variants}"
        assert len(set(base.want.tolist())) > 3, f"{base.name}: outputs too uniform to tell mutants apart"

    counts: dict[str, int] = {}
    bad: list[str] = []

    def count(what):
        counts[what] = counts.get(what, 0) + 1

    for i, ((k, source, m), res) in enumerate(zip(cases, results, strict=True)):
        base = bases[k]
        status, *rest = res.split()
        what, must, exact, want = mutants.known(i)
        count(f"{what} {status}")
        tag = f"{base.name} {source} mutant {what}"
        if status in ("ValueError", "MemoryError"):
            if rest:
                bad.append(f"{tag}: {res} (the message does not start with 'micronn: ')")
            if must == "load":
                bad.append(f"{tag}: refused ({status}) though its values are in range: {base.decode(m)}")
            continue
        if status != "ran":
            bad.append(f"{tag}: {res}")
            continue
        if "differs" in rest or "guard" in rest:
            bad.append(f"{tag}: {res[:200]}")
        if must == "refuse":
            bad.append(f"{tag}: loaded though a value is outside the limits: {base.decode(m)}")
        if rest == ["big"] or want is None:
            continue
        got = np.frombuffer(bytes.fromhex(rest[0]), np.int8).tolist()
        count(f"{what} checked against the {'reference' if what == 'value' else 'base'}")
        if got != want:
            bad.append(f"{tag}: outputs {got} != {want} for {base.decode(m)}")

    summary = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
    print(f"\n{board}: {len(cases)} mutants of {len(bases)} blobs: {summary}")
    assert not bad, f"{len(bad)} problems, first ones:\n" + "\n".join(bad[:20])
    # the test means something only if many mutants load and are checked
    assert counts.get("value checked against the reference", 0) > 5000
    assert counts.get("info checked against the base", 0) > 1000
    structure = sum(v for k, v in counts.items() if k.startswith("structure"))
    assert counts.get("structure ValueError", 0) > structure // 2     # the structure checks catch most changes
    assert counts.get("structure ran", 0) > 1000
