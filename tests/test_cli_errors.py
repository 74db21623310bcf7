"""Every subcommand against a table of bad inputs, each run as the real ``micronn``
command: the user's mistake must end in one line ``micronn: error: ...`` that says
what is wrong (most name the file), exit status 1, and no traceback.

Also: ``micronn inspect X | head -1`` stops quietly, and ``inspect`` reads a blob
whose metadata is unusual but valid for the device (which loads it)."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from micronn import blob
from micronn import format as fmt
from micronn.graph import Graph, Op, Tensor
from micronn.targets import firmware_path

from .conftest import micropython, missing

MICRONN = Path(sys.executable).with_name("micronn")
UNIX = firmware_path("unix").exists()

# (id, arguments, text the error must hold, needs the unix firmware). In the
# arguments {d} is the folder of inputs made by the `cases` fixture, {proc} a
# path no one can create (/proc refuses new files, even for root).
CASES = [
    # ---- pack: the model file
    ("pack-missing", "pack {d}/missing.tflite", "{d}/missing.tflite: no such file", False),
    ("pack-tflite-is-folder", "pack {d}/folder.tflite", "folder.tflite: Is a directory", False),
    ("pack-junk-tflite", "pack {d}/junk.tflite", "tflite: bad identifier", False),
    ("pack-unknown-type", "pack {d}/model.onnx", "model.onnx: unknown model type", False),
    # ---- pack: where the blob goes
    ("pack-out-no-folder", "pack {d}/m.tflite -o {d}/nowhere/m.mnb", "cannot write {d}/nowhere/m.mnb: No such", False),
    ("pack-out-is-folder", "pack {d}/m.tflite -o {d}/folder.tflite", "cannot write {d}/folder.tflite: Is a dir", False),
    ("pack-out-proc", "pack {d}/m.tflite -o {proc}", "cannot write {proc}", False),
    # ---- pack --labels
    ("labels-missing", "pack {d}/m.tflite -o {d}/l.mnb --labels {d}/none.txt", "labels {d}/none.txt: No such", False),
    ("labels-folder", "pack {d}/m.tflite -o {d}/l.mnb --labels {d}/folder.tflite", "Is a directory", False),
    ("labels-binary", "pack {d}/m.tflite -o {d}/l.mnb --labels {d}/binary.txt", "binary.txt: not UTF-8 text", False),
    ("labels-nul", "pack {d}/m.tflite -o {d}/l.mnb --labels {d}/nul.txt", "nul.txt: a binary file", False),
    ("labels-count", "pack {d}/m.tflite -o {d}/l.mnb --labels {d}/two.txt", "2 labels for an output of 3", False),
    # ---- pack a Keras model: calibration data (checked before TensorFlow is imported)
    ("calib-none", "pack {d}/m.keras -o {d}/k.mnb", "needs calibration data", False),
    ("calib-missing", "pack {d}/m.keras --calib {d}/none.npy -o {d}/k.mnb", "{d}/none.npy: no such file", False),
    ("calib-folder", "pack {d}/m.keras --calib {d}/folder.tflite -o {d}/k.mnb", "cannot read as .npy", False),
    ("calib-not-npy", "pack {d}/m.keras --calib {d}/m.tflite -o {d}/k.mnb", "m.tflite: cannot read as .npy", False),
    ("calib-strings", "pack {d}/m.keras --calib {d}/strings.npy -o {d}/k.mnb", "strings.npy holds <U", False),
    ("calib-objects", "pack {d}/m.keras --calib {d}/objects.npy -o {d}/k.mnb", "objects.npy: cannot read", False),
    ("calib-no-samples", "pack {d}/m.keras --calib {d}/empty.npy -o {d}/k.mnb", "empty.npy holds no samples", False),
    ("calib-scalar", "pack {d}/m.keras --calib {d}/scalar.npy -o {d}/k.mnb", "scalar.npy holds no samples", False),
    ("calib-empty-npz", "pack {d}/m.keras --calib {d}/none.npz -o {d}/k.mnb", "none.npz: the .npz holds no", False),
    ("calib-nan", "pack {d}/m.keras --calib {d}/nan.npy -o {d}/k.mnb", "nan.npy holds NaN", False),
    ("calib-some-nan", "pack {d}/m.keras --calib {d}/some_nan.npy -o {d}/k.mnb", "some_nan.npy holds NaN", False),
    ("calib-inf", "pack {d}/m.keras --calib {d}/inf.npy -o {d}/k.mnb", "inf.npy holds infinite values", False),
    # ---- pack a Keras model: the model file (the last two import TensorFlow: seconds)
    ("keras-random", "pack {d}/random.keras --calib {d}/calib.npy", "random.keras: not a .keras file", False),
    ("keras-truncated", "pack {d}/cut.keras --calib {d}/calib.npy", "cut.keras: not a .keras file", False),
    ("h5-random", "pack {d}/random.h5 --calib {d}/calib.npy", "random.h5: not an HDF5", False),
    ("savedmodel-empty", "pack {d}/saved --calib {d}/calib.npy", "saved: not a SavedModel folder", False),
    ("keras-zip-no-model", "pack {d}/zip.keras --calib {d}/calib.npy -o {d}/k.mnb", "zip.keras: cannot load", False),
    ("calib-wrong-shape", "pack {d}/m.keras --calib {d}/wide.npy -o {d}/k.mnb", "samples of shape (7,) do not", False),
    # ---- pack --calib-method, report (all refused before TensorFlow is imported)
    ("pack-method-unknown", "pack {d}/m.keras --calib {d}/calib.npy --calib-method foo",
     "unknown calibration method 'foo'", False),
    ("pack-method-percentile", "pack {d}/m.keras --calib {d}/calib.npy --calib-method percentile:101",
     "the percentile must be a number above 50 and at most 100", False),
    ("pack-method-tflite", "pack {d}/m.tflite --calib-method mse", "--calib-method and --report are for Keras", False),
    ("report-missing", "report {d}/none.keras --calib {d}/calib.npy", "{d}/none.keras: no such file", False),
    ("report-no-calib", "report {d}/m.keras", "required: --calib", False),
    ("report-int8-tflite", "report {d}/m.tflite --calib {d}/calib.npy", "an int8 .tflite has no float side", False),
    ("report-unknown-type", "report {d}/model.onnx --calib {d}/calib.npy", "model.onnx: unknown model type", False),
    ("report-method", "report {d}/m.keras --calib {d}/calib.npy --calib-method percentile:x",
     "the percentile must be a number", False),
    ("report-compare", "report {d}/m.keras --calib {d}/calib.npy --compare minmax,foo", "unknown calibration method",
     False),
    ("report-calib-nan", "report {d}/m.keras --calib {d}/nan.npy", "nan.npy holds NaN", False),
    ("report-data-no-x", "report {d}/m.keras --calib {d}/calib.npy --data {d}/none.npz", "none.npz: needs an array x",
     False),
    ("report-samples-zero", "report {d}/m.keras --calib {d}/calib.npy --samples 0", "--samples: must be at least 1",
     False),
    # ---- inspect
    ("inspect-missing", "inspect {d}/none.mnb", "{d}/none.mnb: No such file", False),
    ("inspect-folder", "inspect {d}/folder.tflite", "Is a directory", False),
    ("inspect-not-blob", "inspect {d}/junk.tflite", "not a micronn blob", False),      # a real .tflite is packed
    ("inspect-truncated", "inspect {d}/cut.mnb", "blob truncated", False),
    ("inspect-damaged", "inspect {d}/damaged.mnb", "checksum mismatch", False),
    ("inspect-bad-index", "inspect {d}/bad_index.mnb", "refers to tensor 999", False),
    ("inspect-board", "inspect {d}/m.mnb --board nosuch", "unknown board 'nosuch'", False),
    ("inspect-heap-negative", "inspect {d}/m.mnb --board qemu-m4 --heap -5", "--heap: must be at least 1", False),
    ("inspect-heap-text", "inspect {d}/m.mnb --board qemu-m4 --heap lots", "'lots' is not a whole number", False),
    # ---- ops
    ("ops-missing", "ops {d}/none.tflite", "{d}/none.tflite: No such file", False),
    ("ops-folder", "ops {d}/folder.tflite", "folder.tflite: Is a directory", False),
    ("ops-junk", "ops {d}/junk.tflite", "junk.tflite: tflite: bad identifier", False),
    ("ops-not-tflite", "ops {d}/m.mnb", "m.mnb: expected a .tflite", False),
    ("ops-markdown-model", "ops {d}/m.tflite --markdown", "--markdown prints the table", False),
    # ---- run
    ("run-missing-blob", "run {d}/none.mnb --input {d}/x.npy", "{d}/none.mnb: No such file", False),
    ("run-missing-input", "run {d}/m.mnb --input {d}/none.npy", "none.npy: cannot read as .npy", False),
    ("run-input-not-npy", "run {d}/m.mnb --input {d}/m.mnb", "m.mnb: cannot read as .npy", False),
    ("run-no-samples", "run {d}/m.mnb --input {d}/empty.npy", "empty.npy: holds no samples", False),
    ("run-target", "run {d}/m.mnb --input {d}/x.npy --target nosuch", "unknown target 'nosuch'", False),
    ("run-real-board", "run {d}/m.mnb --input {d}/x.npy --target esp32:ESP32_GENERIC",
     "esp32:ESP32_GENERIC is a real board: connect it and give its serial port", False),
    ("run-wrong-shape", "run {d}/m.mnb --input {d}/wide.npy", "does not fit the model input (1, 4)", True),
    ("run-strings", "run {d}/m.mnb --input {d}/strings.npy", "input dtype <U1 is not supported", True),
    ("run-nan", "run {d}/m.mnb --input {d}/nan.npy", "holds NaN or infinite", True),
    ("run-out-no-folder", "run {d}/m.mnb --input {d}/x.npy -o {d}/nowhere/y.npy", "cannot write {d}/nowhere", True),
    ("run-out-is-folder", "run {d}/m.mnb --input {d}/x.npy -o {d}/folder.tflite", "Is a directory", True),
    ("run-out-proc", "run {d}/m.mnb --input {d}/x.npy -o {proc}", "cannot write {proc}", True),
    # ---- verify
    ("verify-samples-negative", "verify {d}/m.mnb --reference {d}/m.tflite --samples -3", "--samples: must be", False),
    ("verify-samples-zero", "verify {d}/m.mnb --reference {d}/m.tflite --samples 0", "at least 1, not 0", False),
    ("verify-no-reference", "verify {d}/m.mnb", "required: --reference", False),
    ("verify-reference-missing", "verify {d}/m.mnb --reference {d}/none.tflite", "none.tflite: No such", False),
    ("verify-reference-blob", "verify {d}/m.mnb --reference {d}/m.mnb", "reference model: tflite: bad ident", False),
    ("verify-reference-input", "verify {d}/m.mnb --reference {d}/other_in.tflite",
     "reference model input (1,6) does not match the blob's (1,4)", False),
    ("verify-reference-output", "verify {d}/m.mnb --reference {d}/other_out.tflite",
     "reference model output (1,5) does not match the blob's (1,3)", False),
    ("verify-input-shape", "verify {d}/m.mnb --reference {d}/m.tflite --input {d}/wide.npy", "does not fit", False),
    # ---- eval
    ("eval-npy", "eval {d}/m.mnb --data {d}/x.npy", "x.npy: a single array; eval needs a .npz", False),
    ("eval-no-y", "eval {d}/m.mnb --data {d}/only_x.npz", "only_x.npz: needs arrays x", False),
    ("eval-missing", "eval {d}/m.mnb --data {d}/none.npz", "none.npz: needs arrays x", False),
    ("eval-no-samples", "eval {d}/m.mnb --data {d}/no_samples.npz", "no_samples.npz: x holds no samples", False),
    ("eval-label-count", "eval {d}/m.mnb --data {d}/labels5.npz", "5 labels for 2 samples", True),
    ("eval-label-text", "eval {d}/m.mnb --data {d}/labels_text.npz", "not <U3 values", False),
    ("eval-label-fraction", "eval {d}/m.mnb --data {d}/labels_half.npz", "not float64 values", False),
    ("eval-one-hot", "eval {d}/m.mnb --data {d}/one_hot.npz", "labels of shape (2, 3) look one-hot", False),
    # ---- bench (all found before QEMU starts)
    ("bench-runs-zero", "bench {d}/m.mnb --runs 0", "--runs: must be at least 1, not 0", False),
    ("bench-runs-negative", "bench {d}/m.mnb --runs -2", "--runs: must be at least 1", False),
    ("bench-unix", "bench {d}/m.mnb --target unix", "'unix' is not a QEMU board", False),
    ("bench-no-samples", "bench {d}/m.mnb --input {d}/empty.npy", "empty.npy: holds no samples", False),
    ("bench-input-shape", "bench {d}/m.mnb --input {d}/wide.npy", "does not fit the model input", False),
    ("bench-input-strings", "bench {d}/m.mnb --input {d}/strings.npy", "input dtype <U1 is not supported", False),
    ("bench-input-nan", "bench {d}/m.mnb --input {d}/nan.npy", "holds NaN or infinite", False),
    # ---- deploy
    ("deploy-missing", "deploy {d}/none.mnb --romfs -o {d}/r.romfs", "{d}/none.mnb: No such file", False),
    ("deploy-not-blob", "deploy {d}/m.tflite --romfs -o {d}/r.romfs", "not a micronn blob", False),
    ("deploy-out-no-folder", "deploy {d}/m.mnb --romfs -o {d}/nowhere/r.romfs", "cannot write {d}/nowhere", False),
    ("deploy-out-is-folder", "deploy {d}/m.mnb --romfs -o {d}/folder.tflite", "Is a directory", False),
    ("deploy-out-proc", "deploy {d}/m.mnb --romfs -o {proc}", "cannot write {proc}", False),
    ("deploy-same-name", "deploy {d}/m.mnb {d}/saved/m.mnb --romfs -o {d}/r.romfs", "a second blob named m.mnb",
     False),
    ("deploy-no-port", "deploy {d}/m.mnb", "deploy needs --port", False),
    ("deploy-bad-port", "deploy {d}/m.mnb --port /dev/micronn-none", "/dev/micronn-none", False),
    # ---- freeze
    ("freeze-missing", "freeze {d}/none.mnb -o {d}/f.py", "{d}/none.mnb: No such file", False),
    ("freeze-not-blob", "freeze {d}/m.tflite -o {d}/f.py", "not a micronn blob", False),
    ("freeze-out-no-folder", "freeze {d}/m.mnb -o {d}/nowhere/f.py", "cannot write {d}/nowhere/f.py", False),
    ("freeze-out-is-folder", "freeze {d}/m.mnb -o {d}/folder.tflite", "Is a directory", False),
    ("freeze-out-proc", "freeze {d}/m.mnb -o {proc}", "cannot write {proc}", False),
    # ---- firmware (all refused before anything is built or flashed)
    ("firmware-board", "firmware build --board nosuch", "unknown board 'nosuch'", False),
    ("firmware-tree", "firmware build --micropython {d}/folder.tflite", "not a MicroPython source tree", False),
    ("firmware-freeze", "firmware build --freeze {d}/none.py", "none.py: no such module to freeze", False),
    ("firmware-jobs", "firmware build -j 0", "--jobs: must be at least 1", False),
    ("flash-unix", "firmware flash --board unix", "unix is not flashed", False),
    ("flash-romfs-missing", "firmware flash --board stm32:NUCLEO_F446RE --romfs {d}/none.romfs", "none.romfs: no such",
     False),
    ("flash-romfs-only", "firmware flash --board esp32:ESP32_GENERIC --romfs-only", "--romfs-only needs --romfs",
     False),
    # ---- exec, repl, board, natmod (nothing is started: each is refused first)
    ("exec-missing", "exec {d}/none.py", "{d}/none.py: No such file", False),
    ("exec-folder", "exec {d}/folder.tflite", "Is a directory", False),
    ("exec-target", "exec {d}/two.txt --target nosuch", "unknown target 'nosuch'", False),
    ("repl-target", "repl --target nosuch", "unknown target 'nosuch'", False),
    ("board-not-qemu", "board start --target nosuch", "only QEMU boards run in the background", False),
    ("board-romfs-missing", "board start --target qemu-m4 --romfs {d}/none.romfs", "none.romfs: No such", False),
    ("board-flash-folder", "board start --target qemu-m4 --flash {d}/folder.tflite", "not a file", False),
    ("board-stop-unknown", "board stop micronn-no-such-board", "no board 'micronn-no-such-board'", False),
    ("install-target", "install --target nosuch", "unknown target 'nosuch'", False),
    ("install-not-running", "install --target qemu-m4", "no qemu-m4 board is running: start one with", False),
    ("install-unix", "install --target unix", "the unix port imports micronn.mpy from MICROPYPATH", False),
    ("install-port", "install --port {d}/none.tty", "cannot open", False),
    ("install-arch", "install --port {d}/none.tty --arch foo", "invalid choice: 'foo'", False),
    ("natmod-tree", "natmod build --micropython {d}/folder.tflite", "not a MicroPython source tree", False),
    ("natmod-jobs", "natmod build -j 0", "--jobs: must be at least 1", False),
    # ---- usage
    ("no-command", "", "required: COMMAND", False),
    ("unknown-command", "pak {d}/m.tflite", "invalid choice: 'pak'", False),
    ("unknown-option", "inspect {d}/m.mnb --jason", "unrecognized arguments: --jason", False),
]


def _keras_model(inputs: int, outputs: int, seed: int):
    import keras

    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((inputs,)), keras.layers.Dense(outputs)])


def make_inputs(d: Path) -> None:
    """The models and bad inputs the table refers to, in folder d."""
    from micronn import pack
    from micronn.convert import keras_to_tflite

    rng = np.random.default_rng(0)
    calib = rng.normal(size=(16, 4)).astype(np.float32)
    m = _keras_model(4, 3, 1)
    m.save(d / "m.keras")
    tfl = keras_to_tflite(m, calib)
    (d / "m.tflite").write_bytes(tfl)
    (d / "other_in.tflite").write_bytes(keras_to_tflite(_keras_model(6, 3, 2), rng.normal(size=(16, 6))))
    (d / "other_out.tflite").write_bytes(keras_to_tflite(_keras_model(4, 5, 3), calib))
    data = pack(tfl)
    (d / "m.mnb").write_bytes(data)
    (d / "saved").mkdir()
    (d / "saved" / "m.mnb").write_bytes(data)
    (d / "cut.mnb").write_bytes(data[: len(data) // 2])
    damaged = bytearray(data)
    damaged[-1] ^= 0xFF
    (d / "damaged.mnb").write_bytes(damaged)
    (d / "bad_index.mnb").write_bytes(_with_io(data, 999))

    (d / "folder.tflite").mkdir()
    (d / "junk.tflite").write_bytes(bytes(64))
    (d / "model.onnx").write_bytes(b"onnx")
    (d / "binary.txt").write_bytes(bytes([0xFF, 0xFE, 0x81]) + bytes(range(256)))
    (d / "nul.txt").write_bytes(b"cat\x00\x00dog\n")
    (d / "two.txt").write_text("cat\ndog\n")

    np.save(d / "calib.npy", calib)
    np.save(d / "x.npy", rng.integers(-128, 128, (2, 4), dtype=np.int8))
    np.save(d / "wide.npy", np.zeros((2, 7), np.float32))
    np.save(d / "strings.npy", np.array([["a"] * 4] * 2))
    np.save(d / "objects.npy", np.array([{}, None], dtype=object), allow_pickle=True)
    np.save(d / "empty.npy", np.zeros((0, 4), np.float32))
    np.save(d / "scalar.npy", np.float32(1))
    np.save(d / "nan.npy", np.full((4, 4), np.nan, np.float32))
    some_nan = calib.copy()
    some_nan[3, 2] = np.nan
    np.save(d / "some_nan.npy", some_nan)
    np.save(d / "inf.npy", np.full((4, 4), np.inf, np.float32))
    np.savez(d / "none.npz")
    np.savez(d / "only_x.npz", x=np.zeros((2, 4), np.int8))
    np.savez(d / "no_samples.npz", x=np.zeros((0, 4), np.int8), y=np.zeros(0))
    np.savez(d / "labels5.npz", x=np.zeros((2, 4), np.int8), y=np.zeros(5))
    np.savez(d / "labels_text.npz", x=np.zeros((2, 4), np.int8), y=np.array(["cat", "dog"]))
    np.savez(d / "labels_half.npz", x=np.zeros((2, 4), np.int8), y=np.array([0.5, 1.0]))
    np.savez(d / "one_hot.npz", x=np.zeros((2, 4), np.int8), y=np.eye(3)[:2])

    (d / "random.keras").write_bytes(np.random.default_rng(1).bytes(3000))
    (d / "random.h5").write_bytes(np.random.default_rng(2).bytes(3000))
    keras_bytes = (d / "m.keras").read_bytes()
    (d / "cut.keras").write_bytes(keras_bytes[: len(keras_bytes) // 2])
    with zipfile.ZipFile(d / "zip.keras", "w") as z:
        z.writestr("notes.txt", "no model in here")


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    """Every case run (a few at a time): id -> (CompletedProcess or None if skipped, expected text)."""
    pytest.importorskip("tensorflow")
    d = tmp_path_factory.mktemp("bad")
    make_inputs(d)
    subs = {"d": str(d), "proc": "/proc/micronn-cannot-create.out"}

    def one(case):
        name, args, expect, needs_unix = case
        if needs_unix and not UNIX:
            return name, None, None
        argv = [a.format(**subs) for a in args.split()]
        p = subprocess.run([str(MICRONN), *argv], capture_output=True, text=True, timeout=600, cwd=d,
                           env={**os.environ, "PYTHONWARNINGS": "ignore", "MICRONN_STATE_DIR": str(d / "boards")})
        return name, p, expect.format(**subs)

    slow = ("keras-zip-no-model", "calib-wrong-shape")     # first, so that they overlap the rest
    order = sorted(CASES, key=lambda c: c[0] not in slow)
    with ThreadPoolExecutor(max_workers=4) as pool:
        return {name: (p, expect) for name, p, expect in pool.map(one, order)}


def _with_io(data: bytes, index: int) -> bytes:
    """The blob with its graph input pointing at tensor ``index`` (CRC fixed up)."""
    b = bytearray(data)
    h = fmt.HEADER.unpack(b)
    for k in range(h["section_count"]):
        s = fmt.SECTION.unpack(b, h["header_size"] + k * fmt.SECTION.size)
        if s["id"] == fmt.SECTION_IDS["IO"]:
            struct.pack_into("<H", b, s["offset"], index)
    at = fmt.HEADER.offsets["crc32"]
    struct.pack_into("<I", b, at, zlib.crc32(b[at + 4:]))
    return bytes(b)


def test_table_covers_every_command():
    from micronn.cli import COMMANDS

    covered = {args.split()[0] for _, args, _, _ in CASES if args}
    assert covered >= set(COMMANDS), set(COMMANDS) - covered


@pytest.mark.parametrize("name", [c[0] for c in CASES])
def test_bad_input_is_one_clear_error(cases, name):
    p, expect = cases[name]
    if p is None:
        missing("unix firmware not built: run `make firmware-all`")
    err = p.stderr
    assert "Traceback" not in err, err
    assert p.returncode == 1, f"exit {p.returncode}\nstdout: {p.stdout}\nstderr: {err}"
    assert err.startswith("micronn: error: "), err
    assert err.count("\n") == 1, f"more than one line:\n{err}"
    assert expect in err, f"expected {expect!r} in:\n{err}"


def _long_blob() -> bytes:
    """A valid blob with 1,500 ops: its `inspect --json` is far longer than a pipe holds."""
    g = Graph()
    x = g.add(Tensor("x", "int8", (1, 8), 0.1, 0))
    table = g.const("table", np.arange(-128, 128, dtype=np.int8))
    for k in range(1500):
        y = g.add(Tensor(f"t{k}", "int8", (1, 8), 0.1, 0))
        g.ops.append(Op("LUT", [x, table], [y], dict(count=8)))
        x = y
    g.inputs, g.outputs = [0], [x]
    g.meta = {"NAME": "long"}
    return blob.write(g)


def test_inspect_into_head_stops_quietly(tmp_path):
    (tmp_path / "long.mnb").write_bytes(_long_blob())
    for extra in ("", "--json"):
        p = subprocess.run(["bash", "-c", f"'{MICRONN}' inspect long.mnb {extra} 2>err.txt | head -1; "
                            "echo ${PIPESTATUS[0]} >rc.txt"], capture_output=True, text=True, cwd=tmp_path,
                           timeout=300)
        assert p.stdout.count("\n") == 1 and p.stdout.startswith("{" if extra else "model 'long'"), p.stdout
        err = (tmp_path / "err.txt").read_text()
        assert err == "", err       # no traceback, nothing: the reader chose to stop
        # cut short (1) rather than finished (0): the output did outgrow the pipe
        assert (tmp_path / "rc.txt").read_text().strip() == "1"


def _odd_meta_blob() -> tuple[bytes, str, list[str]]:
    """A blob whose META section holds what the device accepts but the packer never
    writes: NAME and LABELS as BYTES, SOURCE_BYTES as text, a U32 of 3 bytes, an
    F32_ARRAY of 5 bytes, an unknown key and an unknown type."""
    def entry(key: int, typ: int, raw: bytes) -> bytes:
        return fmt.META_ENTRY.pack(key=key, type=typ, size=len(raw)) + raw + bytes(-len(raw) % 4)

    k, t = fmt.META_KEYS, fmt.META_TYPES
    meta = b"".join([
        entry(k["NAME"], t["BYTES"], "odd name é".encode()),
        entry(k["LABELS"], t["BYTES"], b"cat\ndog\nbird\nfish"),
        entry(k["SOURCE_BYTES"], t["UTF8"], b"1234"),
        entry(k["ARENA_LOWER_BOUND"], t["U32"], b"\x01\x02\x03"),
        entry(k["PACKER"], t["F32_ARRAY"], b"\x00\x00\x80\x3f\x01"),
        entry(200, t["UTF8"], b"a key from a newer minor version"),
        entry(k["INPUT_NAMES"], 77, b"\x00\x01"),
    ])
    # a blob whose META section has exactly this size, then the section replaced
    from .test_format import _graph

    g = _graph()
    lb_entry = fmt.META_ENTRY.size + 4       # blob.write adds ARENA_LOWER_BOUND (a U32)
    g.meta = {"NAME": "x" * (len(meta) - fmt.META_ENTRY.size - lb_entry)}
    b = bytearray(blob.write(g))
    h = fmt.HEADER.unpack(b)
    for n in range(h["section_count"]):
        s = fmt.SECTION.unpack(b, h["header_size"] + n * fmt.SECTION.size)
        if s["id"] == fmt.SECTION_IDS["META"]:
            assert s["size"] == len(meta)
            b[s["offset"]:s["offset"] + s["size"]] = meta
    at = fmt.HEADER.offsets["crc32"]
    struct.pack_into("<I", b, at, zlib.crc32(b[at + 4:]))
    return bytes(b), "odd name é", ["cat", "dog", "bird", "fish"]


def test_inspect_reads_unusual_metadata_as_the_device_does(tmp_path):
    data, name, labels = _odd_meta_blob()
    (tmp_path / "odd.mnb").write_bytes(data)
    out = micropython("import micronn\nm = micronn.Model(open('odd.mnb', 'rb').read())\n"
                      "print(repr(m.name)); print(repr(m.labels))", tmp_path)
    dev_name, dev_labels = out.strip().splitlines()[-2:]
    assert eval(dev_name) == name and eval(dev_labels) == labels     # the device loads it, reads them

    p = subprocess.run([str(MICRONN), "inspect", "odd.mnb", "--json"], capture_output=True, text=True, cwd=tmp_path)
    assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr
    info = json.loads(p.stdout)
    assert info["name"] == name
    assert info["labels"] == labels
    assert info["source_bytes"] is None and info["arena_lower_bound"] is None   # not numbers: not shown as such
    assert info["packer"] is not None
    p = subprocess.run([str(MICRONN), "inspect", "odd.mnb"], capture_output=True, text=True, cwd=tmp_path)
    assert p.returncode == 0 and p.stderr == "", p.stderr
    assert "labels            cat, dog, bird, fish" in p.stdout
