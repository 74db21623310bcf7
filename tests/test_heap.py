"""Load/run/delete cycles return the heap to its baseline after gc.collect().

MicroPython's collector is conservative: a stale word on the C stack or in a VM
slot that happens to point into the heap keeps one block alive. The baseline is
taken after a few warm-up cycles, and the check allows that one stray block
(64 bytes) while a leak of even one byte per cycle shows as 1,000 or more."""

from __future__ import annotations

from micronn import blob
from micronn.firmware import firmware_file
from micronn.targets import QemuTarget

from .conftest import micropython, need_shared
from .test_format import _graph

STRAY = 64     # one block a stale pointer may keep alive

CYCLES = """
import gc, micronn
def cycles(b, n):
    x = bytes(micronn.Model(b).input_shape[1])
    def cycle():
        m = micronn.Model(b)
        y = m.run(x)
        m = y = None
    for i in range(10):
        cycle()
    gc.collect()
    base = gc.mem_free()
    for i in range(n):
        cycle()
    gc.collect()
    return base, gc.mem_free()
"""


def test_ten_thousand_cycles_on_unix(tmp_path):
    (tmp_path / "m.mnb").write_bytes(blob.write(_graph()))
    out = micropython(CYCLES + "b = open('m.mnb', 'rb').read()\nprint(*cycles(b, 10000))\n", tmp_path)
    base, after = map(int, out.split())
    print(f"\nunix: 10000 cycles, free heap {base} before, {after} after")
    assert base - after <= STRAY


def test_thousand_cycles_on_qemu_m4():
    if not firmware_file("qemu-m4").exists():
        import pytest

        pytest.skip("qemu-m4 firmware not built")
    model = need_shared("models", "tflm_hello_world_int8.tflite")
    from micronn import pack, romfs

    with QemuTarget("qemu-m4", romfs=romfs.build({"m.mnb": pack(model)})) as t:
        t.setup()
        out = t.exec(CYCLES + "b = open('/rom/m.mnb', 'rb')\nprint(*cycles(b, 1000))\n")
    base, after = map(int, out.split())
    print(f"\nqemu-m4: 1000 cycles, free heap {base} before, {after} after")
    assert base - after <= STRAY
