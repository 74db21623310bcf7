"""The ``micronn`` command: a thin table of commands over the library."""

from __future__ import annotations

import argparse
import io
import json
import os
import select
import sys
from pathlib import Path

import numpy as np

from .errors import MicronnError


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise MicronnError(f"{path}: {e.strerror}") from None


def _write(path, data: bytes | str) -> None:
    """Write an output file; a path that cannot be written is the user's to fix."""
    try:
        if isinstance(data, str):
            Path(path).write_text(data)
        else:
            Path(path).write_bytes(data)
    except OSError as e:
        raise MicronnError(f"cannot write {path}: {e.strerror or e}") from None


def _load_npy(path: str) -> np.ndarray:
    """Samples from a .npy, or a .npz's array x (else its first array)."""
    try:
        data = np.load(path)
        if isinstance(data, np.lib.npyio.NpzFile):
            if not data.files:
                raise MicronnError(f"{path}: the .npz holds no arrays")
            data = data["x"] if "x" in data.files else data[data.files[0]]
    except (OSError, ValueError, EOFError) as e:
        raise MicronnError(f"{path}: cannot read as .npy/.npz ({e})") from None
    if data.ndim and len(data) == 0:
        raise MicronnError(f"{path}: holds no samples (shape {data.shape})")
    return data


def _short_name(name) -> str:
    """A .tflite input name as a user would key it: serving_default_image:0 -> image."""
    name = str(name or "")
    name = name.split(":")[0]
    return name[len("serving_default_"):] if name.startswith("serving_default_") else name


def _load_inputs(path: str, data=None):
    """Samples for run/verify: a .npy (one input), or a .npz with one array per input of a
    model with several, matched by input name (the .tflite's, or without its
    serving_default_ prefix and :0 suffix) when every name is there, else in order.
    data: the blob bytes (None: a blob already on the board, arrays in order)."""
    try:
        d = np.load(path)
    except (OSError, ValueError, EOFError) as e:
        raise MicronnError(f"{path}: cannot read as .npy/.npz ({e})") from None
    if not isinstance(d, np.lib.npyio.NpzFile) or len(d.files) <= 1 or "x" in d.files:
        return _load_npy(path)
    try:
        arrays = {k: d[k] for k in d.files}
    except (OSError, ValueError, EOFError) as e:
        raise MicronnError(f"{path}: cannot read as .npz ({e})") from None
    xs = list(arrays.values())
    if isinstance(data, (bytes, bytearray)):
        from .run import io as blob_io

        names = [t["name"] for t in blob_io(bytes(data))["inputs"]]
        for key in (lambda n: n, _short_name):
            if all(key(n) in arrays for n in names):
                xs = [arrays[key(n)] for n in names]
                break
    for k, x in enumerate(xs):
        if x.ndim and len(x) == 0:
            raise MicronnError(f"{path}: array {k} holds no samples (shape {x.shape})")
    return xs


def _save_outputs(path: str, y) -> str:
    """Write outputs: one array as .npy, several (a list) as .npz (y0, y1, ...)."""
    buf = io.BytesIO()
    if isinstance(y, list):
        np.savez(buf, **{f"y{k}": a for k, a in enumerate(y)})
        what = ", ".join(f"y{k} {a.shape} {a.dtype}" for k, a in enumerate(y))
    else:
        np.save(buf, y)
        what = f"{y.shape} {y.dtype}"
    _write(path, buf.getvalue())
    return what


def _print_json(obj) -> None:
    from .inspector import to_json

    print(json.dumps(to_json(obj), indent=2))


def cmd_pack(a) -> int:
    from .calibrate import parse_method
    from .packer import load_tflite, pack, recipe_text

    method = parse_method(a.calib_method)
    keras = Path(a.model).suffix != ".tflite"
    if (method[0] != "minmax" or a.report) and not keras:
        raise MicronnError(f"{a.model}: --calib-method and --report are for Keras models (a .tflite is already "
                           "quantized; `micronn report` takes a float .tflite)")
    if method[0] != "minmax":
        from .convert import keras_to_tflite

        tfl, default_name = keras_to_tflite(a.model, a.calib, float_io=a.float_io, progress=sys.stderr.isatty(),
                                            calib_method=method, activations=a.activations, weights=a.weights,
                                            log=print), Path(a.model).stem
    else:
        if a.activations != "int8" and not keras:
            raise MicronnError(f"{a.model}: --activations is for Keras models (a .tflite is already quantized)")
        tfl, default_name = load_tflite(a.model, calib=a.calib, float_io=a.float_io, progress=sys.stderr.isatty(),
                                        activations=a.activations, weights=a.weights, log=print)
    how = recipe_text(activations=a.activations, weights=a.weights, calib_method=method)
    data = pack(tfl, name=a.name or default_name, labels=a.labels, where=a.model,
                recipe=how if keras or a.weights != "int8" else None)
    out = a.output or str(Path(a.model).with_suffix(".mnb"))
    _write(out, data)
    print(f"wrote {out} ({len(data):,} bytes)")
    if a.keep_tflite:
        _write(a.keep_tflite, tfl)
        print(f"wrote {a.keep_tflite} ({len(tfl):,} bytes): the .tflite it was packed from")
    if a.report:
        from .report import describe, report, write_html

        int4 = a.weights != "int8"      # the report compares int8 weights with the int4 ones
        r = report(a.model, a.calib, method=method, int8=None if int4 else tfl, values=True,
                   weights=a.weights if int4 else None)
        print(describe(r))
        pngs = write_html(r, a.report, title=default_name)
        print(f"wrote {a.report} and {len(pngs)} histograms in {pngs[0].parent}")
    return 0


def _report_data(path: str | None):
    """(samples, labels or None) from --data: a .npz with x (and y), or a .npy of samples."""
    if path is None:
        return None, None
    try:
        d = np.load(path)
        if isinstance(d, np.lib.npyio.NpzFile):
            if "x" not in d.files:
                raise MicronnError(f"{path}: needs an array x (samples), and y (labels) for accuracy")
            return d["x"], (d["y"] if "y" in d.files else None)
    except (OSError, ValueError, EOFError) as e:
        raise MicronnError(f"{path}: cannot read as .npy/.npz ({e})") from None
    return d, None


def cmd_report(a) -> int:
    from .calibrate import parse_method
    from .convert import load_calibration
    from .packer import KERAS_SUFFIXES

    methods = [parse_method(m) for m in a.compare.split(",")] if a.compare else [parse_method(a.calib_method)]
    if a.weights:
        from .weights import parse

        parse(a.weights)        # a mistake fails before TensorFlow loads
        if a.compare:
            raise MicronnError("--weights and --compare: one at a time")
    p = Path(a.model)
    if not p.exists():
        raise MicronnError(f"{p}: no such file or folder")
    if p.suffix == ".tflite":
        from . import tflite

        m = tflite.load(_read(a.model))
        if m.tensors[m.inputs[0]].dtype != "float32":
            raise MicronnError(f"{p}: an int8 .tflite has no float side to compare with: give the Keras model "
                               "or a float .tflite")
    elif p.suffix not in KERAS_SUFFIXES and not p.is_dir():
        raise MicronnError(f"{p}: unknown model type (expected .keras, .h5, a SavedModel folder or a float .tflite)")
    calib = load_calibration(a.calib)
    x, y = _report_data(a.data)
    if x is not None:
        x = load_calibration(x)
    out = a.output or str(p.with_name(p.stem + "-report.html"))
    if a.compare:
        from .report import compare, describe_compare, to_json

        rs = compare(a.model, calib, methods, data=x, labels=y, samples=a.samples)
        if a.json:
            print(json.dumps(to_json(rs), indent=2))
        else:
            print(describe_compare(rs))
        return 0
    from .report import describe, report, to_json, write_html

    r = report(a.model, calib, data=x, labels=y, method=methods[0], samples=a.samples, values=True,
               weights=a.weights)
    pngs = write_html(r, out, title=p.stem)
    if a.json:
        print(json.dumps(to_json(r), indent=2))
    else:
        print(describe(r))
        print(f"wrote {out} and {len(pngs)} histograms in {pngs[0].parent}")
    return 0


def cmd_inspect(a) -> int:
    from .inspector import as_blob, describe, inspect

    data = as_blob(_read(a.blob), Path(a.blob).stem, a.blob)       # a .tflite is packed in memory
    if a.board:
        from . import fit

        r = fit.fit(data, a.board, heap=a.heap, source=a.blob)
        if a.json:
            _print_json(r)
        else:
            print(fit.describe(r))
        return 0
    info = inspect(data)
    if a.json:
        _print_json(info)
    else:
        print(describe(info))
    return 0


def cmd_ops(a) -> int:
    from . import ops

    if a.model is None:
        if a.markdown:
            print(ops.markdown(), end="")
        elif a.json:
            _print_json(ops.supported())
        else:
            print(ops.describe_supported(ops.supported()))
        return 0
    if a.markdown:
        raise MicronnError("--markdown prints the table of supported operators; it takes no model")
    if Path(a.model).suffix != ".tflite":
        raise MicronnError(f"{a.model}: expected a .tflite (pack a Keras model with --keep-tflite to get one)")
    from .tflite import load

    data = _read(a.model)       # its errors name the file
    try:
        model = load(data)
    except MicronnError as e:
        raise MicronnError(f"{a.model}: {e}") from None
    r = ops.check(model)
    if a.json:
        _print_json({"model": a.model, **r})
    else:
        print(ops.describe_check(a.model, r))
    return 0 if r["supported"] else 1


def _target(a) -> str:
    if a.port:
        from .sessions import port_of

        return port_of(a.port)
    return a.target


def _blob_or_remote(path: str):
    """BLOB bytes, or a board path given mpremote-style as :PATH (the blob then stays on the board)."""
    if path.startswith(":"):
        return path[1:] if path[1:].startswith("/") else "/" + path[1:]
    return _read(path)


def cmd_run(a) -> int:
    from .run import run

    data = _blob_or_remote(a.blob)
    y, times = run(data, _load_inputs(a.input, data), _target(a))
    if a.output:
        what = _save_outputs(a.output, y)
        print(f"wrote {a.output}: {what}, {len(times)} samples, "
              f"median {int(np.median(times)) if times else 0} us per inference on {a.port or a.target}")
    else:
        np.set_printoptions(threshold=50)
        if isinstance(y, list):
            for k, yk in enumerate(y):
                print(f"output {k}:")
                print(yk)
        else:
            print(y)
    return 0


def _reference(a, data: bytes) -> bytes:
    """The reference .tflite; a Keras model converted as `pack` converts it (float IO if the
    blob has it), with --calib."""
    from .packer import KERAS_SUFFIXES

    p = Path(a.reference)
    if p.suffix not in KERAS_SUFFIXES and not p.is_dir():
        if a.calib:
            raise MicronnError("--calib is for a Keras reference model (.keras, .h5, SavedModel folder)")
        return _read(a.reference)
    if not p.exists():
        raise MicronnError(f"{p}: no such file or folder")
    from . import format as fmt
    from .blob import read
    from .convert import keras_to_tflite
    from .packer import read_recipe

    info = read(data)
    flags = info["header"]["flags"]
    float_io = bool(flags & (fmt.HEADER_FLAGS["FLOAT_INPUT"] | fmt.HEADER_FLAGS["FLOAT_OUTPUT"]))
    how = read_recipe(info["meta"].get("RECIPE"))       # as pack quantized it (older blobs: the defaults)
    return keras_to_tflite(p, a.calib, float_io=float_io, progress=sys.stderr.isatty(),
                           activations=how["activations"], weights=how["weights"],
                           calib_method=how["calib_method"])


def cmd_verify(a) -> int:
    from .run import verify

    data = _read(a.blob)
    x = _load_inputs(a.input, data) if a.input else None
    reference = _reference(a, data)
    r = verify(data, reference, _target(a), samples=a.samples, seed=a.seed, x=x)
    if a.json:
        _print_json(r)
    else:
        from .reference import NAMES

        oracle = NAMES[r["oracle"]]
        if r["warning"]:
            print(f"warning: {r['warning']}")
        if r["oracle_note"]:
            print(f"note: {r['oracle_note']}")
        if r["bit_exact"]:
            print(f"bit-exact: {r['samples']} samples, {r['values']} values equal to {oracle} on {a.port or a.target}")
        else:
            print(f"MISMATCH: {r['mismatched_values']} of {r['values']} values differ "
                  f"(max {r['max_abs_diff']} steps) on {a.port or a.target}")
            for m in r["first_mismatches"]:
                print(f"  sample {m['sample']} index {m['index']}: got {m['got']}, {oracle} {m['want']}")
            if a.trace and r["first_mismatches"]:
                _print_trace(a, data, reference, r["first_mismatches"][0]["sample"], x, r["oracle"])
    return 0 if r["bit_exact"] else 1


def _print_trace(a, data: bytes, reference: bytes, sample: int, x, oracle: str = "tflm") -> None:
    from .reference import NAMES
    from .run import sample_inputs, trace

    xs = x if x is not None else sample_inputs(data, a.samples, a.seed)
    print(f"trace of sample {sample}, op by op against the tensors of {NAMES[oracle]}:")
    for row in trace(reference, xs[sample], _target(a), oracle):
        state = "equal" if row["equal"] else f"DIFFERS (max {row['max_abs_diff']})"
        print(f"  {row['op']:>3} {row['kind']:<18} {row['source']:<28} {state}")


def cmd_eval(a) -> int:
    from .evaluation import check_plot, describe, plot_confusion, split_references
    from .run import evaluate

    try:
        d = np.load(a.data)
        if not isinstance(d, np.lib.npyio.NpzFile):
            raise MicronnError(f"{a.data}: a single array; eval needs a .npz with arrays x (samples) and y (labels)")
        # a model with several inputs: x0, x1, ... (one array per input, the blob's order)
        several = "x" not in d.files and "x0" in d.files
        x = [d[f"x{k}"] for k in range(sum(f"x{k}" in d.files for k in range(16)))] if several else d["x"]
        y = d["y"]
    except (OSError, ValueError, KeyError, EOFError) as e:
        raise MicronnError(f"{a.data}: needs arrays x (samples; x0, x1, ... for several inputs) and y (labels) "
                           f"({e})") from None
    for xk in (x if isinstance(x, list) else [x]):
        if xk.ndim == 0 or len(xk) == 0:
            raise MicronnError(f"{a.data}: x holds no samples (shape {xk.shape})")
    tfl, float_model = split_references(a.reference or [])
    reference = _read(tfl) if tfl else None
    if a.plot:
        check_plot(a.plot)
    r = evaluate(_blob_or_remote(a.blob), x, y, _target(a), reference=reference, float_model=float_model)
    target = a.port or a.target     # as the user named it
    if a.plot:
        plot_confusion(r, a.plot, title=f"on {target}: accuracy {r['accuracy']:.2%} ({r['correct']}/{r['samples']})")
    if a.json:
        _print_json(r)
    else:
        print(describe(r, target))
        if a.plot:
            print(f"wrote {a.plot}")
    return 1 if r["disagreements"] and r["disagreements"]["outputs"] else 0


def cmd_bench(a) -> int:
    from .bench import bench, describe

    data = _read(a.blob)
    xs = _load_inputs(a.input, data) if a.input else None
    if isinstance(xs, list):        # several inputs: the first sample of each
        x = [xk[0] if xk.ndim else xk for xk in xs]
    else:
        x = xs[0] if xs is not None and xs.ndim else xs
    r = bench(data, a.target, runs=a.runs, x=x, native=a.native, cycles=a.cycles, mhz=a.mhz)
    if a.json:
        _print_json(r)
    else:
        print(describe(r))
    return 0


def cmd_firmware(a) -> int:
    from .firmware import build

    if a.action == "build":
        ops = None
        if a.ops_from is not None:
            from .opset import ops_from

            ops = ops_from(a.ops_from)      # read first: a bad blob fails before a long build
        exe = build(a.board, a.micropython, a.jobs, freeze=a.freeze, ops=ops)
        print(f"built {exe}")
        if ops is not None:
            from .opset import FALLBACKS

            names = [o for o in ops if o not in FALLBACKS]
            variants = [o for o in ops if o in FALLBACKS]
            print(f"ops ({len(names)}): {', '.join(names)}")
            print("fallback variants (ops without scratch): " + (", ".join(variants) or "none"))
    elif a.action == "flash":
        from .firmware import flash, flash_commands

        if a.ops_from is not None:
            raise MicronnError("--ops-from is for `firmware build`; flash what it built with --firmware "
                               "build/BOARD-ops-HASH/FILE (the path it printed)")
        fw = False if a.romfs_only else a.firmware
        if a.romfs_only and not a.romfs:
            raise MicronnError("--romfs-only needs --romfs IMAGE")
        if a.run:
            flash(a.board, a.port, fw, a.romfs, a.tool)
        else:
            for cmd in flash_commands(a.board, a.port, fw, a.romfs, a.tool):
                print(" ".join(cmd))
    return 0


def cmd_natmod(a) -> int:
    from .natmod import DEFAULT_ARCHES, build

    for arch in a.arch or DEFAULT_ARCHES:
        out = build(arch, a.micropython, a.jobs)
        print(f"built {out} ({out.stat().st_size:,} bytes)")
    return 0


def cmd_install(a) -> int:
    from .install import describe, install

    if bool(a.port) == bool(a.target):
        raise MicronnError("install needs --port DEVICE or --target BOARD (a running board), one of them")
    for line in describe(install(a.port, a.target, arch=a.arch, dest=a.dest, force=a.force)):
        print(line)
    return 0


def cmd_deploy(a) -> int:
    from . import deploy

    if a.romfs:
        image = deploy.romfs_image(a.blobs)
        names = ", ".join(Path(b).name for b in a.blobs)
        if a.port:          # a QEMU board running in the background
            s = deploy.romfs_to_board(a.port, image)
            print(f"wrote a ROMFS image of {len(image):,} bytes with {names} into {s['name']} ({s['port']}),"
                  " mounted at /rom")
            if not a.output:
                return 0
        out = a.output or "models.romfs"
        _write(out, image)
        print(f"wrote {out}: ROMFS image of {len(image):,} bytes with {names}")
        return 0
    if not a.port:
        raise MicronnError("deploy needs --port DEVICE (or --romfs to build an image)")
    for path in deploy.copy_to_board(a.port, a.blobs, a.dest):
        print(f"copied to {a.port}:{path}")
    return 0


def cmd_freeze(a) -> int:
    from .deploy import freeze_module

    out = Path(a.output or Path(a.blob).with_suffix(".py").name.replace("-", "_"))
    _write(out, freeze_module(_read(a.blob), name=out.stem))
    print(f"wrote {out}: freeze it with module('{out.name}') in your board's manifest,"
          f" then micronn.Model({out.stem}.BLOB)")
    return 0


def cmd_board(a) -> int:
    from . import sessions

    if a.action == "start":
        if not a.target:
            raise MicronnError("board start needs --target (qemu-m3, qemu-m4, qemu-stm32f405, ...)")
        s = sessions.start(a.target, flash=a.flash, romfs=a.romfs, name=a.name)
        print(s["port"])
        flash = f", flash {s['flash']}" if s["flash"] else ", filesystem in emulated RAM (gone at stop)"
        print(f"micronn: {s['name']} ({s['target']}) runs in the background on {s['port']}{flash};"
              f" `mpremote connect {s['port']}`, `--port {s['name']}`, `micronn board stop {s['name']}`",
              file=sys.stderr)
    elif a.action == "list":
        running = sessions.sessions()
        for s in running:
            print(f"{s['name']:<16} {s['target']:<16} {s['port']:<12} pid {s['pid']:<8} "
                  f"flash {s['flash'] or '-'}" + (f" romfs {s['romfs']}" if s["romfs"] else ""))
        if not running and sys.stdout.isatty():
            print("no boards running (micronn board start --target qemu-m4)", file=sys.stderr)
    else:
        spec = a.board or a.target
        if a.action == "stop" and a.all:
            for s in sessions.sessions():
                sessions.stop(s["name"])
                print(f"stopped {s['name']}")
            return 0
        if not spec:
            running = sessions.sessions()
            if len(running) != 1:
                raise MicronnError(f"board {a.action}: name the board ({', '.join(s['name'] for s in running)})"
                                   if running else "no boards are running")
            spec = running[0]["name"]
        if a.action == "save":
            s = sessions.find(spec)
            if s is None:
                raise MicronnError(f"no board {spec!r} is running")
            if sessions.save(s):
                print(f"saved {s['name']}'s filesystem to {s['flash']}")
            else:
                print(f"{s['name']}: " + ("its flash file is written as the board writes (nothing to save)"
                                          if s["flash"] else "no flash file (started without --flash)"))
        else:
            s = sessions.stop(spec)
            print(f"stopped {s['name']}" + (f" (flash saved in {s['flash']})" if s["flash"] else ""))
    return 0


def cmd_repl(a) -> int:
    from .console import repl

    return repl(a.target, a.port)


def cmd_exec(a) -> int:
    from .console import exec_script

    return exec_script(a.script, a.target, a.port)


def _at_least(lowest: int):
    """An argparse type: an integer of at least ``lowest``."""
    def parse(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if n < lowest:
            raise argparse.ArgumentTypeError(f"must be at least {lowest}, not {n}")
        return n
    return parse


def _args_pack(p) -> None:
    p.add_argument("model", help=".tflite (fully int8), .keras, .h5 or SavedModel folder")
    p.add_argument("-o", "--output", help="output blob (default: MODEL.mnb)")
    p.add_argument("--name", help="model name stored in the blob")
    p.add_argument("--labels", help="text file with one class label per output value")
    p.add_argument("--calib", help="calibration inputs (.npy/.npz) for Keras models")
    p.add_argument("--float-io", action="store_true", help="Keras models: keep float input and output")
    p.add_argument("--activations", default="int8", metavar="int8|int16|int16:LAYER,...",
                   help="Keras models: int8 (default), or int16 with int8 weights (TensorFlow Lite's 16x8 mode: "
                   "more precise activations, twice their memory); int16:LAYER,LAYER (Keras layer names): those "
                   "layers int16, the others int8, with requantization between them")
    p.add_argument("--weights", default="int8", metavar="int8|int4|int4:LAYER,...|auto:DB",
                   help="int8 (default); int4: every conv, depthwise and dense layer with 4-bit weights (half the "
                   "bytes); int4:LAYER,LAYER: those layers (Keras layer names); auto:DB (Keras models): the layers "
                   "whose int4 weights cost the model output at most DB dB of SQNR against the float model")
    p.add_argument("--keep-tflite", metavar="PATH", help="also write the int8 .tflite the blob is packed from "
                   "(the reference for `micronn verify`)")
    _add_calib_method(p)
    p.add_argument("--report", metavar="HTML", help="Keras models: also write the per-layer quantization report "
                   "(as `micronn report`) on the calibration samples")
    _add_verbose(p)


def _add_calib_method(p) -> None:
    p.add_argument("--calib-method", default="minmax", metavar="METHOD", help="how each activation's int8 range is "
                   "chosen from the calibration data: minmax (default), percentile:P (e.g. percentile:99.99) or mse")


def _args_report(p) -> None:
    p.add_argument("model", help="the float model: .keras, .h5, SavedModel folder or a float .tflite")
    p.add_argument("--calib", required=True, help="calibration inputs (.npy/.npz)")
    p.add_argument("--data", help="compare on these samples instead (.npy, or .npz with x and y: y adds accuracy)")
    p.add_argument("-o", "--output", help="the HTML page (default: MODEL-report.html; PNGs in its -png folder)")
    p.add_argument("--samples", type=_at_least(1), default=200, help="compare on at most this many samples")
    p.add_argument("--compare", metavar="M1,M2,...", help="calibration methods side by side, e.g. "
                   "minmax,percentile:99.99,mse (per-layer SQNR, accuracy with --data's y)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--weights", metavar="int4|int4:LAYER,...|auto:DB", help="also the model with int4 weights "
                   "for those layers: each layer's SQNR with them, the blob size and (with --data's y) the accuracy "
                   "change")
    _add_calib_method(p)
    _add_verbose(p)


def _add_verbose(p) -> None:
    p.add_argument("--verbose", action="store_true", help="show TensorFlow's own log lines and warnings")


def _args_inspect(p) -> None:
    p.add_argument("blob", help="a .mnb file, or a .tflite (packed in memory)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--board", help="will it fit? flash and heap for each deployment on this board "
                   "(e.g. stm32:B_L475E_IOT01A, esp32:ESP32_GENERIC_S3, qemu-m4)")
    p.add_argument("--heap", type=_at_least(1), help="with --board: the board's MicroPython heap in bytes, as measured "
                   "(instead of the profile's estimate)")
    _add_verbose(p)


def _args_ops(p) -> None:
    p.add_argument("model", nargs="?", help="a .tflite to check, operator by operator (default: print the "
                   "supported operators and their limits)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--markdown", action="store_true", help="the table as Markdown (docs/ops.md)")


def _add_target(p) -> None:
    p.add_argument("--target", default="unix", help="unix, a QEMU board (qemu-m3, qemu-m4, ...) (default: unix)")
    p.add_argument("--port", help="a board's serial port (e.g. /dev/ttyACM0), or a running board's name"
                   " (micronn board start), instead of --target")


def _args_run(p) -> None:
    p.add_argument("blob", help="a .mnb file, or :PATH for a blob already on the board")
    p.add_argument("--input", required=True, help="samples X.npy, shape (N, *input_shape[1:]), int8 or float32; "
                   "a model with several inputs: X.npz with one array per input (by input name, else in order)")
    p.add_argument("-o", "--output", help="write outputs Y.npy (N, *output_shape[1:]); several outputs: "
                   "Y.npz with arrays y0, y1, ...")
    _add_target(p)


def _args_verify(p) -> None:
    p.add_argument("blob")
    p.add_argument("--reference", required=True, help="the .tflite the blob was packed from (pack --keep-tflite), "
                   "or the Keras model, converted again as pack did (with --calib)")
    p.add_argument("--calib", help="calibration inputs (.npy/.npz) for a Keras reference model")
    _add_target(p)
    p.add_argument("--samples", type=_at_least(1), default=20, help="random inputs (all 256 for single-value inputs)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--input", help="use these samples (.npy; several inputs: .npz, one array per input) "
                   "instead of random ones")
    p.add_argument("--trace", action="store_true", help="on a mismatch, compare every op's output to find the first")
    p.add_argument("--json", action="store_true")
    _add_verbose(p)


def _args_eval(p) -> None:
    p.add_argument("blob", help="a .mnb file, or :PATH for a blob already on the board")
    p.add_argument("--data", required=True, help="TEST.npz with x (samples) and y (integer labels); a model with "
                   "several inputs: x0, x1, ... (the blob's order); several outputs: accuracy of the first")
    p.add_argument("--reference", action="append", metavar="MODEL", help="the .tflite the blob was packed from: "
                   "TFLite Micro's accuracy on the host beside the board's, and the samples whose outputs differ; "
                   "a Keras model (.keras, .h5): its float accuracy too (give --reference twice for both)")
    p.add_argument("--plot", metavar="PNG", help="draw the confusion matrix into this PNG file")
    p.add_argument("--json", action="store_true", help="machine-readable output, predictions included")
    _add_target(p)


def _args_bench(p) -> None:
    p.add_argument("blob")
    p.add_argument("--target", default="qemu-m4", help="a QEMU board (qemu-m3, qemu-m4, qemu-m7, ...; default qemu-m4)")
    p.add_argument("--input", help="the input to time (.npy; first sample; several inputs: .npz, one array per "
                   "input) instead of a random one")
    p.add_argument("--runs", type=_at_least(1), default=3, help="timed inferences (all must count the same)")
    p.add_argument("--json", action="store_true", help="machine-readable output (top-level `instructions`)")
    p.add_argument("--native", metavar="ARCH", help="through the native module micronn-ARCH.mpy (micronn natmod"
                   " build), from the ROMFS image, on a board without the module (--target qemu-m3-stock)")
    p.add_argument("--cycles", action="store_true", help="also estimated cycles per inference and per op (Cortex-M4"
                   " or M7 timing table applied by micronn's QEMU plugin; qemu-m4, qemu-m7)")
    p.add_argument("--mhz", type=float, metavar="F", help="with the estimate: milliseconds and inferences per second"
                   " at a clock of F MHz, zero wait states (implies --cycles)")


def _args_firmware(p) -> None:
    p.add_argument("action", choices=["build", "flash"])
    p.add_argument("--board", default="unix", help="a board of boards/: unix, qemu-m3, ..., "
                   "stm32:NUCLEO_F446RE, esp32:ESP32_GENERIC_S3, ...")
    p.add_argument("--micropython", help="MicroPython source tree (default: $MICROPY_DIR or the cached one)")
    p.add_argument("-j", "--jobs", type=_at_least(1))
    p.add_argument("--freeze", help="a module made by `micronn freeze` to freeze into the firmware")
    p.add_argument("--ops-from", nargs="+", metavar="MODEL.mnb", help="link only the ops these blobs use "
                   "(a smaller module; other ops are refused at load), built into build/BOARD-ops-HASH/")
    g = p.add_argument_group("flash (real boards: prints the commands; --run runs them)")
    g.add_argument("--port", help="esp32: the board's serial port (default /dev/ttyUSB0)")
    g.add_argument("--firmware", help="the firmware file (default: the one `firmware build` made)")
    g.add_argument("--romfs", help="also write this ROMFS image (micronn deploy --romfs) to the ROMFS partition")
    g.add_argument("--romfs-only", action="store_true", help="write only the ROMFS image")
    g.add_argument("--tool", choices=["st-flash", "dfu-util", "esptool"], help="stm32: st-flash (default) "
                   "or dfu-util (board in DFU mode)")
    g.add_argument("--run", action="store_true", help="run the commands instead of printing them")


def _args_natmod(p) -> None:
    from .natmod import ARCHES

    p.add_argument("action", choices=["build"])
    p.add_argument("--arch", action="append", choices=list(ARCHES), help="the firmware's architecture (repeat for "
                   "more; default: all but xtensawin, whose compiler Debian lacks)")
    p.add_argument("--micropython", help="MicroPython source tree (default: $MICROPY_DIR or the cached one)")
    p.add_argument("-j", "--jobs", type=_at_least(1))


def _args_install(p) -> None:
    from .natmod import ARCHES

    p.add_argument("--port", help="the board's serial port (e.g. /dev/ttyACM0), or a running board's name")
    p.add_argument("--target", help="a QEMU board running in the background (micronn board start), e.g. qemu-m4-stock")
    p.add_argument("--arch", choices=list(ARCHES), help="this micronn-ARCH.mpy (default: the board's, from"
                   " sys.implementation._mpy; checked against it)")
    p.add_argument("--dest", help="folder on the board (default: its lib folder on sys.path, as mip picks it;"
                   " / on boards with none)")
    p.add_argument("--force", action="store_true", help="write the file even where `import micronn` will not"
                   " take it (firmware with micronn built in, a --dest not on sys.path)")


def _args_deploy(p) -> None:
    p.add_argument("blobs", nargs="+", metavar="BLOB")
    p.add_argument("--port", help="the board's serial port (or a running board's name): copy the blobs to its"
                   " filesystem (mpremote); with --romfs: write the image into that running QEMU board")
    p.add_argument("--dest", default="/", help="folder on the board (default /)")
    p.add_argument("--romfs", action="store_true", help="build a ROMFS image instead (blobs 16-byte aligned)")
    p.add_argument("-o", "--output", help="the ROMFS image file (default models.romfs)")


def _args_freeze(p) -> None:
    p.add_argument("blob")
    p.add_argument("-o", "--output", help="the module to write (default: BLOB's name with .py)")


def _args_board(p) -> None:
    p.add_argument("action", choices=["start", "list", "stop", "save"])
    p.add_argument("board", nargs="?", help="stop/save: the board's name (default: the only one running)")
    p.add_argument("--target", help="start: a QEMU board (qemu-m3, qemu-m4, qemu-m7, qemu-stm32f405, qemu-rv32)")
    p.add_argument("--flash", help="start: a file holding the board's flash (its filesystem); made if absent")
    p.add_argument("--romfs", help="start: a ROMFS image (micronn deploy --romfs) to mount at /rom")
    p.add_argument("--name", help="start: the board's name (default: the target)")
    p.add_argument("--all", action="store_true", help="stop: every running board")


def _args_console(p, script: bool) -> None:
    if script:
        p.add_argument("script", help="a MicroPython script (.py) to run on the board")
    p.add_argument("--target", default="unix", help="unix, a QEMU board (its running board if one was started with"
                   " `micronn board start`, else one booted for this command) (default: unix)")
    p.add_argument("--port", help="a board's serial port, or the name of a running board, instead of --target")


COMMANDS = {
    "pack": ("pack a model into a blob (.mnb)", _args_pack, cmd_pack),
    "report": ("per-layer quantization report: float against int8, layer by layer (HTML, PNG)", _args_report,
               cmd_report),
    "inspect": ("show a blob's ops, tensors and memory", _args_inspect, cmd_inspect),
    "ops": ("the TFLite operators micronn runs and their limits, or which of a model's it cannot run", _args_ops,
            cmd_ops),
    "run": ("run samples through a blob on a target", _args_run, cmd_run),
    "verify": ("compare a blob on a target with TFLite Micro, bit for bit", _args_verify, cmd_verify),
    "eval": ("on-device accuracy over a labelled dataset", _args_eval, cmd_eval),
    "bench": ("count instructions per inference, op by op, under qemu -icount", _args_bench, cmd_bench),
    "firmware": ("build MicroPython firmware with micronn", _args_firmware, cmd_firmware),
    "natmod": ("build micronn.mpy, the native module stock firmware imports (no firmware build)", _args_natmod,
               cmd_natmod),
    "install": ("install micronn.mpy on a board running stock MicroPython (like a MicroPython package)",
                _args_install, cmd_install),
    "deploy": ("copy blobs to a board's filesystem, or build a ROMFS image", _args_deploy, cmd_deploy),
    "freeze": ("turn a blob into a module to freeze into firmware (weights stay in flash)", _args_freeze,
               cmd_freeze),
    "board": ("start, list, save and stop QEMU boards running in the background", _args_board, cmd_board),
    "repl": ("an interactive MicroPython REPL on a target", lambda p: _args_console(p, False), cmd_repl),
    "exec": ("run a MicroPython script on a target, streaming its output", lambda p: _args_console(p, True),
             cmd_exec),
}


class _Parser(argparse.ArgumentParser):
    """Usage mistakes read like every other error: one line, exit status 1."""

    def error(self, message: str):
        cmd = self.prog.partition(" ")[2]
        self.exit(1, f"micronn: error: {cmd + ': ' if cmd else ''}{message} (see {self.prog} --help)\n")


def parser() -> argparse.ArgumentParser:
    from . import __version__

    p = _Parser(prog="micronn", description="int8 neural networks for MicroPython boards")
    p.add_argument("--version", action="version", version=f"micronn {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_, add_args, func) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_, description=help_)
        add_args(sp)
        sp.set_defaults(func=func)
    return p


def _stdout_gone() -> bool:
    """True if stdout is a pipe whose reader has exited (poll reports an error on it)."""
    if not hasattr(select, "poll"):
        return True
    try:
        p = select.poll()
        p.register(sys.stdout.fileno(), select.POLLOUT)
        return any(ev & select.POLLERR for _, ev in p.poll(0))
    except (OSError, ValueError):
        return False


def main(argv: list[str] | None = None) -> int:
    a = parser().parse_args(argv)
    if getattr(a, "verbose", False):
        from .convert import set_verbose

        set_verbose(True)
    try:
        rc = a.func(a)
        sys.stdout.flush()      # a reader that left shows up here, not in the interpreter's exit
        return rc
    except MicronnError as e:
        print(f"micronn: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("micronn: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        if not _stdout_gone():
            raise
        # `micronn inspect X | head`: the reader has what it wanted; stop quietly, like cat.
        # Point stdout at /dev/null so the interpreter's last flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
