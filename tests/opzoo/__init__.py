"""The operator zoo of issue 18: generated Keras models for the operators added
after the first thirty, one module per operator group (``tests/opzoo/*.py``).

Each group module defines ``MODELS``, a dict from a model name (unique across
groups) to a ``Case``. ``cases()`` gathers them; ``keras_model(name)`` builds a
model with weights drawn from the name; ``tflite(name)`` converts it once per
process with calibration data from ``data(name, ...)``. tests/test_op_zoo.py
runs every case bit-exact against TFLite Micro on unix, qemu-m3 and qemu-m4.
"""

from __future__ import annotations

import functools
import importlib
import os
import pkgutil
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@dataclass(frozen=True)
class Case:
    # keras input tensors (a list, one per input) -> output tensor (or a list of them)
    build: Callable
    inputs: tuple            # per input: its shape without the batch axis
    ops: str                 # TFLite op codes the converted model must contain (space separated)
    data: str = "normal"     # calibration/test data: "normal", "image" (uniform [0, 1)) or "positive"
    float_io: bool = False   # keep float input and output (the board quantizes)
    notes: dict = field(default_factory=dict)


def seed(name: str) -> int:
    return zlib.crc32(name.encode())


@functools.cache
def cases() -> dict[str, Case]:
    out: dict[str, Case] = {}
    for mod in sorted(m.name for m in pkgutil.iter_modules(__path__)):
        group = importlib.import_module(f"{__name__}.{mod}")
        for name, case in getattr(group, "MODELS", {}).items():
            assert name not in out, f"model name {name} used twice (tests/opzoo/{mod}.py)"
            out[name] = case
    return out


def keras_model(name: str):
    import keras

    case = cases()[name]
    keras.utils.set_random_seed(seed(name) % (1 << 31))
    xs = [keras.Input(shape) for shape in case.inputs]
    y = case.build(xs)
    return keras.Model(xs if len(xs) > 1 else xs[0], y)


def data(name: str, n: int, salt: int = 0) -> list[np.ndarray]:
    """n samples per input (float32), drawn from the case's distribution."""
    case = cases()[name]
    rng = np.random.default_rng(seed(name) + salt)
    out = []
    for shape in case.inputs:
        if case.data == "image":
            x = rng.uniform(size=(n, *shape))
        elif case.data == "positive":
            x = rng.uniform(0.05, 3, size=(n, *shape))
        else:
            x = rng.normal(size=(n, *shape)) * rng.uniform(0.5, 3)
        out.append(x.astype(np.float32))
    return out


@functools.cache
def tflite(name: str) -> bytes:
    from micronn.convert import keras_to_tflite

    calib = data(name, 64)
    return keras_to_tflite(keras_model(name), calib[0] if len(calib) == 1 else calib,
                           float_io=cases()[name].float_io)
