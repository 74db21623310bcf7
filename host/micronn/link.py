"""The host side of the framed protocol spoken by ``device/mnserver.py``.

One transport layer for every target: a ``Link`` needs only ``read(n)`` and
``write(data)`` on some byte stream (the pipes of a unix firmware process, a
pty of a QEMU board, a USB serial port).
"""

from __future__ import annotations

import ast
import struct
import zlib

from .errors import MicronnError

SYNC = b"\xa5\x5a"
LOAD, OPEN, RUN, INFO, PING, QUIT = (ord(c) for c in "LORIPQ")
OK, RESULT, ERROR = (ord(c) for c in "kre")
MAX_PAYLOAD = 8 * 1024 * 1024


class DeviceError(MicronnError):
    """The board answered with an error (its exception type and message)."""


class Link:
    def __init__(self, stream, name: str = "board"):
        self.stream = stream      # read(n) -> bytes (may be short on timeout), write(bytes)
        self.name = name

    def _read(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.stream.read(n - len(data))
            if not chunk:
                raise MicronnError(f"{self.name}: no answer (connection closed or timed out)")
            data += chunk
        return data

    def send(self, kind: int, payload: bytes = b"") -> None:
        if len(payload) > MAX_PAYLOAD:
            raise MicronnError(f"payload of {len(payload)} bytes exceeds the protocol limit {MAX_PAYLOAD}")
        head = struct.pack("<BI", kind, len(payload))
        crc = zlib.crc32(payload, zlib.crc32(head))
        self.stream.write(SYNC + head + payload + struct.pack("<I", crc))

    def receive(self) -> tuple[int, bytes]:
        skipped = 0
        while True:
            b = self._read(1)
            if b == SYNC[:1] and self._read(1) == SYNC[1:]:
                break
            skipped += 1
            if skipped > 4096:
                raise MicronnError(f"{self.name}: no frame in the last 4096 bytes (is the server running?)")
        head = self._read(5)
        kind, n = struct.unpack("<BI", head)
        if n > MAX_PAYLOAD:
            raise MicronnError(f"{self.name}: frame length {n} exceeds the protocol limit")
        payload = self._read(n)
        (crc,) = struct.unpack("<I", self._read(4))
        if zlib.crc32(payload, zlib.crc32(head)) != crc:
            raise MicronnError(f"{self.name}: frame checksum mismatch")
        return kind, payload

    def request(self, kind: int, payload: bytes = b"") -> tuple[int, bytes]:
        self.send(kind, payload)
        reply, data = self.receive()
        if reply == ERROR:
            raise DeviceError(f"{self.name}: {data.decode('utf-8', 'replace')}")
        return reply, data

    # -- the operations ------------------------------------------------------

    def load(self, blob: bytes) -> dict:
        _, data = self.request(LOAD, blob)
        return _info(data)

    def open(self, path: str) -> dict:
        _, data = self.request(OPEN, path.encode())
        return _info(data)

    def info(self) -> dict:
        _, data = self.request(INFO)
        return _info(data)

    def run(self, x: bytes) -> tuple[bytes, int]:
        """Run one input; returns (output bytes, elapsed microseconds on the board)."""
        kind, data = self.request(RUN, x)
        if kind != RESULT or len(data) < 4:
            raise MicronnError(f"{self.name}: unexpected reply to run")
        (us,) = struct.unpack_from("<I", data)
        return data[4:], us

    def ping(self, data: bytes = b"micronn") -> None:
        kind, got = self.request(PING, data)
        if kind != OK or got != data:
            raise MicronnError(f"{self.name}: the server did not answer a ping")

    def quit(self) -> None:
        self.request(QUIT)


def _info(data: bytes) -> dict:
    try:
        return ast.literal_eval(data.decode())
    except (ValueError, SyntaxError) as e:
        raise MicronnError(f"unreadable info from the board: {data[:80]!r}") from e
