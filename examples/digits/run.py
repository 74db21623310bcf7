"""digits: scikit-learn's 8x8 digits, a small CNN trained with Keras, packed from the
.keras file, evaluated on an emulated Cortex-M4 board (qemu-m4) against TFLite Micro,
and classify.py run on the board itself (micronn exec).

    .venv/bin/python examples/digits/run.py [--quick] [--out DIR]     (make example NAME=digits)
"""

from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import (  # noqa: E402
    BOARD,
    Failed,
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
    sh,
    shown,
    split,
    tflm_outputs,
    to_tflite,
)

HERE = Path(__file__).resolve().parent


def train(a, x_train, y_train, x_test, y_test):
    """Conv2D 8@3x3 (relu, valid) -> MaxPool 2x2 -> Dense 10 (softmax), on 8x8x1 images."""
    k = keras()
    L = k.layers
    with quiet():                   # TensorFlow's device probing on stderr
        model = k.Sequential([L.Input((8, 8, 1)), L.Conv2D(8, 3, activation="relu"), L.MaxPooling2D(2),
                              L.Flatten(), L.Dense(10, activation="softmax")], name="digits")
    model.compile(optimizer=k.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    epochs = 12 if a.quick else 60
    print(f"training {epochs} epochs on {len(x_train)} images ({model.count_params():,} parameters)", flush=True)
    model.fit(x_train, y_train, epochs=epochs, batch_size=32, verbose=0)
    _, acc = model.evaluate(x_test, y_test, verbose=0)
    print(f"float32 Keras accuracy on all {len(x_test)} test images: {acc:.2%}")
    return model


def body(a) -> int:
    out = a.out
    heading("data: scikit-learn's 8x8 digits (load_digits), pixels scaled to [0, 1]")
    x, y = digits()
    x_train, y_train, x_test, y_test = split(x, y)
    print(f"{len(x)} images: {len(x_train)} to train, {len(x_test)} to test")

    heading("train a small CNN with Keras")
    model = train(a, x_train, y_train, x_test, y_test)
    keras_file, calib = out / "digits.keras", out / "calib.npy"
    model.save(keras_file)
    np.save(calib, x_train[:200])               # representative inputs for the int8 scales
    labels = out / "labels.txt"
    labels.write_text("".join(f"{d}\n" for d in range(10)))
    n = 64 if a.quick else len(x_test)
    test = out / "test.npz"
    np.savez(test, x=x_test[:n], y=y_test[:n])
    np.save(out / "test_x.npy", x_test[:n])
    print(f"wrote {shown(keras_file)}, {shown(calib)} (200 training images), {shown(labels)}, "
          f"{shown(test)} ({n} test images)")

    heading("pack it: Keras -> int8 (calibrated) -> blob")
    blob_file = out / "digits.mnb"
    micronn("pack", keras_file, "--calib", calib, "--labels", labels, "-o", blob_file)
    micronn("inspect", blob_file)

    heading("TFLite Micro's side: the same int8 .tflite, run on the host")
    tflite_file = out / "digits.tflite"
    tflite = to_tflite(keras_file, calib, tflite_file)
    from micronn.blob import read

    blob = blob_file.read_bytes()
    if read(blob)["meta"].get("SOURCE_SHA256") == hashlib.sha256(tflite).digest():
        print(f"{shown(blob_file)} was packed from exactly these bytes (the blob records their SHA-256)")
    else:       # the converter gave other bytes this time: pack the ones TFLite Micro runs
        print("the converter's output differs from the one `micronn pack` made; packing this .tflite instead")
        micronn("pack", tflite_file, "--labels", labels, "--name", "digits", "-o", blob_file)
        blob = blob_file.read_bytes()
    want = tflm_outputs(tflite, blob, x_test[:n])
    tflm_pred = want.reshape(n, -1).argmax(axis=1)
    tflm_correct = correct(want, y_test[:n])
    print(f"TFLite Micro: {tflm_correct} of {n} right")

    heading("on the board: a qemu-m4 in the background with the model and a few digits in its files")
    k = 12 if a.quick else 100
    (out / "samples.bin").write_bytes(read_input(blob, x_test[:k]))
    (out / "labels.bin").write_bytes(bytes(int(v) for v in y_test[:k]))
    from micronn.sessions import find

    if find("digits"):          # left running by an earlier run that was killed
        micronn("board", "stop", "digits")
    port = micronn("board", "start", "--target", BOARD, "--name", "digits", capture=True).stdout.strip()
    try:
        micronn("deploy", blob_file, "--port", "digits")
        sh("mpremote", "connect", port, "cp", out / "samples.bin", ":samples.bin", "+",
           "cp", out / "labels.bin", ":labels.bin")
        heading("classify.py runs on the board: label and score of each digit")
        said = micronn("exec", HERE / "classify.py", "--port", "digits", capture=True).stdout
        heading(f"accuracy of the model on the board over {n} test digits, and its outputs for TFLite Micro's")
        micronn("eval", ":digits.mnb", "--data", test, "--port", "digits")
        board_y = board_outputs(":digits.mnb", out / "test_x.npy", out / "board_y.npy", port="digits")
    finally:
        micronn("board", "stop", "digits")
    on_board = re.findall(r"^sample +(\d+): (\S+) score", said, re.M)
    if [int(i) for i, _ in on_board] != list(range(k)):
        raise Failed(f"classify.py printed {len(on_board)} samples, not {k}")
    differ = [int(i) for i, label in on_board if label != str(tflm_pred[int(i)])]
    print(f"classify.py's labels {'equal' if not differ else 'DIFFER from'} TFLite Micro's top-1 on its {k} "
          f"digits{'' if not differ else ': samples ' + ', '.join(map(str, differ))}")
    exact = compare(board_y, want)

    heading("int4 weights: half the weight bytes, and what they cost in accuracy (micronn report)")
    micronn("report", keras_file, "--calib", calib, "--data", test, "--weights", "int4", "-o",
            out / "report-int4.html")
    blob4 = out / "digits-int4.mnb"
    micronn("pack", keras_file, "--calib", calib, "--labels", labels, "--weights", "int4", "-o", blob4,
            "--keep-tflite", out / "digits-int4.tflite")
    micronn("verify", blob4, "--reference", out / "digits-int4.tflite", "--target", BOARD, "--samples", "16")

    heading("result")
    return finish(correct(board_y, y_test[:n]), tflm_correct, n, exact and not differ)


def read_input(blob: bytes, x: np.ndarray) -> bytes:
    """The int8 bytes the board's model takes for images x (quantized as micronn eval does)."""
    from micronn.run import prepare_input

    return np.ascontiguousarray(prepare_input(blob, x)).tobytes()


if __name__ == "__main__":
    args = options("digits", __doc__.splitlines()[0])
    raise SystemExit(main(body, args))
