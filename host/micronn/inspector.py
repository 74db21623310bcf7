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
    ones only: an int32/int64 output gives its raw values)."""
    return {"shape": list(t["shape"]), "dtype": "float32" if is_float and t["dtype"] == "int8" else t["dtype"],
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
            "params": op["params"],
        })
    fin, fout = (bool(h["flags"] & fmt.HEADER_FLAGS[f]) for f in ("FLOAT_INPUT", "FLOAT_OUTPUT"))
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
    }


def _kib(n) -> str:
    return "-" if n is None else f"{n:,} B ({n / 1024:.1f} KiB)"


def describe(info: dict) -> str:
    """inspect()'s result as a table for people."""
    def io(t: dict) -> str:
        q = f"scale {t['scale']:.6g} zero point {t['zero_point']}"
        return f"{tuple(t['shape'])} " + (f"float32 (int8 inside: {q})" if t["dtype"] == "float32" else
                                          f"{t['dtype']} {q}")

    lines = [f"model {info['name']!r} ({info['packer']}, format {info['format_version']})"]
    for key in ("input", "output"):
        rows = info.get(key + "s") or [info[key]]
        for k, t in enumerate(rows):
            label = f"{key} {k}" if len(rows) > 1 else key
            name = f" {t['name']}" if len(rows) > 1 and t.get("name") else ""
            lines.append(f"{label:<6} {io(t)}{name}")
    lines.append("")
    lines.append(f"{'#':>3}  {'op':<16} {'in':<18} {'out':<16} {'MACs':>10} {'weights':>9}  arena (offset+bytes)")
    for o in info["ops"]:
        ins = " ".join("x".join(map(str, s)) for s in o["inputs"])
        outs = " ".join("x".join(map(str, s)) for s in o["outputs"])
        arena = " ".join([f"{a}+{n}" for a, n in o["arena"]] + [f"state {a}+{n}" for a, n in o.get("state", [])])
        kind = o["type"] + (" (once)" if o.get("once") else "")
        lines.append(f"{o['index']:>3}  {kind:<16} {ins:<18} {outs:<16} {o['macs']:>10,} "
                     f"{o['weight_bytes']:>9,}  {arena}")
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
              f"source .tflite    {_kib(info['source_bytes'])}"]
    if info["labels"]:
        lines.append(f"labels            {', '.join(info['labels'][:8])}{' ...' if len(info['labels']) > 8 else ''}")
    return "\n".join(lines)


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
