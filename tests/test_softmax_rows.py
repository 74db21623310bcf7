"""Softmax over long rows (issue #17, item 3): the int32 sum of exponentials
passes 2^31 from 4,096 equal maxima on, which was signed overflow in
softmax.c. TFLite's sum wraps; micronn now wraps the same way with defined
arithmetic, and gives TFLite Micro's bytes wherever TFLite Micro gives any
(it stops at a gemmlowp assertion on rows whose exponent passes 31, e.g. 512
to 8,191 equal maxima; micronn returns the limit there, -128).

TFLite Micro runs in a child process, so that its abort is an outcome."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from micronn import pack  # noqa: E402
from micronn.convert import keras_to_tflite  # noqa: E402

from .conftest import ROOT, micropython  # noqa: E402

SIZES = (4096, 8192, 8193, 8300, 16385)

_TFLM = """
import sys, numpy as np
from tflite_micro.python.tflite_micro import runtime
it = runtime.Interpreter.from_bytes(open(sys.argv[1], 'rb').read(), arena_size=1 << 21)
x = np.load(sys.argv[2])
it.set_input(x, 0)
it.invoke()
np.save(sys.argv[3], np.array(it.get_output(0)))
"""


def _rows(n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(n)
    return {
        "equal": np.full((1, n), 5, np.int8),
        "random": rng.integers(-128, 128, (1, n)).astype(np.int8),
        "two_levels": np.where(rng.random((1, n)) < 0.5, 7, 6).astype(np.int8),
    }


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    import keras

    d = tmp_path_factory.mktemp("softmax")
    out = {}
    for n in SIZES:
        inp = keras.Input((n,))
        m = keras.Model(inp, keras.layers.Softmax()(inp))
        tfl = keras_to_tflite(m, np.random.default_rng(0).normal(0, 3, (4, n)).astype(np.float32))
        (d / f"m{n}.tflite").write_bytes(tfl)
        (d / f"m{n}.mnb").write_bytes(pack(tfl))
        out[n] = d
    return out


def _tflm(d, n: int, x: np.ndarray):
    """TFLite Micro's output, or None where it aborts."""
    np.save(d / "x.npy", x)
    p = subprocess.run([sys.executable, "-c", _TFLM, str(d / f"m{n}.tflite"), str(d / "x.npy"), str(d / "y.npy")],
                       capture_output=True, timeout=120)
    if p.returncode != 0:
        return None
    return np.load(d / "y.npy").reshape(x.shape)


def _micronn(d, n: int, rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    for k, x in rows.items():
        (d / f"x_{k}.bin").write_bytes(x.tobytes())
    out = micropython(f"""
import micronn
m = micronn.Model(open('m{n}.mnb', 'rb').read())
for k in {list(rows)!r}:
    print(k, bytes(m.run(open('x_' + k + '.bin', 'rb').read())).hex())
""", d)
    got = {}
    for line in out.splitlines():
        k, h = line.split()
        got[k] = np.frombuffer(bytes.fromhex(h), np.int8).reshape(rows[k].shape)
    return got


@pytest.mark.parametrize("n", SIZES)
def test_long_rows_match_tflite_micro(models, n):
    d = models[n]
    rows = _rows(n)
    got = _micronn(d, n, rows)
    compared = 0
    for k, x in rows.items():
        ref = _tflm(d, n, x)
        if ref is None:
            # Where TFLite Micro aborts, the quotient's limit: every output -128.
            assert (got[k] == -128).all(), k
            continue
        np.testing.assert_array_equal(got[k], ref, err_msg=f"{n} values, {k} row")
        compared += 1
    assert compared >= 1


def test_wrapped_sums_are_what_tflite_micro_gives(models):
    """The cases that show the wrap: 8,193 equal maxima sum to 2^19 after
    wrapping (every output 127 in TFLite Micro), 8,192 to 0."""
    for n, want in ((8193, 127), (8192, -128)):
        x = _rows(n)["equal"]
        assert (_tflm(models[n], n, x) == want).all()
        assert (_micronn(models[n], n, {"equal": x})["equal"] == want).all()


def test_softmax_kernel_has_no_undefined_behaviour(tmp_path):
    """The kernel alone under UBSan (signed overflow, shifts) on rows of up to
    20,000 equal and near-equal values."""
    src = tmp_path / "sm.c"
    src.write_text(r"""
#include <stdio.h>
#include <stdlib.h>
#include "mnn_kernels.h"
void (*mnn_poll_hook)(void);
uint32_t mnn_work_left = MNN_POLL_WORK;
uint32_t mnn_variant_calls[MNN_V_COUNT];
void mnn_poll(void) { mnn_work_left = MNN_POLL_WORK; }
int main(void) {
    static int8_t x[20000], y[20000];
    const uint32_t sizes[] = {300, 4095, 4096, 4097, 8191, 8192, 8193, 12000, 16384, 16385, 20000};
    for (unsigned s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        for (int v = 0; v < 3; v++) {
            for (uint32_t i = 0; i < sizes[s]; i++) {
                x[i] = (int8_t)(v == 0 ? 5 : v == 1 ? 5 - (i % 2) : -128 + (i % 7));
            }
            mnn_softmax_args_t a = {x, y, 1717986918, 21, -248, 1, sizes[s]};
            mnn_softmax_s8(&a);
            printf("%u %d %d\n", (unsigned)sizes[s], v, y[0]);
        }
    }
    return 0;
}
""")
    exe = tmp_path / "sm"
    kernels = ROOT / "cmodule" / "kernels"
    subprocess.run(["clang", "-O1", "-fsanitize=undefined", "-fno-sanitize-recover=undefined", f"-I{kernels}",
                    "-o", str(exe), str(src), str(kernels / "softmax.c")], check=True)
    p = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "runtime error" not in p.stderr, p.stderr
    assert len(p.stdout.splitlines()) == 33
