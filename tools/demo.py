"""`make demo`: pack TFLite Micro's hello_world model, run it on the firmware
and print its outputs beside TFLite Micro's (the reference) and sin(x)."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from micronn import inspect, pack
from micronn.inspector import describe
from micronn.reference import tflm_run
from micronn.run import quantize, run

ROOT = Path(__file__).resolve().parents[1]
TARGET = os.environ.get("MICRONN_TARGET", "unix")


def main() -> int:
    shared = Path(os.environ.get("MICRONN_SHARED", ROOT.parent / "shared"))
    model = shared / "models" / "tflm_hello_world_int8.tflite"
    if not model.exists():
        print(f"demo: {model} not found (set MICRONN_SHARED)", file=sys.stderr)
        return 1
    out = ROOT / "build" / "demo" / "hello_world.mnb"
    out.parent.mkdir(parents=True, exist_ok=True)
    data = pack(model, name="hello_world")
    out.write_bytes(data)
    print(f"== packed {model.name} -> {out.relative_to(ROOT)} ({len(data):,} bytes)\n")
    info = inspect(data)
    print(describe(info), "\n")

    xs = np.linspace(0, 2 * math.pi, 9, dtype=np.float32)
    xq = quantize(xs.reshape(-1, 1), info["input"]["scale"], info["input"]["zero_point"])
    got, times = run(data, xq, TARGET)
    want = tflm_run(model.read_bytes(), xq)
    s, z = info["output"]["scale"], info["output"]["zero_point"]
    print(f"== hello_world on the {TARGET} firmware vs TFLite Micro (time: the board's ticks; "
          "QEMU's clock is not the chip's)")
    print(f"{'x':>7} {'int8 in':>8} {'micronn':>8} {'TFLM':>6} {'micronn y':>10} {'sin(x)':>8}  time")
    for x, q, g, w, us in zip(xs, xq[:, 0], got[:, 0], want[:, 0], times, strict=True):
        mark = "" if g == w else "  MISMATCH"
        print(f"{x:7.3f} {q:8d} {g:8d} {w:6d} {s * (int(g) - z):10.4f} {math.sin(x):8.4f}  {us} us{mark}")
    print()
    # The whole input range, through the same command a user would type.
    rc = subprocess.call([sys.executable, "-m", "micronn.cli", "verify", str(out), "--reference", str(model),
                          "--target", TARGET])
    return rc or int(not np.array_equal(got, want))


if __name__ == "__main__":
    raise SystemExit(main())
