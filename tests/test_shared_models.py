"""The real models in ../shared/models: bit-exact with TFLite Micro on the unix
firmware (its built-in module, and the native module on firmware without it), an
arena close to the lower bound, and less RAM than TFLite Micro."""

from __future__ import annotations

import numpy as np
import pytest

from micronn import inspect, pack
from micronn.reference import tflm_arena_total, tflm_run
from micronn.run import sample_inputs

from .conftest import SUMMARY, need_shared

# Every model of the shared folder, by name: a model added there fails
# test_every_shared_model_is_tested until it is listed here.
NAMES = ["mlperf_tiny_ic_resnet8", "mlperf_tiny_kws_dscnn", "tflm_hello_world_int8", "tflm_micro_speech_int8",
         "tflm_person_detection_int8"]
TABLE: dict[str, tuple] = {}


def test_every_shared_model_is_tested():
    found = sorted(p.stem for p in need_shared("models").glob("*.tflite"))
    assert found == sorted(NAMES), (f"untested: {sorted(set(found) - set(NAMES))}, "
                                    f"missing: {sorted(set(NAMES) - set(found))}")


@pytest.mark.parametrize("name", NAMES)
def test_shared_model(unix_impl, name, request):
    unix = unix_impl        # the built-in module, then the native one (micronn-x64.mpy)
    path = need_shared("models", f"{name}.tflite")
    data = path.read_bytes()
    blob = pack(data, name=path.stem)
    info = inspect(blob)
    x = sample_inputs(blob, samples=20, seed=7)
    want = tflm_run(data, x)
    board = unix.link.load(blob)
    got = np.stack([np.frombuffer(unix.link.run(s.tobytes())[0], np.int8) for s in x]).reshape(want.shape)
    assert np.array_equal(got, want), f"{np.count_nonzero(got != want)} of {got.size} values differ"
    # The inputs reach the outputs: different samples, different output rows.
    rows = {r.tobytes() for r in got.reshape(len(x), -1)}
    assert len(x) >= 20 and len(rows) >= len(x) // 4, f"{len(rows)} distinct output rows of {len(x)}"

    arena, lower = info["arena_bytes"], info["arena_lower_bound"]
    assert arena <= 1.10 * lower, f"arena {arena} is more than 110% of the lower bound {lower}"
    tflm = tflm_arena_total(data)
    assert board["ram_size"] < tflm, f"micronn needs {board['ram_size']} bytes of RAM, TFLite Micro {tflm}"
    TABLE[path.stem] = (info["blob_bytes"], len(data), lower, arena, board["ram_size"], tflm)
    SUMMARY.append(f"shared model {name} ({request.node.callspec.params['unix_impl']} module): {len(x)} samples "
                   f"bit-exact with TFLite Micro, {len(rows)} distinct outputs")


def test_print_memory_table():
    if not TABLE:
        pytest.skip("no shared model ran")
    print(f"\n{'model':<34} {'blob':>8} {'tflite':>8} {'LB':>7} {'arena':>7} {'RAM':>7} {'TFLM':>7}")
    for name, row in TABLE.items():
        print(f"{name:<34} " + " ".join(f"{v:>{w},}" for v, w in zip(row, (8, 8, 7, 7, 7, 7), strict=True)))
