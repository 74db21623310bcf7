"""The QEMU tier: every board boots real MicroPython firmware, is reached over a
pty exactly like a USB serial port (pyserial, mpremote's raw REPL, the framed
server), and runs models from a ROMFS image in its emulated flash."""

from __future__ import annotations

import os

import numpy as np
import pytest

from micronn import pack, romfs
from micronn.firmware import firmware_file, profile
from micronn.reference import tflm_run
from micronn.run import sample_inputs
from micronn.targets import QemuTarget

from .conftest import shared_dir

BOARDS = ["qemu-m3", "qemu-m4", "qemu-stm32f405", "qemu-m7", "qemu-rv32"]
ZOO_CASES = ["mnist_cnn", "digits8x8_cnn", "cifar10_cmsis", "fire_modules", "se_block", "residual_add",
             "conv1d", "dw_mult8_single_channel", "gap_keepdims", "float_io_cnn", "head_tanh"]
MATRIX: dict[str, dict[str, str]] = {}


@pytest.fixture(scope="session")
def models():
    """name -> (tflite bytes, blob): the shared models and some of the generated zoo."""
    out = {}
    for p in sorted((shared_dir() / "models").glob("*.tflite")):
        data = p.read_bytes()
        out[p.stem] = (data, pack(data, name=p.stem))
    if os.environ.get("MICRONN_QEMU_ZOO", "1") == "1":
        from .test_zoo import convert_case

        for name in ZOO_CASES:
            tfl = convert_case(name)
            out[name] = (tfl, pack(tfl, name=name))
    if not out:
        pytest.skip("no models (shared folder absent and zoo disabled)")
    return out


def _inputs(name, blob, tfl):
    x = sample_inputs(blob, samples=4, seed=3)
    return x, tflm_run(tfl, x)


def _images(models, size):
    """Pack the blobs into as few ROMFS images of at most `size` bytes as needed."""
    bins: list[dict[str, bytes]] = []
    for name, (_, b) in sorted(models.items(), key=lambda kv: -len(kv[1][1])):
        for files in bins:
            if len(romfs.build({**files, f"{name}.mnb": b})) <= size:
                files[f"{name}.mnb"] = b
                break
        else:
            assert len(romfs.build({f"{name}.mnb": b})) <= size, f"{name} alone does not fit the ROMFS partition"
            bins.append({f"{name}.mnb": b})
    return bins


@pytest.mark.parametrize("board", BOARDS)
def test_models_on_board(board, models):
    if not firmware_file(board).exists():
        pytest.skip(f"{board} firmware not built: run `make firmware-all`")
    row = MATRIX.setdefault(board, {})
    prof = profile(board)
    if prof["heap"] < 512 * 1024:
        # A small heap fragments as models come and go: one model per boot, as a device would run.
        images = [{f"{n}.mnb": b} for n, (_, b) in models.items()]
    else:
        images = _images(models, prof["romfs"]["size"])
    for files in images:
        _run_image(board, romfs.build(files), {n[:-4]: models[n[:-4]] for n in files}, row)
    bad = {n: v for n, v in row.items() if v != "exact"}
    assert not bad, f"{board}: {bad}"


def _run_image(board, image, models, row):
    with QemuTarget(board, romfs=image) as t:
        assert t.setup()["romfs"] is True
        t.serve()
        for name, (tfl, blob) in models.items():
            info = t.link.open(f"/rom/{name}.mnb")
            # In place: the board's heap holds the arena and op records, not the weights.
            assert info["heap_used"] < info["arena_size"] + 8192 + 128 * len(info["ops"])
            x, want = _inputs(name, blob, tfl)
            dtype = np.float32 if info["output_dtype"] == "float32" else np.int8
            got = np.stack([np.frombuffer(t.link.run(np.ascontiguousarray(s).tobytes())[0], dtype) for s in x])
            same = np.array_equal(got.reshape(want.shape), want)
            row[name] = "exact" if same else f"DIFF {np.count_nonzero(got.reshape(want.shape) != want)}"
        # A small blob also over the link into RAM, as `micronn run` sends it.
        tfl, blob = min(models.values(), key=lambda m: len(m[1]))
        if len(blob) < 16384:
            assert t.link.load(blob)["blob_size"] == len(blob)


def test_person_detection_runs_from_flash_on_the_stm32(models):
    """128 KB of SRAM: the 250 KB blob stays in flash; the heap pays only for the arena."""
    if "tflm_person_detection_int8" not in models:
        pytest.skip("person_detection model absent")
    if not firmware_file("qemu-stm32f405").exists():
        pytest.skip("qemu-stm32f405 firmware not built")
    tfl, blob = models["tflm_person_detection_int8"]
    with QemuTarget("qemu-stm32f405", romfs=romfs.build({"person.mnb": blob})) as t:
        t.setup()
        t.serve()
        info = t.link.open("/rom/person.mnb")
        assert info["blob_size"] > 240_000
        assert info["arena_size"] <= info["heap_used"] < info["arena_size"] + 8192, info
        x, want = _inputs("person", blob, tfl)
        got = np.stack([np.frombuffer(t.link.run(s.tobytes())[0], np.int8) for s in x])
        assert np.array_equal(got.reshape(want.shape), want)
    print(f"\nperson_detection on qemu-stm32f405 from flash: blob {info['blob_size']:,} B, arena "
          f"{info['arena_size']:,} B, heap used by the model {info['heap_used']:,} B, "
          f"free after {info['mem_free']:,} B")


def test_print_board_matrix():
    if not MATRIX:
        pytest.skip("no board ran")
    names = sorted({n for row in MATRIX.values() for n in row})
    print("\n" + f"{'model':<30}" + "".join(f"{b:>16}" for b in MATRIX))
    for n in names:
        print(f"{n:<30}" + "".join(f"{MATRIX[b].get(n, '-'):>16}" for b in MATRIX))
