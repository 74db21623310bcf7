"""Type stubs for the micronn C module (cmodule/modmicronn.c), for editors and
type checkers on the host; the module itself is built into the firmware."""

from array import array
from typing import Any

_Buffer = bytes | bytearray | memoryview | array

version: str
format_version: tuple[int, int]

def crc32(data: _Buffer, crc: int = 0) -> int:
    """CRC-32 (zlib's polynomial) of data, continuing from crc."""

class Model:
    """A validated blob, ready to run. The blob is used in place (a bytes
    object, a bytearray, a frozen module's constant, or a file opened from
    ROMFS); only the arena and the op records take heap."""

    name: str | None
    input_shape: tuple[int, ...]
    input_dtype: str            # "int8", or "float32" for a float interface
    input_scale: float
    input_zero_point: int
    output_shape: tuple[int, ...]
    output_dtype: str
    output_scale: float
    output_zero_point: int
    arena_size: int             # bytes of activation and scratch memory
    ram_size: int               # heap this model holds (object, op records, arena)
    blob_size: int
    macs: int
    labels: list[str] | None
    ops: int

    def __init__(self, blob: Any, *, arena: bytearray | None = None) -> None:
        """blob: a bytes-like object or a file (read, or mapped in place from
        ROMFS). arena: a caller-owned, 8-byte aligned buffer of at least
        arena_size bytes. Raises ValueError naming what is wrong with the
        blob, MemoryError with the bytes needed."""

    def run(self, x: _Buffer, out: _Buffer | None = None) -> array:
        """One inference. x: int8 bytes/bytearray/array('b'), or array('f')
        quantized as TFLite does. out: a preallocated int8 or float buffer
        (returned); otherwise a new array."""

    def predict(self, x: _Buffer) -> tuple[str | int, float]:
        """(label, score) of the top output."""

    def profile(self, x: _Buffer) -> tuple[int, tuple[int, ...]]:
        """One inference timed with time.ticks_cpu() units: (all ops in one
        pass, (op 0, op 1, ...)). Under qemu -icount the ticks count
        instructions (see micronn bench)."""
