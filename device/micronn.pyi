"""Type stubs for the micronn C module (cmodule/modmicronn.c), for editors and
type checkers on the host; the module itself is built into the firmware."""

from array import array
from typing import Any, TypedDict

_Buffer = bytes | bytearray | memoryview | array
_Inputs = _Buffer | tuple[_Buffer, ...] | list[_Buffer]
_Outs = _Buffer | tuple[_Buffer | None, ...] | list[_Buffer | None] | None


class IODescription(TypedDict):
    """One graph input or output (Model.inputs / Model.outputs)."""

    name: str | None            # the .tflite tensor name (the blob's INPUT_NAMES/OUTPUT_NAMES), if packed
    shape: tuple[int, ...]
    dtype: str                  # "int8"; "int16" (16x8 models); "float32" for a float interface; outputs also
                                # "int32", "int64"
    scale: float
    zero_point: int

version: str
format_version: tuple[int, int]

def crc32(data: _Buffer, crc: int = 0) -> int:
    """CRC-32 (zlib's polynomial) of data, continuing from crc."""

def supported_ops() -> list[str]:
    """The op names this module runs (the host's session handshake checks them)."""

ops_limited: bool
"""True in firmware built with `micronn firmware build --ops-from`: supported_ops() is its models' ops."""

def kernel_variants(reset: bool = False) -> dict[str, int]:
    """How often each kernel variant was picked since boot (or the last reset),
    e.g. {"CONV_IM2COL_W4": 3, "DEPTHWISE_MULT1": 2}: which fast paths ran."""

class Model:
    """A validated blob, ready to run. The blob is used in place (a bytes
    object, a bytearray, a frozen module's constant, or a file opened from
    ROMFS); only the arena and the op records take heap."""

    name: str | None
    inputs: tuple[IODescription, ...]     # every graph input (1..16), the order run() takes them
    outputs: tuple[IODescription, ...]    # every graph output (1..16), the order run() gives them
    # the first input and output (the only ones of most models):
    input_shape: tuple[int, ...]
    input_dtype: str            # "int8", "int16" (16x8 models), or "float32" for a float interface
    input_scale: float
    input_zero_point: int
    output_shape: tuple[int, ...]
    output_dtype: str
    output_scale: float
    output_zero_point: int
    arena_size: int             # bytes of activation and scratch memory
    ram_size: int               # heap this model holds (object, op records, arena, state)
    state_size: int             # bytes of state kept between runs (0: a model without state)
    blob_size: int
    macs: int                   # as the blob's header says
    cost: int                   # element operations per run(), counted by the loader from the shapes
    labels: list[str] | None
    ops: tuple[str, ...]        # the ops of a run, in order (as profile() times them)

    def __init__(self, blob: Any, *, arena: bytearray | None = None) -> None:
        """blob: a bytes-like object or a file (read, or mapped in place from
        ROMFS); not a writable memoryview of heap memory (its bytearray could
        be resized under it). arena: a caller-owned bytearray of at least
        arena_size bytes, overlapping no live model's blob (models may share
        an arena). Raises ValueError naming what is wrong with the blob,
        MemoryError with the bytes needed."""

    def run(self, x: _Inputs, out: _Outs = None) -> array | tuple[array | _Buffer, ...]:
        """One inference. x: int8 bytes/bytearray/array('b'), or array('f')
        quantized as TFLite does; a model with several inputs takes a tuple or
        list of them (the order of inputs). out: a preallocated int8 or float
        buffer (returned); otherwise a new array. A model with several outputs
        returns a tuple (one array per output), and out is then a tuple or list
        with one buffer (or None: a new array) per output. An int32/int64
        output (ARG_MAX, ARG_MIN) gives its raw values: array('i')/array('q'),
        or out= of that typecode or a bytearray of its bytes; float output
        applies to the int8 and int16 ones. An int16 input or output (16x8
        models) takes and gives its values' bytes: array('h'), bytes or
        bytearray; or floats, array('f') quantized to int16 and out=
        array('f') dequantized, as TFLite Micro's QUANTIZE and DEQUANTIZE do
        (a blob packed with a float interface, FLOAT_INPUT/FLOAT_OUTPUT,
        gives array('f') by default, its int16 ones included). A wrong count,
        size or type of input or out
        raises TypeError/ValueError. Ctrl-C (KeyboardInterrupt) interrupts a
        long run."""

    def predict(self, x: _Inputs) -> tuple[str | int, float]:
        """(label, score) of the top value of the first output."""

    def profile(self, x: _Inputs) -> tuple[int, tuple[int, ...]]:
        """One inference timed with time.ticks_cpu() units: (all ops in one
        pass, (op 0, op 1, ...)). Under qemu -icount the ticks count
        instructions (see micronn bench). A model with state moves on as with
        one run."""

    def reset(self) -> None:
        """A model with state (streaming audio, recurrent cells written with
        variables): set the state to zero, as TensorFlow Lite Micro's Reset()
        does. The state lives in this model's own memory (never in a shared
        arena) and keeps its values from one run to the next; its initial
        values are set just before the first run (a reset before then does not
        skip them). Nothing happens for a model without state."""
