"""``micronn.inspect()``: what a blob holds and what it needs on the board."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import blob as blobmod
from . import format as fmt


def op_macs(kind: str, p: dict) -> int:
    """Multiply-accumulates of one op (the kernel's own count: taps that fall in
    the padding are counted, as everyone counts them)."""
    kind = kind.removesuffix("_S4")     # int4 weights (S4 ops): the int8 op's MACs
    kind = kind.removesuffix("_S16")    # 16x8 (S16 ops): the int8 op's MACs
    if kind == "FULLY_CONNECTED":
        return p["batches"] * p["accum_depth"] * p["out_depth"]
    if kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D_MAXPOOL"):
        per_out = p["k_h"] * p["k_w"]
        if kind != "DEPTHWISE_CONV_2D":
            per_out *= p["in_c"] // max(p["groups"], 1)
        out_h, out_w = p["out_h"], p["out_w"]
        if kind == "CONV_2D_MAXPOOL":       # the convolution outputs some window covers
            ph, pw = max(p["pool_h"], 1), max(p["pool_w"], 1)     # the loader refuses 0; inspect must not fail
            out_h, out_w = out_h // ph * ph, out_w // pw * pw
        return p["batches"] * out_h * out_w * p["out_c"] * per_out
    if kind == "TRANSPOSE_CONV":      # every input value times every weight (those cut at the edges too)
        return p["batches"] * p["in_h"] * p["in_w"] * p["in_c"] * p["k_h"] * p["k_w"] * p["out_c"]
    if kind == "BATCH_MATMUL":      # every output batch (broadcast batch dimensions: the larger)
        batches = max(p["lhs_batch"][0], p["rhs_batch"][0]) * max(p["lhs_batch"][1], p["rhs_batch"][1])
        return batches * p["rows"] * p["depth"] * p["cols"]
    if kind == "SVDF":              # the feature and the time sums of every filter
        return p["batches"] * p["num_filters"] * (p["input_size"] + p["memory"])
    if kind == "LSTM":              # four gates' input and recurrent sums per unit, row and step
        return p["batches"] * p["steps"] * 4 * p["units"] * (p["input_size"] + p["units"])
    return 0


_SHORT = {"int8": "8", "uint8": "u8", "int16": "16", "int32": "32", "int64": "64", "float32": "f32", "float16": "f16",
          "int4": "4"}


def _short(dtype) -> str:
    return _SHORT.get(dtype, str(dtype))        # a damaged blob's unknown dtype code: its number


def _count_of(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def op_precision(op: dict, tensors: list) -> dict:
    """One op's precision: "a8 w8", "a16 w8", "a8 w4" (the activation dtype it reads, ">" the one it
    writes when they differ; the dtype of its constant weights, int4 packed two per byte), and
    what that precision saves or costs against all-int8: the bytes its int4 weights take less
    (int8: one byte a value) and the arena bytes its int16 activation tensors take more."""
    roles = fmt.OP_OPERANDS.get(op["kind"], ((), ()))[0]
    ins = [i for i in op["inputs"] if i != fmt.NO_TENSOR]
    act_in = [tensors[i]["dtype"] for i in ins if tensors[i]["storage"] != "CONST"]
    act_out = [tensors[i]["dtype"] for i in op["outputs"]]
    weights = [i for k, i in enumerate(op["inputs"]) if i != fmt.NO_TENSOR and k < len(roles)
               and roles[k].startswith("weights") and tensors[i]["storage"] == "CONST"]
    a_in = act_in[0] if act_in else (act_out[0] if act_out else None)
    a_out = act_out[0] if act_out else a_in
    text = "" if a_in is None else "a" + _short(a_in) + ("" if a_out == a_in else ">" + _short(a_out))
    wd = sorted({_short(tensors[i]["dtype"]) for i in weights}, key=lambda s: (len(s), s))
    if wd:
        text += (" " if text else "") + "w" + "+".join(wd)
    arena16 = {i for i in ins + op["outputs"] if tensors[i]["storage"] == "ARENA" and tensors[i]["dtype"] == "int16"}
    return {
        "precision": text,
        "activation_dtype": a_out,
        "weight_dtypes": sorted({tensors[i]["dtype"] for i in weights}, key=str),
        "int4_saved_bytes": sum(_count_of(tensors[i]["shape"]) - tensors[i]["nbytes"] for i in weights
                                if tensors[i]["dtype"] == "int4"),
        "int16_extra_tensor_bytes": sum(tensors[i]["nbytes"] - tensors[i]["nbytes"] // 2 for i in arena16),
    }


def _live_peak(b: dict, int16_as_int8: bool = False) -> int:
    """The largest sum of arena buffers live at once (the packer's ARENA_LOWER_BOUND), from the blob:
    tensors at one offset whose lifetimes meet are one buffer (an alias, an in-place output); a
    tensor no op writes and no graph input brings (a reshape's alias) lives from its buffer's last
    writer before it. int16_as_int8: the int16 tensors at half their bytes (the same model in int8)."""
    tensors, ops = b["tensors"], b["ops"]
    n = len(ops)
    span: dict[int, list[int]] = {}

    def touch(i: int, k: int) -> None:
        if i != fmt.NO_TENSOR and tensors[i]["storage"] == "ARENA":
            s = span.setdefault(i, [k, k])
            s[0], s[1] = min(s[0], k), max(s[1], k)

    written = set(b["inputs"])
    for i in b["inputs"]:
        touch(i, -1)
    for k, op in enumerate(ops):
        written.update(op["outputs"])
        for i in op["inputs"] + op["outputs"]:
            touch(i, k)
    for i in b["outputs"]:
        touch(i, n)
    at: dict[int, list[int]] = {}
    for i in span:
        at.setdefault(tensors[i]["offset"], []).append(i)
    events = [0] * (n + 3)
    for group in at.values():
        for i in group:         # an alias: from the latest writer at its offset before it
            if i not in written:
                starts = [span[j][0] for j in group if j in written and span[j][0] <= span[i][0]]
                span[i][0] = max(starts, default=span[i][0])
        merged: list[list[int]] = []    # [first, last, bytes] of each buffer at this offset
        for i in sorted(group, key=lambda j: span[j][0]):
            nb = tensors[i]["nbytes"]
            if int16_as_int8 and tensors[i]["dtype"] == "int16":
                nb -= nb // 2
            nb = fmt.align(nb, fmt.ARENA_ALIGN)
            a, z = span[i]
            if merged and a <= merged[-1][1]:
                m = merged[-1]
                m[1], m[2] = max(m[1], z), max(m[2], nb)
            else:
                merged.append([a, z, nb])
        for a, z, nb in merged:
            events[a + 1] += nb
            events[z + 2] -= nb
    peak = live = 0
    for e in events:
        live += e
        peak = max(peak, live)
    return peak


def _text(v) -> str | None:
    """A metadata value shown as text (the device accepts any type for any key)."""
    if v is None or isinstance(v, str):
        return v
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)


def _count(v) -> int | None:
    return v if isinstance(v, int) else None


def _io(t: dict, is_float: bool, name=None) -> dict:
    """A graph input or output as run() sees it: a blob packed with float IO takes and
    gives float32 (quantized and dequantized inside with this scale and zero point; int8
    and int16 ones only: an int32/int64 output gives its raw values); "stored" is the
    tensor's own dtype."""
    to_float = is_float and t["dtype"] in ("int8", "int16")
    return {"shape": list(t["shape"]), "dtype": "float32" if to_float else t["dtype"], "stored": t["dtype"],
            "scale": t["scale"], "zero_point": t["zero_point"], "name": name}


def _names(meta: dict, key: str, n: int) -> list:
    v = meta.get(key)
    names = v.split("\n") if isinstance(v, str) else []
    return [names[k] if k < len(names) else None for k in range(n)]


def is_tflite(data: bytes) -> bool:
    """A TensorFlow Lite flatbuffer (file identifier TFL3 at offset 4)."""
    return bytes(data[4:8]) == b"TFL3"


def as_blob(data: bytes, name: str = "model", where: str | None = None) -> bytes:
    """Blob bytes as they are; a .tflite packed in memory first (as `micronn pack` would;
    ``where``, the file, heads the error that lists the operators micronn cannot run)."""
    if is_tflite(data) and bytes(data[:4]) != fmt.MAGIC:
        from .packer import build_graph

        return blobmod.write(build_graph(bytes(data), name=name, where=where))
    return data


def inspect(data) -> dict:
    """A JSON-friendly description of a blob (bytes or a path); a .tflite is packed in memory."""
    name = "model"
    if not isinstance(data, (bytes, bytearray, memoryview)):
        name, where = Path(data).stem, str(data)
        with open(data, "rb") as f:
            data = f.read()
    else:
        where = None
    data = as_blob(data, name, where)
    b = blobmod.read(data)
    h, tensors, meta = b["header"], b["tensors"], b["meta"]
    ops = []
    for k, op in enumerate(b["ops"]):
        idx = [i for i in op["inputs"] + op["outputs"] if i != fmt.NO_TENSOR]
        ops.append({
            "index": k,
            "type": op["kind"],
            "inputs": [list(tensors[i]["shape"]) for i in op["inputs"] if i != fmt.NO_TENSOR
                       and tensors[i]["storage"] == "ARENA"],
            "outputs": [list(tensors[i]["shape"]) for i in op["outputs"]],
            "macs": op_macs(op["kind"], op["params"]),
            "weight_bytes": sum(tensors[i]["nbytes"] for i in idx if tensors[i]["storage"] == "CONST"),
            "arena": [[tensors[i]["offset"], tensors[i]["nbytes"]] for i in idx if tensors[i]["storage"] == "ARENA"],
            # model state it reads or writes: [offset, bytes] in the state memory
            "state": [[tensors[i]["offset"], tensors[i]["nbytes"]] for i in idx if tensors[i]["storage"] == "STATE"],
            "once": op.get("once", False),
            **op_precision(op, tensors),
            "params": op["params"],
        })
    fin, fout = (bool(h["flags"] & fmt.HEADER_FLAGS[f]) for f in ("FLOAT_INPUT", "FLOAT_OUTPUT"))
    # against all-int8: int4 weights (each stored array once) and int16 arena tensors, over the whole model
    w4 = {tensors[i]["offset"]: _count_of(tensors[i]["shape"]) - tensors[i]["nbytes"] for op in b["ops"]
          for i in op["inputs"] if i != fmt.NO_TENSOR and tensors[i]["dtype"] == "int4"
          and tensors[i]["storage"] == "CONST"}
    a16 = {i for op in b["ops"] for i in op["inputs"] + op["outputs"] if i != fmt.NO_TENSOR
           and tensors[i]["storage"] == "ARENA" and tensors[i]["dtype"] == "int16"}
    precision = {
        "int4_saved_bytes": sum(w4.values()),
        "int16_extra_tensor_bytes": sum(tensors[i]["nbytes"] - tensors[i]["nbytes"] // 2 for i in a16),
        # what the int16 tensors add to the largest set of tensors live at once (the arena's lower bound)
        "int16_extra_arena_bytes": _live_peak(b) - _live_peak(b, int16_as_int8=True) if a16 else 0,
    }
    ins = [_io(tensors[i], fin, n) for i, n in zip(b["inputs"], _names(meta, "INPUT_NAMES", len(b["inputs"])),
                                                   strict=True)]
    outs = [_io(tensors[i], fout, n) for i, n in zip(b["outputs"], _names(meta, "OUTPUT_NAMES", len(b["outputs"])),
                                                     strict=True)]
    return {
        "name": _text(meta.get("NAME")),
        "packer": _text(meta.get("PACKER")),
        "format_version": f"{h['version_major']}.{h['version_minor']}",
        "blob_bytes": h["total_size"],
        "source_bytes": _count(meta.get("SOURCE_BYTES")),
        "arena_bytes": h["arena_size"] + h["scratch_size"],
        "arena_lower_bound": _count(meta.get("ARENA_LOWER_BOUND")),
        "scratch_bytes": h["scratch_size"],
        "const_bytes": h["const_size"],
        # the model's own memory kept between runs (stateful models), beside the arena
        "state_bytes": h.get("state_size", 0),
        "macs": sum(o["macs"] for o in ops),
        "input": ins[0],
        "output": outs[0],
        # every graph input and output, in the order run() takes and gives them
        "inputs": ins,
        "outputs": outs,
        "labels": meta.get("LABELS"),
        "ops": ops,
        "tensor_count": len(tensors),
        **precision,
    }


def _kib(n) -> str:
    return "-" if n is None else f"{n:,} B ({n / 1024:.1f} KiB)"


def describe(info: dict) -> str:
    """inspect()'s result as a table for people."""
    def io(t: dict) -> str:
        q = f"scale {t['scale']:.6g} zero point {t['zero_point']}"
        inside = t.get("stored", "int8")
        return f"{tuple(t['shape'])} " + (f"float32 ({inside} inside: {q})" if t["dtype"] == "float32" else
                                          f"{t['dtype']} {q}")

    lines = [f"model {info['name']!r} ({info['packer']}, format {info['format_version']})"]
    for key in ("input", "output"):
        rows = info.get(key + "s") or [info[key]]
        for k, t in enumerate(rows):
            label = f"{key} {k}" if len(rows) > 1 else key
            name = f" {t['name']}" if len(rows) > 1 and t.get("name") else ""
            lines.append(f"{label:<6} {io(t)}{name}")
    lines.append("")
    mixed = bool(info.get("int4_saved_bytes") or info.get("int16_extra_tensor_bytes"))
    kinds = [o["type"] + (" (once)" if o.get("once") else "") for o in info["ops"]]
    w = max([16, *map(len, kinds)])
    lines.append(f"{'#':>3}  {'op':<{w}} {'precision':<9} {'in':<18} {'out':<16} {'MACs':>10} {'weights':>9}  "
                 + (f"{'vs int8':<14} " if mixed else "") + "arena (offset+bytes)")
    for o, kind in zip(info["ops"], kinds, strict=True):
        ins = " ".join("x".join(map(str, s)) for s in o["inputs"])
        outs = " ".join("x".join(map(str, s)) for s in o["outputs"])
        arena = " ".join([f"{a}+{n}" for a, n in o["arena"]] + [f"state {a}+{n}" for a, n in o.get("state", [])])
        lines.append(f"{o['index']:>3}  {kind:<{w}} {o.get('precision', ''):<9} {ins:<18} {outs:<16} {o['macs']:>10,} "
                     f"{o['weight_bytes']:>9,}  " + (f"{_vs_int8(o):<14} " if mixed else "") + arena)
    lb = info["arena_lower_bound"]
    tensors = info["arena_bytes"] - info["scratch_bytes"]
    ratio = f", {tensors / lb:.0%} of their lower bound" if lb else ""
    lines += ["",
              f"MACs              {info['macs']:,}",
              f"arena             {_kib(info['arena_bytes'])}: tensors {tensors:,} B{ratio}, "
              f"kernel scratch {info['scratch_bytes']:,} B",
              f"arena lower bound {_kib(lb)}: the largest set of tensors live at once",
              f"constants         {_kib(info['const_bytes'])}",
              *([f"state             {_kib(info['state_bytes'])}: kept between runs; (once): sets its initial "
                 "values before the first run"] if info.get("state_bytes") else []),
              f"blob              {_kib(info['blob_bytes'])}",
              f"source .tflite    {_kib(info['source_bytes'])}",
              *_precision_lines(info)]
    if info["labels"]:
        lines.append(f"labels            {', '.join(info['labels'][:8])}{' ...' if len(info['labels']) > 8 else ''}")
    return "\n".join(lines)


def _vs_int8(o: dict) -> str:
    """An op's column beside its weights: "w -N" its int4 weights' bytes fewer than int8's, "a +M" its
    int16 activation tensors' bytes more."""
    parts = ([f"w -{o['int4_saved_bytes']:,}"] if o.get("int4_saved_bytes") else []) + \
        ([f"a +{o['int16_extra_tensor_bytes']:,}"] if o.get("int16_extra_tensor_bytes") else [])
    return " ".join(parts)


def _precision_lines(info: dict) -> list[str]:
    """The totals against the same model in int8 (nothing for an all-int8 blob)."""
    out = []
    if info.get("int4_saved_bytes"):
        n = info["int4_saved_bytes"]
        out.append(f"int4 weights      save {n:,} B: int8 weights would take {n:,} B more "
                   f"({100 * n / info['blob_bytes']:.1f}% of this blob)")
    if info.get("int16_extra_tensor_bytes"):
        out.append(f"int16 activations cost {info['int16_extra_arena_bytes']:,} B of arena: the largest set of "
                   f"tensors live at once against int8 tensors (in all, the int16 tensors take "
                   f"{info['int16_extra_tensor_bytes']:,} B more)")
    legend = ([" w -N its int4 weights' bytes fewer"] if info.get("int4_saved_bytes") else []) + \
        ([" a +M its int16 tensors' bytes more"] if info.get("int16_extra_tensor_bytes") else [])
    if legend:
        out.append("vs int8 column    per op:" + ",".join(legend))
    return out


def to_json(info: dict) -> dict:
    """inspect()'s result with numpy scalars turned into plain numbers."""
    def fix(v):
        if isinstance(v, dict):
            return {k: fix(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [fix(x) for x in v]
        if isinstance(v, np.generic):
            return v.item()
        return v
    return fix(info)
