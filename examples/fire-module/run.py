"""fire-module: a small SqueezeNet-style network built from fire modules (a 1x1
"squeeze" convolution feeding a 1x1 and a 3x3 "expand" convolution whose outputs are
concatenated), trained with Keras on digits upsampled to 32x32, packed, and run on
qemu-m4 against TFLite Micro.

    .venv/bin/python examples/fire-module/run.py [--quick] [--out DIR]     (make example NAME=fire-module)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import (  # noqa: E402
    BOARD,
    board_outputs,
    compare,
    correct,
    digits,
    finish,
    heading,
    keras,
    main,
    micronn,
    options,
    quiet,
    shift,
    shown,
    split,
    tflm_outputs,
    to_tflite,
    upsample,
)


def fire(k, x, squeeze: int, expand: int):
    """SqueezeNet's fire module: squeeze to ``squeeze`` channels (1x1, relu), then
    ``expand`` 1x1 and ``expand`` 3x3 filters (relu) side by side: 2 * expand channels."""
    L = k.layers
    s = L.Conv2D(squeeze, 1, activation="relu")(x)
    return L.Concatenate()([L.Conv2D(expand, 1, activation="relu")(s),
                            L.Conv2D(expand, 3, padding="same", activation="relu")(s)])


def network(k):
    """conv 16@3x3 relu, max pool 2x2 -> fire(8, 16) -> fire(8, 16) -> max pool 2x2 ->
    fire(12, 24) -> max pool 2x2 -> dense 10 -> softmax. 32x32x1 in, 10 classes out.
    SqueezeNet itself ends in a 1x1 convolution and a global average pool; on these
    digits that head stayed at chance for the first epochs, so this one is a dense layer."""
    L = k.layers
    inp = L.Input((32, 32, 1))
    x = L.MaxPooling2D(2)(L.Conv2D(16, 3, padding="same", activation="relu")(inp))
    x = fire(k, fire(k, x, 8, 16), 8, 16)
    x = fire(k, L.MaxPooling2D(2)(x), 12, 24)
    x = L.Dense(10)(L.Flatten()(L.MaxPooling2D(2)(x)))
    return k.Model(inp, L.Softmax()(x), name="fire_modules")


def quantization_report(keras_file: Path, calib: Path, test: Path, out: Path) -> None:
    """The per-layer quantization report (`micronn report`, docs/quantization.md): every layer of
    the float Keras model against the int8 model as TFLite Micro runs it, on the test images
    (at most 200), the layers that cost the most named; the page with each layer's histogram
    goes to OUT/report.html (the PNGs to OUT/report-png/)."""
    heading("per-layer quantization report: the float model against the int8 one, layer by layer")
    micronn("report", keras_file, "--calib", calib, "--data", test, "-o", out / "report.html")


def body(a) -> int:
    out = a.out
    rng = np.random.default_rng(0)
    heading("data: scikit-learn's 8x8 digits upsampled to 32x32 (bilinear), one channel in [0, 1]")
    x, y = digits()
    x_train, y_train, x_test, y_test = split(x, y)
    copies = 1 if a.quick else 6
    idx = np.tile(np.arange(len(x_train)), copies)
    xt = np.clip(shift(upsample(x_train[idx], 32), rng, 3), 0, 1)
    yt = y_train[idx]
    xs = np.clip(upsample(x_test, 32), 0, 1)
    print(f"{len(xt)} training images ({copies} cop{'ies' if copies > 1 else 'y'} of {len(x_train)} digits, "
          f"each shifted by up to 3 pixels), {len(xs)} test images of held-out digits")

    heading("train the fire-module network with Keras")
    k = keras()
    with quiet():                   # TensorFlow's device probing on stderr
        model = network(k)
    model.compile(optimizer=k.optimizers.Adam(0.003), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    epochs = 3 if a.quick else 15
    print(f"{model.count_params():,} parameters; training {epochs} epochs", flush=True)
    model.fit(xt, yt, epochs=epochs, batch_size=32, verbose=0)
    print(f"float32 Keras accuracy on all {len(xs)} test images: {model.evaluate(xs, y_test, verbose=0)[1]:.2%}")
    keras_file, calib = out / "fire_modules.keras", out / "calib.npy"
    model.save(keras_file)
    np.save(calib, xt[:200])
    n = 48 if a.quick else len(xs)
    test = out / "test.npz"
    np.savez(test, x=xs[:n], y=y_test[:n])
    np.save(out / "test_x.npy", xs[:n])
    print(f"wrote {shown(keras_file)}, {shown(calib)} (200 training images), {shown(test)} ({n} test images)")

    heading("convert and pack (`micronn pack fire_modules.keras --calib calib.npy` does both in one step;"
            " here the .tflite is kept for TFLite Micro)")
    tflite_file, blob_file = out / "fire_modules.tflite", out / "fire_modules.mnb"
    tflite = to_tflite(keras_file, calib, tflite_file)
    micronn("pack", tflite_file, "--name", "fire_modules", "-o", blob_file)
    micronn("inspect", blob_file)
    blob = blob_file.read_bytes()

    quantization_report(keras_file, calib, test, out)

    heading(f"accuracy on the board ({BOARD}) and TFLite Micro's, on the same {n} test images")
    want = tflm_outputs(tflite, blob, xs[:n])
    tflm_correct = correct(want, y_test[:n])
    print(f"TFLite Micro on the host: {tflm_correct} of {n} right")
    board_y = board_outputs(blob_file, out / "test_x.npy", out / "board_y.npy")
    print(f"the board: {correct(board_y, y_test[:n])} of {n} right")
    exact = compare(board_y, want)

    heading("result")
    return finish(correct(board_y, y_test[:n]), tflm_correct, n, exact)


if __name__ == "__main__":
    args = options("fire-module", __doc__.splitlines()[0])
    raise SystemExit(main(body, args))
