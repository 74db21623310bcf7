"""cifar10-cmsis: the network of CMSIS-NN's CIFAR-10 example (arm_nnexamples_cifar10),
trained briefly with Keras on a stand-in data set (CIFAR-10 itself cannot be downloaded
here), packed, checked against TFLite Micro on qemu-m4, benchmarked in instructions per
inference, and checked for fit on the STM32 and ESP32 boards.

    .venv/bin/python examples/cifar10-cmsis/run.py [--quick] [--out DIR]     (make example NAME=cifar10-cmsis)
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

# Boards whose fit is checked (`micronn inspect --board`); quick mode takes the first of each family.
STM32 = ["stm32:NUCLEO_F446RE", "stm32:B_L475E_IOT01A", "stm32:NUCLEO_H743ZI"]
ESP32 = ["esp32:ESP32_GENERIC", "esp32:ESP32_GENERIC_S3", "esp32:ESP32_GENERIC_C3"]


def colour_digits(x: np.ndarray, rng: np.random.Generator, most_shift: int) -> np.ndarray:
    """The stand-in for CIFAR-10: 8x8 digits upsampled to 32x32, moved by up to
    ``most_shift`` pixels, drawn in a random colour on a random darker one (every
    channel 0.35 to 0.55 brighter, so the digit stays visible) with a little noise:
    RGB in [0, 1]."""
    v = upsample(x, 32)
    if most_shift:
        v = shift(v, rng, most_shift)
    v = np.clip(v, 0, 1)
    bg = rng.uniform(0, 0.45, size=(len(x), 1, 1, 3)).astype(np.float32)
    fg = bg + rng.uniform(0.35, 0.55, size=bg.shape).astype(np.float32)
    img = bg * (1 - v) + fg * v + rng.normal(0, 0.04, size=v.shape[:3] + (3,)).astype(np.float32)
    return np.clip(img, 0, 1).astype(np.float32)


def network(k):
    """CMSIS-NN's CIFAR-10 example, layer for layer (arm_nnexamples_cifar10_parameter.h):
    conv 32@5x5 (pad 2) relu, max pool 3x3/2; conv 16@5x5 relu, max pool 3x3/2;
    conv 32@5x5 relu, max pool 3x3/2; fully connected 4*4*32 -> 10; softmax."""
    L = k.layers
    return k.Sequential([
        L.Input((32, 32, 3)),
        L.Conv2D(32, 5, padding="same", activation="relu"), L.MaxPooling2D(3, strides=2, padding="same"),
        L.Conv2D(16, 5, padding="same", activation="relu"), L.MaxPooling2D(3, strides=2, padding="same"),
        L.Conv2D(32, 5, padding="same", activation="relu"), L.MaxPooling2D(3, strides=2, padding="same"),
        L.Flatten(), L.Dense(10), L.Softmax(),
    ], name="cifar10_cmsis")


def body(a) -> int:
    out = a.out
    rng = np.random.default_rng(0)
    heading("data: a stand-in for CIFAR-10 (not CIFAR-10: it cannot be downloaded here)")
    x, y = digits()
    x_train, y_train, x_test, y_test = split(x, y)
    copies = 1 if a.quick else 6
    train_idx = np.tile(np.arange(len(x_train)), copies)
    xt = colour_digits(x_train[train_idx], rng, 3)
    yt = y_train[train_idx]
    xs = colour_digits(x_test, np.random.default_rng(1), 0)
    print("colour digits: scikit-learn's 8x8 digits upsampled to 32x32x3, each in a random colour on a random"
          " darker\nbackground, with noise; 10 classes (the digit). Training images are also shifted by up to 3"
          " pixels.")
    print(f"{len(xt)} training images ({copies} colouring{'s' if copies > 1 else ''} of {len(x_train)} digits), "
          f"{len(xs)} test images of held-out digits")

    heading("train CMSIS-NN's CIFAR-10 network with Keras")
    k = keras()
    with quiet():                   # TensorFlow's device probing on stderr
        model = network(k)
    model.compile(optimizer=k.optimizers.Adam(0.003), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    epochs = 3 if a.quick else 12
    print(f"{model.count_params():,} parameters; training {epochs} epochs", flush=True)
    model.fit(xt, yt, epochs=epochs, batch_size=32, verbose=0)
    print(f"float32 Keras accuracy on all {len(xs)} test images: {model.evaluate(xs, y_test, verbose=0)[1]:.2%}")
    keras_file, calib = out / "cifar10_cmsis.keras", out / "calib.npy"
    model.save(keras_file)
    np.save(calib, xt[:100])
    n = 32 if a.quick else len(xs)
    test = out / "test.npz"
    np.savez(test, x=xs[:n], y=y_test[:n])
    np.save(out / "test_x.npy", xs[:n])
    labels = out / "labels.txt"
    labels.write_text("".join(f"digit {d}\n" for d in range(10)))
    print(f"wrote {shown(keras_file)}, {shown(calib)} (100 training images), {shown(test)} ({n} test images)")

    heading("convert and pack (`micronn pack cifar10_cmsis.keras --calib calib.npy` does both in one step;"
            " here the .tflite is kept for TFLite Micro)")
    tflite_file, blob_file = out / "cifar10_cmsis.tflite", out / "cifar10_cmsis.mnb"
    tflite = to_tflite(keras_file, calib, tflite_file)
    micronn("pack", tflite_file, "--name", "cifar10_cmsis", "--labels", labels, "-o", blob_file)
    micronn("inspect", blob_file)
    blob = blob_file.read_bytes()
    from micronn.run import prepare_input

    # bench's input: the first test image as the int8 the model takes (float input would
    # add the board's quantizing of 3,072 values to every run())
    np.save(out / "bench_x.npy", prepare_input(blob, xs[:1]))

    heading(f"accuracy on the board ({BOARD}) and TFLite Micro's, on the same {n} test images")
    want = tflm_outputs(tflite, blob, xs[:n])
    tflm_correct = correct(want, y_test[:n])
    print(f"TFLite Micro on the host: {tflm_correct} of {n} right")
    board_y = board_outputs(blob_file, out / "test_x.npy", out / "board_y.npy")
    print(f"the board: {correct(board_y, y_test[:n])} of {n} right")
    exact = compare(board_y, want)

    heading(f"speed: instructions per inference on {BOARD} (qemu -icount: one instruction, one tick)")
    if a.quick:
        print("quick mode: skipped (under -icount the board runs the network several times at a fraction of its"
              " speed);\nthe full run counts them with:")
        print(f"    micronn bench {shown(blob_file)} --target {BOARD} --input {shown(out / 'bench_x.npy')}")
    else:
        micronn("bench", blob_file, "--target", BOARD, "--input", out / "bench_x.npy")

    heading("will it fit? the STM32 and ESP32 boards (flash and heap for each way of deploying it)")
    for board in [STM32[0], ESP32[0]] if a.quick else STM32 + ESP32:
        micronn("inspect", blob_file, "--board", board)
        print()

    heading("result")
    return finish(correct(board_y, y_test[:n]), tflm_correct, n, exact)


if __name__ == "__main__":
    args = options("cifar10-cmsis", __doc__.splitlines()[0])
    raise SystemExit(main(body, args))
