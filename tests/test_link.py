"""The serial link against a QEMU board's pty, driven exactly as a USB serial
port: `micronn deploy` (mpremote's file copy) then `micronn run --port`."""

from __future__ import annotations

import time

import numpy as np
import pytest

from micronn import blob as blobmod
from micronn import pack
from micronn.link import DeviceError
from micronn.reference import tflm_run
from micronn.targets import QemuBoard, SerialTarget

from .conftest import need_firmware, need_shared
from .test_cli import cli
from .test_format import GRAPH_KNOWN, _graph

BOARD = "qemu-m3"


@pytest.fixture
def board():
    need_firmware(BOARD)
    b = QemuBoard(BOARD)
    yield b
    b.kill()


def test_deploy_then_run_by_port(tmp_path, board):
    model = need_shared("models", "tflm_micro_speech_int8.tflite")
    blob = tmp_path / "speech.mnb"
    blob.write_bytes(pack(model))
    rc, so, se = cli("deploy", blob, "--port", board.pty)
    assert rc == 0, se
    assert f"copied to {board.pty}:/speech.mnb" in so

    x = np.random.default_rng(4).integers(-128, 128, size=(5, 1960), dtype=np.int8)
    np.save(tmp_path / "x.npy", x)
    rc, so, se = cli("run", ":speech.mnb", "--port", board.pty, "--input", tmp_path / "x.npy",
                     "-o", tmp_path / "y.npy")
    assert rc == 0, se
    y = np.load(tmp_path / "y.npy")
    assert np.array_equal(y, tflm_run(model.read_bytes(), x).reshape(y.shape))
    # The same port again: the file is still on the board's filesystem.
    rc, so, se = cli("run", ":/speech.mnb", "--port", board.pty, "--input", tmp_path / "x.npy")
    assert rc == 0, se


def test_link_throughput_and_round_trip(board):
    """Over the pty: the small blob's outputs worked out by hand, hello_world's equal to
    TFLite Micro's for 50 inputs; and for the record, bytes per second and the round trip."""
    model = need_shared("models", "tflm_hello_world_int8.tflite")
    with SerialTarget(board.pty, name=BOARD) as t:
        t.setup()
        t.serve()
        t.link.load(blobmod.write(_graph()))
        for x, want in GRAPH_KNOWN.items():
            y, _ = t.link.run(x)
            assert np.frombuffer(y, np.int8).tolist() == want, f"input {list(x)}"
        payload = bytes(range(256)) * 256                     # 64 KiB echoed by ping
        t0 = time.perf_counter()
        t.link.ping(payload)
        dt = time.perf_counter() - t0
        t.link.load(pack(model))
        n = 50
        t0 = time.perf_counter()
        got = [t.link.run(bytes([i]))[0] for i in range(n)]
        rtt = (time.perf_counter() - t0) / n
    want = tflm_run(model.read_bytes(), np.arange(n, dtype=np.int8).reshape(n, 1))
    assert np.array_equal(np.frombuffer(b"".join(got), np.int8), want.reshape(-1))
    assert len(set(got)) > n // 2                        # the input reaches the output
    kbs = 2 * len(payload) / 1024 / dt
    print(f"\n{BOARD} over a pty: {kbs:.1f} KB/s (64 KiB each way), hello_world round trip {rtt * 1000:.2f} ms")
    assert kbs > 1 and rtt < 1


def test_server_errors_are_replies(board):
    """Every exception while serving a request comes back as a DeviceError with the board's
    type and message (no model yet, a missing file, a bad blob, a wrong input length), and the
    next request works."""
    good = blobmod.write(_graph())
    with SerialTarget(board.pty, name=BOARD) as t:
        t.setup()
        t.serve()
        for request, message in [(lambda: t.link.run(bytes(8)), "no model"),
                                 (lambda: t.link.open("/no/such.mnb"), "OSError"),
                                 (lambda: t.link.load(b"MNNB" + bytes(60)), "ValueError: micronn:"),
                                 (lambda: t.link.load(good) and t.link.run(bytes(3)),
                                  "ValueError: input of 3 bytes; the model takes 8")]:
            with pytest.raises(DeviceError) as e:
                request()
            assert message in str(e.value), str(e.value)
        x, want = next(iter(GRAPH_KNOWN.items()))
        assert np.frombuffer(t.link.run(x)[0], np.int8).tolist() == want


def test_eval_streams_a_dataset_through_the_board(tmp_path):
    """`micronn eval`: the course's flow (send a sample, get the label back) as one command."""
    need_firmware(BOARD)
    model = need_shared("models", "tflm_micro_speech_int8.tflite")
    blob = tmp_path / "speech.mnb"
    blob.write_bytes(pack(model))
    x = np.random.default_rng(9).integers(-128, 128, size=(12, 1960), dtype=np.int8)
    labels = tflm_run(model.read_bytes(), x).reshape(12, -1).argmax(axis=1)
    labels[:3] = (labels[:3] + 1) % 4          # three wrong labels: 75% expected
    np.savez(tmp_path / "test.npz", x=x, y=labels)
    rc, so, se = cli("eval", blob, "--data", tmp_path / "test.npz", "--target", BOARD, "--json")
    assert rc == 0, se
    r = __import__("json").loads(so)
    assert r["samples"] == 12 and r["correct"] == 9
