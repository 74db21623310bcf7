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
    return romfs.build({Path(p).name: _blob(p) for p in paths})


def copy_to_board(port: str, paths, dest: str = "/") -> list[str]:
    """Copy blobs to the filesystem of the board on ``port`` (raw REPL, as mpremote cp does)."""
    from .targets import SerialTarget

    done = []
    with SerialTarget(port) as t:
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
