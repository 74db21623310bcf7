"""The real models in ../shared/models: bit-exact with TFLite Micro on the unix
firmware, an arena close to the lower bound, and less RAM than TFLite Micro."""

from __future__ import annotations

import numpy as np
import pytest

from micronn import inspect, pack
from micronn.reference import tflm_arena_total, tflm_run
from micronn.run import sample_inputs

from .conftest import shared_dir

MODELS = sorted((shared_dir() / "models").glob("*.tflite")) if (shared_dir() / "models").exists() else []
TABLE: dict[str, tuple] = {}


@pytest.mark.skipif(not MODELS, reason=f"no models under {shared_dir() / 'models'}")
@pytest.mark.parametrize("path", MODELS, ids=[p.stem for p in MODELS])
def test_shared_model(unix, path):
    data = path.read_bytes()
    blob = pack(data, name=path.stem)
    info = inspect(blob)
    x = sample_inputs(blob, samples=20, seed=7)
    want = tflm_run(data, x)
    board = unix.link.load(blob)
    got = np.stack([np.frombuffer(unix.link.run(s.tobytes())[0], np.int8) for s in x]).reshape(want.shape)
    assert np.array_equal(got, want), f"{np.count_nonzero(got != want)} of {got.size} values differ"
    assert len(x) >= 20 and len(np.unique(got)) > 1

    arena, lower = info["arena_bytes"], info["arena_lower_bound"]
    assert arena <= 1.10 * lower, f"arena {arena} is more than 110% of the lower bound {lower}"
    tflm = tflm_arena_total(data)
    assert board["ram_size"] < tflm, f"micronn needs {board['ram_size']} bytes of RAM, TFLite Micro {tflm}"
    TABLE[path.stem] = (info["blob_bytes"], len(data), lower, arena, board["ram_size"], tflm)


def test_print_memory_table():
    if not TABLE:
        pytest.skip("no shared model ran")
    print(f"\n{'model':<34} {'blob':>8} {'tflite':>8} {'LB':>7} {'arena':>7} {'RAM':>7} {'TFLM':>7}")
    for name, row in TABLE.items():
        print(f"{name:<34} " + " ".join(f"{v:>{w},}" for v, w in zip(row, (8, 8, 7, 7, 7, 7), strict=True)))
