"""``micronn.bench()``: deterministic instruction counts of a blob on a QEMU board.

The board runs under ``qemu -icount shift=0``: its virtual clock advances one
nanosecond per executed instruction, so the CPU tick counter the module reads
(``Model.profile()``, ``time.ticks_cpu()``) counts instructions in steps of
1e9 / clock_hz (40 on the 25 MHz MPS2 boards, 100 on RV32's 10 MHz timer).
The blob is opened in place from a ROMFS image, as on a deployed board.
"""

from __future__ import annotations

import ast

import numpy as np

from .errors import MicronnError
from .inspector import inspect

_SCRIPT = """\
import gc, micronn, time
from array import array
m = micronn.Model(open('/rom/bench.mnb', 'rb'))
x = {x}
out = {out}
m.run(x, out)
tc = time.ticks_cpu
td = time.ticks_diff
t0 = tc(); t1 = tc()
empty = td(t1, t0)
runs = [0] * ({runs} + 1)
for i in range({runs} + 1):
    gc.collect()
    t0 = tc(); m.run(x, out); t1 = tc()
    runs[i] = td(t1, t0) - empty
p = [m.profile(x) for i in range(2)]
print(repr({{'runs': runs[1:], 'kernels': [q[0] for q in p], 'ops': p[0][1], 'ops2': p[1][1], 'out': bytes(out)}}))
"""


def _literal(a: np.ndarray) -> str:
    if a.dtype == np.float32:
        return f"array('f', {[float(v) for v in a.ravel()]!r})"
    return f"bytearray({a.astype(np.int8).tobytes()!r})"


def bench(data: bytes, board: str = "qemu-m4", runs: int = 3, x: np.ndarray | None = None,
          native: str | None = None) -> dict:
    """Instructions per inference of ``data`` on a QEMU ``board``, per op and in total.
    native: an architecture (armv7m, ...): run through build/natmod/micronn-ARCH.mpy,
    imported from the ROMFS image (a board without the module: qemu-m3-stock)."""
    from . import romfs
    from .firmware import profile
    from .run import io, prepare_input, sample_inputs
    from .targets import QemuTarget

    if runs < 1:
        raise MicronnError(f"bench needs at least 1 run, not {runs}")
    prof = profile(board)
    if prof["port"] != "qemu":
        raise MicronnError(f"bench counts instructions under QEMU; {board!r} is not a QEMU board")
    per_tick = 1e9 / prof["clock_hz"]
    info = inspect(data)
    t = io(data)
    if x is None:
        x = sample_inputs(data, 1)[0]
    x = np.asarray(x)
    prepare_input(data, x[None])       # the checks run() makes: shape, dtype, finite values
    if x.dtype.kind == "f":
        x = x.astype(np.float32)       # the board quantizes float input itself
    n_out = int(np.prod(t["output"]["shape"]))
    out = f"array('f', bytes({4 * n_out}))" if t["output"]["dtype"] == "float32" else f"bytearray({n_out})"
    script = _SCRIPT.format(x=_literal(x), out=out, runs=runs)
    files = {"bench.mnb": data}
    if native:
        from .natmod import mpy_file

        f = mpy_file(native)
        if not f.exists():
            raise MicronnError(f"{f} is missing: micronn natmod build --arch {native}")
        files["micronn.mpy"] = f.read_bytes()
        script = "import sys\nsys.path.append('/rom')\n" + script
    with QemuTarget(board, icount=True, romfs=romfs.build(files)) as tgt:
        if not tgt.setup().get("romfs"):
            raise MicronnError(f"{board}: the ROMFS image was not mounted")
        got = ast.literal_eval(tgt.exec(script).strip())
    # The clock advances in whole ticks, so a stretch of code is seen as n or
    # n + 1 ticks depending on where in a tick it starts; anything more means
    # the runs really differed.
    ticks = sorted(got["runs"])
    spread = max(ticks[-1] - ticks[0], max(got["kernels"]) - min(got["kernels"]),
                 max((abs(a - b) for a, b in zip(got["ops"], got["ops2"], strict=True)), default=0))
    if spread > 1:
        raise MicronnError(f"{board}: instruction counts differ between identical runs: {got['runs']}, "
                           f"{got['kernels']}")
    total = round(ticks[len(ticks) // 2] * per_tick)
    kernels = round(min(got["kernels"]) * per_tick)
    macs = info["macs"]
    ops = []
    for op, tk, tk2 in zip(info["ops"], got["ops"], got["ops2"], strict=True):
        n = round(min(tk, tk2) * per_tick)
        ops.append({"index": op["index"], "type": op["type"], "outputs": op["outputs"], "macs": op["macs"],
                    "instructions": n, "instructions_per_mac": n / op["macs"] if op["macs"] else None})
    return {
        "name": info["name"],
        "board": board,
        "core": prof.get("core"),
        "instructions": total,
        "macs": macs,
        "instructions_per_mac": total / macs if macs else None,
        "kernel_instructions": kernels,
        "run_overhead_instructions": total - kernels,
        "run_overhead_percent": 100.0 * (total - kernels) / total if total else 0.0,
        "resolution_instructions": per_tick,
        "arena_bytes": info["arena_bytes"],
        "blob_bytes": info["blob_bytes"],
        "ops": ops,
        "output": np.frombuffer(got["out"], dtype=np.float32 if t["output"]["dtype"] == "float32"
                                else np.int8).tolist(),
    }


def describe(r: dict) -> str:
    """A bench result as a table."""
    lines = [f"{r['name'] or 'model'} on {r['board']} ({r['core']}), qemu -icount shift=0",
             f"{'#':>3}  {'op':<18} {'output':<16} {'MACs':>10} {'instructions':>13} {'instr/MAC':>9} {'share':>6}"]
    for op in r["ops"]:
        ipm = f"{op['instructions_per_mac']:.2f}" if op["instructions_per_mac"] else ""
        share = 100.0 * op["instructions"] / r["instructions"] if r["instructions"] else 0.0
        shape = "x".join(map(str, op["outputs"][0])) if op["outputs"] else ""
        lines.append(f"{op['index']:>3}  {op['type']:<18} {shape:<16} {op['macs']:>10,} {op['instructions']:>13,} "
                     f"{ipm:>9} {share:>5.1f}%")
    ipm = f"{r['instructions_per_mac']:.3f} instructions per MAC" if r["instructions_per_mac"] else "no MACs"
    lines += [
        f"inference: {r['instructions']:,} instructions, {r['macs']:,} MACs, {ipm}",
        f"run() overhead (call, input copy, dispatch, output copy): {r['run_overhead_instructions']:,} instructions "
        f"({r['run_overhead_percent']:.2f}%)",
        f"arena {r['arena_bytes']:,} bytes, blob {r['blob_bytes']:,} bytes; "
        f"counts are exact to {r['resolution_instructions']:.0f} instructions (one timer tick)",
    ]
    return "\n".join(lines)
