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
print(repr({{'runs': runs[1:], 'kernels': [q[0] for q in p], 'ops': p[0][1], 'ops2': p[1][1], 'out': {outbytes}}}))
"""


def _literal(a: np.ndarray) -> str:
    if a.dtype == np.float32:
        return f"array('f', {[float(v) for v in a.ravel()]!r})"
    if a.dtype == np.int16:     # a 16x8 model's int16 input: its bytes
        return f"bytearray({a.astype('<i2').tobytes()!r})"
    return f"bytearray({a.astype(np.int8).tobytes()!r})"


def bench(data: bytes, board: str = "qemu-m4", runs: int = 3, x: np.ndarray | None = None,
          native: str | None = None, cycles: bool = False, mhz: float | None = None) -> dict:
    """Instructions per inference of ``data`` on a QEMU ``board``, per op and in total.
    native: an architecture (armv7m, ...): run through build/natmod/micronn-ARCH.mpy,
    imported from the ROMFS image (a board without the module: qemu-m3-stock).
    cycles: also estimated Cortex-M4/M7 cycles (micronn.cycles' QEMU plugin); mhz:
    those cycles as time at that clock (implies cycles)."""
    from . import romfs
    from .firmware import profile
    from .run import io, nbytes, prepare_input, sample_inputs, split_result
    from .targets import QemuTarget

    if runs < 1:
        raise MicronnError(f"bench needs at least 1 run, not {runs}")
    if mhz is not None and not mhz > 0:
        raise MicronnError(f"--mhz must be a clock above 0 MHz, not {mhz}")
    cycles = cycles or mhz is not None
    if cycles and native:
        raise MicronnError("--cycles times the built-in module's op loop; it does not combine with --native")
    prof = profile(board)
    if prof["port"] != "qemu":
        raise MicronnError(f"bench counts instructions under QEMU; {board!r} is not a QEMU board")
    per_tick = 1e9 / prof["clock_hz"]
    info = inspect(data)
    t = io(data)
    # several inputs: x is a list (one sample per input); several outputs: "output" is a list
    several = len(t["inputs"]) > 1
    if x is None:
        x = [a[0] for a in sample_inputs(data, 1)] if several else sample_inputs(data, 1)[0]
    xs = [np.asarray(a) for a in x] if isinstance(x, (list, tuple)) else [np.asarray(x)]
    prepare_input(data, [a[None] for a in xs] if several else xs[0][None])  # run()'s checks: shape, dtype, finite
    xs = [a.astype(np.float32) if a.dtype.kind == "f" else a for a in xs]  # the board quantizes float input
    outs = [f"array('f', bytes({nbytes(o)}))" if o["dtype"] == "float32" else f"bytearray({nbytes(o)})"
            for o in t["outputs"]]
    lit = _literal(xs[0]) if len(xs) == 1 else "(" + ", ".join(_literal(a) for a in xs) + ")"
    if len(outs) == 1:
        out, outbytes = outs[0], "bytes(out)"
    else:
        out, outbytes = "(" + ", ".join(outs) + ")", "b''.join(bytes(o) for o in out)"
    script = _SCRIPT.format(x=lit, out=out, runs=runs, outbytes=outbytes)
    files = {"bench.mnb": data}
    if native:
        from .natmod import mpy_file

        f = mpy_file(native)
        if not f.exists():
            raise MicronnError(f"{f} is missing: micronn natmod build --arch {native}")
        files["micronn.mpy"] = f.read_bytes()
        script = "import sys\nsys.path.append('/rom')\n" + script
    est = _Estimate(board) if cycles else None
    try:
        with QemuTarget(board, icount=True, romfs=romfs.build(files), extra_args=est.args if est else ()) as tgt:
            if not tgt.setup().get("romfs"):
                raise MicronnError(f"{board}: the ROMFS image was not mounted")
            got = ast.literal_eval(tgt.exec(script).strip())
    finally:
        if est:
            est.close()
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
    r = {
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
        "output": [a.tolist() for a in split_result(got["out"], t["outputs"])] if len(outs) > 1
        else split_result(got["out"], t["outputs"])[0].tolist(),
    }
    if est:
        est.apply(r, runs, mhz)
    return r


class _Estimate:
    """bench --cycles: the plugin on the board's QEMU command line, marking the
    firmware's tick counter and op loop, and its events matched to what the
    bench script times."""

    def __init__(self, board: str):
        import tempfile

        from . import cycles
        from .firmware import firmware_file

        self.model = cycles.core_model(board)
        elf = firmware_file(board)
        if not elf.exists():
            raise MicronnError(f"{elf} not found: build it with `micronn firmware build --board {board}`")
        sym = cycles.elf_symbols(elf, ["mp_hal_ticks_cpu", "mnn_run"])
        self.tick, self.run = sym["mp_hal_ticks_cpu"], sym["mnn_run"]
        self.dir = tempfile.TemporaryDirectory(prefix="micronn-cycles-")
        self.out = f"{self.dir.name}/events.txt"
        self.args = cycles.plugin_args(board, self.out, [self.tick, self.run])
        self.events = None

    def close(self) -> None:
        from .cycles import read_events

        if self.events is None:
            try:
                self.events = read_events(self.out)[0]
            except MicronnError:
                self.events = []        # apply() says so, if the run got that far
            finally:
                self.dir.cleanup()

    def apply(self, r: dict, runs: int, mhz: float | None) -> None:
        """Adds the estimate to a bench result. The script's timed stretches, in
        order: runs + 1 inferences, then two profile passes of one stretch per op
        and one of all ops; the empty reading (two tick reads in a row) comes just
        before the first."""
        from .cycles import WAIT_STATES_NOTE, regions

        ev = self.events
        n = len(r["ops"])
        found = regions(ev, self.tick, self.run)
        want = runs + 1 + 2 * (n + 1)
        if len(found) < want:
            raise MicronnError(f"the cycle plugin saw {len(found)} timed stretches, the bench script {want}")
        found = found[-want:]
        timed, prof1, prof2 = found[:runs + 1], found[runs + 1:runs + 2 + n], found[runs + 2 + n:]
        s = timed[0]["start"]
        if s < 2 or ev[s - 1][0] != self.tick or ev[s - 2][0] != self.tick:
            raise MicronnError("the cycle plugin's events do not show the bench script's empty reading")
        empty_cycles = ev[s - 1][2] - ev[s - 2][2]
        empty_instr = ev[s - 1][1] - ev[s - 2][1]
        per_run = sorted(t["cycles"] - empty_cycles for t in timed[1:])
        total = per_run[len(per_run) // 2]
        kernels = min(prof1[-1]["cycles"], prof2[-1]["cycles"])
        instr = sorted(t["instructions"] - empty_instr for t in timed[1:])[len(per_run) // 2]
        macs = r["macs"]
        r.update({
            "cycle_model": f"cortex-{self.model}",
            "cycles": total,
            "cycles_per_mac": total / macs if macs else None,
            "cycles_per_instruction": total / instr if instr else None,
            "kernel_cycles": kernels,
            "plugin_instructions": instr,
            "plugin_kernel_instructions": min(prof1[-1]["instructions"], prof2[-1]["instructions"]),
        })
        for op, a, b in zip(r["ops"], prof1[:n], prof2[:n], strict=True):
            c = min(a["cycles"], b["cycles"])
            op["cycles"] = c
            op["cycles_per_mac"] = c / op["macs"] if op["macs"] else None
        if mhz is not None:
            r.update({"mhz": mhz, "ms": total / (mhz * 1e3), "inferences_per_second": mhz * 1e6 / total,
                      "timing_note": WAIT_STATES_NOTE})


def describe(r: dict) -> str:
    """A bench result as a table."""
    est = "cycles" in r
    lines = [f"{r['name'] or 'model'} on {r['board']} ({r['core']}), qemu -icount shift=0",
             f"{'#':>3}  {'op':<18} {'output':<16} {'MACs':>10} {'instructions':>13} {'instr/MAC':>9} {'share':>6}"
             + (f" {'est. cycles':>13} {'cyc/MAC':>8}" if est else "")]
    for op in r["ops"]:
        ipm = f"{op['instructions_per_mac']:.2f}" if op["instructions_per_mac"] else ""
        share = 100.0 * op["instructions"] / r["instructions"] if r["instructions"] else 0.0
        shape = "x".join(map(str, op["outputs"][0])) if op["outputs"] else ""
        lines.append(f"{op['index']:>3}  {op['type']:<18} {shape:<16} {op['macs']:>10,} {op['instructions']:>13,} "
                     f"{ipm:>9} {share:>5.1f}%" + (_op_cycles(op) if est else ""))
    ipm = f"{r['instructions_per_mac']:.3f} instructions per MAC" if r["instructions_per_mac"] else "no MACs"
    lines += [
        f"inference: {r['instructions']:,} instructions, {r['macs']:,} MACs, {ipm}",
        f"run() overhead (call, input copy, dispatch, output copy): {r['run_overhead_instructions']:,} instructions "
        f"({r['run_overhead_percent']:.2f}%)",
        f"arena {r['arena_bytes']:,} bytes, blob {r['blob_bytes']:,} bytes; "
        f"counts are exact to {r['resolution_instructions']:.0f} instructions (one timer tick)",
    ]
    if est:
        cpm = f", {r['cycles_per_mac']:.3f} per MAC" if r["cycles_per_mac"] else ""
        cpi = f", {r['cycles_per_instruction']:.3f} per instruction" if r["cycles_per_instruction"] else ""
        lines.append(f"estimated {r['cycle_model']} cycles: {r['cycles']:,} per inference{cpm}{cpi} "
                     f"(micronn's QEMU plugin: the core's timing table, docs/benchmarks.md)")
        if "mhz" in r:
            lines.append(f"at {r['mhz']:g} MHz: {r['ms']:.3f} ms per inference, {r['inferences_per_second']:.1f} "
                         f"inferences per second ({r['timing_note']})")
    return "\n".join(lines)


def _op_cycles(op: dict) -> str:
    cpm = f"{op['cycles_per_mac']:.2f}" if op["cycles_per_mac"] else ""
    return f" {op['cycles']:>13,} {cpm:>8}"
