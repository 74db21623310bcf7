"""What the examples share: their command line, the `micronn` commands they echo and
run (so that their output reads like a tutorial), the data sets they build from
scikit-learn's 8x8 digits, TFLite Micro's side of the comparison, and the closing line.

Every example is ``examples/NAME/run.py [--quick] [--out DIR]`` run from the repository
root; it ends with one line

    board accuracy A% on BOARD, TFLite Micro accuracy A% on the same N samples

and exits 1 if the two figures differ or the board's outputs are not TFLite Micro's
byte for byte, 2 if something it needs is missing (TensorFlow, scikit-learn, the
firmware) (tests/test_examples.py runs each with --quick).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BOARD = "qemu-m4"


class Failed(Exception):
    """A step of an example went wrong: one line for the user, exit status 1."""


class Missing(Exception):
    """Something the example needs is not installed or built: one line saying how to get it, exit status 2."""


def options(name: str, doc: str) -> argparse.Namespace:
    """The example's command line; makes --out and keeps the example's boards apart."""
    p = argparse.ArgumentParser(prog=f"examples/{name}/run.py", description=doc)
    p.add_argument("--quick", action="store_true", help="few epochs on a subset and few board samples (make test)")
    p.add_argument("--out", type=Path, default=ROOT / "build" / "examples" / name,
                   help=f"where the models, blobs and data go (default build/examples/{name})")
    a = p.parse_args()
    a.name = name
    try:
        a.out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        p.exit(1, f"{name}: error: cannot make {a.out}: {e.strerror}\n")
    # The example's background boards are recorded in a folder of its own, so that
    # `--target qemu-m4` here never picks up a board you left running (and yours never ours).
    os.environ["MICRONN_STATE_DIR"] = str((a.out / "boards").resolve())
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    a.started = time.monotonic()
    print(f"{name}: {'quick mode (few epochs, few samples)' if a.quick else 'full run'}; "
          f"artefacts in {shown(a.out)}", flush=True)
    return a


def main(body, args: argparse.Namespace) -> int:
    """Run an example's body: its status, or 1 after one line when a step failed, 2 when
    something it needs is missing."""
    try:
        _check_firmware()
        rc = body(args)
    except Failed as e:
        print(f"{args.name}: error: {e}", file=sys.stderr)
        return 1
    except Missing as e:
        print(f"{args.name}: missing: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{args.name}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:     # `run.py | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    finally:
        _stop_boards()
    print(f"({args.name}: {time.monotonic() - args.started:.0f} s wall)", file=sys.stderr)
    return rc


def _stop_boards() -> None:
    """Stop any background board this example left running (its own state folder holds
    only its boards): after a step failed, an interrupt, or a closed pipe."""
    from micronn.errors import MicronnError
    from micronn.sessions import sessions, stop

    for s in sessions():
        try:
            stop(s["name"])
        except MicronnError:
            pass


def _check_firmware(board: str = BOARD) -> None:
    from micronn.firmware import firmware_file

    if not firmware_file(board).exists():
        raise Missing(f"the {board} firmware is not built: make firmware BOARD={board}")


def shown(path) -> str:
    """A path as the user would type it: relative to the current folder when inside it."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)


def heading(text: str) -> None:
    print(f"\n== {text}", flush=True)


def _argv(tool: str) -> list[str]:
    """The venv's console script, else the module (python -m)."""
    exe = Path(sys.executable).with_name(tool)
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-m", {"micronn": "micronn.cli", "mpremote": "mpremote"}[tool]]


def sh(tool: str, *args, capture: bool = False, check: bool = True) -> subprocess.CompletedProcess:
    """Echo ``$ tool args`` and run it; its output goes to ours (and is returned with capture)."""
    words = [shown(a) if isinstance(a, Path) else str(a) for a in args]
    print(f"$ {shlex.join([tool, *words])}", flush=True)
    r = subprocess.run(_argv(tool) + words, stdout=subprocess.PIPE if capture else None, text=True)
    if capture and r.stdout:
        print(r.stdout, end="", flush=True)
    if check and r.returncode:
        raise Failed(f"`{tool} {words[0]}` failed (exit status {r.returncode})")
    return r


def micronn(*args, **kw) -> subprocess.CompletedProcess:
    return sh("micronn", *args, **kw)


@contextlib.contextmanager
def quiet():
    """TensorFlow's C++ side writes start-up chatter to stderr that TF_CPP_MIN_LOG_LEVEL does
    not stop (absl's "log messages before InitializeLog", a failed cuInit on a machine
    without CUDA): stderr goes to /dev/null inside this block. Python errors still show,
    raised after it."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def keras():
    """Keras (on TensorFlow), seeded, with a one-line error when it is missing."""
    try:
        with quiet():
            import keras as k
    except ImportError:
        raise Missing("the examples need TensorFlow and Keras: pip install 'micronn[tf]' (make setup)") from None
    k.utils.set_random_seed(0)
    return k


def digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digits: images (1797, 8, 8, 1) in [0, 1] and labels 0..9."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise Missing("the examples need scikit-learn (its 8x8 digits): pip install 'micronn[tf]'") from None
    d = load_digits()
    return (d.images / 16.0).astype(np.float32)[..., None], d.target.astype(np.int64)


def split(x: np.ndarray, y: np.ndarray, test: float = 0.3) -> tuple:
    """The same stratified train/test split every time: (x_train, y_train, x_test, y_test)."""
    from sklearn.model_selection import train_test_split

    xa, xb, ya, yb = train_test_split(x, y, test_size=test, random_state=0, stratify=y)
    return xa, ya, xb, yb


def _resize_matrix(n: int, size: int) -> np.ndarray:
    """(size, n) weights of linear interpolation from n pixels to size (pixel centres aligned)."""
    pos = np.clip((np.arange(size) + 0.5) * n / size - 0.5, 0, n - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, n - 1)
    w = np.zeros((size, n), np.float32)
    w[np.arange(size), lo] += 1 - (pos - lo)
    w[np.arange(size), hi] += pos - lo
    return w


def upsample(x: np.ndarray, size: int) -> np.ndarray:
    """Images (N, h, w, C) resized bilinearly to (N, size, size, C)."""
    rows, cols = _resize_matrix(x.shape[1], size), _resize_matrix(x.shape[2], size)
    return np.einsum("ih,nhwc,jw->nijc", rows, x, cols).astype(np.float32)


def shift(x: np.ndarray, rng: np.random.Generator, most: int) -> np.ndarray:
    """Each image moved by up to ``most`` pixels each way (zeros come in): more training samples."""
    out = np.zeros_like(x)
    h, w = x.shape[1:3]
    for i, (dy, dx) in enumerate(rng.integers(-most, most + 1, size=(len(x), 2))):
        out[i, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
            x[i, max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


def to_tflite(model_path: Path, calib_path: Path, out: Path) -> bytes:
    """The int8 .tflite of a Keras model file: micronn's own conversion (TensorFlow's
    converter, calibrated), the one `micronn pack MODEL.keras --calib` runs."""
    from micronn.convert import keras_to_tflite
    from micronn.errors import MicronnError

    try:
        data = keras_to_tflite(model_path, calib_path)
    except MicronnError as e:
        raise Failed(str(e)) from None
    out.write_bytes(data)
    print(f"wrote {shown(out)} ({len(data):,} bytes): the fully-int8 model TFLite Micro runs", flush=True)
    return data


def tflm_outputs(tflite: bytes, blob: bytes, x: np.ndarray) -> np.ndarray:
    """TFLite Micro's outputs for the samples x, quantized exactly as `micronn eval` and
    `micronn verify` quantize them for the board (the blob's input scale and zero point)."""
    from micronn.reference import tflm_run
    from micronn.run import prepare_input

    return tflm_run(tflite, prepare_input(blob, x))


def board_outputs(blob, x_file: Path, y_file: Path, port: str | None = None) -> np.ndarray:
    """`micronn run` on the board (a fresh qemu-m4, or the running board ``port``), shown:
    the board's raw outputs for the samples in x_file. blob: a file, or ":PATH" on the board."""
    micronn("run", blob, "--input", x_file, "-o", y_file, *(("--port", port) if port else ("--target", BOARD)))
    return np.load(y_file)


def compare(board_y: np.ndarray, tflm_y: np.ndarray) -> bool:
    """Are the board's outputs TFLite Micro's, byte for byte? Says so either way."""
    board_y, tflm_y = board_y.reshape(len(board_y), -1), tflm_y.reshape(len(tflm_y), -1)
    if board_y.shape == tflm_y.shape and np.array_equal(board_y, tflm_y):
        print(f"bit-exact: all {board_y.size:,} output values of the {len(board_y)} samples equal TFLite Micro's")
        return True
    if board_y.shape != tflm_y.shape:
        print(f"the board gave outputs of shape {board_y.shape}, TFLite Micro {tflm_y.shape}")
    else:
        rows = np.flatnonzero((board_y != tflm_y).any(axis=1))
        print(f"MISMATCH: {int((board_y != tflm_y).sum())} output values differ from TFLite Micro's, in samples "
              f"{', '.join(map(str, rows[:10]))}{' ...' if len(rows) > 10 else ''}")
    return False


def correct(y: np.ndarray, labels: np.ndarray) -> int:
    """How many top-1 classes (the largest output, the first of equals) are the labels."""
    return int((y.reshape(len(y), -1).argmax(axis=1) == labels).sum())


def finish(board_correct: int, tflm_correct: int, n: int, bit_exact: bool, board: str = BOARD) -> int:
    """The closing line; 0 if the board agrees with TFLite Micro, else 1 with the reason."""
    if not bit_exact:
        print("the board's outputs are NOT TFLite Micro's byte for byte (see `micronn verify` above)")
    if board_correct != tflm_correct:
        print(f"the board got {board_correct} right, TFLite Micro {tflm_correct}")
    print(f"board accuracy {100 * board_correct / n:.2f}% on {board}, "
          f"TFLite Micro accuracy {100 * tflm_correct / n:.2f}% on the same {n} samples", flush=True)
    return 0 if bit_exact and board_correct == tflm_correct else 1
