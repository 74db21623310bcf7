"""The embedded-ML course flow, on Fashion-MNIST, with micronn.

Train a small CNN (Conv2D 12@3x3 + MaxPool + Dense, 20,410 parameters), quantize it
to int8 twice (post-training quantization with TFLite's converter; quantization-aware
training with tensorflow-model-optimization), pack both with ``micronn pack``, stream
the test images over the serial link to a QEMU STM32F405 board (``micronn eval``),
check the board's outputs against TFLite Micro's byte for byte (``micronn verify``),
count instructions per inference (``micronn bench``) and ask whether the model fits a
real board, the B-L475E-IOT01A Discovery kit (``micronn inspect --board``).

    .venv/bin/python examples/course/run.py [--quick] [--out DIR]

The last line is ``board accuracy A% on BOARD, TFLite Micro accuracy A% on the same
N samples``; the exit status is 1 when they differ or the board is not bit-exact, 2
when the data set or the firmware is missing. Data: Debian's ``dataset-fashion-mnist``
package (MNIST itself is in no package registry this project can reach).
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
BOARD = "qemu-stm32f405"
REAL_BOARD = "stm32:B_L475E_IOT01A"
SESSION = "course"                       # the name of the background board this example starts
# Where Debian's dataset-fashion-mnist puts the idx files; FASHION_MNIST_DIR overrides.
DATA_DIRS = ["/usr/share/datasets/fashion-mnist"]
FILES = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
         "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
           "Ankle boot"]

# Quick mode (make test): a slice of the data, one epoch of each training; the full
# run trains on all 60,000 images and streams all 10,000 test images to the board.
QUICK = {"train": 4000, "epochs": 1, "qat_epochs": 1, "host_test": 1000, "board": 32}
# The board's share is a subset: over the emulated UART a sample takes 0.1 to 0.4 s
# here; --samples 10000 streams the whole test set.
FULL = {"train": 60000, "epochs": 5, "qat_epochs": 2, "host_test": 10000, "board": 1000}


class Missing(Exception):
    """Something the example needs is not installed: exit status 2, with how to get it."""


class Failed(Exception):
    """A command failed, or the board disagreed with TFLite Micro: exit status 1."""


# ---------------------------------------------------------------- data

def find_data() -> Path:
    """The folder holding the four Fashion-MNIST idx files (gzipped or not)."""
    dirs = [os.environ["FASHION_MNIST_DIR"]] if os.environ.get("FASHION_MNIST_DIR") else DATA_DIRS
    for d in map(Path, dirs):
        if not d.is_dir():
            continue
        for f in sorted(d.rglob(FILES["x_train"] + "*")):
            if f.name in (FILES["x_train"], FILES["x_train"] + ".gz"):
                return f.parent
    raise Missing("Fashion-MNIST not found in " + ", ".join(dirs) + ": install Debian's package "
                  "(sudo apt-get install dataset-fashion-mnist; make setup does it) or point "
                  "FASHION_MNIST_DIR at a folder with the four idx files")


def read_idx(path: Path) -> np.ndarray:
    """An idx file (the MNIST format): a magic of two zero bytes, the element type
    (0x08: unsigned byte) and the number of dimensions, then one big-endian uint32
    per dimension, then the data."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] != 0x08:
        raise Failed(f"{path}: not an idx file of unsigned bytes")
    dims = np.frombuffer(raw, ">u4", count=raw[3], offset=4).astype(int)
    start = 4 + 4 * raw[3]
    if len(raw) - start != int(np.prod(dims)):
        raise Failed(f"{path}: {len(raw) - start} data bytes for dimensions {tuple(dims)}")
    return np.frombuffer(raw, np.uint8, offset=start).reshape(dims)


def load_data(folder: Path) -> dict:
    """Images as float32 (N, 28, 28, 1) in [0, 1], labels as int64."""
    out = {}
    for key, name in FILES.items():
        path = folder / name if (folder / name).exists() else folder / (name + ".gz")
        a = read_idx(path)
        out[key] = (a.astype(np.float32) / 255.0)[..., None] if key.startswith("x") else a.astype(np.int64)
    return out


# ---------------------------------------------------------------- the commands a user types

def _micronn() -> list[str]:
    exe = Path(sys.executable).parent / "micronn"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "micronn.cli"]


# TensorFlow's C++ start-up lines (absl logging before it is set up), printed by any
# command that loads TensorFlow or TFLite Micro: not the command's own output.
TF_NOISE = re.compile(r"^(WARNING: All log messages before absl|[IWE]\d{4} \d\d:\d\d:\d+\.\d+ )")
PROGRESS = re.compile(r"^running on .*: \d+/\d+")


def shown(text: str) -> list[str]:
    """A command's output lines as the tutorial shows them: without TensorFlow's
    start-up chatter, and of the progress lines only the last."""
    lines = [s for s in text.rstrip().splitlines() if not TF_NOISE.match(s)]
    last = max((i for i, s in enumerate(lines) if PROGRESS.match(s)), default=None)
    return [s for i, s in enumerate(lines) if not PROGRESS.match(s) or i == last]


def micronn(*args: str, cwd: Path, check: bool = True, show: bool = True) -> subprocess.CompletedProcess:
    """Run one `micronn` command in the working folder, echoed first as the user would
    type it, then its output (show=False: stderr only, the caller sums up stdout)."""
    print("$ micronn " + " ".join(shlex.quote(str(a)) for a in args), flush=True)
    r = subprocess.run(_micronn() + [str(a) for a in args], cwd=cwd, capture_output=True, text=True)
    for line in shown(r.stdout) if show else []:
        print("  " + line, flush=True)
    for line in shown(r.stderr):
        print("  " + line, flush=True)
    if check and r.returncode != 0:
        raise Failed(f"`micronn {' '.join(map(str, args))}` failed (exit status {r.returncode})")
    return r


@contextlib.contextmanager
def quiet_stderr():
    """TensorFlow's C++ side logs to file descriptor 2 while it loads and converts
    (CUDA probes, oneDNN notes, the converter's settings): hide that, not Python's errors."""
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def step(title: str) -> None:
    print(f"\n== {title}", flush=True)


# ---------------------------------------------------------------- training and quantization

def build_model(tf_keras):
    """The course's network: 12 3x3 filters, 2x2 max pooling, one dense layer to the 10 classes."""
    return tf_keras.Sequential([
        tf_keras.layers.InputLayer(input_shape=(28, 28, 1), name="image"),
        tf_keras.layers.Conv2D(12, 3, activation="relu", name="conv"),
        tf_keras.layers.MaxPooling2D(2, name="pool"),
        tf_keras.layers.Flatten(name="flatten"),
        tf_keras.layers.Dense(10, name="logits"),
    ], name="fashion_cnn")


def to_int8_tflite(tf, model, calib: np.ndarray | None) -> bytes:
    """A fully-int8 .tflite (int8 input and output) from a tf_keras model. TFLite's
    converter takes a tf_keras model through a concrete function of its call. A
    float model needs calibration images (post-training quantization); a
    quantization-aware model carries its ranges in its fake-quant nodes."""
    fn = tf.function(lambda x: model(x, training=False))
    concrete = fn.get_concrete_function(tf.TensorSpec((1, 28, 28, 1), tf.float32))
    conv = tf.lite.TFLiteConverter.from_concrete_functions([concrete], model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if calib is not None:
        conv.representative_dataset = lambda: ([calib[i:i + 1]] for i in range(len(calib)))
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    with quiet_stderr():
        return conv.convert()


def tflm_predictions(tflite: bytes, blob: bytes, x: np.ndarray) -> np.ndarray:
    """TFLite Micro's top-1 on the host for float images, quantized as the board
    quantizes them (with the blob's input scale and zero point, TFLite's rounding)."""
    from micronn.reference import tflm_run
    from micronn.run import prepare_input

    return tflm_run(tflite, prepare_input(blob, x)).reshape(len(x), -1).argmax(axis=1)


def board_eval(name: str, out: Path) -> tuple[tuple[int, int], bool]:
    """((correct, samples) on the board, bit-exact with TFLite Micro) for one model:
    `micronn eval --reference` streams the images once and compares every output
    with TFLite Micro's on the host (where its JSON lacks that, `micronn verify` does)."""
    r = micronn("eval", f"{name}.mnb", "--data", "test.npz", "--reference", f"{name}.tflite", "--port", SESSION,
                "--json", cwd=out, show=False)
    try:
        got = json.loads(r.stdout)
        correct, samples = int(got["correct"]), int(got["samples"])
    except (ValueError, KeyError, TypeError) as e:
        raise Failed(f"micronn eval --json: unexpected output ({e})") from None
    ref, dis = got.get("reference"), got.get("disagreements")
    line = f"  (JSON, in short) board: {correct}/{samples} correct ({correct / max(samples, 1):.2%})"
    if isinstance(ref, dict) and isinstance(dis, dict) and "outputs" in dis:
        exact = not dis["outputs"]
        line += (f"; TFLite Micro on the host: {ref.get('correct')}/{samples}; output bytes differ on "
                 f"{len(dis['outputs'])} samples")
        print(line, flush=True)
        return (correct, samples), exact
    print(line, flush=True)
    v = micronn("verify", f"{name}.mnb", "--reference", f"{name}.tflite", "--input", "test_x.npy",
                "--port", SESSION, check=False, cwd=out)
    return (correct, samples), v.returncode == 0


# ---------------------------------------------------------------- the flow

def course(a) -> int:
    cfg = QUICK if a.quick else FULL
    out = Path(a.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.monotonic()

    from micronn.firmware import firmware_file
    if not firmware_file(BOARD).exists():
        raise Missing(f"the {BOARD} firmware is not built: make firmware BOARD={BOARD}")

    step("1. data: Fashion-MNIST, Debian's dataset-fashion-mnist package")
    folder = find_data()
    d = load_data(folder)
    print(f"{folder}: {len(d['x_train']):,} training and {len(d['x_test']):,} test images, 28x28 grey, "
          f"10 classes ({', '.join(CLASSES)})")
    print("(MNIST's digits are not in any package registry this project reaches; Fashion-MNIST is a drop-in"
          " replacement of the same format and size, and harder)")
    x_train, y_train = d["x_train"][:cfg["train"]], d["y_train"][:cfg["train"]]
    x_host, y_host = d["x_test"][:cfg["host_test"]], d["y_test"][:cfg["host_test"]]
    n_board = min(a.samples or cfg["board"], len(d["x_test"]))
    x_board, y_board = d["x_test"][:n_board], d["y_test"][:n_board]
    calib = x_train[np.random.default_rng(0).choice(len(x_train), 256, replace=False)]
    np.savez(out / "test.npz", x=x_board, y=y_board)        # what `micronn eval --data` reads
    np.save(out / "test_x.npy", x_board)
    np.save(out / "calib.npy", calib)
    (out / "labels.txt").write_text("\n".join(CLASSES) + "\n")
    print(f"wrote test.npz ({n_board} test images and labels for the board), calib.npy, labels.txt in {out}")

    step(f"2. train the float model (tf_keras, {len(x_train):,} images, {cfg['epochs']} epoch(s))")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        with quiet_stderr():
            import tensorflow as tf
            import tensorflow_model_optimization as tfmot
            import tf_keras
    except ImportError as e:
        raise Missing(f"{e.name or e}: the example needs tensorflow, tf-keras and tensorflow-model-optimization "
                      "(make setup installs them into .venv)") from None

    tf_keras.utils.set_random_seed(0)
    with quiet_stderr():                # TensorFlow looks for a GPU here, and says so on fd 2
        model = build_model(tf_keras)
    model.summary(print_fn=lambda s, **_: print(s))
    loss = tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(tf_keras.optimizers.Adam(1e-3), loss, metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=cfg["epochs"], batch_size=64, verbose=2)
    float_acc = float(model.evaluate(x_host, y_host, verbose=0)[1])
    float_board = float((model.predict(x_board, verbose=0).argmax(axis=1) == y_board).mean())
    print(f"float accuracy {float_acc:.2%} on {len(x_host):,} test images")

    step("3. post-training quantization (PTQ): int8 with TFLite's converter and 256 calibration images")
    ptq = to_int8_tflite(tf, model, calib)
    (out / "ptq.tflite").write_bytes(ptq)
    print(f"wrote ptq.tflite ({len(ptq):,} bytes)")
    micronn("pack", "ptq.tflite", "-o", "ptq.mnb", "--name", "fashion_ptq", "--labels", "labels.txt", cwd=out)

    step(f"4. quantization-aware training (QAT): tensorflow-model-optimization, {cfg['qat_epochs']} epoch(s)")
    qat = tfmot.quantization.keras.quantize_model(model)
    qat.compile(tf_keras.optimizers.Adam(1e-4), loss, metrics=["accuracy"])
    qat.fit(x_train, y_train, epochs=cfg["qat_epochs"], batch_size=64, verbose=2)
    qat_tflite = to_int8_tflite(tf, qat, None)
    (out / "qat.tflite").write_bytes(qat_tflite)
    print(f"wrote qat.tflite ({len(qat_tflite):,} bytes)")
    micronn("pack", "qat.tflite", "-o", "qat.mnb", "--name", "fashion_qat", "--labels", "labels.txt", cwd=out)
    micronn("inspect", "qat.mnb", cwd=out)

    step("5. int8 accuracy on the host: TFLite Micro (the oracle) runs both .tflite files")
    host = {}
    for name, tfl in (("ptq", ptq), ("qat", qat_tflite)):
        pred = tflm_predictions(tfl, (out / f"{name}.mnb").read_bytes(), x_host)
        host[name] = float((pred == y_host).mean())
        print(f"{name.upper()} int8 accuracy {host[name]:.2%} on {len(x_host):,} test images (TFLite Micro)")

    names = ("qat",) if a.quick else ("ptq", "qat")
    step(f"6. on the board: {n_board} test images streamed over the serial link to {BOARD}"
         + (" (quick: the QAT model only)" if a.quick else ""))
    from micronn import sessions

    if sessions.find(SESSION) is not None:          # left over from an interrupted run
        sessions.stop(SESSION)
    micronn("board", "start", "--target", BOARD, "--name", SESSION, cwd=out)
    board, want, exact = {}, {}, {}
    try:
        for name in names:
            tfl = (out / f"{name}.tflite").read_bytes()
            pred = tflm_predictions(tfl, (out / f"{name}.mnb").read_bytes(), x_board)
            want[name] = (int((pred == y_board).sum()), n_board)
            board[name], exact[name] = board_eval(name, out)
    finally:
        micronn("board", "stop", SESSION, cwd=out, check=False)

    step("7. speed: instructions per inference, op by op (qemu -icount: one instruction, one nanosecond)")
    micronn("bench", "qat.mnb", "--target", BOARD, cwd=out)

    step(f"8. will it fit a real board? {REAL_BOARD} (STM32L475, 1 MB flash, 128 KB RAM)")
    micronn("inspect", "qat.mnb", "--board", REAL_BOARD, cwd=out)

    step("summary")
    host_head, board_head = f"host: {len(x_host)} test images", f"board: {n_board} images"
    print(f"{'model':<10} {host_head:>26} {board_head:>20}")
    print(f"{'float':<10} {float_acc:>26.2%} {float_board:>20.2%}  (Keras on the host)")
    for name in ("ptq", "qat"):
        if name in board:
            c, n = board[name]
            on_board = f"{100.0 * c / n:>19.2f}%  ({'bit-exact' if exact[name] else 'NOT bit-exact'})"
        else:
            on_board = f"{'-':>20}"
        print(f"{name.upper() + ' int8':<10} {host[name]:>26.2%} {on_board}")
    print(f"(int8 on the host: TFLite Micro; board: {BOARD}; {time.monotonic() - t_start:.0f} s)")
    ok = all(exact.values()) and all(board[k] == want[k] for k in board)
    acc_board, acc_tflm = 100.0 * board["qat"][0] / n_board, 100.0 * want["qat"][0] / n_board
    print(f"board accuracy {acc_board:.2f}% on {BOARD}, TFLite Micro accuracy {acc_tflm:.2f}% "
          f"on the same {n_board} samples")
    if not ok:
        print("course: error: the board disagrees with TFLite Micro "
              + ", ".join(f"{k}: board {board[k][0]}, TFLite Micro {want[k][0]} correct, "
                          f"{'bit-exact' if exact[k] else 'outputs differ'}" for k in board), file=sys.stderr)
    return 0 if ok else 1


def positive(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return n


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="The embedded-ML course flow on Fashion-MNIST, with micronn.")
    p.add_argument("--quick", action="store_true", help="a slice of the data, one epoch each, 32 board samples")
    p.add_argument("--out", default=str(ROOT / "build" / "examples" / "course"),
                   help="where the models and data go (default build/examples/course/)")
    p.add_argument("--samples", type=positive, help="test images to stream to the board (default: 32 quick, 1000 full)")
    a = p.parse_args(argv)
    try:
        return course(a)
    except Missing as e:
        print(f"course: error: {e}", file=sys.stderr)
        return 2
    except Failed as e:
        print(f"course: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
