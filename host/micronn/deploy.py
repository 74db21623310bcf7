"""Getting blobs onto boards: a board's filesystem (mpremote), a ROMFS image,
or a module frozen into the firmware."""

from __future__ import annotations

from pathlib import Path

from . import blob as blobmod
from . import romfs
from .errors import MicronnError


def _blob(path) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise MicronnError(f"{path}: {e.strerror}") from None
    blobmod.read(data)      # refuse anything that is not a valid blob
    return data


def romfs_image(paths) -> bytes:
    """A ROMFS image holding the blobs under their file names, data 16-byte aligned."""
    files: dict[str, bytes] = {}
    for p in paths:
        if Path(p).name in files:
            raise MicronnError(f"{p}: a second blob named {Path(p).name} (the image holds files by name only)")
        files[Path(p).name] = _blob(p)
    return romfs.build(files)


def copy_to_board(port: str, paths, dest: str = "/") -> list[str]:
    """Copy blobs to the filesystem of the board on ``port`` (raw REPL, as mpremote cp does);
    ``port`` may name a board running in the background (`micronn board start`)."""
    from .sessions import port_of
    from .targets import SerialTarget

    done = []
    with SerialTarget(port_of(port), name=port) as t:
        t.setup()
        for p in paths:
            data = _blob(p)
            remote = dest.rstrip("/") + "/" + Path(p).name
            try:
                t.transport.fs_writefile(remote, data, chunk_size=1024)
            except Exception as e:  # mpremote raises TransportError / OSError variants
                raise MicronnError(f"{port}: could not write {remote}: {e}") from None
            done.append(remote)
    return done


def romfs_to_board(port: str, image: bytes) -> dict:
    """Write a ROMFS image into a QEMU board running in the background (its ROMFS
    region is emulated RAM) and mount it at /rom; the session's record."""
    import binascii

    from .firmware import profile
    from .sessions import find, sessions
    from .targets import SerialTarget

    s = find(port) or next((r for r in sessions() if r["port"] == port), None)
    if s is None:
        raise MicronnError(f"deploy --romfs --port: {port} is not a board started with `micronn board start`;"
                           " a real board takes an image with `micronn firmware flash --romfs` (or"
                           " `mpremote romfs deploy` on stm32)")
    r = profile(s["target"])["romfs"]
    if r.get("read_only"):
        raise MicronnError(f"{s['name']}: {s['target']}'s ROMFS is in its flash, which the board cannot write;"
                           f" attach the image at start: `micronn board stop {s['name']}`, then"
                           f" `micronn board start --target {s['target']} --romfs IMAGE`")
    if len(image) > r["size"]:
        raise MicronnError(f"ROMFS image of {len(image):,} bytes exceeds {s['target']}'s {r['size']:,} bytes")
    with SerialTarget(s["port"], name=s["name"], board=s["target"]) as t:
        t.exec("import vfs, uctypes, binascii\n"
               "try:\n vfs.umount('/rom')\nexcept OSError:\n pass\n"
               f"_m = uctypes.bytearray_at({r['base']}, {r['size']})\n")
        for o in range(0, len(image), 2048):
            chunk = binascii.b2a_base64(image[o:o + 2048], newline=False).decode()
            t.exec(f"_m[{o}:{o + min(2048, len(image) - o)}] = binascii.a2b_base64('{chunk}')")
        got = t.exec("del _m\nimport mnboot\nprint(mnboot.mount_romfs())").strip()
    if got != "True":
        raise MicronnError(f"{s['name']}: the image was written but /rom did not mount ({got})")
    return s


def freeze_module(data: bytes, name: str = "model") -> str:
    """Python source holding the blob as a bytes constant; frozen into firmware
    the bytes stay in flash and micronn.Model(module.BLOB) copies nothing."""
    info = blobmod.read(data)
    lines = [f"# micronn blob {info['meta'].get('NAME', name)!r}, {len(data)} bytes: micronn.Model({name}.BLOB)",
             "BLOB = ("]
    for i in range(0, len(data), 32):
        lines.append("    b'" + "".join(f"\\x{c:02x}" for c in data[i:i + 32]) + "'")
    lines.append(")")
    return "\n".join(lines) + "\n"
