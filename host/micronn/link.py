"""The host side of the framed protocol spoken by ``device/mnserver.py``.

One transport layer for every target: a ``Link`` needs only ``read(n)`` and
``write(data)`` on some byte stream (the pipes of a unix firmware process, a
pty of a QEMU board, a USB serial port). ``read(n)`` may return fewer bytes, or
none, when its own (short) timeout passes; the link keeps reading until
``timeout`` seconds of silence.

Frame, both ways (device/mnserver.py has the same description)::

    a5 5a | kind u8 | seq u8 | length u24 LE | check u16 LE | block | crc | block | crc ...

``check`` is the low half of the CRC-32 (zlib's) of kind, seq and length; the
payload follows in blocks of ``BLOCK`` bytes (the last one shorter, none for an
empty payload), each followed by ``crc`` u32 LE, the running CRC-32 of kind,
seq, length and the payload so far.
Every request carries a sequence number 1..255; the board's one reply to it
carries the same number: ``k`` ok, ``r`` result, ``e`` error (the request
arrived and failed: ``DeviceError``), ``n`` not received (the frame was damaged
or stopped coming, nothing was done; seq 0 when the damaged part was a header).

Faults and what the host does:

* noise before or between frames is skipped (a header whose check fails is read
  again from the byte after its sync, so noise never hides a frame);
* a reply with another seq is a late answer to an earlier request: dropped;
* a damaged reply, an ``n`` reply, silence for ``timeout`` seconds: the link
  resynchronises (``resync``: ``RESYNC_FILL`` zero bytes, enough to complete any
  frame part the board may still be waiting for, then a ping with a random
  nonce; everything up to the matching reply is read and dropped, except a
  reply to the request in flight). Then the request is sent once more if that
  is safe: PING, INFO, RESET, RUN and OPEN always (repeating them changes
  nothing), except the RUN of a model with state (it would move the state on
  twice); LOAD, QUIT and that RUN only if the board did not act on the first one (it said ``n``
  for it, or the resync went through cleanly with no reply to it: the server
  answers in order, so it never read that frame). Otherwise, or if the second
  attempt fails too, a ``MicronnError`` says what happened;
* the stream itself failing (the port vanished, the firmware process exited):
  ``MicronnError`` at once; the next request resynchronises first.

A run that outlasts ``run_timeout`` (or that Ctrl-C on the host stops) is
interrupted on the board (``interrupt``: the byte 03 on a serial line, SIGINT
for the unix firmware; the model polls for it between bursts of work): the
board answers the run with ``KeyboardInterrupt`` and is ready for the next
request (``RunInterrupted``).
"""

from __future__ import annotations

import ast
import os
import struct
import time
import zlib

from .errors import MicronnError

SYNC = b"\xa5\x5a"
LOAD, OPEN, RUN, INFO, PING, QUIT, RESET = (ord(c) for c in "LORIPQZ")
OK, RESULT, ERROR, NOT_RECEIVED = (ord(c) for c in "kren")
NAMES = {LOAD: "load", OPEN: "open", RUN: "run", INFO: "info", PING: "ping", QUIT: "quit", RESET: "reset"}
# Requests a board may act on twice (a reply lost is then asked again). A run is,
# except on a model with state: it would advance the state twice.
IDEMPOTENT = frozenset((PING, INFO, RUN, OPEN, RESET))
BLOCK = 1024
MAX_PAYLOAD = 8 * 1024 * 1024
INTR = 3                        # the board's Ctrl-C on a serial line
RESYNC_FILL = BLOCK + 16        # > the most the board can be waiting for: a block and its crc
SKIP_LIMIT = 16 * 1024          # noise bytes tolerated while waiting for one frame


class DeviceError(MicronnError):
    """The board answered with an error (its exception type and message)."""


class RunInterrupted(MicronnError):
    """A run was interrupted on the board; the board answers the next request."""


class BoardReset(MicronnError):
    """The board rebooted (its boot banner came instead of an answer)."""


BANNER = b"MicroPython v"
PROMPT = b">>> "


INTERRUPT_WAIT = 10.0           # seconds for an interrupted run to answer


def header(kind: int, seq: int, length: int) -> bytes:
    """A frame's sync and header (the blocks follow); length < 2**24."""
    fields = struct.pack("<BBI", kind, seq, length)[:5]
    return SYNC + fields + struct.pack("<H", zlib.crc32(fields) & 0xFFFF)


def frame(kind: int, seq: int, payload: bytes = b"") -> bytes:
    """One whole frame."""
    head = header(kind, seq, len(payload))
    parts = [head]
    crc = zlib.crc32(head[2:7])
    mv = memoryview(payload)
    for i in range(0, len(payload), BLOCK):
        blk = mv[i:i + BLOCK]
        crc = zlib.crc32(blk, crc)
        parts += [blk, struct.pack("<I", crc)]
    return b"".join(parts)


class _Fault(Exception):
    """Something went wrong on the line; the link resynchronises."""


class _Timeout(_Fault):
    pass


class _Damaged(_Fault):
    pass


class _NotReceived(_Fault):
    def __init__(self, reason: str, ours: bool):
        super().__init__(reason)
        self.ours = ours          # False: a damaged header, perhaps this request's


class _Lost(Exception):
    """The stream itself failed: nothing more can be read or written."""


class _Reset(Exception):
    """The board's boot banner and REPL prompt came instead of frames."""


class Link:
    def __init__(self, stream, name: str = "board", timeout: float | None = None, retries: int = 1):
        self.stream = stream      # read(n) -> bytes (short or empty on its timeout), write(bytes)
        self.name = name
        self.interrupt = None     # stops a run on the board (set by the target), or None
        self.run_timeout = None   # seconds a run may take before it is interrupted (None: timeout)
        self.on_reset = None      # brings the server back after a reboot (set by the target), or None
        self.model = None         # the last LOAD or OPEN that succeeded: (kind, payload)
        self.stateful = False     # that model keeps state between runs (its runs are never repeated)
        self.timeout = float(timeout if timeout is not None else getattr(stream, "timeout", None) or 60.0)
        self.retries = retries
        self.synced = True
        self.stats = {"resyncs": 0, "retries": 0, "not_received": 0, "stale": 0, "damaged": 0, "noise": 0}
        self._seq = 0
        self._back = b""
        self._seen = b""          # the last noise bytes, for error messages

    # -- bytes ---------------------------------------------------------------

    def _next_seq(self) -> int:
        self._seq = self._seq % 255 + 1
        return self._seq

    def _quiet_ping(self) -> tuple[int, bytes]:
        """(seq, a ping frame with a random nonce) holding no byte 03: a
        resync may go out while a run is in flight, and 03 there is the
        board's Ctrl-C, which would stop the run."""
        while True:
            seq = self._next_seq()
            ping = frame(PING, seq, os.urandom(8))
            if INTR not in ping:
                return seq, ping

    def _write(self, data: bytes) -> None:
        try:
            self.stream.write(data)
        except (OSError, EOFError) as e:
            raise _Lost(str(e) or type(e).__name__) from None

    def _read(self, n: int, deadline: float) -> bytes:
        data = b""
        if self._back:
            data, self._back = self._back[:n], self._back[n:]
        while len(data) < n:
            try:
                chunk = self.stream.read(n - len(data))
            except (OSError, EOFError) as e:
                raise _Lost(str(e) or type(e).__name__) from None
            if chunk:
                data += chunk
            elif time.monotonic() >= deadline:
                raise _Timeout("silence")
        return data

    def _frame(self, silence: float) -> tuple[int, int, bytes]:
        """The next intact frame: (kind, seq, payload). Skips noise; raises
        _Damaged for a frame whose payload fails its check, _Timeout after
        `silence` seconds without the frame."""
        deadline = time.monotonic() + silence
        seen = bytearray()
        prev = -1
        while True:
            c = self._read(1, deadline)[0]
            seen.append(c)
            if prev == 0xA5 and c == 0x5A:
                head = self._read(7, deadline)
                kind, seq, lo, hi, check = struct.unpack("<BBHBH", head)
                n = lo | hi << 16
                if zlib.crc32(head[:5]) & 0xFFFF == check and n <= MAX_PAYLOAD:
                    break
                self._back = head + self._back      # read again from the byte after the false sync
                c = -1
            prev = c
            if c == 0x20 and seen.endswith(PROMPT) and BANNER in seen:
                self._noise(seen)
                raise _Reset()
            if len(seen) > SKIP_LIMIT:
                self._noise(seen)
                raise _Damaged(f"{len(seen)} bytes without a frame")
        self._noise(seen[:-2])
        crc = zlib.crc32(head[:5])
        payload = []
        for i in range(0, n, BLOCK):
            k = min(BLOCK, n - i)
            blk = self._read(k + 4, time.monotonic() + silence)
            crc = zlib.crc32(blk[:k], crc)
            if struct.unpack_from("<I", blk, k)[0] != crc:
                self._back = blk + self._back
                self.stats["damaged"] += 1
                raise _Damaged("a frame from the board failed its check")
            payload.append(blk[:k])
        return kind, seq, b"".join(payload)

    def _noise(self, seen: bytes) -> None:
        if seen:
            self.stats["noise"] += len(seen)
            self._seen = (self._seen + bytes(seen))[-160:]

    def _reply(self, seq: int) -> tuple[int, bytes]:
        while True:
            try:
                kind, rseq, data = self._frame(self.timeout)
            except _Timeout:
                raise _Timeout(f"no answer within {self.timeout:g} s") from None
            if kind == NOT_RECEIVED and rseq in (seq, 0):
                self.stats["not_received"] += 1
                raise _NotReceived(data.decode("utf-8", "replace"), ours=rseq == seq)
            if rseq == seq:
                return kind, data
            self.stats["stale"] += 1

    def read_frame(self, timeout: float | None = None) -> tuple[int, int, bytes]:
        """The next intact frame from the board, (kind, seq, payload), whatever
        it answers: for diagnostics and tests that write raw bytes to the stream."""
        try:
            return self._frame(self.timeout if timeout is None else timeout)
        except _Timeout:
            raise MicronnError(f"{self.name}: no frame within {timeout or self.timeout:g} s") from None
        except _Damaged as e:
            raise MicronnError(f"{self.name}: {e}") from None
        except _Lost as e:
            raise MicronnError(f"{self.name}: link lost ({e})") from None

    # -- resynchronisation ---------------------------------------------------

    def resync(self, pending: int | None = None, wait: float | None = None):
        """Bring the board's server and this link back into step.

        Returns (reply, not_received): the reply to request `pending` if it
        arrived meanwhile, and whether the board said it did not receive that
        request. Raises MicronnError if the board does not answer."""
        wait = self.timeout if wait is None else wait
        if pending is None:
            self._seen = b""
        reply, not_received = None, False
        nonces = {}
        try:
            for _ in range(2):
                seq, ping = self._quiet_ping()
                nonces[seq] = ping[-12:-4]
                self._write(bytes(RESYNC_FILL) + ping)
                end = time.monotonic() + wait
                while time.monotonic() < end:
                    try:
                        kind, rseq, data = self._frame(end - time.monotonic())
                    except _Timeout:
                        break
                    except _Damaged:
                        continue
                    if rseq in nonces and kind == OK and data == nonces[rseq]:
                        self.synced = True
                        self.stats["resyncs"] += 1
                        return reply, not_received
                    if pending is not None and rseq == pending:
                        if kind == NOT_RECEIVED:
                            not_received = True
                            self.stats["not_received"] += 1
                        else:
                            reply = (kind, data)
                    else:
                        self.stats["stale"] += 1
        except _Lost as e:
            self.synced = False
            raise MicronnError(f"{self.name}: link lost ({e})") from None
        self.synced = False
        seen = self._seen.decode("utf-8", "replace").strip()
        raise MicronnError(f"{self.name}: the board does not answer (no reply to a resync within {wait:g} s;"
                           " is the inference server running?)" + (f"; last bytes from it: {seen!r}" if seen else ""))

    # -- requests ------------------------------------------------------------

    def _interrupt_run(self, seq: int) -> tuple[int, bytes]:
        """Interrupt the run in flight (request seq) and return its reply;
        _Timeout (the resync path) if the board does not answer."""
        try:
            self.interrupt()
        except OSError as e:
            raise _Lost(str(e)) from None
        try:
            return self._reply_within(seq, INTERRUPT_WAIT)
        except _Timeout:
            raise _Timeout(f"no answer, not even to an interrupt within {INTERRUPT_WAIT:g} s") from None

    def _stop_run(self, seq: int, limit: float) -> MicronnError:
        """After a run's reply and a resync both timed out: interrupt the run
        and return the error to raise (or the board's own, if it was not a
        run that the interrupt stopped)."""
        try:
            kind, data = self._interrupt_run(seq)
        except (_Fault, _Lost) as e:
            return MicronnError(f"{self.name}: run failed: the board does not answer (not within {limit:g} s,"
                                f" nor after an interrupt: {e})")
        self.synced = False         # the resync's pings are still to be answered: the next request resyncs
        if kind == ERROR and data.startswith(b"KeyboardInterrupt"):
            return RunInterrupted(f"{self.name}: the run did not finish within {limit:g} s and was interrupted;"
                                  " the board is ready for the next request")
        if kind == ERROR:
            return DeviceError(f"{self.name}: {data.decode('utf-8', 'replace')}")
        return MicronnError(f"{self.name}: run finished late, after an interrupt; run it again")

    def _reply_within(self, seq: int, seconds: float) -> tuple[int, bytes]:
        old = self.timeout
        self.timeout = seconds
        try:
            return self._reply(seq)
        finally:
            self.timeout = old

    def _run_reply(self, seq: int) -> tuple[int, bytes]:
        """The reply to run request seq; interrupts a run that takes too long
        or that the host's Ctrl-C stops."""
        limit = self.run_timeout or self.timeout
        if self.interrupt is None:
            return self._reply_within(seq, limit)
        try:
            return self._reply_within(seq, limit)
        except KeyboardInterrupt:
            try:
                self._interrupt_run(seq)
            except (_Fault, _Lost):
                self.synced = False
            raise

    def request(self, kind: int, payload: bytes = b"") -> tuple[int, bytes]:
        """Send one request and return its reply (kind, payload); see the
        module docstring for what happens on faults. A board that reboots
        meanwhile is reported (BoardReset) and, where the target can, brought
        back: server started, last model loaded again."""
        if len(payload) > MAX_PAYLOAD:
            raise MicronnError(f"payload of {len(payload)} bytes exceeds the protocol limit {MAX_PAYLOAD}")
        what = NAMES.get(kind, f"request {kind}")
        try:
            reply = self._request(kind, payload, what)
        except _Reset:
            self.synced = False
            back = ""
            if self.on_reset is not None:
                try:
                    self.on_reset()
                    self.synced = True
                    if self.model is not None:
                        self._request(*self.model, NAMES[self.model[0]])
                    back = "; the session is back (server restarted" + \
                        (", model loaded again)" if self.model is not None else ")")
                except (MicronnError, _Reset, _Lost) as e:
                    back = f"; it could not be brought back ({e})"
            raise BoardReset(f"{self.name}: {what} failed: the board reset (it printed its boot banner"
                             f" instead of answering){back}") from None
        rkind, rdata = reply
        if rkind == ERROR:
            raise DeviceError(f"{self.name}: {rdata.decode('utf-8', 'replace')}")
        if kind in (LOAD, OPEN):
            self.model = (kind, payload)
        return rkind, rdata

    def _request(self, kind: int, payload: bytes, what: str) -> tuple[int, bytes]:
        self._seen = b""
        if not self.synced:
            self.resync()
        attempt = 0
        while True:
            seq = self._next_seq()
            mark = (self.stats["noise"], self.stats["damaged"])
            try:
                self._write(frame(kind, seq, payload))
                reply = self._run_reply(seq) if kind == RUN else self._reply(seq)
                break
            except _Lost as e:
                self.synced = False
                raise MicronnError(f"{self.name}: {what}: link lost ({e})") from None
            except _Fault as fault:
                # A run still going is told from a lost request by the resync:
                # a board that answers neither is busy (or gone): interrupt it.
                run_limit = self.run_timeout if kind == RUN and self.run_timeout else None
                try:
                    # (a resync tries twice: together as long as the run timeout)
                    got, not_received = self.resync(pending=seq, wait=run_limit / 2 if run_limit else None)
                except MicronnError:
                    if kind != RUN or self.interrupt is None or not isinstance(fault, _Timeout):
                        raise
                    raise self._stop_run(seq, run_limit or self.timeout) from None
                if got is not None:
                    if kind == RUN and got[0] == ERROR and got[1].startswith(b"KeyboardInterrupt"):
                        # stopped by a Ctrl-C from elsewhere (a console on the same board)
                        self.synced = False
                        raise RunInterrupted(f"{self.name}: the run was interrupted on the board;"
                                             " the board is ready for the next request") from None
                    reply = got
                    break
                # Every byte from the board since the request went out was an
                # intact frame, and none answered it: the board never read it.
                clean = mark == (self.stats["noise"], self.stats["damaged"])
                unread = not_received or clean or (isinstance(fault, _NotReceived) and fault.ours)
                again = kind in IDEMPOTENT and not (kind == RUN and self.stateful)
                if attempt < self.retries and (again or unread):
                    attempt += 1
                    self.stats["retries"] += 1
                    continue
                if isinstance(fault, _NotReceived) and (fault.ours or not_received):
                    why = f"the board did not get the whole frame ({fault})"
                elif not_received:
                    why = f"{fault}; the board did not get the whole frame"
                else:
                    why = str(fault)
                tail = "" if unread or again else \
                    f"; not repeated, as the board may have acted on it: {what} again" + \
                    (" (the model keeps state: reset it, or load it again, to start over)" if kind == RUN else "")
                raise MicronnError(f"{self.name}: {what} failed: {why}; the link is back in step{tail}") from None
        return reply

    # -- the operations ------------------------------------------------------

    def load(self, blob: bytes) -> dict:
        _, data = self.request(LOAD, blob)
        return self._loaded(_info(data))

    def open(self, path: str) -> dict:
        _, data = self.request(OPEN, path.encode())
        return self._loaded(_info(data))

    def _loaded(self, info: dict) -> dict:
        self.stateful = bool(info.get("state_size"))
        return info

    def reset(self) -> None:
        """Reset the loaded model's state (Model.reset() on the board)."""
        self.request(RESET)

    def info(self) -> dict:
        _, data = self.request(INFO)
        return _info(data)

    def run(self, x: bytes) -> tuple[bytes, int]:
        """Run one input; returns (output bytes, elapsed microseconds on the board).
        A model with several inputs takes them one after the other in x, and gives
        its outputs the same way (the server's info lists "inputs" and "outputs";
        micronn.run.pack_sample and split_result build and split them)."""
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
