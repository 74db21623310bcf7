"""Real boards (ESP32, STM32): board folders and profiles, the firmware build's
checks, flashing commands, the compile check and `micronn inspect --board`."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import micronn
from micronn import cross, firmware, fit, romfs
from micronn.cli import main
from micronn.errors import MicronnError

from .conftest import ROOT, micropython, need_shared

STM32 = ["NUCLEO_F446RE", "NUCLEO_H743ZI", "B_L475E_IOT01A"]
ESP32 = ["ESP32_GENERIC", "ESP32_GENERIC_S3", "ESP32_GENERIC_C3"]
REAL = [f"stm32:{b}" for b in STM32] + [f"esp32:{b}" for b in ESP32]
QEMU = ["qemu-m3", "qemu-m4", "qemu-stm32f405", "qemu-m7", "qemu-rv32"]
MODELS = ["mlperf_tiny_ic_resnet8", "mlperf_tiny_kws_dscnn", "tflm_hello_world_int8", "tflm_micro_speech_int8",
          "tflm_person_detection_int8"]
STRIPPED = firmware.DEFAULT_MICROPY


def need_stripped_tree() -> Path:
    if not (STRIPPED / "py" / "mkrules.mk").exists():
        pytest.skip(f"{STRIPPED} is absent: run make setup")
    return STRIPPED


def need_tool(name: str) -> str:
    exe = shutil.which(name)
    if exe is None:
        pytest.skip(f"{name} is not installed (tools/setup-apt.sh)")
    return exe


# --- profiles and folders -------------------------------------------------

REGION = {"base": (int, type(None)), "size": int}
SCHEMA = {"name": str, "description": str, "port": str, "board": str, "mcu": str, "core": str, "family": str,
          "dsp": bool, "clock_hz": int, "flash": int, "ram": int, "heap": int, "heap_note": str,
          "firmware_region": dict, "romfs": dict, "filesystem": dict, "firmware_estimate": int,
          "module_fallback": dict, "firmware": str, "flash_tools": list}


@pytest.mark.parametrize("board", REAL + QEMU)
def test_profile_schema(board):
    prof = firmware.profile(board)
    for key, kind in SCHEMA.items():
        assert isinstance(prof.get(key), kind), f"{board}: {key} = {prof.get(key)!r}"
    for key in ("firmware_region", "romfs", "filesystem"):
        for k, kind in REGION.items():
            assert isinstance(prof[key][k], kind), f"{board}: {key}.{k}"
    assert prof["name"] == firmware.resolve(board) == board
    assert prof["family"] in cross.FAMILIES
    assert cross.FAMILIES[prof["family"]]["dsp"] == prof["dsp"]
    assert set(prof["module_fallback"]) == {"code", "model_object", "op_record"}
    # the regions are inside the chip's flash, and the heap inside its RAM
    used = prof["firmware_region"]["size"] + prof["romfs"]["size"] + prof["filesystem"]["size"]
    assert used <= prof["flash"] or prof["port"] == "qemu"
    assert 0 < prof["heap"] < prof["ram"]
    assert prof["firmware_estimate"] < prof["firmware_region"]["size"]


def test_qemu_profiles_keep_what_the_launcher_reads():
    for b in QEMU:
        prof = firmware.profile(b)
        assert prof["port"] == "qemu" and prof["firmware"] == "firmware.elf"
        assert {"system", "machine", "args"} <= set(prof["qemu"])
        assert prof["romfs"]["size"] > 0


def test_board_names():
    names = firmware.boards()
    assert set(REAL + QEMU + ["unix"]) <= set(names)
    assert firmware.resolve("qemu:qemu-m4") == "qemu-m4"
    assert firmware.resolve("NUCLEO_F446RE") == "stm32:NUCLEO_F446RE"
    assert firmware.resolve("ESP32_GENERIC_C3") == "esp32:ESP32_GENERIC_C3"
    assert firmware.profile("unix")["port"] == "unix"
    assert firmware.board_dir("stm32:B_L475E_IOT01A") == ROOT / "boards" / "stm32" / "B_L475E_IOT01A"
    for bad in ("stm32:ESP32_GENERIC", "esp32:qemu-m4", "NUCLEO_F999", "qemu"):
        with pytest.raises(MicronnError, match="unknown board"):
            firmware.resolve(bad)
    assert firmware.firmware_file("esp32:ESP32_GENERIC_S3").parent.name == "esp32-ESP32_GENERIC_S3"


@pytest.mark.parametrize("board", STM32)
def test_stm32_folder(board):
    d = ROOT / "boards" / "stm32" / board
    series = firmware.profile(f"stm32:{board}")["mcu"][5:7].lower()
    for f in ("board.json", "mpconfigboard.mk", "mpconfigboard.h", "manifest.py", "micronn.ld",
              f"stm32{series}xx_hal_conf.h"):
        assert (d / f).is_file(), f
    h = (d / "mpconfigboard.h").read_text()
    assert f'#include "boards/{board}/mpconfigboard.h"' in h
    assert "MICROPY_HW_ROMFS_ENABLE_INTERNAL_FLASH (1)" in h and "MICROPY_HW_ROMFS_ENABLE_PART0 (1)" in h
    assert 'include("../../../device/manifest.py")' in (d / "manifest.py").read_text()
    assert (d / "../../../device/manifest.py").resolve().is_file()


def _port_vars(mp: Path, board: str, names: list[str]) -> dict[str, str]:
    """Variables as MicroPython's stm32 Makefile sees them with micronn's board folder."""
    p = subprocess.run(["make", "-s", "-C", str(mp / "ports" / "stm32"), f"BOARD_DIR={ROOT / 'boards/stm32' / board}",
                        f"USER_C_MODULES={ROOT}", "BUILD=/nonexistent-micronn-build",
                        "--eval=micronn-print-%: ; @echo '$*=$($*)'"] + [f"micronn-print-{n}" for n in names],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return dict(line.split("=", 1) for line in p.stdout.splitlines() if "=" in line)


@pytest.mark.parametrize("board", STM32)
def test_stm32_folder_in_the_ports_makefile(board):
    """MicroPython's own stm32 Makefile reads the folder: the original board's
    settings and pins, micronn's linker script and manifest, the module's sources
    and the family's exact flags."""
    mp = need_stripped_tree()
    prof = firmware.profile(f"stm32:{board}")
    series = prof["mcu"][5:7].lower()
    v = _port_vars(mp, board, ["BOARD", "MCU_SERIES", "BOARD_PINS", "LD_FILES", "FROZEN_MANIFEST",
                               f"CFLAGS_MCU_{series}", "SRC_USERMOD_LIB_C", "SRC_USERMOD_C"])
    port = mp / "ports" / "stm32"
    assert v["BOARD"] == board and v["MCU_SERIES"] == series
    assert (port / v["BOARD_PINS"]).resolve() == (port / "boards" / board / "pins.csv").resolve()
    ld = v["LD_FILES"].split()
    assert ld[0] == str(ROOT / "boards/stm32" / board / "micronn.ld") and (port / ld[1]).is_file()
    assert v["FROZEN_MANIFEST"] == str(ROOT / "boards/stm32" / board / "manifest.py")
    assert set(cross.FAMILIES[prof["family"]]["flags"]) == set(v[f"CFLAGS_MCU_{series}"].split())
    assert str(ROOT / "cmodule/loader.c") in v["SRC_USERMOD_LIB_C"].split()
    assert v["SRC_USERMOD_C"].split() == [str(ROOT / "cmodule/modmicronn.c")]


def _memory(ld: Path) -> dict[str, tuple[int, int]]:
    regions = {}
    for name, origin, length in re.findall(r"^\s*(\w+)\s*\([rwx]+\)\s*:\s*ORIGIN\s*=\s*(0x[0-9A-Fa-f]+),\s*"
                                           r"LENGTH\s*=\s*(\d+)K", ld.read_text(), re.M):
        regions[name] = (int(origin, 16), int(length) * 1024)
    return regions


@pytest.mark.parametrize("board", STM32)
def test_stm32_linker_script_matches_profile(board, tmp_path):
    """The flash map of micronn.ld is the profile's, and the linked ROMFS and
    filesystem symbols say the same."""
    prof = firmware.profile(f"stm32:{board}")
    ld = ROOT / "boards/stm32" / board / "micronn.ld"
    mem = _memory(ld)
    text = mem.get("FLASH_TEXT", mem["FLASH"])
    assert text == (prof["firmware_region"]["base"], prof["firmware_region"]["size"])
    assert mem["FLASH_ROMFS"] == (prof["romfs"]["base"], prof["romfs"]["size"])
    assert mem["FLASH_FS"] == (prof["filesystem"]["base"], prof["filesystem"]["size"])
    flash = [(o, o + n) for k, (o, n) in mem.items() if k in ("FLASH_START", "FLASH_TEXT", "FLASH_ROMFS", "FLASH_FS")
             or (k == "FLASH" and "FLASH_TEXT" not in mem)]
    flash.sort()
    assert all(a[1] <= b[0] for a, b in zip(flash, flash[1:], strict=False)), "flash regions overlap"
    assert flash[-1][1] - 0x08000000 <= prof["flash"]
    # link an empty program to read the symbols the port uses
    need_tool("arm-none-eabi-ld")
    (tmp_path / "e.c").write_text("int micronn_empty;\n")
    subprocess.run(["arm-none-eabi-gcc", "-c", str(tmp_path / "e.c"), "-o", str(tmp_path / "e.o")], check=True)
    ram = mem["RAM"][0]
    subprocess.run(["arm-none-eabi-ld", "-T", str(ld), f"--defsym=_ebss={ram:#x}", "--defsym=_estack_reserve=8",
                    str(tmp_path / "e.o"), "-o", str(tmp_path / "e.elf")], check=True)
    nm = subprocess.run(["arm-none-eabi-nm", str(tmp_path / "e.elf")], capture_output=True, text=True).stdout
    sym = {f[2]: int(f[0], 16) for f in (line.split() for line in nm.splitlines()) if len(f) == 3}
    assert sym["_micropy_hw_romfs_part0_start"] == prof["romfs"]["base"]
    assert sym["_micropy_hw_romfs_part0_size"] == prof["romfs"]["size"]
    assert sym["_micropy_hw_internal_flash_storage_start"] == prof["filesystem"]["base"]
    assert sym["_micropy_hw_internal_flash_storage_end"] == prof["filesystem"]["base"] + prof["filesystem"]["size"]
    # the heap estimate leaves room for static data in the RAM the heap spans
    assert prof["heap"] < sym["_heap_end"] - ram


def _partitions(board: str) -> tuple[Path, dict[str, tuple[int, int]]]:
    d = ROOT / "boards/esp32" / board
    rel = re.search(r"set\(MICRONN_PARTITIONS (\S+)\)", (d / "mpconfigboard.cmake").read_text()).group(1)
    csv = (ROOT / "boards/esp32/common" / rel).resolve()
    parts = {}
    for line in csv.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            f = [x.strip() for x in line.split(",")]
            parts[f[0]] = (int(f[3], 16), int(f[4], 16))
    return csv, parts


@pytest.mark.parametrize("board", ESP32)
def test_esp32_folder_and_partitions(board):
    d = ROOT / "boards/esp32" / board
    for f in ("board.json", "mpconfigboard.cmake", "mpconfigboard.h", "manifest.py"):
        assert (d / f).is_file(), f
    assert f"set(MICRONN_BASE_BOARD {board})" in (d / "mpconfigboard.cmake").read_text()
    assert "MICROPY_VFS_ROM (1)" in (d / "mpconfigboard.h").read_text()
    prof = firmware.profile(f"esp32:{board}")
    csv, parts = _partitions(board)
    assert csv.is_file()
    assert parts["factory"] == (prof["firmware_region"]["base"], prof["firmware_region"]["size"])
    assert parts["romfs"] == (prof["romfs"]["base"], prof["romfs"]["size"])
    assert parts["vfs"] == (prof["filesystem"]["base"], prof["filesystem"]["size"])
    assert prof["romfs"]["base"] % 0x10000 == 0, "ROMFS is memory-mapped in 64 KiB pages"
    spans = sorted((o, o + n) for o, n in parts.values())
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False))
    assert spans[-1][1] == prof["flash"]


@pytest.mark.parametrize("board", ESP32)
def test_esp32_base_board_exists_in_micropython(board):
    mp = need_stripped_tree()
    base = mp / "ports/esp32/boards" / board
    assert (base / "mpconfigboard.cmake").is_file() and (base / "mpconfigboard.h").is_file()


# --- firmware build and flash ---------------------------------------------

@pytest.mark.parametrize("board", REAL)
def test_firmware_build_on_the_stripped_tree_says_what_is_missing(board, tmp_path, monkeypatch, capsys):
    mp = need_stripped_tree()
    monkeypatch.setenv("MICRONN_BUILD", str(tmp_path))
    monkeypatch.delenv("IDF_PATH", raising=False)
    port, name = board.split(":")
    assert main(["firmware", "build", "--board", board, "--micropython", str(mp)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"micronn: error: {board} firmware cannot be built from {mp}")
    assert "lib/micropython-lib" in err
    assert "git clone https://github.com/micropython/micropython" in err
    assert f"make -C ports/{port} BOARD={name} submodules" in err
    if port == "stm32":
        assert f"lib/stm32lib (ST's CMSIS device headers and STM32{name[7:9] if name[0] == 'N' else 'L4'}" in err
    else:
        assert "ESP-IDF: IDF_PATH is not set" in err and "esp-idf.git" in err
        assert f"install.sh {firmware.profile(board)['chip']}" in err
    assert not any(tmp_path.iterdir()), "nothing is built before the checks pass"


def _fake_checkout(root: Path, port: str, board: str) -> Path:
    """Just the files micronn checks for in a full MicroPython checkout."""
    for p in ("py/mkrules.mk", "lib/micropython-lib/python-stdlib/README", f"ports/{port}/boards/{board}/x",
              "lib/stm32lib/STM32F4xx_HAL_Driver/Inc/x", "lib/cmsis/inc/core_cm4.h",
              "lib/berkeley-db-1.xx/README", "lib/tinyusb/src/x"):
        (root / p).parent.mkdir(parents=True, exist_ok=True)
        (root / p).write_text("")
    return root


def _record_runs(monkeypatch, board: str) -> list[list[str]]:
    runs = []

    def run(cmd, what, log=None, cwd=None, env=None):
        runs.append(cmd)
        if "ports" in cmd[2]:
            out = firmware.firmware_file(board)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text("firmware")

    monkeypatch.setattr(firmware, "_run", run)
    return runs


def test_firmware_build_runs_the_stm32_make(tmp_path, monkeypatch):
    mp = _fake_checkout(tmp_path / "mp", "stm32", "NUCLEO_F446RE")
    monkeypatch.setenv("MICRONN_BUILD", str(tmp_path / "build"))
    runs = _record_runs(monkeypatch, "stm32:NUCLEO_F446RE")
    exe = firmware.build("stm32:NUCLEO_F446RE", mp, jobs=2)
    assert exe == tmp_path / "build" / "stm32-NUCLEO_F446RE" / "firmware.hex"
    make = runs[-1]
    assert make[:3] == ["make", "-C", str(mp / "ports/stm32")]
    assert f"BOARD_DIR={ROOT / 'boards/stm32/NUCLEO_F446RE'}" in make
    assert f"USER_C_MODULES={ROOT}" in make and f"BUILD={exe.parent}" in make


def test_firmware_build_runs_the_esp32_build_with_esp_idf(tmp_path, monkeypatch):
    mp = _fake_checkout(tmp_path / "mp", "esp32", "ESP32_GENERIC_S3")
    idf = tmp_path / "esp-idf"
    (idf / "tools/cmake").mkdir(parents=True)
    (idf / "tools/cmake/version.cmake").write_text(
        "set(IDF_VERSION_MAJOR 5)\nset(IDF_VERSION_MINOR 2)\nset(IDF_VERSION_PATCH 2)\n")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin/idf.py").write_text("#!/bin/sh\n")
    (tmp_path / "bin/idf.py").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("IDF_PATH", str(idf))
    monkeypatch.setenv("MICRONN_BUILD", str(tmp_path / "build"))
    runs = _record_runs(monkeypatch, "esp32:ESP32_GENERIC_S3")
    exe = firmware.build("esp32:ESP32_GENERIC_S3", mp)
    assert exe.name == "firmware.bin"
    make = runs[-1]
    assert make[:3] == ["make", "-C", str(mp / "ports/esp32")]
    assert f"USER_C_MODULES={ROOT / 'cmodule/micropython.cmake'}" in make
    assert f"BOARD_DIR={ROOT / 'boards/esp32/ESP32_GENERIC_S3'}" in make
    # an ESP-IDF MicroPython 1.25 does not support
    (idf / "tools/cmake/version.cmake").write_text(
        "set(IDF_VERSION_MAJOR 5)\nset(IDF_VERSION_MINOR 5)\nset(IDF_VERSION_PATCH 0)\n")
    with pytest.raises(MicronnError, match=r"ESP-IDF v5.2 to v5.4 .* is version 5.5.0"):
        firmware.build("esp32:ESP32_GENERIC_S3", mp)


def test_flash_commands(tmp_path):
    image = tmp_path / "models.romfs"
    image.write_bytes(bytes(1000))
    prof = firmware.profile("stm32:B_L475E_IOT01A")
    cmds = firmware.flash_commands("stm32:B_L475E_IOT01A", romfs=image)
    assert cmds == [["st-flash", "--reset", "write", str(image), hex(prof["romfs"]["base"])],
                    ["st-flash", "--reset", "--format", "ihex", "write",
                     str(firmware.firmware_file("stm32:B_L475E_IOT01A"))]]
    dfu = firmware.flash_commands("stm32:NUCLEO_F446RE", romfs=image, tool="dfu-util")
    assert dfu[0][-4:] == ["-s", "0x8010000", "-D", str(image)] and dfu[1][-3:-1] == [":leave", "-D"]
    assert dfu[1][-1].endswith("stm32-NUCLEO_F446RE/firmware.dfu")
    for board, offset in (("ESP32_GENERIC", "0x1000"), ("ESP32_GENERIC_S3", "0x0"), ("ESP32_GENERIC_C3", "0x0")):
        p = firmware.profile(board)
        (cmd,) = firmware.flash_commands(board, port="/dev/ttyACM0")
        assert cmd[:5] == ["esptool.py", "--chip", p["chip"], "--port", "/dev/ttyACM0"]
        assert cmd[-3:] == ["-z", offset, str(firmware.firmware_file(board))]
        (only,) = firmware.flash_commands(board, firmware=False, romfs=image)
        assert only[-2:] == [hex(p["romfs"]["base"]), str(image)]
    image.write_bytes(bytes(64 * 1024 + 1))
    with pytest.raises(MicronnError, match="ROMFS partition of stm32:NUCLEO_F446RE holds 65,536"):
        firmware.flash_commands("stm32:NUCLEO_F446RE", romfs=image)
    with pytest.raises(MicronnError, match="not flashed"):
        firmware.flash_commands("qemu-m4")
    with pytest.raises(MicronnError, match="flashed with esptool, not st-flash"):
        firmware.flash_commands("esp32:ESP32_GENERIC", tool="st-flash")


def test_flash_cli_prints_the_commands(capsys):
    assert main(["firmware", "flash", "--board", "esp32:ESP32_GENERIC_C3", "--port", "/dev/ttyACM1"]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("esptool.py --chip esp32c3 --port /dev/ttyACM1") and "write_flash -z 0x0" in out


# --- the compile check ----------------------------------------------------

def _compile_check(*args: str) -> subprocess.CompletedProcess:
    for f in cross.REAL_FAMILIES:
        need_tool(cross.FAMILIES[f]["prefix"] + "gcc")
    return subprocess.run([str(ROOT / "tools/compile-check.sh"), *args], capture_output=True, text=True,
                          timeout=600, cwd=ROOT)


def test_compile_check_passes_for_every_family():
    need_stripped_tree()
    p = _compile_check()
    assert p.returncode == 0, p.stdout + p.stderr
    for fam in cross.REAL_FAMILIES:
        line = next(x for x in p.stdout.splitlines() if x.startswith(fam + " "))
        assert line.endswith(" ok") and f"DSP {'yes' if cross.FAMILIES[fam]['dsp'] else 'no'}" in line
    assert "binding (modmicronn.c): compiled against MicroPython's py/ headers" in p.stdout


def test_compile_check_fails_on_a_warning(tmp_path):
    """A copy of a kernel with one unused variable fails the check, with the compiler's message."""
    src = (ROOT / "cmodule/kernels/reduce.c").read_text()
    bad = tmp_path / "reduce_warning.c"
    bad.write_text(src + "\nvoid micronn_warning_probe(void);\n"
                   "void micronn_warning_probe(void) {\n    int micronn_unused = 0;\n}\n")
    p = _compile_check("--family", "cortex-m4f", "--extra", str(bad))
    assert p.returncode == 1
    assert "cortex-m4f" in p.stdout and "FAILED (reduce_warning.c)" in p.stdout
    assert "unused variable 'micronn_unused'" in p.stdout and "-Werror=unused-variable" in p.stdout
    assert p.stdout.rstrip().endswith("compile check: FAILED")


# --- will it fit? ---------------------------------------------------------

@pytest.fixture(scope="module")
def blobs() -> dict[str, bytes]:
    models = need_shared("models")
    return {m: micronn.pack(str(models / f"{m}.tflite")) for m in MODELS}


def _up(n: int, blk: int) -> int:
    return -(-n // blk) * blk


@pytest.mark.parametrize("board", ["stm32:B_L475E_IOT01A", "stm32:NUCLEO_H743ZI"])
@pytest.mark.parametrize("model", MODELS)
def test_fit_numbers_by_hand(blobs, board, model):
    """Every figure of fit() from the profile, inspect() and the module's sizes on the core."""
    data = blobs[model]
    prof = firmware.profile(board)
    info = micronn.inspect(data)
    try:
        mod = cross.module_sizes(prof["family"])
    except MicronnError:
        mod = prof["module_fallback"]
    r = fit.fit(data, board)
    # 32-bit cores: GC blocks of 16 bytes
    ram = _up(mod["model_object"], 16) + _up(len(info["ops"]) * mod["op_record"], 16) + _up(info["arena_bytes"], 16)
    file_ram = ram + 16 + _up(info["blob_bytes"] + 1, 16)
    fw = prof["firmware_estimate"] + mod["code"]
    image = len(romfs.build({f"{info['name']}.mnb": data}))
    assert info["blob_bytes"] < image <= info["blob_bytes"] + 128
    assert r["module"]["code"] == mod["code"] and r["model_ram"]["total"] == ram
    assert r["blob_bytes"] == len(data) and r["arena_bytes"] == info["arena_bytes"]
    assert r["weights_bytes"] == info["const_bytes"] and r["heap"] == prof["heap"]
    d = r["deployments"]
    assert [f["needed"] for f in d["file"]["flash"]] == [fw, info["blob_bytes"]]
    assert [f["available"] for f in d["file"]["flash"]] == [prof["firmware_region"]["size"],
                                                            prof["filesystem"]["size"]]
    assert [f["needed"] for f in d["romfs"]["flash"]] == [fw, image]
    assert d["romfs"]["flash"][1]["available"] == prof["romfs"]["size"]
    assert [f["needed"] for f in d["frozen"]["flash"]] == [fw + info["blob_bytes"] + fit.FROZEN_OVERHEAD]
    assert d["file"]["heap_needed"] == file_ram and d["file"]["heap_left"] == prof["heap"] - file_ram
    assert d["romfs"]["heap_needed"] == d["frozen"]["heap_needed"] == ram
    assert d["file"]["fits"] == (file_ram <= prof["heap"] and info["blob_bytes"] <= prof["filesystem"]["size"]
                                 and fw <= prof["firmware_region"]["size"])
    assert d["romfs"]["fits"] == (ram <= prof["heap"] and image <= prof["romfs"]["size"])
    assert d["frozen"]["fits"] == (ram <= prof["heap"] and fw + info["blob_bytes"] + fit.FROZEN_OVERHEAD
                                   <= prof["firmware_region"]["size"])


def test_which_models_do_not_fit(blobs):
    """With the profiles' figures: the L475's 82 KiB heap cannot read ResNet-8 or
    person detection into RAM, and person detection overflows its 512 KB
    firmware region when frozen; the H743 takes every model every way."""
    l475 = {m: fit.fit(b, "stm32:B_L475E_IOT01A") for m, b in blobs.items()}
    h743 = {m: fit.fit(b, "stm32:NUCLEO_H743ZI") for m, b in blobs.items()}
    assert all(r["fits"] == list(fit.DEPLOYS) for r in h743.values())
    assert {m: r["fits"] for m, r in l475.items()} == {
        "mlperf_tiny_ic_resnet8": ["romfs", "frozen"],
        "mlperf_tiny_kws_dscnn": ["file", "romfs", "frozen"],
        "tflm_hello_world_int8": ["file", "romfs", "frozen"],
        "tflm_micro_speech_int8": ["file", "romfs", "frozen"],
        "tflm_person_detection_int8": ["romfs"],
    }
    pd = l475["tflm_person_detection_int8"]["deployments"]
    assert any(re.fullmatch(r"file needs 249,312 B, the filesystem has 131,072 B", x) for x in pd["file"]["reasons"])
    assert any(x.startswith("heap needs") and x.endswith("B short)") for x in pd["file"]["reasons"])
    assert pd["frozen"]["reasons"] == [f"firmware needs {pd['frozen']['flash'][0]['needed']:,} B, "
                                       "the firmware region has 524,288 B"]
    assert any(x.startswith("heap needs") for x in l475["mlperf_tiny_ic_resnet8"]["deployments"]["file"]["reasons"])
    # a measured heap replaces the estimate
    small = fit.fit(blobs["tflm_micro_speech_int8"], "stm32:B_L475E_IOT01A", heap=4096)
    assert small["fits"] == [] and small["heap_source"] == "--heap"


def test_inspect_board_cli(blobs, tmp_path, capsys):
    blob = tmp_path / "pd.mnb"
    blob.write_bytes(blobs["tflm_person_detection_int8"])
    assert main(["inspect", str(blob), "--board", "stm32:B_L475E_IOT01A"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^romfs\s+flash \(ROMFS\).*\bfits$", out, re.M)
    assert re.search(r"^frozen\s+flash \(firmware\).*does not fit$", out, re.M)
    assert "fits as: romfs" in out and "does not fit as file: file needs 249,312 B" in out
    assert main(["inspect", str(blob), "--board", "B_L475E_IOT01A", "--json"]) == 0
    j = json.loads(capsys.readouterr().out)
    assert j["fits"] == ["romfs"] and j["board"] == "stm32:B_L475E_IOT01A"
    assert j["deployments"]["romfs"]["heap_left"] == j["heap"] - j["model_ram"]["total"]
    assert main(["inspect", str(blob), "--board", "unix"]) == 1
    assert "no flash or RAM limits" in capsys.readouterr().err


def test_model_ram_is_what_the_module_reports(blobs, tmp_path):
    """fit's heap figure for a loaded model, with the struct sizes measured by
    cross-compiling, equals Model.ram_size on the real (unix, 64-bit) firmware."""
    need_tool("gcc")
    need_stripped_tree()
    prof = firmware.profile("unix")
    module = fit.module_figures(prof)
    assert module["source"].startswith("measured")
    script = []
    for m, data in blobs.items():
        (tmp_path / f"{m}.mnb").write_bytes(data)
        script.append(f"print({m!r}, micronn.Model(open('{m}.mnb', 'rb').read()).ram_size)")
    out = micropython("import micronn\n" + "\n".join(script), tmp_path)
    device = {m: int(n) for m, n in (line.split() for line in out.splitlines())}
    for m, data in blobs.items():
        assert fit.model_ram(micronn.inspect(data), prof, module)["total"] == device[m], m


def test_module_sizes_are_cached(tmp_path, monkeypatch):
    need_stripped_tree()
    need_tool("arm-none-eabi-gcc")
    monkeypatch.setenv("MICRONN_BUILD", str(tmp_path))
    a = cross.module_sizes("cortex-m7")
    cache = tmp_path / "codesize" / "cortex-m7.json"
    assert json.loads(cache.read_text())["code"] == a["code"] == sum(a["files"].values())
    assert set(a["files"]) == {p.name for p in cross.core_sources()} | {"modmicronn.c"}
    monkeypatch.setattr(cross, "compile_family", lambda *a, **k: pytest.fail("not cached"))
    assert cross.module_sizes("cortex-m7") == a


def test_fit_without_the_cross_compiler_uses_the_profile(blobs, monkeypatch, tmp_path):
    monkeypatch.setenv("MICRONN_BUILD", str(tmp_path))
    monkeypatch.setattr(cross, "compiler", lambda name: None)
    r = fit.fit(blobs["tflm_hello_world_int8"], "esp32:ESP32_GENERIC_S3")
    fallback = firmware.profile("esp32:ESP32_GENERIC_S3")["module_fallback"]
    assert r["module"]["code"] == fallback["code"] and "profile's figure" in r["module"]["source"]


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
