"""Load/run/delete cycles return the heap to its baseline after gc.collect().

MicroPython's collector is conservative: a stale word on the C stack or in a VM
slot that happens to point into the heap keeps one block alive. The baseline is
taken after a few warm-up cycles, and the check allows that one stray block
(64 bytes) while a leak of one 32-byte block per cycle shows as 3,200 bytes
over 100 cycles (or 320,000 over the 10,000 of the first test).

The cycles cover every op family of the format (format.OPCODES) with their fast
kernels (the scratch the packer reserves) and without scratch (the loops that
need none), float inputs and outputs, a caller's arena, predict(), and the ways
a load or a run fails: corrupt blobs, an arena the heap cannot hold, arenas too
small, read-only, a view of heap memory or over the blob, wrong inputs and
outputs. The failures and exact-bounds runs repeat on the sanitizer build
(unix-asan), whose blob and arena sit in malloc blocks of their own size
(boards/unix-asan/mnasan.c). The inference server's LOADs are cycled through
its framed link, its INFO reporting the free heap.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

from micronn import blob
from micronn import format as fmt
from micronn.firmware import firmware_file
from micronn.link import DeviceError
from micronn.targets import QemuTarget, UnixTarget

from .conftest import micropython, need_firmware, need_shared
from .test_format import _graph
from .test_mutations import BUILDS, run_firmware

STRAY = 64     # one block a stale pointer may keep alive
CYCLES_EACH = 100

CYCLES = """
import gc, micronn
def cycles(b, n):
    x = bytes(micronn.Model(b).input_shape[1])
    def cycle():
        m = micronn.Model(b)
        y = m.run(x)
        m = y = None
    for i in range(10):
        cycle()
    gc.collect()
    base = gc.mem_free()
    for i in range(n):
        cycle()
    gc.collect()
    return base, gc.mem_free()
"""


def test_ten_thousand_cycles_on_unix(tmp_path):
    (tmp_path / "m.mnb").write_bytes(blob.write(_graph()))
    out = micropython(CYCLES + "b = open('m.mnb', 'rb').read()\nprint(*cycles(b, 10000))\n", tmp_path)
    base, after = map(int, out.split())
    print(f"\nunix: 10000 cycles, free heap {base} before, {after} after")
    assert base - after <= STRAY


def test_thousand_cycles_on_qemu_m4():
    if not firmware_file("qemu-m4").exists():
        pytest.skip("qemu-m4 firmware not built")
    model = need_shared("models", "tflm_hello_world_int8.tflite")
    from micronn import pack, romfs

    with QemuTarget("qemu-m4", romfs=romfs.build({"m.mnb": pack(model)})) as t:
        t.setup()
        out = t.exec(CYCLES + "b = open('/rom/m.mnb', 'rb')\nprint(*cycles(b, 1000))\n")
    base, after = map(int, out.split())
    print(f"\nqemu-m4: 1000 cycles, free heap {base} before, {after} after")
    assert base - after <= STRAY


# --- every op family, with and without scratch, float I/O, failures -----------

# Zoo models that together hold every op family (checked below); float_io_cnn has
# a float interface.
ZOO_MODELS = ["mnist_cnn", "fire_modules", "gates", "residual_add", "zero_padding", "avgpool_3x3_s2",
              "dw_mult1_same", "head_softmax", "float_io_cnn"]
# ... and models of issue 18's operator zoo (tests/opzoo/) for the op families added with it.
OPZOO_MODELS = ["ew_sub", "ew_squared_difference", "ew_clip_consts", "ew_prelu", "mv_strided_slice", "mv_take",
                "mv_reflect", "rs_up_nearest_2x", "rs_up_bilinear_2x", "rs_tconv_s2_same", "rd_argmax_head",
                "rd_argmin_spatial", "rd_max_spatial", "rd_min_channels", "rd_l2_embedding", "rd_log_softmax_head",
                "mm_two_dense", "state_rnn", "svdf_rank1", "lstm_fused_seq"]
# Kernel variants the cycles must have run: the fast ones with scratch, the loops without.
WITH_SCRATCH = {"CONV_IM2COL_PLAIN", "CONV_IM2COL_W4", "CONV_POOL_FAST", "ADD_TABLES"}
WITHOUT_SCRATCH = {"CONV_DIRECT", "CONV_POOL_DIRECT", "ADD_DIRECT"}
OPTIONAL_SCRATCH = ("CONV_2D", "CONV_2D_MAXPOOL", "ADD")     # MEAN's scratch is not optional
EVERY_FAMILY = {"FC_OFFSET", "SOFTMAX", "DEPTHWISE_MULT1", "MAX_POOL", "AVG_POOL", "MUL", "LUT", "CONCAT", "PAD",
                "MEAN"} | WITH_SCRATCH | WITHOUT_SCRATCH


class Case:
    def __init__(self, name: str, data: bytes, x: np.ndarray, want: np.ndarray, kinds: set[str]):
        self.name, self.data, self.kinds = name, data, kinds
        self.float_in = x.dtype == np.float32
        self.x = x.astype("<f4" if self.float_in else "<i2" if x.dtype == np.int16 else np.int8).tobytes()
        self.want = (want.astype("<f4") if want.dtype == np.float32 else want.astype(want.dtype.newbyteorder("<"))
                     ).tobytes()


@pytest.fixture(scope="module")
def cases() -> list[Case]:
    """Each model packed with scratch and without; inputs and TFLite Micro's outputs."""
    import copy

    from micronn.packer import build_graph
    from micronn.reference import tflm_run
    from micronn.run import sample_inputs

    from .test_format import GRAPH_KNOWN
    from .test_zoo import convert_case
    from .zoo import seed

    x0, want0 = next(iter(GRAPH_KNOWN.items()))
    out = [Case("fc_graph", blob.write(_graph()), np.frombuffer(x0, np.int8), np.array(want0, np.int8),
                {"FULLY_CONNECTED"})]
    from . import opzoo

    for name in ZOO_MODELS + OPZOO_MODELS:
        tfl = opzoo.tflite(name) if name in OPZOO_MODELS else convert_case(name)
        g = build_graph(tfl, name=name)
        for op in g.ops:
            if op.kind == "ADD":    # the packer gives ADDs of 1,024+ values their tables; the zoo's are smaller
                op.scratch = fmt.ADD_SCRATCH
        bare = copy.deepcopy(g)
        for op in bare.ops:
            if op.kind in OPTIONAL_SCRATCH:
                op.scratch = 0
        assert name in OPZOO_MODELS or any(op.scratch for op in g.ops), name
        for label, h in (("scratch", g),) + ((("no scratch", bare),) if name in ZOO_MODELS else ()):
            data = blob.write(h)
            x = sample_inputs(data, 1, seed(name))
            out.append(Case(f"{name} ({label})", data, x[0], tflm_run(tfl, x)[0], {op.kind for op in h.ops}))
    from .cmsis_s4 import samples  # int4 weights: CMSIS-NN's s4 cases
    out += [Case(name, data, x, want, {kind}) for name, data, x, want, kind in samples()]
    from .cmsis_s16 import samples as s16_samples  # int16 activations: CMSIS-NN's s16 cases, one per op
    seen: set[str] = set()
    for name, data, x, want in s16_samples():
        kind = blob.read(data)["ops"][0]["kind"]
        if kind not in seen:
            seen.add(kind)
            out.append(Case(f"s16/{name}", data, x.astype(np.int16), want.astype(np.int16), {kind}))

    from .test_s16 import _softmax_graph, _softmax_tflite

    shape, sm = (1, 2, 10), (0.1, -3, 1.0)
    x = np.random.default_rng(57).integers(-128, 128, (1, *shape[1:])).astype(np.int8)
    out.append(Case("softmax_s8_s16", blob.write(_softmax_graph(shape, *sm)), x[0],
                    np.asarray(tflm_run(_softmax_tflite(shape, *sm), x)).astype(np.int16)[0], {"SOFTMAX_S8_S16"}))
    from micronn import pack

    from . import s16x_models  # int16 activations: the S16X ops
    from .test_ops_s16 import _requant_graph, _requantize

    for name in ("s16_chain", "s16_concat", "s16_pad_reshape"):
        tfl = s16x_models.tflite(name)
        data, x = pack(tfl, name=name), s16x_models.inputs(name, 1)
        out.append(Case(name, data, x[0], tflm_run(tfl, x)[0], {o["kind"] for o in blob.read(data)["ops"]}))
    g, (p1, p2) = _requant_graph(0.05, 3, 0.0004, 0.07, -5)
    x = np.arange(-128, 128, dtype=np.int8)
    want = np.array(_requantize(_requantize(x, p1, -32768, 32767), p2, -128, 127), np.int8)
    out.append(Case("requant_s8_s16", blob.write(g), x, want, {"REQUANT"}))
    assert set().union(*(c.kinds for c in out)) == set(fmt.OPCODES), "an op family has no blob here"
    assert any(c.float_in for c in out)
    return out


def _fix_crc(b: bytearray) -> bytes:
    struct.pack_into("<I", b, fmt.HEADER.offsets["crc32"], zlib.crc32(b[fmt.HEADER.offsets["crc32"] + 4:]))
    return bytes(b)


def _corrupt(data: bytes) -> dict[str, bytes]:
    """Blobs the loader refuses at different depths, and one whose arena the heap cannot hold."""
    h = fmt.HEADER.unpack(data)
    sec = {}
    for k in range(h["section_count"]):
        s = fmt.SECTION.unpack(data, h["header_size"] + k * fmt.SECTION.size)
        sec[s["id"]] = s["offset"]
    last = at = sec[fmt.SECTION_IDS["OPS"]]
    for _ in range(h["op_count"]):
        last = at
        at += fmt.OP.unpack(data, at)["size"]
    op_code = bytearray(data)
    op_code[last + fmt.OP.offsets["opcode"]] = 0xEE           # the last op: everything before it is read
    dtype = bytearray(data)
    dtype[sec[fmt.SECTION_IDS["TENSORS"]] + fmt.TENSOR.offsets["dtype"]] = 0xEE
    crc = bytearray(data)
    crc[-1] ^= 0x55
    huge = bytearray(data)
    struct.pack_into("<I", huge, fmt.HEADER.offsets["arena_size"], 64 << 20)
    return {"bad last op code": _fix_crc(op_code), "bad tensor dtype": _fix_crc(dtype), "bad crc": bytes(crc),
            "truncated": data[:len(data) * 2 // 3], "arena beyond the heap": _fix_crc(huge)}


DEVICE = """
import gc, micronn, struct, binascii
from array import array
try:
    import mnasan
except ImportError:
    mnasan = None
N = %d

def measure(cycle):
    for i in range(10):
        cycle()
    gc.collect()
    base = gc.mem_free()
    for i in range(N):
        cycle()
    gc.collect()
    return base - gc.mem_free()

HELD = []

def exact(b):
    # on the sanitizer build, a copy in a malloc block of its exact size
    if not mnasan:
        return b
    buf = mnasan.buffer(len(b))
    buf[:] = b
    HELD.append(buf)
    return buf

def release():
    # free the malloc blocks once no model uses them (LeakSanitizer reports any left)
    gc.collect()
    while HELD:
        mnasan.release(HELD.pop())

def report(name, kind, cycle, first=None):
    bad = [0]
    def checked():
        try:
            y = cycle()
        except Exception as e:
            bad[0] += 1
            print('error', name, kind, repr(e))
            return
        if first is not None and bytes(y) != first:
            bad[0] += 1
    print('cycles', name, '|', kind, '|', measure(checked), bad[0],
          binascii.hexlify(first).decode() if first is not None else '-')

def fails(name, kind, error, make):
    def cycle():
        try:
            make()
        except error as e:
            if not str(e).startswith('micronn: '):
                raise
            return
        raise AssertionError('no ' + error.__name__)
    report(name, kind, cycle)

def one(name, b, xb, float_in, corrupt):
    x = array('f', xb) if float_in else xb
    m = micronn.Model(b)
    # values in: floats, int16 pairs of bytes or int8 bytes
    n_in = len(xb) // 4 if float_in else len(xb) // 2 if m.inputs[0]['dtype'] == 'int16' else len(xb)
    need, n_out, float_out = m.arena_size, 1, m.output_dtype == 'float32'
    for d in m.output_shape:
        n_out *= d
    m = None
    if ASAN:
        bb, a = exact(b), mnasan.buffer(need)
        HELD.append(a)
        first = bytes(micronn.Model(bb, arena=a).run(x))
        def run_exact():
            m = micronn.Model(bb, arena=a)
            m.predict(x)
            m.reset()       # a model with state: back to the state of its first run
            return m.run(x)
        report(name, 'exact bounds', run_exact, first)
    else:
        first = bytes(micronn.Model(b).run(x))
        def own():
            m = micronn.Model(b)
            m.predict(x)
            m.reset()
            return m.run(x)
        report(name, 'own arena', own, first)
        out = array('f', first) if float_out else bytearray(len(first))
        def caller():
            m = micronn.Model(b, arena=bytearray(need))
            return m.run(x, out=out)
        report(name, 'caller arena, out=', caller, first)
        if micronn.Model(b).outputs[0]['dtype'] in ('int8', 'int16', 'float32'):  # not int32/int64 ones
            xf = array('f', [(i %% 7) * 0.5 - 1.5 for i in range(n_in)])
            yf = array('f', bytes(4 * n_out))
            def floats():
                m = micronn.Model(b)
                m.run(xf, out=yf)
                return yf
            report(name, "array('f') in, out=array('f')", floats, bytes(floats()))
    for what, c in corrupt.items():
        cc = exact(c)
        err = MemoryError if what == 'arena beyond the heap' else ValueError
        fails(name, what, err, lambda: micronn.Model(cc))
    bb = exact(b)
    fails(name, 'arena too small', ValueError, lambda: micronn.Model(bb, arena=bytearray(need - 1)))
    fails(name, 'arena read-only', TypeError, lambda: micronn.Model(bb, arena=bytes(need)))
    fails(name, 'arena a memoryview', ValueError, lambda: micronn.Model(bb, arena=memoryview(bytearray(need))))
    def over_blob():
        both = bytearray(b) + bytearray(need)
        micronn.Model(both, arena=both)
    fails(name, 'arena over the blob', ValueError, over_blob)
    m = micronn.Model(bb)
    wrong = bytes(n_in + 1)
    fails(name, 'input too long', ValueError, lambda: m.run(wrong))
    fails(name, 'floats too few', ValueError, lambda: m.run(array('f', [0.5])))
    fails(name, 'out= too short', ValueError, lambda: m.run(x, out=bytearray(1)))
    m = None
    if ASAN:
        release()

ASAN = mnasan is not None
f = open('heap.bin', 'rb')
(count,) = struct.unpack('<I', f.read(4))
micronn.kernel_variants(True)
for k in range(count):
    name = f.read(struct.unpack('<I', f.read(4))[0]).decode()
    b = f.read(struct.unpack('<I', f.read(4))[0])
    xb = f.read(struct.unpack('<I', f.read(4))[0])
    float_in = f.read(1) == b'f'
    corrupt = {}
    for j in range(struct.unpack('<I', f.read(4))[0]):
        what = f.read(struct.unpack('<I', f.read(4))[0]).decode()
        corrupt[what] = f.read(struct.unpack('<I', f.read(4))[0])
    one(name, b, xb, float_in, corrupt)
    print('variants', name, '|', ' '.join(sorted(micronn.kernel_variants(True))))
"""


def _write(path, cases: list[Case]) -> None:
    def chunk(b: bytes) -> bytes:
        return struct.pack("<I", len(b)) + b

    with open(path, "wb") as f:
        f.write(struct.pack("<I", len(cases)))
        for c in cases:
            f.write(chunk(c.name.encode()) + chunk(c.data) + chunk(c.x) + (b"f" if c.float_in else b"i"))
            bad = _corrupt(c.data)
            f.write(struct.pack("<I", len(bad)))
            for what, data in bad.items():
                f.write(chunk(what.encode()) + chunk(data))


@pytest.mark.parametrize("board", BUILDS)
def test_cycles_over_every_op_family(board, cases, tmp_path):
    """Every op family with and without scratch, float I/O, a caller's arena and
    the failures: no cycle kind leaks. The sanitizer build runs the blobs in
    exact-bounds buffers and the failures."""
    _write(tmp_path / "heap.bin", cases)
    out = run_firmware(board, DEVICE % CYCLES_EACH, tmp_path, timeout=600)
    rows, variants, errors = [], {}, []
    for line in out.splitlines():
        if line.startswith("cycles "):
            name, kind, rest = line[len("cycles "):].split(" | ")
            leak, bad, first = rest.split()
            rows.append((name, kind, int(leak), int(bad), first))
        elif line.startswith("variants "):
            name, seen = line[len("variants "):].split(" | ")
            variants[name] = set(seen.split())
        elif line.startswith("error "):
            errors.append(line)
    by_name = {c.name: c for c in cases}
    assert set(variants) == set(by_name), out[-2000:]
    kinds = {k for _, k, *_ in rows}
    print(f"\n{board}: {len(rows)} kinds of cycle x {CYCLES_EACH} over {len(cases)} blobs "
          f"({len(kinds)} kinds: {', '.join(sorted(kinds))}); largest heap loss "
          f"{max(r[2] for r in rows)} bytes")
    assert not errors, "\n".join(errors[:20])
    leaks = [r for r in rows if r[2] > STRAY]
    assert not leaks, "heap lost per kind of cycle:\n" + "\n".join(f"{n} / {k}: {v} bytes" for n, k, v, *_ in leaks)
    unstable = [r for r in rows if r[3]]
    assert not unstable, f"outputs changed between cycles or a cycle failed: {unstable}"
    for name, kind, _, _, first in rows:
        if kind in ("own arena", "exact bounds"):
            c = by_name[name]
            assert bytes.fromhex(first) == c.want, f"{name}: outputs differ from TFLite Micro's"
    # the cycles ran what they are meant to: every family, the fast and the scratch-less kernels
    with_scratch = set().union(*(v for n, v in variants.items() if "(scratch)" in n or n == "fc_graph"))
    without = set().union(*(v for n, v in variants.items() if "(no scratch)" in n))
    assert WITH_SCRATCH <= with_scratch and not (with_scratch & WITHOUT_SCRATCH), with_scratch
    assert WITHOUT_SCRATCH <= without, without
    for name, seen in variants.items():
        # a blob keeps the scratch MEAN needs, and kernels whose fast variant fits in it take it
        if "(no scratch)" in name and "MEAN" not in by_name[name].kinds:
            assert not (seen & WITH_SCRATCH), f"{name} ran {seen}"
    assert EVERY_FAMILY <= with_scratch | without
    assert len(kinds) >= (11 if board == "unix-asan" else 13)


@pytest.mark.parametrize("board", BUILDS)
def test_server_load_cycles(board, cases):
    """The inference server LOADs, RUNs and answers INFO over its framed link, good
    blobs and bad ones, round after round: its free heap (INFO) stays where it was."""
    rounds, warm = 12, 3
    bad = _corrupt(cases[0].data)
    free = []
    with UnixTarget(need_firmware(board)) as t:
        for r in range(rounds):
            for c in cases:
                t.link.load(c.data)
                y, _ = t.link.run(c.x)
                assert y == c.want, f"round {r}: {c.name} differs from TFLite Micro"
            for data in bad.values():
                with pytest.raises(DeviceError, match="micronn: "):
                    t.link.load(data)
            t.link.load(cases[0].data)
            free.append(t.link.info()["mem_free"])
    print(f"\n{board} server: {rounds} rounds of {len(cases)} LOADs + RUNs and {len(bad)} failed LOADs; "
          f"free heap after each: {free}")
    assert free[warm] - min(free[warm:]) <= STRAY, free
    assert free[warm] - free[-1] <= STRAY, free
