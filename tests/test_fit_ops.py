"""`micronn inspect --board` estimates the module `firmware build --ops-from` the blob would
build (host/micronn/opsizes.py, boards/opsizes.json): the table still matches what the cross
compiler gives for today's sources, the estimate is close to (and never below) the module a
real qemu-m4 --ops-from firmware links for ResNet-8, and on the NUCLEO-F446RE, where the
full module does not fit, inspect says what the --ops-from firmware would take.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

from micronn import fit, opset, opsizes
from micronn.cli import main
from micronn.errors import MicronnError

from .conftest import need_firmware, need_shared

BOARD = "qemu-m4"
F446 = "stm32:NUCLEO_F446RE"
RESNET_OPS = ["FULLY_CONNECTED", "SOFTMAX", "CONV_2D", "AVERAGE_POOL_2D", "ADD"]


@pytest.fixture(scope="module")
def resnet(tmp_path_factory):
    """ResNet-8 (MLPerf Tiny image classification) packed: its file."""
    from micronn import pack

    p = tmp_path_factory.mktemp("fit") / "resnet8.mnb"
    p.write_bytes(pack(need_shared("models", "mlperf_tiny_ic_resnet8.tflite").read_bytes(), name="resnet8"))
    return p


def _compiler_or_skip(family):
    from micronn import cross

    if cross.compiler(family) is None or cross._micropython() is None:
        from .conftest import missing

        missing(f"the {family} cross compiler or MicroPython's source is absent")


@pytest.mark.parametrize("family", ["cortex-m4", "cortex-m4f"])
def test_table_matches_the_compiler_today(family):
    """boards/opsizes.json against a fresh measurement of the base and of a few ops: a C change
    that moves them by more than 2% (and 64 B) needs `python -m micronn.opsizes --write`."""
    _compiler_or_skip(family)
    table = opsizes.load_table()["families"][family]
    fresh = opsizes.measure_family(family, items=["CONV_2D", "SOFTMAX", "ADD", "ADD_DIRECT"])

    def close(a, b):
        return abs(a - b) <= max(64, 0.02 * b)

    assert close(table["base_bytes"], fresh["base_bytes"]), (table["base_bytes"], fresh["base_bytes"])
    for op, d in fresh["ops"].items():
        got = sum(d["add"].values()) + sum(d["grow"].values())
        kept = sum(table["ops"][op]["add"].values()) + sum(table["ops"][op]["grow"].values())
        assert close(kept, got), (op, kept, got)
    for v, d in fresh["variants"].items():
        got = sum(d["add"].values()) + sum(d["grow"].values())
        kept = sum(table["variants"][v]["add"].values()) + sum(table["variants"][v]["grow"].values())
        assert close(kept, got) and got > 0, (v, kept, got)
    assert set(table["ops"]) == set(opsizes.fmt.OPCODES) and set(table["variants"]) == set(opset.FALLBACKS)


def test_estimate_near_the_compilers_own_link():
    """The table's sum for ResNet-8's ops against the module compiled and linked for them."""
    _compiler_or_skip("cortex-m4")
    est = opsizes.estimate("cortex-m4", RESNET_OPS)["bytes"]
    with tempfile.TemporaryDirectory() as tmp:
        exact = sum(opsizes.Measurer("cortex-m4", Path(tmp)).sections(RESNET_OPS).values())
    assert exact <= est <= 1.05 * exact, (est, exact)


def test_estimate_against_a_real_ops_from_firmware(resnet):
    """qemu-m4 firmware built --ops-from ResNet-8 (build/qemu-m4-ops-HASH/, shared with
    tools/bench.py's ops_sizes()): the module the linker kept (.text + .rodata of cmodule/'s
    objects, link map). The estimate is never below it and at most 12% above: it counts the
    binding's messages uncompressed (the ports compress MicroPython's ROM text: about 1.8 KB
    on this module) and each op's loader checks as compiled alone (the compiler inlines helpers
    there that the combined build shares)."""
    need_firmware(BOARD)
    from micronn.firmware import build

    ops = opset.ops_from([resnet])
    assert ops == RESNET_OPS
    exe = build(BOARD, jobs=2, ops=ops)
    real = opset.module_size(opset.map_file(exe))
    real = real["text"] + real["rodata"]
    est = fit.fit(resnet, BOARD)["ops_from"]
    assert est["ops"] == ops and real <= est["module_code"] <= 1.12 * real, (est["module_code"], real)
    full = opset.module_size(opset.map_file(need_firmware(BOARD)))
    assert est["module_code"] < 0.5 * (full["text"] + full["rodata"])


@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    """CMSIS-NN's CIFAR-10 example network (examples/cifar10-cmsis: conv 32/16/32 @5x5, max pools,
    fully connected, softmax; 33 K weights), random weights, packed: its file."""
    import numpy as np

    from micronn import pack
    from micronn.convert import keras_to_tflite

    from .zoo import keras

    keras.utils.set_random_seed(10)
    L = keras.layers
    m = keras.Sequential([
        L.Input((32, 32, 3)),
        L.Conv2D(32, 5, padding="same", activation="relu"), L.MaxPooling2D(3, strides=2, padding="same"),
        L.Conv2D(16, 5, padding="same", activation="relu"), L.MaxPooling2D(3, strides=2, padding="same"),
        L.Conv2D(32, 5, padding="same", activation="relu"), L.MaxPooling2D(3, strides=2, padding="same"),
        L.Flatten(), L.Dense(10), L.Softmax()])
    calib = np.random.default_rng(3).random((16, 32, 32, 3), dtype=np.float32)
    p = tmp_path_factory.mktemp("fit") / "cifar10.mnb"
    p.write_bytes(pack(keras_to_tflite(m, calib), name="cifar10"))
    return p


def _f446(path):
    """fit() on the NUCLEO-F446RE, its ops_from part checked against its parts."""
    r = fit.fit(path, F446)
    region = r["firmware_region"]
    assert all("firmware region" in " ".join(row["reasons"]) for row in r["deployments"].values())
    o = r["ops_from"]
    assert "error" not in o, o
    data = Path(path).read_bytes()
    assert set(o["ops"]) == opset.ops_of_blob(data) | opset.fallbacks_of_blob(data)
    assert o["module_code"] == opsizes.estimate("cortex-m4f", o["ops"])["bytes"]
    assert o["firmware"] == r["firmware_estimate"] + o["module_code"]
    assert o["firmware_left"] == region - o["firmware"] > 0
    assert o["module_code"] < 0.5 * r["module"]["code"]
    assert o["deployments"]["frozen"]["flash"][0]["needed"] == o["firmware"] + len(data) + fit.FROZEN_OVERHEAD
    assert o["fits"] == [m for m in fit.DEPLOYS if o["deployments"][m]["fits"]]
    return r, o


def _says(o: dict, region: int) -> str:
    return (f"does not fit beside MicroPython in the firmware region; built with --ops-from (ops "
            f"{', '.join(o['ops'])}) it would be about {o['module_code'] / 1024:,.1f} KiB and fits: firmware "
            f"{o['firmware']:,} B of {region:,} B, leaving {o['firmware_left'] / 1024:,.1f} KiB")


def test_f446re_text_for_cifar10(cifar, capsys):
    """NUCLEO-F446RE, the CIFAR-10 network: the full module does not fit beside MicroPython;
    built --ops-from the blob the firmware fits and so does the model, every way; --json too."""
    r, o = _f446(cifar)
    assert o["fits"] == list(fit.DEPLOYS), o
    assert main(["inspect", str(cifar), "--board", F446]) == 0
    out = capsys.readouterr().out
    assert _says(o, r["firmware_region"]) in out, out
    assert f"  micronn firmware build --board {F446} --ops-from {cifar}\n" in out
    assert "with that firmware the model fits as: file, romfs, frozen" in out
    assert main(["inspect", str(cifar), "--board", F446, "--json"]) == 0
    j = json.loads(capsys.readouterr().out)
    assert j["ops_from"] == json.loads(json.dumps(o)) and j["fits"] == []


def test_f446re_text_for_resnet8(resnet, capsys):
    """ResNet-8 on the NUCLEO-F446RE: the --ops-from firmware fits, the model (85 KB of blob)
    still does not, and inspect says why for each way."""
    r, o = _f446(resnet)
    assert o["ops"] == RESNET_OPS and o["fits"] == []
    assert main(["inspect", str(resnet), "--board", F446]) == 0
    out = capsys.readouterr().out
    assert _says(o, r["firmware_region"]) in out, out
    assert "with that firmware the model still does not fit:" in out
    assert "  not as romfs: ROMFS image needs" in out and "the ROMFS partition has 65,536 B" in out


def test_a_family_without_figures_says_so():
    with pytest.raises(MicronnError, match="no figures for nosuch"):
        opsizes.estimate("nosuch", ["CONV_2D"])
    with pytest.raises(MicronnError, match="no figure for BOGUS on cortex-m4"):
        opsizes.estimate("cortex-m4", ["BOGUS"])
