"""Cycle estimates (micronn.cycles, tools/qemu-plugin/mnn_cycles.c).

The calibration program tests/cycles/calib.S runs segments of known
instruction mixes N times each on QEMU's Cortex-M4 (mps2-an386) and Cortex-M7
(mps2-an500) machines; the plugin's estimate of every segment must equal the
count worked out below by hand from the timing table (for the M4 the Technical
Reference Manual's table 3-1 and section 3.3.2; for the M7 the dual-issue
approximation docs/benchmarks.md states). Then `micronn bench --cycles --mhz 80`
on a small CNN on qemu-m4, and its errors.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest

from micronn import cycles, pack
from micronn.bench import bench
from micronn.errors import MicronnError

from .conftest import ROOT, missing, need_firmware, need_shared

CALIB = ROOT / "tests" / "cycles" / "calib.S"
N = 23          # iterations of every loop: odd, so no per-pair accident hides

# The Cortex-M4 table (TRM table 3-1, section 3.3.2), zero wait states.
P = 2           # pipeline refill after a taken branch: "1 to 3", the model takes 2
ALU = 1         # MOV, ADD, SUB, EOR, ORR, ...
MAC = 1         # MLA, SMLAD, UMLAL: single cycle on the M4
LDR = 2         # a single load
LDR_PIPE = 1    # a load or register-offset store right after a load whose result its address does not use
AGU = 1         # extra: a load/store address the data-processing instruction just before wrote
STR_IMM = 1     # STR with an immediate offset
STR_REG = 2     # STR with a register offset, not after a load
DIV = 7         # SDIV/UDIV take 2 to 12: the model takes the middle
BRANCH = 1      # B<cond> not taken; taken: 1 + P; B, BL, BX always taken
VADD, VMLA, VDIV, VLDR, VSTR = 1, 3, 14, 2, 2


def multi(n: int) -> int:
    """LDM, STM, PUSH, POP of n registers: 1 + N."""
    return 1 + n


# Every segment starts in `mark` (bx lr back, taken) and ends with `bl mark` (taken).
CALL_M4 = (BRANCH + P) + (BRANCH + P)


def loop_m4(setup: int, body: int) -> int:
    """`setup` cycles before the loop, `body` per iteration with its closing bne:
    taken N - 1 times (1 + P), not taken once (1)."""
    return CALL_M4 + setup + N * (body + BRANCH) + (N - 1) * P


EXPECTED_M4 = [
    # S0: the calls alone
    CALL_M4,
    # S1: movs; loop: ldr, ldr (pipelined: its base r4 is not the first load's r1), adds, subs
    loop_m4(ALU, LDR + LDR_PIPE + ALU + ALU),
    # S2: movs; loop: ldr r1, ldr [r1] (needs r1: not pipelined), subs
    loop_m4(ALU, LDR + LDR + ALU),
    # S3: movs, mov; loop: mla, smlad, umlal, subs
    loop_m4(2 * ALU, 3 * MAC + ALU),
    # S4: movs; loop: ldmia 4 registers, stmia 4 registers, subs
    loop_m4(ALU, multi(4) + multi(4) + ALU),
    # S5: movs; loop: add r7 (address), str [r7] (AGU stall), ldr [r7] (not after a load), subs
    loop_m4(ALU, ALU + (STR_IMM + AGU) + LDR + ALU),
    # S6: movs; loop: ldr, str [r5, r6] (after a load: pipelined), str [r5, r6] (after a store: 2), subs
    loop_m4(ALU, LDR + LDR_PIPE + STR_REG + ALU),
    # S7: movs, mov; loop: sdiv, udiv, subs
    loop_m4(2 * ALU, DIV + DIV + ALU),
    # S8: movs; loop: vadd, vmla, vdiv, vldr, vstr, subs
    loop_m4(ALU, VADD + VMLA + VDIV + VLDR + VSTR + ALU),
    # S9: movs; loop: bl leaf (taken), push {r4, lr}, pop {r4, pc} (taken), subs
    loop_m4(ALU, (BRANCH + P) + multi(2) + (multi(2) + P) + ALU),
    # S10: movs; loop: adds, adds, eors, orrs, subs
    loop_m4(ALU, 5 * ALU),
    # S11: movs; loop: ldr.w, ldrsh [r4, r6] (pipelined), str.w imm, mov r7, ldr [r7], #4 (AGU stall),
    # ldrb [r7, #1]! (its base the previous load wrote back: not pipelined), subs
    loop_m4(ALU, LDR + LDR_PIPE + STR_IMM + ALU + (LDR + AGU) + LDR + ALU),
]

# Instructions per segment: bx and bl of the calls, the set-up, N loop bodies
# (S9's body: bl, push, pop, subs, bne).
INSNS = [(0, 0), (1, 5), (1, 4), (2, 5), (1, 4), (1, 5), (1, 5), (2, 4), (1, 7), (1, 5), (1, 6), (1, 8)]
EXPECTED_INSNS = [2 + setup + N * body for setup, body in INSNS]

# The Cortex-M7 approximation: one cycle an instruction (DIV 7, VDIV 14, LDM/STM
# of n registers 1 + ceil(n / 2)); an instruction issues with the one before it
# (costing nothing) unless that one already paired, is a branch/IT/barrier/divide/
# multiple, both access memory, both multiply, both are floating point, or it reads
# or writes a register the first writes; a taken branch costs 1 more. Blocks are
# QEMU's translation blocks: the first iteration shares a block with the set-up,
# the others start at the loop label. CALL_M7: bx (1 + 1), bl alone in its block (1 + 1).
CALL_M7 = 4
EXPECTED_M7 = [
    CALL_M7,
    # S1: first block movs+ldr | ldr | adds (needs r2)+subs | bne (after a pair) = 4; loop
    # ldr | ldr (two memory) | adds+subs | bne = 4; N - 1 taken
    CALL_M7 + 4 + (N - 1) * 4 + (N - 1),
    # S2: movs+ldr | ldr r7+subs | bne = 3; loop ldr | ldr+subs | bne = 3
    CALL_M7 + 3 + (N - 1) * 3 + (N - 1),
    # S3: movs+mov | mla | smlad | umlal+subs | bne = 5; loop mla | smlad | umlal+subs | bne = 4
    CALL_M7 + 5 + (N - 1) * 4 + (N - 1),
    # S4: movs | ldm 3 | stm 3 | subs+bne = 8; loop 3 + 3 + 1 = 7
    CALL_M7 + 8 + (N - 1) * 7 + (N - 1),
    # S5: movs+add | str | ldr+subs (two memory: ldr alone with str) | bne = 4; loop
    # add | str (reads r7) | ldr+subs | bne = 4
    CALL_M7 + 4 + (N - 1) * 4 + (N - 1),
    # S6: movs+ldr | str | str+subs | bne = 4; loop ldr | str | str+subs | bne = 4
    CALL_M7 + 4 + (N - 1) * 4 + (N - 1),
    # S7: movs+mov | sdiv 7 | udiv 7 | subs+bne = 16; loop 7 + 7 + 1 = 15
    CALL_M7 + 16 + (N - 1) * 15 + (N - 1),
    # S8: movs+vadd | vmla | vdiv 14 | vldr | vstr+subs | bne = 19; loop vadd | vmla (two FP) | 14 |
    # vldr | vstr+subs | bne = 19
    CALL_M7 + 19 + (N - 1) * 19 + (N - 1),
    # S9: movs+bl = 1 then bl alone N - 1 times; leaf: push 2 + pop 2; subs+bne = 1 a time;
    # taken: bl and pop every time, bne N - 1 times
    CALL_M7 + 1 + (N - 1) + N * 4 + N + N + N + (N - 1),
    # S10: movs+adds | adds+eors | orrs+subs | bne = 4; loop adds+adds | eors+orrs | subs+bne = 3
    CALL_M7 + 4 + (N - 1) * 3 + (N - 1),
    # S11: movs+ldr.w | ldrsh | str+mov | ldr | ldrb+subs | bne = 6; loop: ldr | ldrsh | str+mov |
    # ldr | ldrb+subs | bne = 6
    CALL_M7 + 6 + (N - 1) * 6 + (N - 1),
]


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        missing(f"{name} is not installed")
    return path


@pytest.fixture(scope="module")
def plugin():
    if cycles.compiler() is None:
        missing("no C compiler (gcc or cc) for the QEMU plugin")
    return cycles.build_plugin()


def _calibrate(plugin, tmp_path, cpu: str, fpu: str, machine: str, core: str):
    """Builds calib.S for `cpu`, runs it on `machine` with the plugin: per segment
    (instructions, cycles), and the run's totals."""
    gcc, qemu = _tool("arm-none-eabi-gcc"), _tool("qemu-system-arm")
    elf = tmp_path / f"calib-{core}.elf"
    subprocess.run([gcc, f"-mcpu={cpu}", "-mthumb", f"-mfpu={fpu}", "-mfloat-abi=hard", "-nostdlib",
                    f"-DN={N}", "-Wl,-Ttext=0", "-Wl,--entry=reset", "-o", str(elf), str(CALIB)], check=True)
    mark = cycles.elf_symbols(elf, ["mark"])["mark"]
    out = tmp_path / f"events-{core}.txt"
    # Semihosting only here, for the program's exit: a calibration loop of our own.
    r = subprocess.run([qemu, "-M", machine, "-nographic", "-monitor", "none", "-serial", "none",
                        "-semihosting-config", "enable=on,target=native", "-kernel", str(elf),
                        "-plugin", f"{plugin},core={core},out={out},mark={mark:#x}"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    events, totals = cycles.read_events(out)
    assert all(e[0] == mark for e in events)
    segs = [(b[1] - a[1], b[2] - a[2]) for a, b in zip(events[:-1], events[1:], strict=True)]
    return segs, totals


def test_m4_calibration_loops_match_the_manual(plugin, tmp_path):
    """Every segment's estimate is the hand count from the M4 TRM's table: plain
    loads, pipelined loads, a dependent load, the AGU stall, MACs, LDM/STM,
    divides, floating point, a call with PUSH/POP {pc}, taken and not-taken branches."""
    segs, totals = _calibrate(plugin, tmp_path, "cortex-m4", "fpv4-sp-d16", "mps2-an386", "m4")
    assert [s[0] for s in segs] == EXPECTED_INSNS
    assert [s[1] for s in segs] == EXPECTED_M4
    # At exit (semihosting SYS_EXIT) the totals cover at least every segment.
    assert totals is not None and totals[1] >= sum(EXPECTED_M4) and totals[0] >= sum(EXPECTED_INSNS)


def test_m7_calibration_loops_match_the_dual_issue_model(plugin, tmp_path):
    segs, _ = _calibrate(plugin, tmp_path, "cortex-m7", "fpv5-d16", "mps2-an500", "m7")
    assert [s[0] for s in segs] == EXPECTED_INSNS
    assert [s[1] for s in segs] == EXPECTED_M7
    # Dual issue: the independent ALU pairs of S10 take fewer cycles than instructions.
    assert segs[10][1] < segs[10][0]


def _micronn(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "micronn.cli", *args], capture_output=True, text=True, timeout=120)


def test_bench_cycles_mhz_on_a_small_cnn(plugin, tmp_path):
    """`micronn bench --cycles --mhz 80` on qemu-m4 (micro_speech: a convolution, a
    fully connected layer, softmax): estimated cycles per op and per inference,
    never fewer than instructions on the M4 (no instruction takes less than a cycle),
    and the time at 80 MHz is cycles / 80e3 ms."""
    need_firmware("qemu-m4")
    blob = tmp_path / "speech.mnb"
    blob.write_bytes(pack(str(need_shared("models", "tflm_micro_speech_int8.tflite"))))
    r = _micronn("bench", str(blob), "--target", "qemu-m4", "--cycles", "--mhz", "80", "--runs", "2")
    assert r.returncode == 0, r.stderr
    text = r.stdout
    ops = re.findall(r"^\s*\d+\s+(\w+)\s+\S+\s+([\d,]+)\s+([\d,]+)\s+[\d.]*\s+[\d.]+%\s+([\d,]+)", text, re.M)
    assert [o[0] for o in ops] == ["CONV_2D", "FULLY_CONNECTED", "SOFTMAX"], text
    num = [(int(i.replace(",", "")), int(c.replace(",", ""))) for _, _, i, c in ops]
    for instr, cyc in num:
        assert instr <= cyc <= 3 * instr, text
    instr = int(re.search(r"inference: ([\d,]+) instructions", text).group(1).replace(",", ""))
    m = re.search(r"estimated cortex-m4 cycles: ([\d,]+) per inference", text)
    assert m, text
    total = int(m.group(1).replace(",", ""))
    assert instr <= total <= 3 * instr
    assert sum(c for _, c in num) <= total
    m = re.search(r"at 80 MHz: ([\d.]+) ms per inference, ([\d.]+) inferences per second "
                  r"\(zero wait states; flash wait states add to this\)", text)
    assert m, text
    assert float(m.group(1)) == pytest.approx(total / 80e3, abs=0.0005)
    assert float(m.group(2)) == pytest.approx(80e6 / total, abs=0.05)


def test_bench_cycles_m7_and_plugin_counts_agree_with_icount(plugin):
    """On qemu-m7 the same code paths are counted by the plugin and by icount
    (to a timer tick), and dual issue makes the M7 estimate fewer cycles than instructions
    on the convolution."""
    need_firmware("qemu-m7")
    data = pack(str(need_shared("models", "tflm_micro_speech_int8.tflite")))
    r = bench(data, "qemu-m7", runs=1, cycles=True)
    tick = r["resolution_instructions"]
    assert abs(r["plugin_instructions"] - r["instructions"]) <= 2 * tick
    assert abs(r["plugin_kernel_instructions"] - r["kernel_instructions"]) <= 2 * tick
    assert r["cycle_model"] == "cortex-m7" and "ms" not in r
    conv = r["ops"][0]
    assert conv["type"] == "CONV_2D" and conv["cycles"] < conv["instructions"]


def test_bench_cycles_errors_are_one_line(tmp_path):
    """A core the plugin does not model, a clock that is no clock, --native: one line, exit 1."""
    from micronn import blob as mblob

    from .test_format import _graph

    data = mblob.write(_graph())
    path = tmp_path / "t.mnb"
    path.write_bytes(data)
    for args, words in [(["--target", "qemu-m3", "--cycles"], "Cortex-M4 and Cortex-M7"),
                        (["--mhz", "-80"], "--mhz must be")]:
        r = _micronn("bench", str(path), *args)
        assert r.returncode == 1 and r.stdout == ""
        assert r.stderr.startswith("micronn: error: ") and r.stderr.count("\n") == 1 and words in r.stderr, r.stderr
    with pytest.raises(MicronnError, match="native"):
        bench(data, "qemu-m4", cycles=True, native="armv7emsp")
