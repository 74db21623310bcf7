"""Host-side fuzzing: byte-level mutations of real .tflite files (the zoo's models,
and the shared models when present) through ``micronn.pack``, and of packed blobs
through ``micronn.inspect``. Every outcome must be a result or a MicronnError;
any other exception fails the test and names the mutation so that it reproduces.

Where a mutated model packs and the unix firmware is built, the board must load
the blob too: the host refuses what the loader refuses (only a MemoryError, an
arena beyond the unix heap, is the board's own business).

HOST_FUZZ_N mutations of .tflite files in all (default 4,000, about 30 s; `make
fuzz-host` runs far more), a quarter as many of blobs; HOST_FUZZ_SEED picks
another deterministic set (default 0).
"""

from __future__ import annotations

import json
import os
import random
import signal
import struct
import traceback
import zlib
from pathlib import Path

import numpy as np
import pytest

import micronn
from micronn import blob as blobmod
from micronn import format as fmt
from micronn import tflite
from micronn.errors import MicronnError
from micronn.inspector import describe, to_json
from micronn.targets import firmware_path

from .conftest import STRICT, missing, shared_dir

N = int(os.environ.get("HOST_FUZZ_N", "4000"))
SEED = int(os.environ.get("HOST_FUZZ_SEED", "0"))
TIMEOUT = 30        # seconds one mutation may take: longer is a failure too

# Zoo models that between them reach every lowering: dilation patterns, groups,
# depth multipliers, the conv+pool fusion, pools, MEAN, ADD and MUL with
# broadcasting, the lookup-table ops, CONCATENATION, PAD, the Conv1D and Dense
# reshapes, host-folded shape arithmetic, SOFTMAX and float boundaries.
ZOO_MODELS = ("conv_dilation_2_same", "dw_dilation_2x3_valid", "conv_groups", "dw_mult2_valid_s2", "conv_pool_same",
              "avgpool_3x3_s2", "gap_keepdims", "mean_1d", "residual_add", "multiply", "gates", "fire_modules",
              "zero_padding", "conv1d", "dense_3d_input", "head_softmax", "leaky_relu", "hard_silu", "float_io_cnn")

WORDS = (0, 1, 2, 3, 4, 255, 256, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)
FLOATS = (float("nan"), float("inf"), float("-inf"), 0.0, -1.0, 1e-45, 1e-30, 1e30, 3e38)


def _zoo_models() -> dict[str, bytes]:
    pytest.importorskip("keras")
    from micronn.convert import keras_to_tflite

    from .zoo import ZOO, build, seed

    out = {}
    for name in ZOO_MODELS:
        rng = np.random.default_rng(seed(name))
        x = rng.normal(size=(32,) + ZOO[name][1]).astype(np.float32)
        out[name] = keras_to_tflite(build(name), x, float_io=name.startswith("float_io"))
    return out


@pytest.fixture(scope="module")
def models() -> dict[str, bytes]:
    """name -> .tflite bytes: the shared models (when present) and the zoo's."""
    found = {}
    shared = shared_dir() / "models"
    if shared.is_dir():
        found.update({p.stem: p.read_bytes() for p in sorted(shared.glob("*.tflite"))})
    elif STRICT:
        missing(f"{shared} is absent (set MICRONN_SHARED to the shared data folder)")
    found.update(_zoo_models())
    return found


def _weights_mask(data: bytes) -> np.ndarray:
    """True on the bytes of large constant buffers: mutations there only change weights."""
    mask = np.zeros(len(data), bool)
    for t in tflite.load(data).tensors:
        if t.data is not None and len(t.data) >= 16:
            at = data.find(t.data)
            mask[at:at + len(t.data)] = True
    return mask


def _edits(data: bytes, pool: list[int], rng: random.Random) -> list[tuple[int, bytes]]:
    """One to three changes, mostly at offsets in pool: a byte, a 32-bit word or a float."""
    edits = []
    for _ in range(rng.choice((1, 1, 2, 3))):
        off = rng.choice(pool) if rng.random() < 0.9 else rng.randrange(len(data))
        r = rng.random()
        if r < 0.5:
            new = bytes([rng.choice((0, 1, 2, 0x7F, 0x80, 0xFF, data[off] ^ 1, data[off] ^ 0x80, rng.randrange(256)))])
        else:
            off -= off % 4
            if r < 0.8:
                old = int.from_bytes(data[off:off + 4].ljust(4, b"\0"), "little")
                word = rng.choice(WORDS + ((old + 1) & 0xFFFFFFFF, (old - 1) & 0xFFFFFFFF, (old * 2) & 0xFFFFFFFF))
                new = struct.pack("<I", word)
            else:
                new = struct.pack("<f", rng.choice(FLOATS))
        edits.append((off, new[:len(data) - off]))
    return edits


def _apply(data: bytes, edits) -> bytes:
    b = bytearray(data)
    for off, new in edits:
        b[off:off + len(new)] = new
    return bytes(b)


def _where(e: BaseException) -> str:
    frame = traceback.extract_tb(e.__traceback__)[-1]
    return f"{type(e).__name__} at {Path(frame.filename).name}:{frame.lineno}"


class _Slow(Exception):
    pass


def _on_alarm(signum, frame):
    raise _Slow(f"took more than {TIMEOUT} s")


@pytest.fixture
def alarm():
    """A per-mutation time limit (SIGALRM: pytest runs tests in the main thread)."""
    old = signal.signal(signal.SIGALRM, _on_alarm)
    yield lambda: signal.alarm(TIMEOUT)
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def _report(kind: str, failures: dict, total: int) -> str:
    lines = [f"{sum(len(v) for v in failures.values())} of {total} mutated {kind} escaped as something other "
             f"than MicronnError ({len(failures)} distinct):"]
    for sig, cases in failures.items():
        name, k, edits, msg = cases[0]
        lines.append(f"  {sig}: {msg}\n    {len(cases)}x, first: {name} mutation {k} (HOST_FUZZ_SEED={SEED}), "
                     f"edits {[(off, new.hex()) if new else f'cut to {off} bytes' for off, new in edits]}")
    lines.append("reproduce: data = bytearray(model); data[off:off + len(new)] = bytes.fromhex(new) for each edit")
    return "\n".join(lines)


def _inspect_all(data: bytes) -> None:
    """Everything the commands do with a blob on the host."""
    from micronn.run import io

    info = micronn.inspect(data)
    describe(info)
    json.dumps(to_json(info))
    io(data)


def test_mutated_tflite_packs_or_fails_cleanly(models, alarm, request):
    board = request.getfixturevalue("unix") if STRICT or firmware_path("unix").exists() else None
    per_model = max(N // len(models), 10)
    failures: dict[str, list] = {}
    packed = refused_by_board = 0
    for name, data in models.items():
        pool = np.flatnonzero(~_weights_mask(data)).tolist()
        for k in range(per_model):
            edits = _edits(data, pool, random.Random(f"{SEED}:{name}:{k}"))
            alarm()
            try:
                blob = micronn.pack(_apply(data, edits))
                _inspect_all(blob)
            except MicronnError:
                continue
            except Exception as e:      # noqa: BLE001 - anything else is the bug this test looks for
                failures.setdefault(_where(e), []).append((name, k, edits, f"{e}"[:200]))
                continue
            finally:
                signal.alarm(0)
            packed += 1
            if board is not None:
                try:
                    board.link.load(blob)
                except MicronnError as e:
                    if "MemoryError" not in str(e):
                        refused_by_board += 1
                        failures.setdefault("packed, but the board refuses it", []).append(
                            (name, k, edits, str(e)[:200]))
    total = per_model * len(models)
    print(f"\n{total} mutated .tflite files ({len(models)} models): {packed} packed"
          f"{', all loaded on the unix firmware' if board and not refused_by_board else ''}")
    if failures:
        pytest.fail(_report(".tflite files", failures, total))
    assert packed > total // 20       # the mutations are not all caught by the first check


def _blob_pool(data: bytes) -> list[int]:
    """Offsets of a blob outside its constants (any values by design) and its CRC."""
    h = fmt.HEADER.unpack(data)
    skip = set(range(fmt.HEADER.offsets["crc32"], fmt.HEADER.offsets["crc32"] + 4))
    for k in range(h["section_count"]):
        s = fmt.SECTION.unpack(data, fmt.HEADER.size + k * fmt.SECTION.size)
        if s["id"] == fmt.SECTION_IDS["CONST"]:
            skip.update(range(s["offset"], s["offset"] + s["size"]))
    return [i for i in range(len(data)) if i not in skip]


def _fix_crc(b: bytes) -> bytes:
    at = fmt.HEADER.offsets["crc32"]
    if len(b) < at + 4:
        return b
    b = bytearray(b)
    struct.pack_into("<I", b, at, zlib.crc32(b[at + 4:]))
    return bytes(b)


def test_mutated_blobs_inspect_or_fail_cleanly(models, alarm):
    """Header, tables and metadata changed with the CRC fixed up, so that the
    structure checks, not the checksum, must catch them; one in ten also cut short."""
    blobs = {name: micronn.pack(data) for name, data in models.items()}
    per_blob = max(N // 4 // len(blobs), 10)
    failures: dict[str, list] = {}
    fine = 0
    for name, data in blobs.items():
        pool = _blob_pool(data)
        for k in range(per_blob):
            rng = random.Random(f"{SEED}:{name}:blob:{k}")
            edits = _edits(data, pool, rng)
            mutant = _apply(data, edits)
            if rng.random() < 0.1:
                cut = rng.randrange(len(mutant))
                mutant, edits = mutant[:cut], edits + [(cut, None)]
            alarm()
            try:
                _inspect_all(_fix_crc(mutant))
                fine += 1
            except MicronnError:
                pass
            except Exception as e:      # noqa: BLE001 - anything else is the bug this test looks for
                failures.setdefault(_where(e), []).append((name, k, edits, f"{e}"[:200]))
            finally:
                signal.alarm(0)
    total = per_blob * len(blobs)
    print(f"\n{total} mutated blobs: {fine} inspected, {total - fine - sum(map(len, failures.values()))} refused")
    if failures:
        pytest.fail(_report("blobs", failures, total))
    assert blobmod.read(next(iter(blobs.values())))     # the unmutated blobs read, of course
