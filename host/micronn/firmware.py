"""Build MicroPython firmware with the micronn module for a board."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .errors import MicronnError

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MICROPY = ROOT / ".cache" / "micropython-1.25.0"
BOARDS_DIR = ROOT / "boards"


def build_root() -> Path:
    """Where firmware is built: $MICRONN_BUILD, else build/ in the checkout."""
    env = os.environ.get("MICRONN_BUILD")
    return Path(env).resolve() if env else ROOT / "build"


def _index() -> dict[str, Path]:
    """Board name -> folder: boards/NAME/board.json (unix, the QEMU boards) and
    boards/PORT/BOARD/board.json, named PORT:BOARD (esp32:ESP32_GENERIC_S3)."""
    found = {p.parent.name: p.parent for p in BOARDS_DIR.glob("*/board.json")}
    found.update({f"{p.parent.parent.name}:{p.parent.name}": p.parent for p in BOARDS_DIR.glob("*/*/board.json")})
    return found


def boards() -> list[str]:
    return sorted(_index())


def resolve(board: str) -> str:
    """The canonical name of a board: NAME, PORT:BOARD, PORT:NAME for a top-level
    board of that port (qemu:qemu-m4), or a BOARD name that only one port has."""
    index = _index()
    if board in index:
        return board
    if ":" in board:
        port, name = board.split(":", 1)
        if name in index and _read_profile(index[name]).get("port") == port:
            return name
    else:
        matches = [n for n in index if n.split(":")[-1] == board]
        if len(matches) == 1:
            return matches[0]
    raise MicronnError(f"unknown board {board!r} (available: {', '.join(boards())})")


def board_dir(board: str) -> Path:
    return _index()[resolve(board)]


def _read_profile(folder: Path) -> dict:
    import json

    return json.loads((folder / "board.json").read_text())


def profile(board: str) -> dict:
    """The machine-readable profile boards/.../board.json (schema: docs/boards.md)."""
    return _read_profile(board_dir(board))


def _out_dir(board: str) -> Path:
    return build_root() / resolve(board).replace(":", "-")


def firmware_file(board: str) -> Path:
    return _out_dir(board) / profile(board)["firmware"]


def ops_out_dir(board: str, ops) -> Path:
    """Where `firmware build --ops-from` builds ``board`` with only ``ops``:
    build/BOARD-ops-HASH/, one folder per op set, apart from the full firmware."""
    from .opset import ops_hash

    return build_root() / f"{resolve(board).replace(':', '-')}-ops-{ops_hash(ops)}"


def micropython_dir(explicit: str | os.PathLike | None = None) -> Path:
    """MicroPython source: --micropython, else $MICROPY_DIR, else the cached Debian source (fetched if missing)."""
    d = explicit or os.environ.get("MICROPY_DIR")
    if d:
        p = Path(d).resolve()
        if not (p / "py" / "mkrules.mk").exists():
            raise MicronnError(f"{p} is not a MicroPython source tree (no py/mkrules.mk)")
        return p
    if not (DEFAULT_MICROPY / ".micronn-ok").exists():
        _run([str(ROOT / "tools" / "fetch-micropython.sh"), str(DEFAULT_MICROPY)], "fetching MicroPython source")
    return DEFAULT_MICROPY


def _run(cmd: list[str], what: str, log: Path | None = None, cwd: Path | None = None, env=None) -> None:
    """Run a build step; show a file counter while it runs and the log's tail if it fails."""
    out = open(log, "w") if log else subprocess.DEVNULL
    try:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        count = 0
        tail: list[str] = []
        tty = sys.stderr.isatty()
        for line in proc.stdout:
            if log:
                out.write(line)
            tail = (tail + [line])[-25:]
            if line.startswith(("CC ", "GEN ", "LINK ", "MPY ")):
                count += 1
                if tty:
                    sys.stderr.write(f"\r{what}: {count} steps")
                    sys.stderr.flush()
        rc = proc.wait()
        if tty and count:
            sys.stderr.write("\n")
    finally:
        if log:
            out.close()
    if rc != 0:
        raise MicronnError(f"{what} failed (exit {rc})" + (f"; log: {log}" if log else "")
                           + "\n" + "".join(tail).rstrip())


def _board_hash(board: str) -> str:
    """Changes to a board's build files (flags, linker script) need a clean build;
    its profile (board.json) is description only."""
    import hashlib

    h = hashlib.sha256()
    d = board_dir(board)
    dirs = [d] + [c for c in (BOARDS_DIR / "qemu-common", d.parent / "common")
                  if c.is_dir() and (d.name.startswith("qemu-") or c.parent == d.parent)]
    for folder in dirs:
        for f in sorted(folder.glob("*")):
            if f.is_file() and f.name != "board.json":
                h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()


FULL_CHECKOUT = ("git clone https://github.com/micropython/micropython\n"
                 "  cd micropython && git checkout v1.25.0")


def _idf_version(idf: Path) -> tuple[int, int, int] | None:
    import re

    f = idf / "tools" / "cmake" / "version.cmake"
    if not f.exists():
        return None
    v = dict(re.findall(r"set\(IDF_VERSION_(MAJOR|MINOR|PATCH)\s+(\d+)\)", f.read_text()))
    try:
        return int(v["MAJOR"]), int(v["MINOR"]), int(v["PATCH"])
    except KeyError:
        return None


def missing(board: str, mp: Path) -> list[str]:
    """What the MicroPython tree ``mp`` (and the machine) lacks to build a real
    board's firmware, one line each; empty if nothing."""
    import shutil

    prof = profile(board)
    port, name = prof["port"], prof.get("board")
    lacks = []

    def need(path: str, what: str, marker: str = "") -> None:
        p = mp / path
        if not (p / marker).exists() if marker else not (p.exists() and any(p.iterdir())):
            lacks.append(f"{path} ({what})")

    if port not in ("stm32", "esp32"):
        return lacks
    base = mp / "ports" / port / "boards" / name
    if not base.is_dir():
        lacks.append(f"ports/{port}/boards/{name} (MicroPython's own board, which micronn's folder builds on;"
                     " MicroPython 1.25 or newer)")
    need("lib/micropython-lib", "micropython-lib: packages the port's manifest freezes, e.g. dht, onewire",
         "python-stdlib")
    if port == "stm32":
        series = prof["mcu"][5:7].upper()
        need("lib/stm32lib", f"ST's CMSIS device headers and STM32{series} HAL, a git submodule",
             f"STM32{series}xx_HAL_Driver/Inc")
        need("lib/cmsis", "Arm CMSIS core headers", "inc/core_cm4.h")
        if name == "NUCLEO_H743ZI":
            need("lib/lwip", "lwIP: the board has Ethernet networking", "src/core")
            need("lib/mbedtls", "mbedTLS: the board has SSL", "library")
        if shutil.which("arm-none-eabi-gcc") is None:
            lacks.append("arm-none-eabi-gcc (apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi)")
    else:
        need("lib/berkeley-db-1.xx", "the btree module the esp32 port enables", "README")
        need("lib/tinyusb", "TinyUSB, a submodule the esp32 port requires", "src")
        idf = os.environ.get("IDF_PATH")
        if not idf or shutil.which("idf.py") is None:
            lacks.append("ESP-IDF: " + ("IDF_PATH is not set" if not idf else "idf.py is not on PATH")
                         + " (install ESP-IDF v5.2 to v5.4 and source its export.sh)")
        else:
            v = _idf_version(Path(idf))
            if v is None or not ((5, 2, 0) <= v < (5, 5, 0)):
                shown = ".".join(map(str, v)) if v else "unknown"
                lacks.append(f"ESP-IDF v5.2 to v5.4 (MicroPython 1.25 supports 5.2, 5.2.2, 5.3, 5.4); "
                             f"IDF_PATH={idf} is version {shown}")
    return lacks


def tree_kind(mp: Path) -> str:
    """What a MicroPython tree is: "debian" (Debian's source package: no lib/
    submodules, no git), "git" (a git checkout or worktree) or "plain" (any other
    unpacked tree, e.g. a `git archive` without its submodules)."""
    if (mp / "debian" / "changelog").exists() and not (mp / ".git").exists():
        return "debian"
    return "git" if (mp / ".git").exists() else "plain"


def _missing_message(board: str, mp: Path, lacks: list[str]) -> str:
    """What is missing, what the tree is, and the commands that get the rest."""
    prof = profile(board)
    port, name = prof["port"], prof["board"]
    lines = [f"{board} firmware cannot be built from {mp}: it lacks"] + [f"  - {x}" for x in lacks]
    parts = [x.split(" ", 1)[0] for x in lacks if x.startswith(("lib/", "ports/"))]
    steps = []
    if any(x.startswith("ESP-IDF") for x in lacks):
        lines.append("ESP-IDF is not in any Debian package: install it (MicroPython 1.25 supports v5.2 to v5.4).")
        steps.append(f"git clone -b v5.2.2 --recursive https://github.com/espressif/esp-idf.git\n"
                     f"  ./esp-idf/install.sh {prof['chip']} && . ./esp-idf/export.sh")
    tree = "$PWD"
    if parts:
        kind = tree_kind(mp)
        fetch = f"make -C ports/{port} BOARD={name} submodules"
        submodules = ", ".join(p for p in parts if p.startswith("lib/"))
        if kind == "git" and not any(p.startswith("ports/") for p in parts):
            lines.append(f"The tree is a git checkout without the submodules {submodules}: fetch them in it.")
            steps += [f"cd {mp}", fetch]
            tree = str(mp)
        else:
            lines.append({
                "debian": "The tree is Debian's MicroPython source, which leaves out the lib/ submodules "
                          "and is no git checkout to fetch them into: use a git checkout of MicroPython 1.25.0.",
                "git": f"The tree is a git checkout of a MicroPython without the board {name}: "
                       "use MicroPython 1.25.0.",
                "plain": "The tree is not a git checkout, so `make submodules` cannot fetch "
                         f"{submodules or 'them'}: use a git checkout of MicroPython 1.25.0.",
            }[kind])
            steps += [FULL_CHECKOUT, fetch]
    if steps:
        steps.append(f"micronn firmware build --board {board} --micropython {tree}   (or MICROPY_DIR={tree})")
        lines += ["Steps:"] + [f"  {s}" for s in steps]
    lines.append("docs/boards.md has the details.")
    return "\n".join(lines)


def make_command(board: str, mp: Path, out: Path, jobs: int = 1) -> list[str]:
    """The port's make command that builds ``board``'s firmware from the MicroPython
    tree ``mp`` into ``out``: the same for `micronn firmware build` and for a dry
    run (``make -n``) of it."""
    board = resolve(board)
    prof = profile(board)
    folder = board_dir(board)
    modules = str(ROOT)
    if prof["port"] == "unix":
        args = [f"VARIANT_DIR={folder}"]
    elif prof["port"] == "qemu":
        args = [f"BOARD={board}", f"BOARD_DIR={folder}"]
    elif prof["port"] in ("stm32", "esp32"):
        args = [f"BOARD_DIR={folder}"]
        if prof["port"] == "esp32":
            modules = str(ROOT / "cmodule" / "micropython.cmake")
    else:
        raise MicronnError(f"board {board!r}: port {prof['port']!r} is not built here")
    # "user_c_module": false (unix-stock): the port's firmware without micronn, for the
    # native module (micronn natmod build).
    with_module = [f"USER_C_MODULES={modules}"] if prof.get("user_c_module", True) else []
    return ["make", "-C", str(Path(mp) / "ports" / prof["port"]), f"-j{jobs}", *args, f"BUILD={out}",
            *with_module]


def build(board: str, micropython: str | os.PathLike | None = None, jobs: int | None = None,
          freeze: str | os.PathLike | None = None, ops: list[str] | None = None) -> Path:
    """Build firmware for ``board``; returns the firmware file. Real boards (stm32,
    esp32) first check that the MicroPython tree and toolchain are complete.
    ``ops`` (op names, opset.ops_from()): firmware that runs only those ops, built
    into ops_out_dir()."""
    import shutil

    board = resolve(board)
    if ops is not None and not ops:
        raise MicronnError("an --ops-from firmware needs at least one op")
    mp = micropython_dir(micropython)
    lacks = missing(board, mp)
    if lacks:
        raise MicronnError(_missing_message(board, mp, lacks))
    jobs = jobs or os.cpu_count() or 1
    out = _out_dir(board) if ops is None else ops_out_dir(board, ops)
    cmd = make_command(board, mp, out, jobs)
    env = None
    if freeze:
        f = Path(freeze).resolve()
        if not f.exists():
            raise MicronnError(f"{f}: no such module to freeze")
        env = {**os.environ, "MICRONN_FREEZE": str(f)}
    else:
        env = {k: v for k, v in os.environ.items() if k != "MICRONN_FREEZE"}
    env = {k: v for k, v in env.items() if k != "MICRONN_OPS_DIR"}
    stamp = out / ".board-hash"
    digest = _board_hash(board)
    if out.exists() and (not stamp.exists() or stamp.read_text() != digest):
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    stamp.write_text(digest)
    if ops is not None:
        from .opset import write_config

        write_config(out, ops)      # cmodule/micropython.mk: -DMNN_OPS_CONFIG -I$(MICRONN_OPS_DIR)
        env["MICRONN_OPS_DIR"] = str(out)
    _run(["make", "-C", str(mp / "mpy-cross"), f"-j{jobs}"], "building mpy-cross", out / "mpy-cross.log")
    _run(cmd, f"building {board} firmware", out / "build.log", env=env)
    exe = out / profile(board)["firmware"]
    if not exe.exists():
        raise MicronnError(f"the build finished but {exe} is missing")
    return exe


def _tool(*names: str) -> str | None:
    import shutil

    for n in names:
        if shutil.which(n):
            return shutil.which(n)
    return None


def flash_commands(board: str, port: str | None = None, firmware: str | os.PathLike | None = None,
                   romfs: str | os.PathLike | None = None, tool: str | None = None) -> list[list[str]]:
    """The commands that write a real board's firmware (and, with ``romfs``, a
    ROMFS image into its ROMFS partition): st-flash or dfu-util for stm32,
    esptool for esp32."""
    board = resolve(board)
    prof = profile(board)
    tools = prof.get("flash_tools") or []
    if not tools:
        raise MicronnError(f"{board} is not flashed: {'QEMU loads' if prof['port'] == 'qemu' else 'it runs'} "
                           f"{firmware_file(board)} directly")
    tool = tool or tools[0]
    if tool not in tools:
        raise MicronnError(f"{board} is flashed with {' or '.join(tools)}, not {tool}")
    fw = Path(firmware) if firmware else firmware_file(board)
    if tool == "dfu-util":
        fw = fw.with_suffix(".dfu") if not firmware else fw
    cmds = []
    if romfs is not None:
        size = Path(romfs).stat().st_size if Path(romfs).exists() else None
        if size is None:
            raise MicronnError(f"{romfs}: no such ROMFS image (make one with `micronn deploy --romfs`)")
        if size > prof["romfs"]["size"]:
            raise MicronnError(f"{romfs} has {size:,} bytes; the ROMFS partition of {board} holds "
                               f"{prof['romfs']['size']:,}")
    base = hex(prof["romfs"]["base"]) if prof.get("romfs") else None
    # The ROMFS image first: dfu-util leaves DFU mode after the firmware.
    if tool == "st-flash":
        if romfs is not None:
            cmds.append(["st-flash", "--reset", "write", str(romfs), base])
        if firmware is not False:
            cmds.append(["st-flash", "--reset", "--format", "ihex", "write", str(fw)])
    elif tool == "dfu-util":
        if romfs is not None:
            cmds.append(["dfu-util", "-a", "0", "-d", "0483:df11", "-s", base, "-D", str(romfs)])
        if firmware is not False:
            cmds.append(["dfu-util", "-a", "0", "-d", "0483:df11", "-s", ":leave", "-D", str(fw)])
    else:
        esptool = ["esptool.py", "--chip", prof["chip"], "--port", port or "/dev/ttyUSB0", "--baud", "460800"]
        if romfs is not None:
            cmds.append(esptool + ["write_flash", base, str(romfs)])
        if firmware is not False:
            cmds.append(esptool + ["write_flash", "-z", hex(prof["firmware_offset"]), str(fw)])
    return cmds


def flash(board: str, port: str | None = None, firmware=None, romfs=None, tool: str | None = None) -> None:
    """Run flash_commands(): the tool must be installed and the firmware built."""
    for cmd in flash_commands(board, port, firmware, romfs, tool):
        exe = _tool(cmd[0], "esptool") if cmd[0] == "esptool.py" else _tool(cmd[0])
        if exe is None:
            hint = {"esptool.py": "pip install esptool", "st-flash": "apt-get install stlink-tools",
                    "dfu-util": "apt-get install dfu-util"}[cmd[0]]
            raise MicronnError(f"{cmd[0]} is not installed ({hint})")
        for arg in cmd[1:]:
            if arg.endswith((".hex", ".bin", ".dfu", ".romfs")) and not Path(arg).exists():
                raise MicronnError(f"{arg} not found: build it first (micronn firmware build --board {board})")
        _run([exe, *cmd[1:]], f"flashing {board} ({cmd[0]})")
