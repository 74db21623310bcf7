# micronn inference server: a framed binary protocol over the REPL's stdin
# and stdout (a UART on boards, pipes on the unix port).
#
# Frame: a5 5a | type u8 | length u32 LE | payload | crc32 u32 LE
# The CRC (micronn.crc32, zlib polynomial) covers type, length and payload.
#
# Host -> board: L load blob (payload: blob)   O open path (payload: utf-8 path)
#                R run (payload: input)        I info     P ping    Q quit
# Board -> host: k ok (payload: repr of a dict) r result (payload: u32 elapsed
#                microseconds, then the output) e error (payload: "Type: message")
import gc
import struct
import sys
from array import array

import micronn

try:
    import micropython
except ImportError:
    micropython = None
try:
    from time import ticks_diff, ticks_us
except ImportError:
    from time import time_ns

    def ticks_us():
        return time_ns() // 1000

    def ticks_diff(a, b):
        return a - b


SYNC = b"\xa5\x5a"
MAX_PAYLOAD = 8 * 1024 * 1024


class _Link:
    def __init__(self, rx, tx):
        self.rx = rx
        self.tx = tx

    def read(self, n):
        data = self.rx.read(n)
        if data is None or len(data) < n:
            raise EOFError
        return data

    def readinto(self, buf, n):
        # A blocking stream's readinto() fills the whole buffer or hits the end.
        if self.rx.readinto(buf) != n:
            raise EOFError

    def send(self, kind, payload=b""):
        head = struct.pack("<BI", kind, len(payload))
        crc = micronn.crc32(payload, micronn.crc32(head))
        self.tx.write(SYNC + head)
        if payload:
            self.tx.write(payload)
        self.tx.write(struct.pack("<I", crc))

    def receive(self, run_buf=None, run_n=0):
        """(kind, payload). A run frame of exactly run_n bytes is read into
        run_buf, so that steady-state inference allocates nothing."""
        while True:
            if self.read(1) == b"\xa5" and self.read(1) == b"\x5a":
                break
        head = self.read(5)
        kind, n = struct.unpack("<BI", head)
        if n > MAX_PAYLOAD:
            raise ValueError("frame length %d exceeds %d" % (n, MAX_PAYLOAD))
        if run_buf is not None and kind == ord("R") and n == run_n:
            self.readinto(run_buf, n)
            payload = run_buf
        else:
            try:
                payload = self.read(n) if n else b""
            except MemoryError:
                self.drain(n + 4)
                gc.collect()
                raise MemoryError("a frame of %d bytes does not fit in memory (%d free)" % (n, gc.mem_free())) from None
        (crc,) = struct.unpack("<I", self.read(4))
        if micronn.crc32(payload, micronn.crc32(head)) != crc:
            raise ValueError("frame crc mismatch")
        return kind, payload

    def drain(self, n):
        while n > 0:
            k = min(n, 64)
            self.read(k)
            n -= k


def _buffer(shape, dtype):
    """A buffer for one input or output, and its size in bytes."""
    n = 1
    for d in shape:
        n *= d
    if dtype == "float32":
        return array("f", bytes(4 * n)), 4 * n
    return bytearray(n), n


def info(model):
    if model is None:
        return {"model": None}
    return {
        "name": model.name,
        "input_shape": model.input_shape,
        "input_dtype": model.input_dtype,
        "input_scale": model.input_scale,
        "input_zero_point": model.input_zero_point,
        "output_shape": model.output_shape,
        "output_dtype": model.output_dtype,
        "output_scale": model.output_scale,
        "output_zero_point": model.output_zero_point,
        "arena_size": model.arena_size,
        "ram_size": model.ram_size,
        "blob_size": model.blob_size,
        "ops": model.ops,
    }


def serve(rx=None, tx=None):
    """Answer frames until a quit frame or the end of input."""
    link = _Link(rx or sys.stdin.buffer, tx or sys.stdout.buffer)
    if micropython is not None and hasattr(micropython, "kbd_intr"):
        micropython.kbd_intr(-1)  # payload bytes may contain Ctrl-C
    model = None
    out = None
    inp = None
    inp_n = 0
    try:
        while True:
            try:
                kind, payload = link.receive(inp, inp_n)
            except EOFError:
                return
            except (ValueError, MemoryError) as e:
                link.send(ord("e"), ("%s: %s" % (type(e).__name__, e)).encode())
                continue
            try:
                if kind == ord("R"):
                    if model is None:
                        raise ValueError("no model loaded")
                    if payload is not inp:
                        raise ValueError("input of %d bytes; the model takes %d" % (len(payload), inp_n))
                    t0 = ticks_us()
                    model.run(inp, out)
                    dt = ticks_diff(ticks_us(), t0)
                    link.send(ord("r"), struct.pack("<I", dt & 0xFFFFFFFF) + out)
                elif kind == ord("L") or kind == ord("O"):
                    model = out = inp = None
                    gc.collect()
                    free0 = gc.mem_free()
                    if kind == ord("L"):
                        model = micronn.Model(payload)
                    else:
                        with open(payload.decode(), "rb") as f:
                            model = micronn.Model(f)
                    payload = None
                    gc.collect()
                    heap_used = free0 - gc.mem_free()
                    inp, inp_n = _buffer(model.input_shape, model.input_dtype)
                    out = _buffer(model.output_shape, model.output_dtype)[0]
                    d = info(model)
                    d["heap_used"] = heap_used
                    d["mem_free"] = gc.mem_free()
                    link.send(ord("k"), repr(d).encode())
                elif kind == ord("I"):
                    link.send(ord("k"), repr(info(model)).encode())
                elif kind == ord("P"):
                    link.send(ord("k"), payload)
                elif kind == ord("Q"):
                    link.send(ord("k"), b"{}")
                    return
                else:
                    raise ValueError("unknown frame type %d" % kind)
            except Exception as e:  # noqa: BLE001 - every error goes back to the host
                link.send(ord("e"), ("%s: %s" % (type(e).__name__, e)).encode())
    finally:
        if micropython is not None and hasattr(micropython, "kbd_intr"):
            micropython.kbd_intr(3)
