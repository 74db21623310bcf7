"""``micronn install``: put micronn.mpy, the native module, on a running board,
as a MicroPython package is installed, with no firmware build.

The board says which file it takes: ``sys.implementation._mpy`` holds the .mpy
version (bits 0-7), the native ABI's sub-version (bits 8-9) and the architecture
(bits 10-15) of the firmware (MicroPython's py/persistentcode.h). The file of
that architecture (build/natmod/micronn-ARCH.mpy, built if missing) is checked
against the board before anything is written, copied through mpremote's transport
(its raw-REPL exec and fs calls) into the board's lib folder, and imported
after a soft reset, so that a file the board would refuse, or one that another
``micronn`` on the board shadows, is named here instead of at the user's first
``import micronn``.

``mpremote mip install`` takes the same file through build/natmod/package-ARCH.json,
which ``micronn natmod build`` writes beside each .mpy (natmod.write_package).
"""

from __future__ import annotations

import ast
from pathlib import Path

from . import natmod
from .errors import MicronnError

# py/persistentcode.h's MP_NATIVE_ARCH_* of MicroPython 1.25, by index.
ARCH_NAMES = ["none", "x86", "x64", "armv6", "armv6m", "armv7m", "armv7em", "armv7emsp", "armv7emdp",
              "xtensa", "xtensawin", "rv32imc"]
ARCH_INDEX = {name: i for i, name in enumerate(ARCH_NAMES)}
# Thumb firmware imports the Thumb architectures from armv6m up to its own (MPY_FEATURE_ARCH_TEST).
THUMB = range(ARCH_INDEX["armv6m"], ARCH_INDEX["armv7emdp"] + 1)

# Run on the board before anything is written: what it is, and what `import micronn` gives now.
_PROBE = """\
import sys
_r = {'mpy': getattr(sys.implementation, '_mpy', None), 'path': list(sys.path),
      'version': '.'.join(str(v) for v in sys.implementation.version[:3]),
      'machine': getattr(sys.implementation, '_machine', sys.platform)}
try:
    import micronn
    _r['found'] = (getattr(micronn, '__file__', None), getattr(micronn, 'version', '?'))
except ImportError:
    _r['found'] = None
except Exception as _e:
    _r['found'] = ('?', repr(_e))
print(repr(_r))
del _r
"""

# After the soft reset: which micronn the import takes, its path made absolute (a module
# found through '' on sys.path has a __file__ relative to the working folder).
_CHECK = """\
import micronn, os
_f = getattr(micronn, '__file__', None)
if _f and _f[0] != '/' and not _f.startswith('.frozen'):
    _f = os.getcwd().rstrip('/') + '/' + _f
print(repr((_f, micronn.version)))
del _f
"""


def arch_name(index: int) -> str:
    return ARCH_NAMES[index] if 0 <= index < len(ARCH_NAMES) else f"architecture {index}"


def decode_mpy(value: int) -> dict:
    """``sys.implementation._mpy`` as (version, sub_version, arch, arch index)."""
    arch = value >> 10
    return {"version": value & 0xFF, "sub_version": (value >> 8) & 3, "arch_index": arch, "arch": arch_name(arch)}


def file_header(data: bytes, name: str = "the file") -> dict:
    """A .mpy file's header, in the terms of decode_mpy."""
    if len(data) < 4 or data[0] != ord("M"):
        raise MicronnError(f"{name} is not a .mpy file (no 'M' header)")
    arch = data[2] >> 2
    return {"version": data[1], "sub_version": data[2] & 3, "arch_index": arch, "arch": arch_name(arch)}


def takes(board_arch: int, file_arch: int) -> bool:
    """Does firmware of architecture ``board_arch`` import native code of ``file_arch``?
    (MPY_FEATURE_ARCH_TEST: Thumb firmware takes armv6m up to its own, the others their own.)"""
    if board_arch in THUMB:
        return file_arch in THUMB and file_arch <= board_arch
    return file_arch == board_arch and board_arch != 0


def pick_arch(board_arch: int) -> str:
    """The best micronn build for the firmware: its own architecture, else the highest
    Thumb one it takes (a Cortex-M3 or soft-float M4 firmware says armv7em: armv7m)."""
    fits = [a for a in natmod.ARCHES if a in ARCH_INDEX and takes(board_arch, ARCH_INDEX[a])]
    if not fits:
        raise MicronnError(f"no micronn.mpy for {arch_name(board_arch)} firmware (micronn builds "
                           f"{', '.join(natmod.ARCHES)}); build firmware with the module instead"
                           " (micronn firmware build)")
    return max(fits, key=ARCH_INDEX.__getitem__)


def check_arch(board: dict, arch: str, file: str, where: str) -> None:
    """Refuse an architecture the board's import would refuse ('incompatible .mpy arch')."""
    if not takes(board["arch_index"], ARCH_INDEX.get(arch, -1)):
        raise MicronnError(
            f"{where} runs {board['arch']} firmware, which cannot import {file} ({arch}): its import would"
            f" fail with 'incompatible .mpy arch'; leave out --arch (it picks {pick_arch(board['arch_index'])})")


def check_file(board: dict, header: dict, file: str, where: str) -> None:
    """Refuse a .mpy the board's import would refuse, with the reason MicroPython would give."""
    check_arch(board, header["arch"], file, where)
    if (header["version"], header["sub_version"]) != (board["version"], board["sub_version"]):
        raise MicronnError(
            f"{where} loads .mpy version {board['version']}.{board['sub_version']} (MicroPython "
            f"{board['micropython']}); {file} is version {header['version']}.{header['sub_version']}: its import would"
            f" fail with 'incompatible .mpy file'; build the .mpy against the board's MicroPython release"
            f" (micronn natmod build --micropython TREE) or update the firmware")


def _lib_dir(path: list[str]) -> str | None:
    """The folder mip installs into: the first sys.path entry ending in /lib, outside /rom;
    else / when the working folder ('' on sys.path, / on a board) is searched."""
    for p in path:
        if p.endswith("/lib") and not p.startswith("/rom"):
            return p
    return "/" if "" in path else None


def _on_path(folder: str, path: list[str]) -> bool:
    return folder in path or (folder == "/" and "" in path)


def _remote(folder: str) -> str:
    return "/micronn.mpy" if folder == "/" else folder + "/micronn.mpy"


def _shown(remote: str) -> str:
    """mpremote's spelling of a board path: :lib/micronn.mpy."""
    return ":" + remote.lstrip("/")


def _same_file(tr, remote: str, data: bytes) -> bool:
    """The board's file holds exactly ``data`` (size, then sha256 on the board)."""
    import hashlib

    try:
        if tr.fs_stat(remote).st_size != len(data):
            return False
        return tr.fs_hashfile(remote, "sha256") == hashlib.sha256(data).digest()
    except OSError:
        return False


def _write(tr, remote: str, data: bytes, progress=None, piece: int = 3072) -> None:
    """Write the board's file ``remote``: base64 pieces decoded on the board, less than half
    the characters of mpremote's fs_writefile (whose bytes literals spell most bytes of a
    .mpy as \\xNN), which does it where the board has no binascii. A QEMU board reads its
    UART one emulated character at a time: the characters are the time."""
    import binascii

    from mpremote.transport import TransportExecError

    try:
        tr.exec("import binascii")
    except TransportExecError:
        tr.fs_writefile(remote, data, chunk_size=1024, progress_callback=progress)
        return
    tr.exec(f"_f = open({remote!r}, 'wb')")
    try:
        for o in range(0, len(data), piece):
            text = binascii.b2a_base64(data[o:o + piece], newline=False).decode()
            tr.exec(f"_f.write(binascii.a2b_base64('{text}'))")
            if progress:
                progress(min(o + piece, len(data)), len(data))
    finally:
        tr.exec("_f.close()\ndel _f")


def _progress(total: int):
    """A byte counter on stderr while the file goes over the serial line (a terminal only)."""
    import sys

    if not sys.stderr.isatty():
        return None

    def show(done: int, _total: int) -> None:
        end = "\n" if done >= total else ""
        print(f"\rmicronn: copying micronn.mpy {done:,}/{total:,} bytes", end=end, file=sys.stderr, flush=True)
    return show


def _resolve_board(port: str | None, target: str | None) -> tuple[str, str]:
    """(device, name): --port (a device or a running board's name), or --target's running board."""
    from .sessions import find, notice, port_of

    if port:
        return port_of(port), port
    if target in ("unix", "unix-stock", "unix-asan"):
        raise MicronnError(f"{target}: the unix port imports micronn.mpy from MICROPYPATH (or ~/.micropython/lib);"
                           f" copy {natmod.mpy_file('x64')} there as micronn.mpy")
    s = find(target)
    if s is None and not target.startswith("qemu-"):
        from .firmware import boards

        raise MicronnError(f"unknown target {target!r} (available: unix, "
                           f"{', '.join(b for b in boards() if b.startswith('qemu-'))}, or --port DEVICE)")
    if s is None:
        raise MicronnError(f"no {target} board is running: start one with `micronn board start --target {target}"
                           " --flash board.img` (a board booted for one command would lose the file), or use"
                           " --port DEVICE")
    notice(f"using the running board {s['name']} ({s['target']}) on {s['port']}")
    return s["port"], s["name"]


def install(port: str | None = None, target: str | None = None, arch: str | None = None,
            dest: str | None = None, force: bool = False) -> dict:
    """Install micronn.mpy on the board on ``port`` (or the running board of ``target``).

    Returns what was done: the board (MicroPython version, decoded ``_mpy``), the
    file and its architecture, the board path written, and what ``import micronn``
    gave after a soft reset (``imported``: (__file__, version)). ``force`` writes the
    file even where the import will not reach it (a module built into the firmware,
    a folder not on sys.path); the result's ``warning`` then says so.
    """
    from mpremote.transport import TransportError, TransportExecError

    from .targets import SerialTarget

    if not port and not target:
        raise MicronnError("install needs --port DEVICE or --target BOARD (a running board)")
    if arch is not None and arch not in natmod.ARCHES:
        raise MicronnError(f"unknown architecture {arch!r}; one of {', '.join(natmod.ARCHES)}")
    dev, name = _resolve_board(port, target)
    where = name if name == dev else f"{name} ({dev})"
    result: dict = {"port": dev, "name": name, "warning": None}
    with SerialTarget(dev, name=name) as t:
        probe = ast.literal_eval(t.exec(_PROBE).strip())
        if probe["mpy"] is None:
            raise MicronnError(f"{where}: its firmware ({probe['machine']}, MicroPython {probe['version']}) loads no"
                               " .mpy files (no sys.implementation._mpy: built without MICROPY_PERSISTENT_CODE_LOAD);"
                               " it needs firmware with micronn built in (micronn firmware build)")
        board = {**decode_mpy(probe["mpy"]), "micropython": probe["version"], "machine": probe["machine"]}
        result["board"] = board
        if board["arch_index"] == 0:
            raise MicronnError(f"{where}: its firmware ({probe['machine']}) runs no native code (.mpy architecture"
                               f" {board['arch']}): it cannot import micronn.mpy; build firmware with the module"
                               " (micronn firmware build)")
        arch = arch or pick_arch(board["arch_index"])
        mpy = natmod.mpy_file(arch)
        check_arch(board, arch, mpy.name, where)        # before a build of a file the board cannot take
        if not mpy.exists():
            from .sessions import notice

            notice(f"{mpy} is not built: building it (micronn natmod build --arch {arch}; `make natmod` builds all)")
            mpy = natmod.build(arch)
        data = mpy.read_bytes()
        check_file(board, file_header(data, mpy.name), mpy.name, where)

        found = probe["found"]
        built_in = found is not None and (found[0] is None or str(found[0]).startswith(".frozen"))
        folder = _lib_dir(probe["path"]) if dest is None else "/" + dest.strip("/")
        if folder is None:
            raise MicronnError(f"{where}: no lib folder on its sys.path {probe['path']}; name one with --dest")
        remote = _remote(folder)
        if built_in:
            msg = (f"{where}: its firmware has micronn {found[1]} built in, which `import micronn` takes before"
                   f" any {_shown(remote)}")
            if not force:
                raise MicronnError(msg + "; nothing to install (--force writes the file anyway)")
            result["warning"] = msg
        elif not _on_path(folder, probe["path"]):
            msg = f"{where}: {folder} is not on its sys.path {probe['path']}, so `import micronn` would not find it"
            if not force:
                raise MicronnError(msg + "; leave out --dest (it picks the board's lib folder), or --force")
            result["warning"] = msg
        result.update(arch=arch, file=str(mpy), bytes=len(data), remote=remote, previous=found)

        tr = t.transport
        try:
            # The board has these very bytes already: a second install costs no copy.
            result["written"] = force or not _same_file(tr, remote, data)
            if result["written"]:
                parts = folder.strip("/").split("/") if folder != "/" else []
                for i in range(1, len(parts) + 1):
                    sub = "/" + "/".join(parts[:i])
                    if not tr.fs_isdir(sub):
                        tr.fs_mkdir(sub)
                # Written beside, then renamed: an interrupted copy leaves no half .mpy to import.
                _write(tr, remote + ".part", data, _progress(len(data)))
                size = tr.fs_stat(remote + ".part").st_size
                if size != len(data):
                    raise MicronnError(f"{where}: wrote {size} of {len(data)} bytes to {remote}.part")
                t.exec(f"import os\nos.rename({remote + '.part'!r}, {remote!r})")
        except TransportExecError as e:
            last = (e.error_output.strip().splitlines() or ["?"])[-1]
            raise MicronnError(f"{where}: could not write {remote}: {last}") from None
        except (TransportError, OSError) as e:
            raise MicronnError(f"{where}: could not write {remote}: {e}") from None

        try:
            tr.enter_raw_repl(soft_reset=True, timeout_overall=20)
            out, err = tr.exec_raw(_CHECK)
        except TransportError as e:
            raise MicronnError(f"{where}: no raw REPL after the soft reset ({e})") from None
    if err:
        text = err.decode(errors="replace").strip().splitlines()
        raise MicronnError(f"{where}: {_shown(remote)} is written, but `import micronn` after a soft reset fails:"
                           f" {text[-1] if text else '?'}")
    imported = ast.literal_eval(out.decode().strip())
    result["imported"] = imported
    if imported[0] != remote and not result["warning"]:
        from_ = "the firmware's built-in module" if imported[0] is None else imported[0]
        raise MicronnError(f"{where}: {_shown(remote)} is written, but `import micronn` after a soft reset gives"
                           f" {from_} (earlier on sys.path {probe['path']}); remove that one")
    return result


def describe(r: dict) -> list[str]:
    """The lines ``micronn install`` prints."""
    on = r["name"] if r["name"] == r["port"] else f"{r['name']} ({r['port']})"
    name = Path(r["file"]).name
    lines = [f"installed {name} ({r['bytes']:,} bytes) as {_shown(r['remote'])} on {on}" if r["written"] else
             f"{_shown(r['remote'])} on {on} is {name} already ({r['bytes']:,} bytes, same sha256): nothing written"]
    b = r["board"]
    lines.append(f"  board: MicroPython {b['micropython']}, .mpy {b['version']}.{b['sub_version']} {b['arch']}"
                 + (f" (takes {r['arch']})" if b["arch"] != r["arch"] else ""))
    if r["warning"]:
        lines.append(f"warning: {r['warning']}")
    f, version = r["imported"]
    lines.append(f"import micronn after a soft reset: micronn {version} from "
                 + ("the firmware (built in)" if f is None else f))
    return lines
