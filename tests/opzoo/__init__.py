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
    # keras input tensors (a list, one per input) -> output tensor (or a list of them: a
    # multi-output model; the blob's outputs are in the converted model's order)
    build: Callable
    inputs: tuple            # per input: its shape without the batch axis (several: a multi-input model)
    ops: str                 # TFLite op codes the converted model must contain (space separated)
    data: str = "normal"     # calibration/test data: "normal", "image" (uniform [0, 1)) or "positive"
    float_io: bool = False   # keep float input and output (the board quantizes)
    notes: dict = field(default_factory=dict)
    batch: int | None = None  # a fixed batch size of the Keras inputs (recurrent layers need 1)
    # "tflm", or "builtin_ref" for a model TFLite Micro cannot run at all (it lacks an
    # operator): desktop TFLite's reference kernels are then the oracle (micronn.reference)
    oracle: str = "tflm"
    # (name, calibration data: one float32 array per input) -> .tflite bytes, for a model that is
    # not a Keras model (a tf.Module with variables, a hand-written flatbuffer); build is then unused
    make_tflite: Callable | None = None
    # the model keeps state between calls: the samples run as one sequence, reset in the middle
    stateful: bool = False


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
    # several inputs get names that sort in their order (the converter orders a
    # model's inputs by name; tflite_order() maps them back)
    xs = [keras.Input(shape, batch_size=case.batch, name=input_name(k) if len(case.inputs) > 1 else None)
          for k, shape in enumerate(case.inputs)]
    y = case.build(xs)
    return keras.Model(xs if len(xs) > 1 else xs[0], y)


def input_name(k: int) -> str:
    """The Keras name of input k of a zoo model with several inputs."""
    return f"mio_in{k:02d}"


def tflite_order(name: str) -> list[int]:
    """For each input of the converted model, in its order (the blob's), the index of
    the case's input (the order of Case.inputs and of data())."""
    from micronn import tflite as tfl_reader

    case = cases()[name]
    if len(case.inputs) == 1:
        return [0]
    m = tfl_reader.load(tflite(name))
    order = []
    for i in m.inputs:
        hits = [k for k in range(len(case.inputs)) if input_name(k) in m.tensors[i].name]
        assert len(hits) == 1, f"{name}: cannot tell which input {m.tensors[i].name} is"
        order.append(hits[0])
    return order


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
    if cases()[name].make_tflite is not None:
        return cases()[name].make_tflite(name, calib)
    return keras_to_tflite(keras_model(name), calib[0] if len(calib) == 1 else calib,
                           float_io=cases()[name].float_io)
