"""Real boards (ESP32, STM32): board folders and profiles, the ports' own builds
run against MicroPython's source (dry runs where the tree lacks its submodules,
a real build with MICRONN_FULL_MICROPY), the firmware build's checks, flashing
commands, the compile check and `micronn inspect --board`."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import micronn
from micronn import cross, firmware, fit, romfs
from micronn.cli import main
from micronn.errors import MicronnError

from .conftest import ROOT, micropython, need_firmware, need_shared

STM32 = ["NUCLEO_F446RE", "NUCLEO_H743ZI", "B_L475E_IOT01A"]
ESP32 = ["ESP32_GENERIC", "ESP32_GENERIC_S3", "ESP32_GENERIC_C3"]
REAL = [f"stm32:{b}" for b in STM32] + [f"esp32:{b}" for b in ESP32]
QEMU = ["qemu-m3", "qemu-m4", "qemu-stm32f405", "qemu-m7", "qemu-rv32"]
MODELS = ["mlperf_tiny_ic_resnet8", "mlperf_tiny_kws_dscnn", "tflm_hello_world_int8", "tflm_micro_speech_int8",
          "tflm_person_detection_int8"]
STRIPPED = firmware.DEFAULT_MICROPY
CMODULE = ROOT / "cmodule"
DEVICE_MODULES = sorted(p.name for p in (ROOT / "device").glob("*.py") if p.name != "manifest.py")


def need_stripped_tree() -> Path:
    if not (STRIPPED / "py" / "mkrules.mk").exists():
        pytest.skip(f"{STRIPPED} is absent: run make setup")
    return STRIPPED


def need_tool(name: str) -> str:
    exe = shutil.which(name)
    if exe is None:
        pytest.skip(f"{name} is not installed (tools/setup-apt.sh)")
    return exe


def module_sources() -> list[Path]:
    """Every C source of the module, as found on disk."""
    return sorted(CMODULE.rglob("*.c"))


def _up(n: int, blk: int) -> int:
    return -(-n // blk) * blk


def gc_heap(start: int, end: int, blk: int = 16) -> int:
    """The GC heap (what micropython.mem_info() prints as total) MicroPython makes of
    the RAM [start, end): end rounded down to a block; one gap byte; per 4 blocks one
    allocation-table byte, per 8 blocks one finaliser-table byte (py/gc.c); the rest
    whole blocks."""
    span = (end & ~(blk - 1)) - start
    table = (span - 1) * 8 // (8 + 4 + 8 * 4 * blk)
    return table * 4 * blk


# --- profiles -------------------------------------------------------------

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
    if prof["port"] == "stm32":
        assert isinstance(prof.get("static_ram"), int) and prof["static_ram"] % 16 == 0


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


@pytest.mark.parametrize("board", REAL + QEMU)
def test_module_fallback_is_the_measured_module(board):
    """The figures used without a cross compiler are those the compiler gives: the
    same struct sizes, and code within 10% (the code changes; the structs must not
    drift unnoticed)."""
    need_stripped_tree()
    prof = firmware.profile(board)
    if cross.compiler(prof["family"]) is None:
        pytest.skip(f"no compiler for {prof['family']}")
    m = cross.module_sizes(prof["family"])
    fb = prof["module_fallback"]
    assert (fb["model_object"], fb["op_record"]) == (m["model_object"], m["op_record"])
    assert abs(fb["code"] - m["code"]) <= m["code"] // 10, (fb["code"], m["code"])


# --- the ports' own builds, dry run ---------------------------------------

def _empty(d: Path) -> bool:
    return not any(p.is_file() for p in d.rglob("*"))


def _dry_run(board: str, mp: Path, build: Path, *goals: str, env=None) -> tuple[str, list[str]]:
    """`make -n` of the command `micronn firmware build` runs (firmware.make_command).
    The tree may lack its lib/ submodules (Debian's does): a file the port's rules
    need from such an absent submodule (a folder of lib/ without files) is taken as
    present (make --assume-old); anything else missing fails. Returns make's output
    and the files taken as present."""
    cmd = firmware.make_command(board, mp, build)
    port = Path(cmd[cmd.index("-C") + 1])
    assumed: list[str] = []
    for _ in range(10):
        p = subprocess.run([cmd[0], "-n", "-k", *cmd[1:], *[f"--assume-old={f}" for f in assumed], *goals],
                           capture_output=True, text=True, timeout=300, env=env)
        lacking = re.findall(r"No rule to make target '([^']+)'", p.stderr)
        if not lacking:
            break
        for f in lacking:
            path = Path(os.path.normpath(port / f))
            rel = path.relative_to(mp).parts if path.is_relative_to(mp) else ()
            assert rel[:1] == ("lib",) and _empty(mp / "lib" / rel[1]), \
                f"the port's make cannot make {f}, which no absent submodule explains:\n{p.stderr}"
            assumed.append(f)
    assert p.returncode == 0, p.stderr
    assert not build.exists(), "a dry run writes nothing"
    return p.stdout, assumed


def _commands(out: str) -> list[list[str]]:
    """The recipe lines make printed, as argument lists (without the `|| echo` tails)."""
    cmds = []
    for line in out.replace("\\\n", " ").splitlines():
        line = line.split(" || ", 1)[0]
        try:
            cmds.append(shlex.split(line))
        except ValueError:
            continue
    return [c for c in cmds if c]


def _compiles(out: str) -> dict[str, list[str]]:
    """source -> the compile command, for every C file the build compiles."""
    return {c[-1]: c for c in _commands(out) if c[0].endswith("gcc") and "-c" in c and c[-1].endswith(".c")}


def _frozen(port: Path, makemanifest: list[str], env=None) -> tuple[dict[str, str], list[str]]:
    """What the manifest of a makemanifest.py command freezes: MicroPython's own
    manifest reader (tools/manifestfile.py) run with the command's variables. A
    micropython-lib package the tree leaves out (Debian's has almost none) is listed
    as absent instead of stopping the reading. Returns (frozen name -> file, absent)."""
    args = makemanifest[[a.endswith("makemanifest.py") for a in makemanifest].index(True) + 1:]
    variables = {}
    for i, a in enumerate(args):
        if a == "-v":
            name, value = args[i + 1].split("=", 1)
            variables[name] = str((port / value).resolve()) if (port / value).exists() else value
    script = (
        "import json, sys\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "import manifestfile\n"
        "absent = []\n"
        "class Reader(manifestfile.ManifestFile):\n"
        "    def require(self, name, *a, **k):\n"
        "        try:\n"
        "            super().require(name, *a, **k)\n"
        "        except ValueError:\n"
        "            absent.append(name)\n"
        "r = Reader(manifestfile.MODE_FREEZE, json.loads(sys.argv[2]))\n"
        "r.execute(sys.argv[3])\n"
        "print(json.dumps([{f.target_path: f.full_path for f in r.files()}, absent]))\n")
    tools = port.parents[1] / "tools"
    p = subprocess.run([sys.executable, "-c", script, str(tools), json.dumps(variables), args[-1]], cwd=port,
                       capture_output=True, text=True, timeout=60, env=env)
    assert p.returncode == 0, p.stderr
    files, absent = json.loads(p.stdout)
    return files, absent


@pytest.mark.parametrize("board", STM32)
def test_stm32_make_finds_the_pins(board, tmp_path):
    """The port's pattern rule for genhdr/pins.h wants $(BOARD_DIR)/pins.csv; with
    micronn's folder it runs make-pins.py on the original board's pins and af table."""
    mp = need_stripped_tree()
    build = tmp_path / "build"
    out, assumed = _dry_run(f"stm32:{board}", mp, build, str(build / "genhdr" / "pins.h"))
    assert assumed == []
    port = mp / "ports" / "stm32"
    (pins,) = [c for c in _commands(out) if c[1:2] and c[1].endswith("make-pins.py")]
    assert (port / pins[pins.index("--board-csv") + 1]).resolve() == port / "boards" / board / "pins.csv"
    assert (port / pins[pins.index("--af-csv") + 1]).is_file()
    assert pins[pins.index("--output-header") + 1] == str(build / "genhdr" / "pins.h")


@pytest.mark.parametrize("board", STM32)
def test_stm32_make_builds_micronn_into_the_firmware(board, tmp_path):
    """The whole default goal of the port's make, dry run: micronn's sources are
    compiled with the family's flags (the kernels at -O2), linked with micronn.ld into
    the firmware file the profile names; the frozen manifest is micronn's and freezes
    device/; the board's configuration is the original's plus ROMFS."""
    mp = need_stripped_tree()
    name = f"stm32:{board}"
    prof = firmware.profile(name)
    folder = firmware.board_dir(name)
    build = tmp_path / "build"
    out, assumed = _dry_run(name, mp, build)
    assert all(a.startswith("../../lib/stm32lib/") for a in assumed), assumed
    port = mp / "ports" / "stm32"
    cmds = _commands(out)
    cc = _compiles(out)
    flags = cross.FAMILIES[prof["family"]]["flags"]
    objects = []
    for src in module_sources():
        cmd = cc.get(str(src))
        assert cmd is not None, f"{src.name} is not compiled"
        assert set(flags) <= set(cmd), f"{src.name}: {set(flags) - set(cmd)} missing"
        opt = [a for a in cmd if re.fullmatch(r"-O\w*", a)][-1]
        assert opt == ("-O2" if src.parent.name == "kernels" else "-Os"), (src.name, opt)
        obj = cmd[cmd.index("-o") + 1]
        assert obj.startswith(str(build / "cmodule"))
        objects.append(obj)
    (link,) = [c for c in cmds if "-o" in c and c[c.index("-o") + 1] == str(build / "firmware.elf")]
    assert f"-T{folder / 'micronn.ld'}" in link
    assert set(objects) | {str(build / "frozen_content.o")} <= set(link)
    assert any(str(build / prof["firmware"]) in c and "objcopy" in c[0] for c in cmds)
    (manifest,) = [c for c in cmds if any(a.endswith("makemanifest.py") for a in c)]
    assert manifest[-1] == str(folder / "manifest.py")
    assert str(build / "frozen_content.c") in cc
    frozen, _ = _frozen(port, manifest)
    for m in DEVICE_MODULES:
        assert frozen.get(m) == str(ROOT / "device" / m), m
    # The board's configuration header, as the port's compile of the module sees it.
    include = [a for a in cc[str(CMODULE / "modmicronn.c")] if a.startswith(("-I", "-D"))]

    def macros(header: str) -> dict[str, str]:
        p = subprocess.run([need_tool("arm-none-eabi-gcc"), "-E", "-dM", *include, "-x", "c", "-"], cwd=port,
                           input=f'#include "{header}"\n', capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        return dict(re.findall(r"^#define (\S+) ?(.*)$", p.stdout, re.M))

    ours, base = macros("mpconfigboard.h"), macros(f"boards/{board}/mpconfigboard.h")
    assert {k: ours.get(k) for k in base} == base
    assert ours["MICROPY_HW_ROMFS_ENABLE_INTERNAL_FLASH"] == ours["MICROPY_HW_ROMFS_ENABLE_PART0"] == "(1)"


def test_firmware_build_freezes_a_model_module(tmp_path):
    """--freeze MODULE.py (MICRONN_FREEZE) adds the module to what the board freezes."""
    mp = need_stripped_tree()
    model = tmp_path / "mymodel.py"
    model.write_text("BLOB = b''\n")
    out, _ = _dry_run("stm32:NUCLEO_F446RE", mp, tmp_path / "build")
    (manifest,) = [c for c in _commands(out) if any(a.endswith("makemanifest.py") for a in c)]
    port = mp / "ports" / "stm32"
    frozen, _ = _frozen(port, manifest, env={**os.environ, "MICRONN_FREEZE": str(model)})
    assert frozen["mymodel.py"] == str(model)
    plain, _ = _frozen(port, manifest, env={k: v for k, v in os.environ.items() if k != "MICRONN_FREEZE"})
    assert "mymodel.py" not in plain and set(DEVICE_MODULES) <= set(plain)


def _idf_command(board: str, mp: Path, build: Path) -> dict[str, str]:
    out, _ = _dry_run(board, mp, build)
    (idf,) = [c for c in _commands(out) if c[0] == "idf.py"]
    assert idf[idf.index("-B") + 1] == str(build) and idf[-1] == "build"
    defs = {}
    for i, a in enumerate(idf):
        if a.startswith("-D"):
            name, value = (a[2:] or idf[i + 1]).split("=", 1)
            defs[name] = value
    return defs


@pytest.mark.parametrize("board", ESP32)
def test_esp32_port_reads_the_board_folder(board, tmp_path):
    """The esp32 port's make hands idf.py micronn's folder and module; the port's own
    CMakeLists.txt, run with cmake up to ESP-IDF (absent here: the first and only
    error is ESP-IDF's project.cmake), includes the original board, freezes micronn's
    manifest and ends its sdkconfig with micronn's partition table."""
    mp = need_stripped_tree()
    need_tool("cmake")
    name = f"esp32:{board}"
    folder = firmware.board_dir(name)
    defs = _idf_command(name, mp, tmp_path / "build")
    assert defs["MICROPY_BOARD_DIR"] == str(folder) and defs["MICROPY_BOARD"] == board
    assert defs["USER_C_MODULES"] == str(CMODULE / "micropython.cmake")
    port = mp / "ports" / "esp32"
    idf = tmp_path / "no-esp-idf"
    idf.mkdir()
    cm = tmp_path / "cmake"
    trace = tmp_path / "trace.json"
    p = subprocess.run(["cmake", "-S", str(port), "-B", str(cm), *[f"-D{k}={v}" for k, v in defs.items()],
                        "--trace-expand", "--trace-format=json-v1", f"--trace-redirect={trace}"],
                       env={**os.environ, "IDF_PATH": str(idf)}, capture_output=True, text=True, timeout=300)
    assert p.returncode != 0 and p.stderr.count("CMake Error") == 1, p.stderr
    assert f"{idf}/tools/cmake/project.cmake" in p.stderr
    steps = [s for s in map(json.loads, trace.read_text().splitlines()) if "cmd" in s]
    included = [Path(s["args"][0]).resolve() for s in steps if s["cmd"] == "include"]
    assert folder / "mpconfigboard.cmake" in included
    assert port / "boards" / board / "mpconfigboard.cmake" in included
    manifest = [s["args"][1:] for s in steps if s["cmd"] == "set" and s["args"][0] == "MICROPY_FROZEN_MANIFEST"]
    assert manifest[-1] == [str(folder / "manifest.py")]
    combined = (cm / "sdkconfig.combined").read_text()
    table = re.findall(r'^CONFIG_PARTITION_TABLE_CUSTOM_FILENAME="(.*)"$', combined, re.M)[-1]
    assert Path(table).resolve() == _partitions(board)[0]
    frozen, _ = _frozen(port, ["makemanifest.py", "-v", f"MPY_DIR={mp}", "-v", f"PORT_DIR={port}",
                               "-v", f"BOARD_DIR={folder}", "-v", f"MPY_LIB_DIR={mp / 'lib/micropython-lib'}",
                               str(folder / "manifest.py")])
    for m in DEVICE_MODULES:
        assert frozen.get(m) == str(ROOT / "device" / m), m


def test_esp32_module_sources_as_micropython_gathers_them(tmp_path):
    """MicroPython's py/usermod.cmake (which the esp32 port includes) finds every
    C source of the module through the USER_C_MODULES the build passes."""
    mp = need_stripped_tree()
    need_tool("cmake")
    defs = _idf_command("esp32:ESP32_GENERIC", mp, tmp_path / "build")
    (tmp_path / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.12)\nproject(micronn_usermod_check NONE)\n"
        f"include({mp}/py/usermod.cmake)\n"
        'message("micronn-sources=${MICROPY_SOURCE_USERMOD}")\n')
    p = subprocess.run(["cmake", "-S", str(tmp_path), "-B", str(tmp_path / "b"),
                        f"-DUSER_C_MODULES={defs['USER_C_MODULES']}"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "Found User C Module(s): usermod_micronn" in p.stderr
    sources = re.search(r"^micronn-sources=(.*)$", p.stderr, re.M).group(1).split(";")
    assert sorted(Path(s) for s in sources) == module_sources()


# --- flash layouts ----------------------------------------------------------

def _memory(ld: Path) -> dict[str, tuple[int, int]]:
    regions = {}
    for name, origin, length in re.findall(r"^\s*(\w+)\s*\([rwx]+\)\s*:\s*ORIGIN\s*=\s*(0x[0-9A-Fa-f]+),\s*"
                                           r"LENGTH\s*=\s*(\d+)K", ld.read_text(), re.M):
        regions[name] = (int(origin, 16), int(length) * 1024)
    return regions


def _symbols(elf: Path) -> dict[str, int]:
    nm = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True).stdout
    return {f[2]: int(f[0], 16) for f in (line.split() for line in nm.splitlines()) if len(f) == 3}


@pytest.mark.parametrize("board", STM32)
def test_stm32_linker_script_matches_profile(board, tmp_path):
    """The flash map of micronn.ld is the profile's, the linked ROMFS and filesystem
    symbols say the same, and the profile's heap is the GC heap MicroPython makes of
    the RAM between static data (the profile's static_ram, measured on a real build)
    and the end the linker script gives the heap."""
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
    # link an empty program, its static data ending where the profile says, and
    # read the symbols the port uses
    need_tool("arm-none-eabi-ld")
    (tmp_path / "e.c").write_text("int micronn_empty;\n")
    subprocess.run(["arm-none-eabi-gcc", "-c", str(tmp_path / "e.c"), "-o", str(tmp_path / "e.o")], check=True)
    ram = mem["RAM"][0]
    subprocess.run(["arm-none-eabi-ld", "-T", str(ld), f"--defsym=_ebss={ram + prof['static_ram']:#x}",
                    "--defsym=_estack_reserve=8", str(tmp_path / "e.o"), "-o", str(tmp_path / "e.elf")], check=True)
    sym = _symbols(tmp_path / "e.elf")
    assert sym["_micropy_hw_romfs_part0_start"] == prof["romfs"]["base"]
    assert sym["_micropy_hw_romfs_part0_size"] == prof["romfs"]["size"]
    assert sym["_micropy_hw_internal_flash_storage_start"] == prof["filesystem"]["base"]
    assert sym["_micropy_hw_internal_flash_storage_end"] == prof["filesystem"]["base"] + prof["filesystem"]["size"]
    assert prof["heap"] == gc_heap(sym["_heap_start"], sym["_heap_end"])


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
def test_esp32_partitions_match_profile(board):
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


# --- what a tree lacks ------------------------------------------------------

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
    assert "Debian's MicroPython source" in err
    assert "git clone https://github.com/micropython/micropython" in err
    assert f"make -C ports/{port} BOARD={name} submodules" in err
    if port == "stm32":
        series = firmware.profile(board)["mcu"][5:7]
        assert f"lib/stm32lib (ST's CMSIS device headers and STM32{series} HAL" in err
    else:
        assert "ESP-IDF: IDF_PATH is not set" in err and "esp-idf.git" in err
        assert f"install.sh {firmware.profile(board)['chip']}" in err
    assert not any(tmp_path.iterdir()), "nothing is built before the checks pass"


def _tree_without_submodules(root: Path) -> Path:
    """A MicroPython tree of the stripped source's py/ and ports/ with empty lib/ folders."""
    mp = need_stripped_tree()
    root.mkdir()
    for d in ("py", "ports", "mpy-cross"):
        (root / d).symlink_to(mp / d)
    for d in ("micropython-lib", "stm32lib", "cmsis"):
        (root / "lib" / d).mkdir(parents=True)
    return root


def test_missing_parts_of_a_git_checkout(tmp_path, monkeypatch, capsys):
    """A git checkout lacking submodules is told to fetch them in place."""
    need_tool("git")
    tree = _tree_without_submodules(tmp_path / "micropython")
    subprocess.run(["git", "init", "-q", str(tree)], check=True)
    monkeypatch.setenv("MICRONN_BUILD", str(tmp_path / "build"))
    assert main(["firmware", "build", "--board", "stm32:NUCLEO_F446RE", "--micropython", str(tree)]) == 1
    err = capsys.readouterr().err
    assert "a git checkout without the submodules lib/micropython-lib, lib/stm32lib, lib/cmsis" in err
    assert f"cd {tree}\n  make -C ports/stm32 BOARD=NUCLEO_F446RE submodules" in err
    assert f"--micropython {tree}" in err
    assert "Debian" not in err and "git clone" not in err
    assert not (tmp_path / "build").exists()


def test_missing_parts_of_a_tree_that_is_no_checkout(tmp_path, monkeypatch, capsys):
    tree = _tree_without_submodules(tmp_path / "micropython")
    monkeypatch.setenv("MICRONN_BUILD", str(tmp_path / "build"))
    assert main(["firmware", "build", "--board", "stm32:NUCLEO_H743ZI", "--micropython", str(tree)]) == 1
    err = capsys.readouterr().err
    assert "not a git checkout, so `make submodules` cannot fetch lib/micropython-lib, lib/stm32lib" in err
    assert "lib/lwip (lwIP" in err and "lib/mbedtls (mbedTLS" in err
    assert "git clone https://github.com/micropython/micropython" in err and "Debian" not in err


def test_esp_idf_version_is_checked(tmp_path, monkeypatch):
    """ESP-IDF found through IDF_PATH and PATH, its version read from its own cmake file."""
    mp = need_stripped_tree()
    idf = tmp_path / "esp-idf"
    (idf / "tools/cmake").mkdir(parents=True)
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin/idf.py").write_text("#!/bin/sh\n")
    (tmp_path / "bin/idf.py").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("IDF_PATH", str(idf))
    for version, ok in (((5, 2, 2), True), ((5, 4, 1), True), ((5, 5, 0), False), ((5, 1, 4), False)):
        (idf / "tools/cmake/version.cmake").write_text(
            "".join(f"set(IDF_VERSION_{k} {v})\n" for k, v in zip(("MAJOR", "MINOR", "PATCH"), version, strict=True)))
        idf_lines = [x for x in firmware.missing("esp32:ESP32_GENERIC_S3", mp) if "ESP-IDF" in x]
        shown = ".".join(map(str, version))
        assert idf_lines == ([] if ok else [f"ESP-IDF v5.2 to v5.4 (MicroPython 1.25 supports 5.2, 5.2.2, 5.3, "
                                            f"5.4); IDF_PATH={idf} is version {shown}"])


# --- flashing ---------------------------------------------------------------

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


def _object_bytes(obj: Path) -> int:
    """text + data of an object, as arm-none-eabi-size reports them."""
    out = subprocess.run([need_tool("arm-none-eabi-size"), str(obj)], capture_output=True, text=True,
                         check=True).stdout
    text, data = out.splitlines()[1].split()[:2]
    return int(text) + int(data)


@pytest.fixture(scope="module")
def port_objects(tmp_path_factory):
    """board -> {source: text + data bytes} of the module's plain-C sources compiled
    by the stm32 port's own compile commands (its dry run gives them; the binding
    needs generated headers only a full tree makes)."""
    made: dict[tuple[str, int], dict[str, int]] = {}

    def get(board: str) -> dict[str, int]:
        key = (board, hash(tuple(p.read_bytes() for p in sorted(CMODULE.rglob("*")) if p.is_file())))
        if key not in made:
            mp = need_stripped_tree()
            need_tool("arm-none-eabi-gcc")
            build = tmp_path_factory.mktemp(board.replace(":", "-")) / "build"
            out, _ = _dry_run(board, mp, build)
            sizes = {}
            for src in module_sources():
                if src.name == "modmicronn.c":
                    continue
                cmd = _compiles(out)[str(src)]
                obj = Path(cmd[cmd.index("-o") + 1])
                obj.parent.mkdir(parents=True, exist_ok=True)
                p = subprocess.run(cmd, cwd=mp / "ports/stm32", capture_output=True, text=True)
                assert p.returncode == 0 and not p.stderr.strip(), p.stderr
                sizes[src.name] = _object_bytes(obj)
            made[key] = sizes
        return made[key]
    return get


@pytest.mark.parametrize("board", ["stm32:NUCLEO_F446RE", "stm32:NUCLEO_H743ZI"])
def test_module_size_is_what_the_port_compiles(board, port_objects):
    """cross.py measures the objects the port builds: each plain-C source's size
    equals its size compiled by the port's own command line."""
    ported = port_objects(board)
    measured = cross.module_sizes(firmware.profile(board)["family"])["files"]
    assert {n: measured[n] for n in ported} == ported


def _expected(data: bytes, board: str, module_code: int, structs: dict, heap: int | None = None) -> dict:
    """fit()'s figures and verdicts from the parts: the blob's bytes, the arena and op
    count the blob declares, the module's code and struct sizes, the profile."""
    prof = firmware.profile(board)
    info = micronn.inspect(data)
    ram = (_up(structs["model_object"], 16) + _up(max(len(info["ops"]), 1) * structs["op_record"], 16)
           + _up(info["arena_bytes"], 16))
    fw = prof["firmware_estimate"] + module_code
    image = len(romfs.build({f"{info['name']}.mnb": data}))
    region, fs, rom = prof["firmware_region"]["size"], prof["filesystem"]["size"], prof["romfs"]["size"]
    heap = prof["heap"] if heap is None else heap
    need = {"file": ram + 16 + _up(len(data) + 1, 16), "romfs": ram, "frozen": ram}
    flash = {"file": [(fw, region), (len(data), fs)], "romfs": [(fw, region), (image, rom)],
             "frozen": [(fw + len(data) + fit.FROZEN_OVERHEAD, region)]}
    fits = [m for m in fit.DEPLOYS if need[m] <= heap and all(n <= a for n, a in flash[m])]
    return {"ram": ram, "fw": fw, "image": image, "need": need, "flash": flash, "fits": fits, "heap": heap}


def _module_code(board: str, port_objects) -> tuple[int, dict]:
    """The module's code on the board's core: the port-compiled plain-C objects plus
    the binding as cross.py compiles it, and the struct sizes."""
    m = cross.module_sizes(firmware.profile(board)["family"])
    return sum(port_objects(board).values()) + m["files"]["modmicronn.c"], m


@pytest.mark.parametrize("board", ["stm32:B_L475E_IOT01A", "stm32:NUCLEO_H743ZI"])
@pytest.mark.parametrize("model", MODELS)
def test_fit_numbers_by_hand(blobs, port_objects, board, model):
    """Every figure and verdict of fit() from the parts."""
    data = blobs[model]
    code, structs = _module_code(board, port_objects)
    e = _expected(data, board, code, structs)
    prof = firmware.profile(board)
    assert len(data) < e["image"] <= len(data) + 128
    r = fit.fit(data, board)
    assert r["module"]["code"] == code and r["model_ram"]["total"] == e["ram"]
    assert r["blob_bytes"] == len(data) and r["heap"] == prof["heap"]
    d = r["deployments"]
    for mode in fit.DEPLOYS:
        assert [(f["needed"], f["available"]) for f in d[mode]["flash"]] == e["flash"][mode], mode
        assert d[mode]["heap_needed"] == e["need"][mode] and d[mode]["heap_left"] == prof["heap"] - e["need"][mode]
        assert d[mode]["fits"] == (mode in e["fits"]) and bool(d[mode]["reasons"]) != d[mode]["fits"]
    assert r["fits"] == e["fits"]


def test_reasons_name_the_figures(blobs, port_objects):
    """Person detection (a 250 KB blob) on the L475 (128 KB filesystem, 512 KB
    firmware region): the reasons carry the figures that fail."""
    board = "stm32:B_L475E_IOT01A"
    prof = firmware.profile(board)
    data = blobs["tflm_person_detection_int8"]
    code, structs = _module_code(board, port_objects)
    e = _expected(data, board, code, structs)
    assert len(data) > prof["filesystem"]["size"]
    assert e["fw"] + len(data) + fit.FROZEN_OVERHEAD > prof["firmware_region"]["size"]
    d = fit.fit(data, board)["deployments"]
    assert f"file needs {len(data):,} B, the filesystem has {prof['filesystem']['size']:,} B" in d["file"]["reasons"]
    assert d["frozen"]["reasons"] == [f"firmware needs {e['fw'] + len(data) + fit.FROZEN_OVERHEAD:,} B, "
                                      f"the firmware region has {prof['firmware_region']['size']:,} B"]
    if e["need"]["file"] > prof["heap"]:
        short = e["need"]["file"] - prof["heap"]
        assert (f"heap needs {e['need']['file']:,} B, the board has {prof['heap']:,} B ({short:,} B short)"
                in d["file"]["reasons"])
    # a measured heap replaces the profile's
    small = fit.fit(blobs["tflm_micro_speech_int8"], board, heap=4096)
    assert small["heap_source"] == "--heap"
    assert small["fits"] == _expected(blobs["tflm_micro_speech_int8"], board, code, structs, heap=4096)["fits"] == []


def test_inspect_board_cli(blobs, port_objects, tmp_path, capsys):
    board = "stm32:B_L475E_IOT01A"
    data = blobs["tflm_person_detection_int8"]
    code, structs = _module_code(board, port_objects)
    e = _expected(data, board, code, structs)
    blob = tmp_path / "pd.mnb"
    blob.write_bytes(data)
    assert main(["inspect", str(blob), "--board", board]) == 0
    out = capsys.readouterr().out
    for mode in fit.DEPLOYS:
        verdict = "fits" if mode in e["fits"] else "does not fit"
        assert re.search(rf"^{mode}\s.*\s{verdict}$", out, re.M), mode
    assert f"fits as: {', '.join(e['fits'])}" in out
    assert f"does not fit as file: file needs {len(data):,} B" in out
    assert main(["inspect", str(blob), "--board", "B_L475E_IOT01A", "--json"]) == 0
    j = json.loads(capsys.readouterr().out)
    assert j["fits"] == e["fits"] and j["board"] == board
    assert j["deployments"]["romfs"]["heap_left"] == j["heap"] - e["ram"]
    assert main(["inspect", str(blob), "--board", "unix"]) == 1
    assert "no flash or RAM limits" in capsys.readouterr().err


def test_model_ram_is_what_the_module_reports(blobs, tmp_path):
    """fit's heap figure for a loaded model, with the struct sizes measured by
    compiling, equals Model.ram_size on the unix firmware (64-bit, 32-byte blocks)."""
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


HEAP_PROBE = """
import gc, micronn
def probe(path):
    f = open(path, 'rb')
    m = blob = None
    gc.collect()
    a = gc.mem_free()
    m = micronn.Model(f)
    gc.collect()
    b = gc.mem_free()
    in_place = (a - b, m.ram_size, m.arena_size)
    m = None
    gc.collect()
    a = gc.mem_free()
    blob = f.read()
    gc.collect()
    b = gc.mem_free()
    m = micronn.Model(blob)
    gc.collect()
    c = gc.mem_free()
    return in_place + (a - b, b - c, m.ram_size)
"""


@pytest.mark.parametrize("board", ["qemu-m3", "qemu-m4"])
def test_model_heap_on_a_32_bit_board(blobs, board):
    """On qemu-m3 and qemu-m4 (16-byte GC blocks, the struct sizes of every 32-bit
    board): the heap a model takes, measured with gc.mem_free(), is Model.ram_size
    and fit's figure, for a blob used in place from ROMFS and one read into RAM
    (which adds the bytes object fit counts)."""
    from micronn.targets import QemuTarget

    need_firmware(board)
    prof = firmware.profile(board)
    module = fit.module_figures(prof)
    assert module["source"].startswith("measured")
    small = {m: b for m, b in blobs.items() if len(b) < 300_000}
    with QemuTarget(board, romfs=romfs.build({f"{m}.mnb": b for m, b in small.items()})) as t:
        assert t.setup()["romfs"] is True
        t.exec(HEAP_PROBE)
        got = {m: [int(x) for x in t.exec(f"print(*probe('/rom/{m}.mnb'))").split()] for m in small}
    for m, data in small.items():
        taken, ram_size, arena, read, taken_ram, ram_size_ram = got[m]
        r = fit.fit(data, board)
        assert arena == r["arena_bytes"], m
        assert taken == ram_size == r["deployments"]["romfs"]["heap_needed"], (m, taken, ram_size)
        assert taken_ram == ram_size_ram == ram_size, m
        assert read + taken_ram == r["deployments"]["file"]["heap_needed"], (m, read)


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


# --- a real build (a full MicroPython checkout) ------------------------------

FULL = os.environ.get("MICRONN_FULL_MICROPY")


@pytest.mark.parametrize("board", STM32)
def test_stm32_firmware_really_builds(board, tmp_path, monkeypatch):
    """With MICRONN_FULL_MICROPY=DIR (MicroPython 1.25.0 with lib/stm32lib,
    micropython-lib, lwip, mbedtls): `micronn firmware build` links the firmware,
    which holds the module and the frozen device/ modules, compiles micronn's
    sources without a warning, fits the firmware region and fit's estimate, and
    leaves at least the profile's heap."""
    if not FULL or not (Path(FULL) / "lib/stm32lib/README.md").exists():
        pytest.skip("set MICRONN_FULL_MICROPY to a full MicroPython 1.25.0 checkout for the real STM32 builds")
    need_tool("arm-none-eabi-gcc")
    name = f"stm32:{board}"
    prof = firmware.profile(name)
    monkeypatch.setenv("MICRONN_BUILD", str(tmp_path))
    hexfile = firmware.build(name, FULL)
    assert hexfile == tmp_path / name.replace(":", "-") / prof["firmware"] and hexfile.stat().st_size > 0
    elf = hexfile.with_name("firmware.elf")
    log = (hexfile.parent / "build.log").read_text()
    ours = [line for line in log.splitlines() if "warning" in line.lower() and str(ROOT) in line]
    assert ours == []
    size = subprocess.run(["arm-none-eabi-size", str(elf)], capture_output=True, text=True, check=True).stdout
    text, data = map(int, size.splitlines()[1].split()[:2])
    assert text + data <= prof["firmware_region"]["size"]
    assert text + data <= prof["firmware_estimate"] + cross.module_sizes(prof["family"])["code"]
    sym = _symbols(elf)
    module = re.search(r"MP_REGISTER_MODULE\(MP_QSTR_micronn, (\w+)\)", (CMODULE / "modmicronn.c").read_text())
    assert module.group(1) in sym
    strings = subprocess.run(["strings", str(elf)], capture_output=True, text=True).stdout.split()
    assert set(DEVICE_MODULES) <= set(strings)
    ram = _memory(firmware.board_dir(name) / "micronn.ld")["RAM"][0]
    assert sym["_heap_start"] - ram <= prof["static_ram"]
    assert prof["heap"] <= gc_heap(sym["_heap_start"], sym["_heap_end"])
    print(f"\n{board}: text {text:,} B, data {data:,} B, static RAM {sym['_heap_start'] - ram:,} B, "
          f"GC heap {gc_heap(sym['_heap_start'], sym['_heap_end']):,} B")


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
