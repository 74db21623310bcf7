# micronn inference server: a framed binary protocol over the REPL's stdin
# and stdout (a UART or USB CDC on boards, a QEMU pty, pipes on the unix port).
# host/micronn/link.py is the other end.
#
# Frame, both ways:
#   a5 5a | kind u8 | seq u8 | length u24 LE | check u16 LE | block | crc | block | crc ...
# check is the low half of the CRC-32 (micronn.crc32, zlib's) of kind, seq and
# length. The payload follows in blocks of BLOCK bytes (the last one shorter;
# none if the payload is empty), each followed by crc u32 LE, the running CRC-32
# of kind, seq, length and the payload up to the end of that block: the last
# one covers the whole frame.
#
# Host -> board: L load blob (payload: blob)   O open path (payload: utf-8 path)
#                R run (payload: input)        I info    P ping    Q quit
#                Z reset the model's state (Model.reset(); protocol 3)
# A run's payload holds every input, one after the other in the model's order
# (info "inputs"), and its result every output the same way ("outputs"); for a
# model with one input and one output that is the input and the output.
# Board -> host, one reply per request, carrying the request's seq:
#   k ok (payload: repr of a dict; a ping's payload echoed)
#   r result (payload: u32 elapsed microseconds, then the output)
#   e error: the request arrived and failed ("Type: message"); a run that
#     Ctrl-C interrupted answers "KeyboardInterrupt: ..."
#   n not received: the frame was damaged or stopped coming; nothing was done
#     ("reason"). A damaged header is answered with seq 0 (its seq is unknown).
#
# Faults. Outside a frame the server waits for a5 5a as long as it takes and
# skips everything else. A header whose check fails is read again from the byte
# after its a5, so a false sync in noise never hides a real frame; a block whose
# crc fails is read again the same way (a frame cut short is followed by the
# next one). A length over MAX_PAYLOAD, or one the heap cannot hold, is refused
# (e) before any payload is read; the payload that follows is skipped like noise.
# Inside a frame, where the stream can be polled (select.poll on stdin: real
# ports, unix, micronn's QEMU boards), FRAME_TIMEOUT_MS of silence before a
# block, or before its crc, ends the frame (n). A stall in the middle of a block
# leaves the server waiting for at most BLOCK + 4 more bytes: the host's
# resynchronisation (link.py) sends BLOCK + 16 filler bytes, then a ping.
import gc
import struct
import sys
from array import array

import micronn

try:
    import micropython
    from micropython import const
except ImportError:
    micropython = None

    def const(x):
        return x
try:
    from time import ticks_diff, ticks_us
except ImportError:
    from time import time_ns

    def ticks_us():
        return time_ns() // 1000

    def ticks_diff(a, b):
        return a - b


# The frame protocol's version: the host checks it (with the module's version,
# format version and op codes) when a session starts.
PROTOCOL = const(3)
SYNC = b"\xa5\x5a"
BLOCK = const(1024)
MAX_PAYLOAD = const(8 * 1024 * 1024)
FRAME_TIMEOUT_MS = 1000
_LOAD = const(0x4C)             # "L"
_OPEN = const(0x4F)             # "O"
_RUN = const(0x52)              # "R"
_INFO = const(0x49)             # "I"
_PING = const(0x50)             # "P"
_QUIT = const(0x51)             # "Q"
_RESET = const(0x5A)            # "Z"
_OK = const(0x6B)               # "k"
_RESULT = const(0x72)           # "r"
_NOT_RECEIVED = const(0x6E)     # "n"
_ERROR = const(0x65)            # "e"


class _Silence(Exception):
    pass


def _blocks(buf, nbytes):
    """Memoryviews of buf, BLOCK bytes each: where a run frame's blocks go."""
    size = nbytes // len(buf) if len(buf) else 1
    step = BLOCK // size
    mv = memoryview(buf)
    return [mv[i:i + step] for i in range(0, len(buf), step)]


class _Link:
    def __init__(self, rx, tx, timeout_ms=FRAME_TIMEOUT_MS):
        self.rx = rx
        self.tx = tx
        self.timeout_ms = timeout_ms
        self.head = bytearray(7)
        self.head_fields = memoryview(self.head)[:5]
        self.word = bytearray(4)
        self.one = bytearray(1)
        self.back = b""         # bytes to read again before the stream's
        self.at = 0
        self.poll = None
        try:
            import select

            p = select.poll()
            p.register(rx, select.POLLIN)
            p.poll(0)           # a stream that cannot be polled fails here (io.BytesIO)
            self.poll = p
        except (ImportError, AttributeError, OSError, TypeError, ValueError):
            pass                # no timeouts inside a frame; the host's resync still works

    def _unread(self, data):
        self.back = bytes(data) + self.back[self.at:]
        self.at = 0

    def _fill(self, buf, nbytes):
        """Fill buf (nbytes long) inside a frame: read-again bytes first, then
        the stream, after at most timeout_ms of silence."""
        if self.at < len(self.back):    # only ever byte buffers (see receive)
            k = min(len(self.back) - self.at, nbytes)
            buf[:k] = self.back[self.at:self.at + k]
            self.at += k
            if k == nbytes:
                return
            buf = memoryview(buf)[k:]
            nbytes -= k
        if self.poll is not None:
            for _ in self.poll.ipoll(self.timeout_ms):
                break
            else:
                raise _Silence
        if self.rx.readinto(buf) != nbytes:
            raise EOFError

    def send(self, kind, seq, payload=b""):
        n = len(payload)
        head = struct.pack("<BBHB", kind, seq, n & 0xFFFF, n >> 16)
        crc = micronn.crc32(head)
        self.tx.write(SYNC + head + struct.pack("<H", crc & 0xFFFF))
        if 0 < n <= BLOCK:
            self.tx.write(payload)
            self.tx.write(struct.pack("<I", micronn.crc32(payload, crc)))
        elif n:
            mv = memoryview(payload)
            for i in range(0, n, BLOCK):
                blk = mv[i:i + BLOCK]
                crc = micronn.crc32(blk, crc)
                self.tx.write(blk)
                self.tx.write(struct.pack("<I", crc))

    def receive(self, run_buf=None, run_n=0, run_blocks=None):
        """The next intact request: (kind, seq, payload). A run frame of exactly
        run_n bytes is read into run_buf, so that steady-state inference
        allocates nothing. Damaged, refused and abandoned frames are answered
        here (n or e) and skipped."""
        one = self.one
        while True:
            prev = -1
            while True:
                if self.at < len(self.back):
                    b = self.back[self.at]
                    self.at += 1
                elif self.rx.readinto(one) == 1:
                    b = one[0]
                else:
                    raise EOFError
                if b == 0x5A and prev == 0xA5:
                    break
                prev = b
            try:
                self._fill(self.head, 7)
            except _Silence:
                self.send(_NOT_RECEIVED, 0, b"frame header cut short")
                continue
            crc = micronn.crc32(self.head_fields)
            if crc & 0xFFFF != struct.unpack_from("<H", self.head, 5)[0]:
                self._unread(self.head)
                self.send(_NOT_RECEIVED, 0, b"frame header check failed")
                continue
            kind, seq, lo, hi = struct.unpack_from("<BBHB", self.head)
            n = lo | hi << 16
            if n > MAX_PAYLOAD:
                self.send(_ERROR, seq, ("ValueError: frame length %d exceeds %d" % (n, MAX_PAYLOAD)).encode())
                continue
            if n == run_n and kind == _RUN and run_blocks is not None and self.at == len(self.back):
                payload = run_buf
                blocks = run_blocks
                size = n // len(run_buf)
            else:
                try:
                    payload = bytearray(n)
                except MemoryError:
                    payload = None
                    gc.collect()
                    try:
                        payload = bytearray(n)
                    except MemoryError:
                        msg = "MemoryError: a frame of %d bytes does not fit in memory (%d free)" % (n, gc.mem_free())
                        self.send(_ERROR, seq, msg.encode())
                        continue
                blocks = _blocks(payload, n) if n else ()
                size = 1
            got = 0
            try:
                for blk in blocks:
                    k = len(blk) * size
                    self._fill(blk, k)
                    crc = micronn.crc32(blk, crc)
                    self._fill(self.word, 4)
                    if struct.unpack_from("<I", self.word)[0] != crc:
                        self._unread(bytes(blk) + bytes(self.word))
                        msg = "frame check failed in payload bytes %d..%d of %d" % (got, got + k - 1, n)
                        self.send(_NOT_RECEIVED, seq, msg.encode())
                        break
                    got += k
                else:
                    return kind, seq, payload
            except _Silence:
                msg = "incomplete frame: %d of %d payload bytes came, then %d ms of silence" % (
                    got, n, self.timeout_ms)
                self.send(_NOT_RECEIVED, seq, msg.encode())
            payload = blocks = blk = None


def _buffer(shape, dtype):
    """A buffer for one input or output, and its size in bytes."""
    n = 1
    for d in shape:
        n *= d
    if dtype == "float32":
        return array("f", bytes(4 * n)), 4 * n
    if dtype in ("int16", "int32", "int64"):     # int16 (16x8), raw values (ARG_MAX): their bytes
        n *= {"int16": 2, "int32": 4, "int64": 8}[dtype]
    return bytearray(n), n


def _sizes(ios):
    """Bytes of each input or output as the board takes or gives it."""
    return [_buffer(d["shape"], d["dtype"])[1] for d in ios]


def _split(buf, sizes):
    """Memoryviews of buf, one per input (sizes in bytes)."""
    mv = memoryview(buf)
    unit = 4 if isinstance(buf, array) else 1     # array('f') slices count floats
    out, at = [], 0
    for n in sizes:
        out.append(mv[at:at + n // unit])
        at += n // unit
    return tuple(out)


def firmware():
    """What the host's session handshake compares with its own."""
    return {
        "micronn": micronn.version,
        "format": micronn.format_version,
        "protocol": PROTOCOL,
        "supported_ops": micronn.supported_ops(),
        # firmware built with --ops-from runs only its models' ops (the native module has all)
        "ops_limited": getattr(micronn, "ops_limited", False),
    }


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
        # bytes of state kept between runs (a stateful model: runs are not repeated on link faults)
        "state_size": getattr(model, "state_size", 0),
        "ram_size": model.ram_size,
        "blob_size": model.blob_size,
        "ops": model.ops,
        # every input and output (name, shape, dtype, scale, zero_point), in the order
        # of a run frame's payload
        "inputs": model.inputs,
        "outputs": model.outputs,
    }


def serve(rx=None, tx=None, timeout_ms=FRAME_TIMEOUT_MS):
    """Answer frames until a quit frame or the end of input.

    Ctrl-C interrupts a run (the model polls for it between bursts of work):
    on a board the host sends the byte 03 while it waits for a result (frames
    may hold 03 bytes, so it only counts during a run); on the unix port,
    whose stdin is a pipe, it is SIGINT at any time."""
    link = _Link(rx or sys.stdin.buffer, tx or sys.stdout.buffer, timeout_ms)
    intr = micropython is not None and hasattr(micropython, "kbd_intr") and sys.platform not in ("linux", "darwin")
    if intr:
        micropython.kbd_intr(-1)  # payload bytes may contain Ctrl-C
    model = None
    out = None
    inp = None
    inp_n = 0
    inp_blocks = None
    inp_parts = None        # one memoryview of inp per input (several inputs)
    in_sizes = None
    try:
        while True:
            try:
                kind, seq, payload = link.receive(inp, inp_n, inp_blocks)
            except EOFError:
                return
            except KeyboardInterrupt:
                continue        # meant for a run that had just ended
            try:
                if kind == _RUN:
                    if model is None:
                        raise ValueError("no model loaded")
                    x = inp_parts
                    if payload is not inp:
                        if len(payload) != inp_n:
                            raise ValueError("input of %d bytes; the model takes %d" % (len(payload), inp_n))
                        if model.input_dtype == "float32":
                            payload = array("f", payload)
                        x = _split(payload, in_sizes) if inp_parts is not None else None
                    if x is None:
                        x = payload
                    t0 = ticks_us()
                    if intr:
                        micropython.kbd_intr(3)
                    try:
                        model.run(x, out)
                    finally:
                        if intr:
                            micropython.kbd_intr(-1)
                    dt = ticks_diff(ticks_us(), t0)
                    head = struct.pack("<I", dt & 0xFFFFFFFF)
                    if isinstance(out, tuple):
                        link.send(_RESULT, seq, head + b"".join(bytes(y) for y in out))
                    else:
                        link.send(_RESULT, seq, head + out)
                elif kind == _LOAD or kind == _OPEN:
                    model = out = inp = inp_blocks = inp_parts = None
                    gc.collect()
                    free0 = gc.mem_free()
                    if kind == _LOAD:
                        model = micronn.Model(payload)
                    else:
                        with open(payload.decode(), "rb") as f:
                            model = micronn.Model(f)
                    payload = None
                    gc.collect()
                    heap_used = free0 - gc.mem_free()
                    ins = getattr(model, "inputs", None)
                    outs = getattr(model, "outputs", None)
                    if ins is not None and len(ins) > 1:
                        # all inputs in one buffer (they are all int8, or all float32)
                        in_sizes = _sizes(ins)
                        inp_n = sum(in_sizes)
                        inp = array("f", bytes(inp_n)) if ins[0]["dtype"] == "float32" else bytearray(inp_n)
                        inp_parts = _split(inp, in_sizes)
                    else:
                        inp, inp_n = _buffer(model.input_shape, model.input_dtype)
                    inp_blocks = _blocks(inp, inp_n)
                    if outs is not None and len(outs) > 1:
                        out = tuple(_buffer(d["shape"], d["dtype"])[0] for d in outs)
                    else:
                        out = _buffer(model.output_shape, model.output_dtype)[0]
                    ins = outs = None
                    d = info(model)
                    d["heap_used"] = heap_used
                    d["mem_free"] = gc.mem_free()
                    link.send(_OK, seq, repr(d).encode())
                elif kind == _INFO:
                    d = info(model)
                    d["firmware"] = firmware()
                    # kernel variants picked since the last INFO (tests see the fast paths run)
                    d["variants"] = micronn.kernel_variants(True)
                    gc.collect()
                    d["mem_free"] = gc.mem_free()
                    link.send(_OK, seq, repr(d).encode())
                elif kind == _PING:
                    link.send(_OK, seq, payload)
                elif kind == _RESET:
                    if model is None:
                        raise ValueError("no model loaded")
                    model.reset()
                    link.send(_OK, seq, b"{}")
                elif kind == _QUIT:
                    link.send(_OK, seq, b"{}")
                    return
                else:
                    raise ValueError("unknown frame type %d" % kind)
            except KeyboardInterrupt:
                link.send(_ERROR, seq, b"KeyboardInterrupt: run interrupted")
            except Exception as e:  # noqa: BLE001 - every error goes back to the host
                link.send(_ERROR, seq, ("%s: %s" % (type(e).__name__, e)).encode())
    finally:
        if intr:
            micropython.kbd_intr(3)
