"""BATCH_MATMUL (issue 18, MATMUL group): the kernel against a NumPy model of
TFLite Micro's arithmetic for every layout (adj_x, adj_y, broadcast batches,
either operand constant, odd depths), the loader's refusal of every corrupted
parameter field and operand, and the lowering's refusals."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from micronn import blob
from micronn import format as fmt
from micronn import lower as _lower  # noqa: F401  (imports lower_matmul after lower, as the package does)
from micronn.errors import MicronnError
from micronn.graph import Graph, Op, Tensor
from micronn.lower_matmul import lower_batch_matmul, matmul_multiplier, matmul_scratch

from .blobtools import fix_crc as _fix_crc
from .blobtools import load_error as _load_error

CRC_AT = fmt.HEADER.offsets["crc32"]
REC = fmt.OP_PARAMS["BATCH_MATMUL"]


def _requant(acc: np.ndarray, mult: int, shift: int) -> np.ndarray:
    """TFLite's MultiplyByQuantizedMultiplier (two roundings), element by element."""
    out = []
    for v in acc.reshape(-1).tolist():
        a = (v << max(shift, 0)) * mult
        a = (a + (1 << 30)) >> 31 if a >= 0 else -((-a + (1 << 30) - 1) >> 31)   # rounding half away
        e = max(-shift, 0)
        mask = (1 << e) - 1
        out.append((a >> e) + (1 if (a & mask) > (mask >> 1) + (1 if a < 0 else 0) else 0))
    return np.array(out, np.int64).reshape(acc.shape)


def _expected(lhs, rhs, adj_x, adj_y, zl, zr, mult, shift, zo):
    a = np.swapaxes(lhs, -1, -2) if adj_x else lhs
    b = np.swapaxes(rhs, -1, -2) if adj_y else rhs
    acc = np.matmul(a.astype(np.int64) - zl, b.astype(np.int64) - zr)
    return np.clip(_requant(acc, mult, shift) + zo, -128, 127).astype(np.int8)


def _graph(lshape, rshape, adj_x=False, adj_y=False, const="rhs", zl=3, zr=-5, zo=2, seed=0,
           mult=1_300_000_000, shift=-9):
    """One BATCH_MATMUL; the non-constant operand is the graph input. Returns (graph, constant value)."""
    rng = np.random.default_rng(seed)
    g = Graph()
    cshape = rshape if const == "rhs" else lshape
    cval = rng.integers(-128, 128, size=cshape).astype(np.int8)
    xshape = lshape if const == "rhs" else rshape
    x = g.add(Tensor("x", "int8", xshape, 0.05, zl if const == "rhs" else zr))
    c = g.const("c", cval)
    g.tensors[c].scale, g.tensors[c].zero_point = 0.04, zr if const == "rhs" else zl
    rows, depth = (lshape[-1], lshape[-2]) if adj_x else (lshape[-2], lshape[-1])
    cols = rshape[-2] if adj_y else rshape[-1]
    lb = ((1, 1) + tuple(lshape[:-2]))[-2:]
    rb = ((1, 1) + tuple(rshape[:-2]))[-2:]
    batch = tuple(max(a, b) for a, b in zip(lb, rb, strict=True))
    rank = max(len(lshape), len(rshape))
    y = g.add(Tensor("y", "int8", batch[4 - rank:] + (rows, cols), 0.1, zo))
    ins = [x, c] if const == "rhs" else [c, x]
    g.ops.append(Op("BATCH_MATMUL", ins, [y], dict(
        lhs_batch=list(lb), rhs_batch=list(rb), rows=rows, depth=depth, cols=cols, adj_x=int(adj_x),
        adj_y=int(adj_y), lhs_offset=-zl, rhs_offset=-zr, output_mult=mult, output_shift=shift, output_offset=zo,
        act_min=-128, act_max=127), scratch=matmul_scratch(depth, cols)))
    g.inputs, g.outputs = [x], [y]
    return g, cval


def _run(unix, g: Graph, x: np.ndarray) -> np.ndarray:
    unix.link.load(blob.write(g))
    return np.frombuffer(unix.link.run(np.ascontiguousarray(x, np.int8).tobytes())[0], np.int8)


LAYOUTS = [
    # lhs shape, rhs shape, adj_x, adj_y, constant operand
    ((3, 4), (4, 5), False, False, "rhs"),
    ((4, 3), (4, 5), True, False, "rhs"),
    ((3, 4), (5, 4), False, True, "rhs"),
    ((7, 3), (5, 7), True, True, "rhs"),            # odd depth: the padded int16 rows
    ((2, 6, 9), (9, 4), False, False, "rhs"),       # rhs broadcast over the batch
    ((2, 3, 6, 5), (3, 5, 7), False, False, "lhs"),  # lhs constant, batches [2, 3] against [1, 3]
    ((1, 3, 5, 6), (2, 1, 5, 4), True, False, "rhs"),   # both batch dimensions broadcast, one each way
    ((2, 1, 4, 11), (1, 3, 9, 11), False, True, "lhs"),
]


@pytest.mark.parametrize("lshape, rshape, adj_x, adj_y, const", LAYOUTS)
def test_batch_matmul_layouts(unix, lshape, rshape, adj_x, adj_y, const):
    g, cval = _graph(lshape, rshape, adj_x, adj_y, const)
    rng = np.random.default_rng(1)
    for _ in range(3):
        x = rng.integers(-128, 128, size=lshape if const == "rhs" else rshape).astype(np.int8)
        lhs, rhs = (x, cval) if const == "rhs" else (cval, x)
        want = _expected(lhs, rhs, adj_x, adj_y, 3, -5, 1_300_000_000, -9, 2)
        got = _run(unix, g, x)
        assert np.array_equal(got, want.reshape(-1)), (got, want.reshape(-1))


def _layout_cases():
    """(blob, inputs, expected outputs) of every layout, three samples each."""
    out = []
    rng = np.random.default_rng(1)
    for lshape, rshape, adj_x, adj_y, const in LAYOUTS:
        g, cval = _graph(lshape, rshape, adj_x, adj_y, const)
        xs = rng.integers(-128, 128, size=(3, *(lshape if const == "rhs" else rshape))).astype(np.int8)
        want = [_expected(x, cval, adj_x, adj_y, 3, -5, 1_300_000_000, -9, 2) if const == "rhs"
                else _expected(cval, x, adj_x, adj_y, 3, -5, 1_300_000_000, -9, 2) for x in xs]
        out.append((blob.write(g), xs, want))
    return out


def _check_layouts(target, variant: str):
    target.link.info()                                  # variant counts start from here
    runs = 0
    for data, xs, want in _layout_cases():
        target.link.load(data)
        for x, w in zip(xs, want, strict=True):
            got = np.frombuffer(target.link.run(x.tobytes())[0], np.int8)
            assert np.array_equal(got, w.reshape(-1)), (got, w.reshape(-1))
            runs += 1
    assert target.link.info()["variants"] == {variant: runs}


def test_batch_matmul_variant_on_unix(unix):
    _check_layouts(unix, "MATMUL_PLAIN")


@pytest.mark.parametrize("board, variant", [("qemu-m4", "MATMUL_DSP"), ("qemu-m3", "MATMUL_PLAIN")])
def test_batch_matmul_on_qemu(board, variant):
    """The SMLAD path (Cortex-M4) and the portable one (M3) on every layout."""
    from micronn.firmware import firmware_file
    from micronn.targets import QemuTarget

    if not firmware_file(board).exists():
        pytest.skip(f"{board} firmware not built")
    with QemuTarget(board) as t:
        t.setup()
        t.serve()
        _check_layouts(t, variant)


def test_batch_matmul_extreme_offsets_and_shifts(unix):
    """Zero points at the ends of int8 (offsets -127 and 128) and a left shift."""
    for zl, zr, mult, shift in ((-128, 127, 1_100_000_000, 3), (127, -128, 2_000_000_000, -20)):
        g, cval = _graph((5, 6), (6, 3), zl=zl, zr=zr, mult=mult, shift=shift, seed=3)
        x = np.random.default_rng(4).integers(-128, 128, size=(5, 6)).astype(np.int8)
        want = _expected(x, cval, False, False, zl, zr, mult, shift, 2)
        assert np.array_equal(_run(unix, g, x), want.reshape(-1))


# --- loader refusals -------------------------------------------------------

def _params_at(data: bytes) -> int:
    info = blob.read(data)
    for k in range(info["header"]["section_count"]):
        s = fmt.SECTION.unpack(data, fmt.HEADER.size + k * fmt.SECTION.size)
        if s["id"] == fmt.SECTION_IDS["OPS"]:
            op = fmt.OP.unpack(data, s["offset"])
            return s["offset"] + fmt.OP.size + ((2 * (op["n_inputs"] + op["n_outputs"]) + 3) & ~3)
    raise AssertionError("no OPS section")


def _patch(data: bytes, field: str, value: int, index: int = 0) -> bytes:
    f = next(f for f in REC.fields if f.name == field)
    b = bytearray(data)
    struct.pack_into("<" + {"u32": "I", "i32": "i"}[f.type], b, _params_at(data) + REC.offsets[field] + 4 * index,
                     value)
    return _fix_crc(b)


@pytest.fixture(scope="module")
def good():
    # lhs [2, 3, 4] (the input), rhs constant [2, 4, 5]: batches [1, 2] both
    return blob.write(_graph((2, 3, 4), (2, 4, 5))[0])


# field -> [(value, index, what the error must say)]; output_mult takes any value.
FIELD_CASES = {
    "lhs_batch": [(0, 0, "batch dimension"), (1 << 24, 1, "batch dimension"), (3, 1, "do not broadcast"),
                  (2, 0, "lhs size")],
    "rhs_batch": [(0, 1, "batch dimension"), (1 << 24, 0, "batch dimension"), (1, 1, "rhs size"),
                  (5, 1, "do not broadcast")],
    "rows": [(0, 0, "matrix size"), (1 << 24, 0, "matrix size"), (4, 0, "lhs size"), (1 << 23, 0, "lhs size")],
    "depth": [(0, 0, "matrix size"), (3, 0, "lhs size"), (5, 0, "scratch too small"), (1 << 23, 0, "scratch")],
    "cols": [(0, 0, "matrix size"), (1 << 24, 0, "matrix size"), (4, 0, "rhs size"), (1 << 23, 0, "scratch")],
    "adj_x": [(2, 0, "adj_x or adj_y"), (0xFFFFFFFF, 0, "adj_x or adj_y")],
    "adj_y": [(7, 0, "adj_x or adj_y")],
    "lhs_offset": [(256, 0, "lhs offset"), (-300, 0, "lhs offset")],
    "rhs_offset": [(-256, 0, "rhs offset"), (1 << 30, 0, "rhs offset")],
    "output_mult": [],
    "output_shift": [(31, 0, "requantization shift"), (-32, 0, "requantization shift")],
    "output_offset": [(128, 0, "output offset"), (-129, 0, "output offset")],
    "act_min": [(-129, 0, "activation range"), (128, 0, "activation range")],
    "act_max": [(128, 0, "activation range"), (-129, 0, "activation range")],
}


def test_every_field_has_a_case():
    assert set(FIELD_CASES) == {f.name for f in REC.fields}


@pytest.mark.parametrize("field", list(FIELD_CASES))
def test_field_refused(unix, good, field):
    for value, index, expect in FIELD_CASES[field]:
        msg = _load_error(unix, _patch(good, field, value, index))
        assert "bad op 0" in msg and expect in msg, (field, value, msg)


def test_sizes_that_overflow(unix, good):
    # every size below 2**24 but their products beyond 2**32
    data = _patch(_patch(good, "rows", (1 << 24) - 1), "depth", (1 << 24) - 1)
    assert "dimensions overflow" in _load_error(unix, data)
    # batch counts beyond 2**32 (lhs [2**24 - 1, 2**24 - 1] against rhs [1, 1])
    big = _patch(good, "lhs_batch", (1 << 24) - 1, 0)
    data = _patch(_patch(_patch(big, "lhs_batch", (1 << 24) - 1, 1), "rhs_batch", 1, 1), "rhs_batch", 1, 0)
    assert "dimensions overflow" in _load_error(unix, data)
    # a batch count and a matrix below 2**32 each, the operand beyond
    assert "dimensions overflow" in _load_error(unix, _patch(big, "rows", 1 << 20))


def test_any_multiplier_loads_and_runs(unix, good):
    for mult in (0, -1, -(1 << 31), (1 << 31) - 1):
        unix.link.load(_patch(good, "output_mult", mult))
        assert len(unix.link.run(bytes(24))[0]) == 2 * 3 * 5


def test_operands_refused(unix):
    # the constant operand must be int8; the output must be an arena tensor of the right size
    g, _ = _graph((2, 3, 4), (2, 4, 5))
    g.tensors[1].dtype = "int16"
    g.tensors[1].data = g.tensors[1].data.astype(np.int16)
    assert "rhs size" in _load_error(unix, blob.write(g))
    g, _ = _graph((3, 4), (4, 5))
    g.tensors[2].shape = (3, 4)
    assert "output size" in _load_error(unix, blob.write(g))


def test_scratch_refused(unix, good):
    b = bytearray(good)
    struct.pack_into("<I", b, fmt.HEADER.offsets["scratch_size"], 8)
    assert "scratch too small" in _load_error(unix, _fix_crc(b))


# --- lowering ----------------------------------------------------------------

class _T:
    def __init__(self, shape, scale=0.05, zp=0, data=None, dtype="int8"):
        self.shape, self.dtype, self.data = shape, dtype, data
        self.scale, self.zero_point = np.array([scale], np.float32), np.array([zp])
        self.name = "t"

    def array(self):
        return self.data


class _Model:
    def __init__(self, tensors):
        self.tensors = tensors
        self.inputs, self.outputs, self.operators, self.subgraph_count = [0, 1], [2], [], 1


class _OpStub:
    def __init__(self, **options):
        self.index, self.opcode, self.options, self.inputs, self.outputs = 0, "BATCH_MATMUL", options, [0, 1], [2]
        self.custom_code, self.version = None, 1


def _lowered(a, b, y, **options):
    low = _lower.Lowering(_Model([_T(a), _T(b), _T(y)]))
    lower_batch_matmul(low, _OpStub(**options))
    return low.g


def test_lowering_parameters():
    g = _lowered((2, 1, 6, 4), (3, 5, 4), (2, 3, 6, 5), adj_y=True)
    op = g.ops[0]
    assert op.kind == "BATCH_MATMUL" and op.scratch == matmul_scratch(4, 5) == 2 * 4 * 7
    p = op.params
    assert (p["lhs_batch"], p["rhs_batch"], p["rows"], p["depth"], p["cols"]) == ([2, 1], [1, 3], 6, 4, 5)
    assert (p["adj_x"], p["adj_y"], p["act_min"], p["act_max"]) == (0, 1, -128, 127)
    assert (p["output_mult"], p["output_shift"]) == matmul_multiplier(0.05, 0.05, 0.05)


def test_matmul_multiplier_takes_the_scale_product_in_float32():
    # float32(a * b) / out, as GetQuantizedConvolutionMultipler in TFLite Micro
    a, b, o = 0.0123456789, 0.0987654321, 0.0313
    want = float(np.float64(np.float32(a) * np.float32(b)) / np.float64(np.float32(o)))
    from micronn.quant import quantize_multiplier
    assert matmul_multiplier(a, b, o) == quantize_multiplier(want)


@pytest.mark.parametrize("a, b, options, expect", [
    ((3, 4), (5, 6), {}, "do not multiply: depth 4 against 5"),
    ((3, 4), (6, 4), {"adj_y": False}, "do not multiply"),
    ((2, 3, 4), (3, 4, 5), {}, "batch dimensions"),
    ((4,), (4, 5), {}, "rank 2 to 4"),
    ((3, 4), (4, 5), {"asymmetric_quantize_inputs": True}, "hybrid"),
])
def test_lowering_refusals(a, b, options, expect):
    with pytest.raises(MicronnError, match=expect):
        _lowered(a, b, (1,), **options)
