"""Will a blob fit a board? Flash and heap for each way of deploying it.

``fit(blob, board)`` combines ``inspect(blob)`` with the board's profile
(boards/.../board.json) and the micronn module's size on the board's core
(measured with the cross compiler, see cross.py; the profile's
``module_fallback`` figures when the compiler is absent). The rules, for each
deployment (docs/boards.md explains them):

flash
    the firmware region holds the port's firmware (``firmware_estimate``, which
    includes micronn's frozen device/ code) plus the module's code, plus the
    blob when it is frozen into the firmware (``FROZEN_OVERHEAD`` more for the
    module that holds it); a ROMFS image with the blob (its exact size) must fit
    the ROMFS partition; a blob deployed as a file must fit the filesystem.
heap
    the model's heap as ``Model.ram_size`` counts it: the model object, its op
    records and the arena, each rounded up to whole GC blocks; a blob read from
    a file into RAM adds the bytes object (header block + data and its NUL).
    Blobs in ROMFS or frozen are used in place from flash.
ops_from
    the same with the module `micronn firmware build --ops-from` the blob would
    build (its own op codes and fallback variants only), its size estimated for
    the board's core from per-op sizes measured with the cross compiler
    (opsizes.py, boards/opsizes.json): no firmware build and no compiler needed.
"""

from __future__ import annotations

from .errors import MicronnError

DEPLOYS = ("file", "romfs", "frozen")
WEIGHTS_IN = {"file": "RAM (file read in)", "romfs": "flash (ROMFS)", "frozen": "flash (firmware)"}
# A frozen blob is a bytes constant of a small module: object header, NUL and bytecode.
FROZEN_OVERHEAD = 64


def gc_block(prof: dict) -> int:
    """MICROPY_BYTES_PER_GC_BLOCK: four machine words."""
    return 32 if prof.get("family") == "x86-64" else 16


def _up(n: int, blk: int) -> int:
    return (n + blk - 1) // blk * blk


def module_figures(prof: dict) -> dict:
    """The module's code bytes and struct sizes on the board's core."""
    from . import cross

    try:
        m = cross.module_sizes(prof["family"])
        how = f"measured with {m['compiler'].rsplit('/', 1)[-1]}"
    except MicronnError as e:
        m = prof["module_fallback"]
        how = f"the profile's figure ({e})"
    return {"code": m["code"], "model_object": m["model_object"], "op_record": m["op_record"], "source": how}


def model_ram(info: dict, prof: dict, module: dict) -> dict:
    """Heap a loaded model holds (what Model.ram_size reports on the board)."""
    blk = gc_block(prof)
    ops = max(len(info["ops"]), 1)
    r = {"object": _up(module["model_object"], blk), "ops": _up(ops * module["op_record"], blk),
         "arena": _up(info["arena_bytes"], blk)}
    r["total"] = r["object"] + r["ops"] + r["arena"]
    return r


def _deployments(firmware: int, region: int, image: int, romfs_size: int, blob: int, fs_size: int, ram: dict,
                 file_ram: int, heap_total: int) -> dict:
    """Each deployment's flash and heap, needed and available, and its verdict."""
    rows = {}
    for mode in DEPLOYS:
        flash = [{"what": "firmware", "needed": firmware + (blob + FROZEN_OVERHEAD if mode == "frozen" else 0),
                  "available": region}]
        if mode == "romfs":
            flash.append({"what": "ROMFS image", "needed": image, "available": romfs_size})
        elif mode == "file":
            flash.append({"what": "file", "needed": blob, "available": fs_size})
        need = ram["total"] + (file_ram if mode == "file" else 0)
        reasons = []
        for f in flash:
            if f["needed"] > f["available"]:
                where = {"firmware": "the firmware region", "ROMFS image": "the ROMFS partition",
                         "file": "the filesystem"}[f["what"]]
                reasons.append(f"{f['what']} needs {f['needed']:,} B, {where} has {f['available']:,} B"
                               if f["available"] else f"the board has no {where[4:]}")
        if need > heap_total:
            reasons.append(f"heap needs {need:,} B, the board has {heap_total:,} B "
                           f"({need - heap_total:,} B short)")
        rows[mode] = {"weights_in": WEIGHTS_IN[mode], "flash": flash, "heap_needed": need,
                      "heap_left": heap_total - need, "fits": not reasons, "reasons": reasons}
    return rows


def ops_from_estimate(data: bytes, board: str, prof: dict, source: str | None, deployments) -> dict:
    """The module `micronn firmware build --ops-from` the blob would build, estimated for the
    board's core from boards/opsizes.json (opsizes.py), and each deployment with it:
    {"ops", "command", "module_code", "source", "firmware", "firmware_left", "deployments",
    "fits"}, or {"ops", "command", "error"} when the table has no figures for it."""
    from . import format as fmt
    from . import opset, opsizes

    ops = sorted(opset.ops_of_blob(data), key=fmt.OPCODES.__getitem__) + sorted(opset.fallbacks_of_blob(data))
    src = source if source and str(source).endswith(".mnb") else "MODEL.mnb"
    r = {"ops": ops, "command": f"micronn firmware build --board {board} --ops-from {src}"}
    try:
        est = opsizes.estimate(prof["family"], ops)
    except MicronnError as e:
        return {**r, "error": str(e)}
    firmware = prof["firmware_estimate"] + est["bytes"]
    rows = deployments(firmware)
    return {**r, "module_code": est["bytes"], "source": est["source"], "firmware": firmware,
            "firmware_left": prof["firmware_region"]["size"] - firmware, "deployments": rows,
            "fits": [m for m in DEPLOYS if rows[m]["fits"]]}


def fit(data, board: str, heap: int | None = None, source: str | None = None) -> dict:
    """Flash and heap needed and available for each deployment of a blob on a board, with the
    full module and (``ops_from``) with a module built --ops-from the blob alone. ``source``:
    the blob's file, named in the --ops-from command (a path given as ``data`` is used)."""
    from . import romfs
    from .firmware import profile, resolve
    from .inspector import inspect

    if not isinstance(data, (bytes, bytearray, memoryview)):
        source = source or str(data)
        with open(data, "rb") as f:
            data = f.read()
    board = resolve(board)
    prof = profile(board)
    if prof.get("heap") is None:
        raise MicronnError(f"{board} has no flash or RAM limits to check")
    info = inspect(bytes(data))
    module = module_figures(prof)
    blk = gc_block(prof)
    ram = model_ram(info, prof, module)
    blob = info["blob_bytes"]
    heap_total = heap if heap is not None else prof["heap"]
    firmware = prof["firmware_estimate"] + module["code"]
    region = prof["firmware_region"]["size"]
    romfs_size = (prof.get("romfs") or {}).get("size", 0)
    fs_size = (prof.get("filesystem") or {}).get("size", 0)
    image = len(romfs.build({f"{info['name'] or 'model'}.mnb": bytes(data)}))
    file_ram = blk + _up(blob + 1, blk)

    rows = _deployments(firmware, region, image, romfs_size, blob, fs_size, ram, file_ram, heap_total)
    ops_from = ops_from_estimate(bytes(data), board, prof, source,
                                 lambda fw: _deployments(fw, region, image, romfs_size, blob, fs_size, ram, file_ram,
                                                         heap_total))
    return {
        "model": info["name"], "board": board, "description": prof["description"], "family": prof["family"],
        "core": prof["core"], "dsp": prof["dsp"], "clock_hz": prof["clock_hz"],
        "flash_bytes": prof["flash"], "ram_bytes": prof["ram"],
        "heap": heap_total, "heap_source": "--heap" if heap is not None else prof.get("heap_note", "profile"),
        "firmware_estimate": prof["firmware_estimate"], "firmware_region": region,
        "romfs_partition": romfs_size, "filesystem": fs_size,
        "module": module, "gc_block": blk,
        "blob_bytes": blob, "weights_bytes": info["const_bytes"], "arena_bytes": info["arena_bytes"],
        "op_count": len(info["ops"]), "romfs_image_bytes": image, "file_ram_bytes": file_ram,
        "model_ram": ram, "deployments": rows, "fits": [m for m in DEPLOYS if rows[m]["fits"]],
        "ops_from": ops_from,
    }


def _k(n: int) -> str:
    return f"{n / 1024:,.1f} KiB"


def describe(r: dict) -> str:
    """fit()'s result as a table for people."""
    m, ram = r["module"], r["model_ram"]
    lines = [
        f"model {r['model']!r} on {r['board']}: {r['description']}",
        f"flash: firmware region {_k(r['firmware_region'])}, ROMFS {_k(r['romfs_partition'])}, "
        f"filesystem {_k(r['filesystem'])}; heap {r['heap']:,} B ({r['heap_source']})",
        f"firmware: {r['firmware_estimate']:,} B (the port's, estimated) + micronn module {m['code']:,} B "
        f"({r['family']}, {m['source']})",
        f"model: blob {r['blob_bytes']:,} B, weights {r['weights_bytes']:,} B, arena {r['arena_bytes']:,} B; "
        f"heap for the loaded model {ram['total']:,} B = object {ram['object']} + {r['op_count']} op records "
        f"{ram['ops']:,} + arena {ram['arena']:,} (GC blocks of {r['gc_block']} B)",
        "",
        f"{'deploy':<7} {'weights in':<19} {'firmware need / region':>24}  {'data need / space':>24}  "
        f"{'heap need / heap':>20}  {'heap left':>10}  verdict",
    ]
    for mode, row in r["deployments"].items():
        fw = row["flash"][0]
        data = row["flash"][1] if len(row["flash"]) > 1 else None
        data_s = f"{data['needed']:,} / {data['available']:,}" if data else "-"
        verdict = "fits" if row["fits"] else "does not fit"
        lines.append(f"{mode:<7} {row['weights_in']:<19} {fw['needed']:>11,} / {fw['available']:<10,}  "
                     f"{data_s:>24}  {row['heap_needed']:>9,} / {r['heap']:<8,}  {row['heap_left']:>10,}  {verdict}")
    lines.append("")
    if r["fits"]:
        lines.append(f"fits as: {', '.join(r['fits'])}")
    for mode, row in r["deployments"].items():
        if not row["fits"]:
            lines.append(f"does not fit as {mode}: {'; '.join(row['reasons'])}")
    if any("firmware region" in why for row in r["deployments"].values() for why in row["reasons"]):
        lines += ops_from_lines(r)
    return "\n".join(lines)


def ops_from_lines(r: dict) -> list[str]:
    """What a firmware built --ops-from the blob would change, for describe()."""
    o = r["ops_from"]
    if r["deployments"]["file"]["flash"][0]["needed"] > r["firmware_region"]:
        full = (f"the full micronn module ({_k(r['module']['code'])}: every kernel, int8, 16x8, int4 weights, "
                "recurrent) does not fit beside MicroPython in the firmware region")
    else:       # only the frozen blob is too much
        full = (f"with the full micronn module ({_k(r['module']['code'])}: every kernel, int8, 16x8, int4 weights, "
                "recurrent) the firmware region has no room for the blob frozen")
    if "error" in o:
        return [f"{full}; a firmware with this model's ops only is smaller: {o['command']} (its size is not "
                f"estimated here: {o['error']})"]
    left = o["firmware_left"]
    lines = [f"{full}; built with --ops-from (ops {', '.join(o['ops'])}) it would be about {_k(o['module_code'])} "
             + (f"and fits: firmware {o['firmware']:,} B of {r['firmware_region']:,} B, leaving {_k(left)}"
                if left >= 0 else
                f"and still does not fit: firmware {o['firmware']:,} B of {r['firmware_region']:,} B, "
                f"{_k(-left)} over"),
             f"  {o['command']}",
             f"  ({o['source']})"]
    if o["fits"]:
        lines.append(f"with that firmware the model fits as: {', '.join(o['fits'])}")
    else:
        lines.append("with that firmware the model still does not fit:")
    for mode, row in o["deployments"].items():
        if not row["fits"]:
            lines.append(f"  not as {mode}: {'; '.join(row['reasons'])}")
    return lines
