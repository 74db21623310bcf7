"""`make test`'s first step: the test data and the packages the suite needs are there.

    python3 tools/check_test_env.py --data   # MICRONN_SHARED (standard library only, before setup)
    .venv/bin/python tools/check_test_env.py # the data, then the packages (PACKAGES), Fashion-MNIST

A missing folder or package is a setup error, not a reason for tests to skip: this
stops `make test` at once with one line naming what is missing, exit status 1.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("tensorflow", "keras", "tflite_micro", "tf_keras", "tensorflow_model_optimization", "sklearn", "matplotlib")


def check_data(shared: Path) -> str | None:
    """The first thing missing from the shared data folder, or None."""
    if not shared.is_dir():
        return f"MICRONN_SHARED={shared} is missing: make test needs the shared test data (CMSIS-NN vectors, " \
               f"real models); point MICRONN_SHARED at it"
    index = shared / "vectors" / "cmsis-nn" / "index.json"
    if not index.is_file():
        return f"MICRONN_SHARED={shared} has no {index.relative_to(shared)}: the CMSIS-NN vectors are missing"
    try:
        cases = json.loads(index.read_text())["cases"]
    except (OSError, ValueError, KeyError) as e:
        return f"{index} is unreadable: {e}"
    absent = [c["npz"] for c in cases if not (index.parent / c["npz"]).is_file()]
    absent += [c["json"] for c in cases if not (index.parent / c["json"]).is_file()]
    if absent:
        return f"{index.parent} lacks {len(absent)} files index.json lists: {', '.join(absent[:3])}"
    if not any((shared / "models").glob("*.tflite")):
        return f"MICRONN_SHARED={shared} has no models/*.tflite: the real models are missing"
    return None


def check_packages() -> str | None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # TensorFlow's C++ logging writes to file descriptor 2 while it loads: silence it.
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        for name in PACKAGES:
            try:
                importlib.import_module(name)
            except Exception as e:      # an ImportError, or a broken install failing while it loads
                return f"cannot import {name} ({type(e).__name__}: {e}): run make setup"
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    return None


# examples/course reads Fashion-MNIST from Debian's dataset-fashion-mnist (tools/setup-apt.sh installs it).
FASHION_MNIST = Path(os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"))


def check_fashion_mnist() -> str | None:
    """The Fashion-MNIST training images the course example needs, or what is missing."""
    if any(FASHION_MNIST.glob("train-images-idx3-ubyte*")):
        return None
    return (f"no Fashion-MNIST in {FASHION_MNIST} (examples/course needs it): apt-get install "
            "dataset-fashion-mnist, or run make setup")


def main(argv: list[str]) -> int:
    shared = Path(os.environ.get("MICRONN_SHARED", ROOT.parent / "shared"))
    problem = check_data(shared)
    if problem is None and "--data" not in argv:
        problem = check_packages() or check_fashion_mnist()
    if problem:
        print(f"make test: error: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
