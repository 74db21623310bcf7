"""`make bench`: instruction counts of the shared models, the seed models and some of
the operator zoo's (attention, SimpleRNN, LSTM, U-Net, autoencoder) on
qemu-m3 (portable C), qemu-m4 (DSP extension) and qemu-m7, plus the module's
code size per core; prints the tables and writes docs/benchmarks.md.

    python tools/bench.py [--boards qemu-m3,qemu-m4,qemu-m7] [--models a,b] [--no-write] [--precision-only]

With qemu-m4 among the boards it also benchmarks one network in three precisions (int8, 16x8, int4
weights; issue 14) on qemu-m4, each output checked against TFLite Micro; --precision-only runs just
those and replaces only their section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from micronn import inspect, natmod, pack  # noqa: E402
from micronn.bench import bench, describe  # noqa: E402
from micronn.firmware import build_root, profile  # noqa: E402

SHARED = Path(os.environ.get("MICRONN_SHARED", ROOT.parent / "shared"))
SEEDS = ["mnist_cnn", "cifar10_cmsis", "digits8x8_cnn"]
# Models of the operator zoo (tests/opzoo/): an attention block, recurrent networks (unrolled: SimpleRNN, LSTM; the
# same LSTM fused: lstm_fused_12), a U-Net with upsampling and a transposed-convolution autoencoder.
OPZOO = ["mm_attention", "rnn_simple", "rnn_lstm", "lstm_fused_12", "rs_unet", "rs_autoencoder"]
OUT = ROOT / "build" / "bench"


def blobs(only: list[str] | None) -> dict[str, bytes]:
    """name -> blob: every .tflite of the shared models, then the seed models."""
    out = {}
    models = sorted((SHARED / "models").glob("*.tflite")) if (SHARED / "models").exists() else []
    if not models:
        print(f"note: no shared models under {SHARED}/models; benchmarking the seed models only")
    for p in models:
        if not only or p.stem in only:
            out[p.stem] = pack(str(p), name=p.stem)
    from tests.test_zoo import convert_case

    for name in SEEDS:
        if not only or name in only:
            tfl = OUT / f"{name}.tflite"
            if not tfl.exists():
                tfl.write_bytes(convert_case(name))
            out[name] = pack(tfl.read_bytes(), name=name)
    from tests import opzoo

    for name in OPZOO:
        if not only or name in only:
            tfl = OUT / f"{name}.tflite"
            if not tfl.exists():
                tfl.write_bytes(opzoo.tflite(name))
            out[name] = pack(tfl.read_bytes(), name=name)
    for name, data in out.items():
        (OUT / f"{name}.mnb").write_bytes(data)
    return out


def code_size(board: str) -> dict:
    """Bytes of the module's objects in the board's build (text, data, bss)."""
    objs = sorted((build_root() / board / "cmodule").rglob("*.o"))
    if not objs:
        return {}
    r = subprocess.run(["arm-none-eabi-size", "-t", *map(str, objs)], capture_output=True, text=True, check=True)
    per = {}
    for line in r.stdout.splitlines()[1:]:
        f = line.split()
        name = Path(f[5]).stem if len(f) > 5 else "total"
        per["total" if name == "(TOTALS)" else name] = {"text": int(f[0]), "data": int(f[1]), "bss": int(f[2])}
    return per


def ops_sizes(board: str = "qemu-m4", model: str = "mlperf_tiny_ic_resnet8") -> dict | None:
    """The module's code and constants in the board's full firmware and in one
    built `--ops-from` the model's blob alone (built here if it is not yet:
    build/BOARD-ops-HASH/); None without the model's blob or the full firmware."""
    from micronn.firmware import build, firmware_file
    from micronn.opset import map_file, module_size, ops_from

    path = OUT / f"{model}.mnb"
    if not path.exists() or not firmware_file(board).exists():
        return None
    ops = ops_from([path])
    exe = build(board, jobs=2, ops=ops)
    full, mine = module_size(map_file(firmware_file(board))), module_size(map_file(exe))
    return {"board": board, "model": model, "ops": ops, "full": full, "ops_only": mine}


def ops_line(r: dict) -> str:
    """The one line `make bench` prints for ops_sizes()."""
    f, m = r["full"], r["ops_only"]
    both = f["text"] + f["rodata"], m["text"] + m["rodata"]
    return (f"micronn module code: full {f['text']:,} bytes, ResNet-8 ops only {m['text']:,} bytes "
            f"({100 * m['text'] / f['text']:.1f}%); with constants (.rodata) {both[0]:,} and {both[1]:,} bytes "
            f"({100 * both[1] / both[0]:.1f}%) on {r['board']}")


# Issue 14: one network in three precisions on qemu-m4: int8; 16x8 (int16 activations, int8 weights); int8
# activations with int4 weights (micronn.weights.to_int4 of the int8 model). Built at bench time with random
# weights and calibration data from fixed seeds; every output is checked bit-exact against TFLite Micro.
PRECISION_NET = "dscnn_small"
PRECISIONS = ("int8", "16x8", "int4")
PRECISION_BOARD = "qemu-m4"


def precision_keras():
    """A small DS-CNN-shaped keyword spotter (49x10 features: a strided 10x4 convolution, two depthwise-
    separable blocks, average pooling, a dense layer, softmax) with random weights, and 64 random
    calibration samples; both from fixed seeds."""
    import keras

    keras.utils.set_random_seed(14)
    k = keras.layers
    x = keras.Input((49, 10, 1), batch_size=1)
    y = k.Conv2D(48, (10, 4), strides=2, padding="same", activation="relu", bias_initializer="random_normal")(x)
    for _ in range(2):
        y = k.DepthwiseConv2D(3, padding="same", activation="relu", bias_initializer="random_normal")(y)
        y = k.Conv2D(48, 1, activation="relu", bias_initializer="random_normal")(y)
    y = k.Flatten()(k.AveragePooling2D((25, 5))(y))
    y = k.Softmax()(k.Dense(12, bias_initializer="random_normal")(y))
    calib = np.random.default_rng(14).normal(size=(64, 49, 10, 1)).astype(np.float32)
    return keras.Model(x, y), calib


def precision_tflites(out: Path = OUT) -> dict[str, bytes]:
    """precision -> .tflite of the network, converted afresh (a few seconds; written to `out` to look
    at); int4 only when micronn.weights.to_int4 exists."""
    from micronn.convert import keras_to_tflite

    try:
        from micronn.weights import to_int4
    except ImportError:
        to_int4 = None
    model, calib = precision_keras()
    tfl = {p: keras_to_tflite(model, calib, activations="int16" if p == "16x8" else "int8") for p in ("int8", "16x8")}
    if to_int4:
        tfl["int4"] = to_int4(tfl["int8"])
    else:
        print("note: micronn.weights.to_int4 is missing; no int4 row")
    for p, data in tfl.items():
        (out / f"{PRECISION_NET}_{p}.tflite").write_bytes(data)
    return tfl


def precision_rows(board: str = PRECISION_BOARD, out: Path = OUT) -> dict[str, dict]:
    """precision -> bench() result of the network on the board, each output first checked
    equal to TFLite Micro's for the same input (a MicronnError if not)."""
    from micronn.errors import MicronnError
    from micronn.reference import tflm_run
    from micronn.run import sample_inputs

    rows = {}
    for p, tfl in precision_tflites(out).items():
        name = f"{PRECISION_NET}_{p}"
        data = pack(tfl, name=name)
        (out / f"{name}.mnb").write_bytes(data)
        x = sample_inputs(data, 1, seed=14)[0]
        r = bench(data, board, x=x)
        want = np.asarray(tflm_run(tfl, x[None]))[0]
        if not np.array_equal(np.asarray(r["output"]), want):
            raise MicronnError(f"{name} on {board}: the output differs from TFLite Micro's "
                               f"({r['output']} against {want.tolist()})")
        info = inspect(data)
        r.update(precision=p, bit_exact=True, tflite_bytes=len(tfl), int4_saved_bytes=info["int4_saved_bytes"],
                 int16_extra_arena_bytes=info["int16_extra_arena_bytes"])
        print(describe(r) + f"\n{name}: output equal to TFLite Micro's\n", flush=True)
        rows[p] = r
    return rows


PRECISION_TITLE = "## One network in three precisions"


def precision_section(rows: dict[str, dict]) -> list[str]:
    """docs/benchmarks.md's section on the precision rows."""
    r0 = next(iter(rows.values()))
    base = rows.get("int8")
    names = {"int8": "int8", "16x8": "16x8 (int16 activations, int8 weights)",
             "int4": "int4 weights (int8 activations)"}
    lines = ["", PRECISION_TITLE, "",
             f"`{PRECISION_NET}`: a small DS-CNN-shaped keyword spotter built at bench time (tools/bench.py: "
             "49x10 input, a strided 10x4 convolution, two depthwise-separable blocks of 48 channels, average "
             "pooling, a dense layer, softmax; random weights and calibration data from fixed seeds), converted "
             "by TensorFlow to int8 and to 16x8 (`micronn.convert.keras_to_tflite(..., activations=\"int16\")`), "
             "and the int8 model's weights of every convolution, depthwise and dense layer made int4 "
             "(`micronn.weights.to_int4`). "
             f"On {r0['board']}, {datetime.date.today().isoformat()}; each output equal to TFLite Micro's for the "
             "same random input, checked before the row is written.", "",
             "| precision | MACs | instructions | instr/MAC | vs int8 | blob bytes | vs int8 | arena bytes | vs int8 |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]

    def rel(r, key):
        return f"{r[key] / base[key]:.2f}x" if base and base[key] else "-"

    for p, r in rows.items():
        lines.append(f"| {names[p]} | {r['macs']:,} | {r['instructions']:,} | {r['instructions_per_mac']:.3f} | "
                     f"{rel(r, 'instructions')} | {r['blob_bytes']:,} | {rel(r, 'blob_bytes')} | "
                     f"{r['arena_bytes']:,} | {rel(r, 'arena_bytes')} |")
    notes = [f"the int4 weights take {r['int4_saved_bytes']:,} bytes less than int8 ones" for r in rows.values()
             if r.get("int4_saved_bytes")]
    notes += [f"the int16 activations add {r['int16_extra_arena_bytes']:,} bytes to the largest set of tensors "
              "live at once" for r in rows.values() if r.get("int16_extra_arena_bytes")]
    if notes:
        lines += ["", "`micronn inspect` of the blobs (its \"vs int8\" figures): " + "; ".join(notes) + "."]
    per: dict[str, dict[str, list[int]]] = {}
    for p, r in rows.items():
        for op in r["ops"]:
            t = per.setdefault(op["type"].removesuffix("_S16").removesuffix("_S4"), {}).setdefault(p, [0, 0])
            t[0] += op["instructions"]
            t[1] += op["macs"]
    lines += ["", "Instructions per MAC by op (the 16x8 and int4 ops under the int8 op's name):", "",
              "| op | " + " | ".join(rows) + " |", "|---|" + "---:|" * len(rows)]
    for kind, by in per.items():
        if any(v[1] for v in by.values()):
            lines.append(f"| {kind} | " + " | ".join(f"{by[p][0] / by[p][1]:.2f}" if p in by and by[p][1] else "-"
                                                    for p in rows) + " |")
    return lines


def splice_precision(doc: str, section: list[str]) -> str:
    """docs/benchmarks.md with the precision section replaced (or put before the Memory section)."""
    text = "\n".join(section[1:]) + "\n\n"
    if PRECISION_TITLE in doc:
        a = doc.index(PRECISION_TITLE)
        z = doc.find("\n## ", a + 1)
        return doc[:a] + text + (doc[z + 1:] if z >= 0 else "")
    a = doc.index("## Memory")
    return doc[:a] + text + doc[a:]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--boards", default="qemu-m3,qemu-m4,qemu-m7")
    ap.add_argument("--models", help="comma-separated subset")
    ap.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    ap.add_argument("--precision-only", action="store_true",
                    help=f"only {PRECISION_NET} in int8, 16x8 and int4 on {PRECISION_BOARD}; replace only its section")
    a = ap.parse_args()
    boards = a.boards.split(",")
    OUT.mkdir(parents=True, exist_ok=True)
    if a.precision_only:
        section = precision_section(precision_rows())
        print("\n".join(section))
        if not a.no_write:
            path = ROOT / "docs" / "benchmarks.md"
            path.write_text(splice_precision(path.read_text(), section))
            print(f"wrote the section to {path}")
        return 0
    only = a.models.split(",") if a.models else None
    precision = precision_rows() if PRECISION_BOARD in boards and (not only or PRECISION_NET in only) else None
    models = blobs(only)
    results: dict[str, dict[str, dict]] = {}
    for name, data in models.items():
        for board in boards:
            r = bench(data, board)
            results.setdefault(name, {})[board] = r
            print(describe(r) + "\n", flush=True)
    sizes = {b: code_size(b) for b in boards}
    ops = ops_sizes() if "mlperf_tiny_ic_resnet8" in models else None
    (OUT / "results.json").write_text(json.dumps({"results": results, "code_size": sizes, "ops_from": ops,
                                                  "precision": precision}, indent=1))
    doc = render(results, sizes, boards, ops, precision)
    print(doc)
    if ops:
        print(ops_line(ops))
    if not a.no_write:
        path = ROOT / "docs" / "benchmarks.md"
        old = path.read_text() if path.exists() else ""
        if HAND_WRITTEN in old:         # sections written by hand (their figures from other scripts) stay
            doc += "\n" + old[old.index(HAND_WRITTEN):]
        path.write_text(doc)
        print(f"wrote {ROOT / 'docs' / 'benchmarks.md'}")
    return 0


def ops_section(ops: dict) -> list[str]:
    """docs/benchmarks.md's section on the firmware built --ops-from ResNet-8 alone."""
    lines = ["", "## Firmware with only ResNet-8's ops", "",
             f"`micronn firmware build --board {ops['board']} --ops-from` the packed ResNet-8 alone "
             f"({', '.join(ops['ops'])}): the module's code (.text) and constants (.rodata) that the "
             "linker kept, from the link maps (docs/boards.md, \"Smaller firmware: only your ops\").", "",
             ops_line(ops) + ".", "",
             "| object | full .text | ResNet-8 ops .text | full .rodata | ResNet-8 ops .rodata |",
             "|---|---:|---:|---:|---:|"]
    for n in sorted(set(ops["full"]["objects"]) | set(ops["ops_only"]["objects"])) + ["total"]:
        f = ops["full"] if n == "total" else ops["full"]["objects"].get(n, {})
        m = ops["ops_only"] if n == "total" else ops["ops_only"]["objects"].get(n, {})
        lines.append(f"| {n} | {f.get('text', 0):,} | {m.get('text', 0):,} | {f.get('rodata', 0):,} | "
                     f"{m.get('rodata', 0):,} |")
    return lines


def render(results: dict, sizes: dict, boards: list[str], ops: dict | None = None,
           precision: dict | None = None) -> str:
    cores = {b: profile(b).get("core", b) for b in boards}
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (tools/bench.py) on " + datetime.date.today().isoformat() + ". Every figure is",
        "an instruction count from QEMU run with `-icount shift=0`, where the guest clock advances one",
        "nanosecond per instruction: the same model gives the same count on every run (to one tick of",
        "the board's timer, 40 instructions). Instructions are not cycles: a Cortex-M4 spends one cycle",
        "on most of these and two or more on loads, a Cortex-M7 issues two per cycle when it can; the",
        "counts compare code paths, not chips. Blobs are opened in place from ROMFS; inputs are random.",
        "",
        "qemu-m3 runs the portable C kernels (no DSP extension), qemu-m4 and qemu-m7 the DSP kernels",
        "(SMLAD on packed int16 pairs). `run()` overhead is the call from Python, the input copy, the",
        "op dispatch and the output copy, measured around `Model.run()` minus the ops themselves.",
        "CONV_2D_MAXPOOL is the packer's fusion of a small convolution and the 2x2 max pooling that",
        "alone reads its output (docs/format.md); its MACs are the convolution's.",
        "",
        "## Instructions per inference",
        "",
        "| model | MACs | " + " | ".join(f"{b} ({cores[b]})" for b in boards) + " | instr/MAC "
        + " / ".join(boards) + " | run() overhead |",
        "|---|---:|" + "---:|" * len(boards) + "---:|---:|",
    ]
    for name, per in results.items():
        first = next(iter(per.values()))
        counts = " | ".join(f"{per[b]['instructions']:,}" for b in boards)
        ipm = " / ".join(f"{per[b]['instructions_per_mac']:.2f}" if per[b]["instructions_per_mac"] else "-"
                         for b in boards)
        ov = max(per[b]["run_overhead_percent"] for b in boards)
        lines.append(f"| {name} | {first['macs']:,} | {counts} | {ipm} | {ov:.2f}% |")
    if all(b in boards for b in ("qemu-m3", "qemu-m4")):
        lines += ["", "Speed-up of the DSP kernels (qemu-m3 count / qemu-m4 count): "
                  + ", ".join(f"{n} {p['qemu-m3']['instructions'] / p['qemu-m4']['instructions']:.2f}x"
                              for n, p in results.items()) + "."]
    m4 = {n: p["qemu-m4"] for n, p in results.items() if "qemu-m4" in p}
    goals = [("mlperf_tiny_ic_resnet8", "instructions_per_mac", 1.45, "instructions per MAC"),     # issue 16
             ("mlperf_tiny_kws_dscnn", "instructions_per_mac", 2.0, "instructions per MAC"),
             ("tflm_person_detection_int8", "instructions_per_mac", 2.2, "instructions per MAC"),
             ("mnist_cnn", "instructions", 300_000, "instructions")]
    rows = [(n, k, lim, what) for n, k, lim, what in goals if n in m4]
    if rows:
        lines += ["", "## Goals on qemu-m4", "", "| model | goal | measured | |", "|---|---:|---:|---|"]
        for n, k, lim, what in rows:
            v = m4[n][k]
            shown = f"{v:,.3f}" if isinstance(v, float) else f"{v:,}"
            lines.append(f"| {n} | at most {lim:,} {what} | {shown} | {'met' if v <= lim else 'NOT MET'} |")
    if precision:
        lines += precision_section(precision)
    lines += ["", "## Memory", "", "| model | blob bytes | arena bytes (incl. scratch) |", "|---|---:|---:|"]
    for name, per in results.items():
        first = next(iter(per.values()))
        lines.append(f"| {name} | {first['blob_bytes']:,} | {first['arena_bytes']:,} |")
    lines += ["", "## Where the instructions go", ""]
    for name, per in results.items():
        b = "qemu-m4" if "qemu-m4" in per else next(iter(per))
        r = per[b]
        by_type: dict[str, list[int]] = {}
        for op in r["ops"]:
            t = by_type.setdefault(op["type"], [0, 0])
            t[0] += op["instructions"]
            t[1] += op["macs"]
        parts = sorted(by_type.items(), key=lambda kv: -kv[1][0])
        lines.append(f"- **{name}** on {b}: " + ", ".join(
            f"{k} {100 * v[0] / r['instructions']:.1f}%" + (f" ({v[0] / v[1]:.2f}/MAC)" if v[1] else "")
            for k, v in parts))
    lines += ["", "## Code size of the module", "",
              "`arm-none-eabi-size` of the module's objects in each board's firmware build (bytes).", "",
              "| object | " + " | ".join(boards) + " |", "|---|" + "---:|" * len(boards)]
    names = sorted({k for s in sizes.values() for k in s if k != "total"})
    for n in names + ["total"]:
        lines.append(f"| {n} | " + " | ".join(
            f"{sizes[b][n]['text'] + sizes[b][n]['data']:,}" if n in sizes[b] else "-" for b in boards) + " |")
    if ops:
        lines += ops_section(ops)
    lines += ["", "## The native module (micronn.mpy)", "", NATMOD_NOTE, ""]
    lines += natmod.size_table({b: s["total"]["text"] + s["total"]["data"] for b, s in sizes.items() if "total" in s})
    return "\n".join(lines) + "\n"


HAND_WRITTEN = "<!-- Below: written by hand, kept by make bench. -->"
NATMOD_NOTE = ("`make natmod`: one file per architecture, build/natmod/micronn-ARCH.mpy, the same sources "
               "linked by MicroPython's mpy_ld.py (docs/boards.md, \"No firmware build\"). Its code is larger "
               "than the built-in module's: position-independent, every function of every object (mpy_ld "
               "has no section garbage collection), libgcc's soft-float routines where there is no FPU, "
               "and the binding's native-module paths.")


if __name__ == "__main__":
    raise SystemExit(main())
