"""The native module, micronn.mpy (issue 15): what differs from the built-in module.
The API and the shared models run on both builds in test_module_api.py and
test_shared_models.py (`impl`); here: the versions, MicroPython's refusal of a
wrong .mpy, Ctrl-C, the architectures' headers and armv6m's float division."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from micronn import natmod

from .conftest import ROOT, impl_firmware, micropython, native_module, native_unix_target
from .test_interrupt import _interrupt_and_go_on

# py/persistentcode.h: the .mpy header's feature byte holds the architecture in bits 2..7.
MPY_ARCH = {"x64": 2, "armv6m": 4, "armv7m": 5, "armv7emsp": 7, "armv7emdp": 8, "rv32imc": 11}


def test_versions_match_the_built_in_module(tmp_path):
    script = "import micronn; print(micronn.version, micronn.format_version, len(micronn.supported_ops()))"
    built_in = micropython(script, tmp_path)
    native = micropython(script, tmp_path, impl="native")
    assert native == built_in
    assert native.split()[0] == natmod.module_version()
    # the native module really is the file, not a module of the firmware
    out = micropython("import micronn; print(micronn.__file__)", tmp_path, impl="native")
    assert out.strip() == "micronn.mpy"


@pytest.mark.parametrize("arch", ["armv7m", "x64-wrong-version"])
def test_wrong_mpy_gives_micropython_import_error(tmp_path, arch):
    """A .mpy of another architecture, or another .mpy version, is refused by the import."""
    exe = impl_firmware("native")
    if arch == "armv7m":
        src = natmod.mpy_file("armv7m")
        if not src.exists():
            pytest.skip(f"{src} not built (make natmod)")
        data, want = src.read_bytes(), "ValueError: incompatible .mpy arch"
    else:
        data = bytearray(native_module().read_bytes())
        data[1] -= 1            # the .mpy version byte
        want = "ValueError: incompatible .mpy file"
    (tmp_path / "micronn.mpy").write_bytes(bytes(data))
    p = subprocess.run([str(exe), "-c", "import micronn"], cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and p.stderr.strip().endswith(want), p.stderr


@pytest.mark.parametrize("arch", sorted(MPY_ARCH))
def test_mpy_header_names_the_architecture(arch):
    p = natmod.mpy_file(arch)
    if not p.exists():
        pytest.skip(f"{p} not built (make natmod)")
    head = p.read_bytes()[:4]
    assert head[0] == ord("M") and head[1] == 6, head      # MicroPython 1.25's .mpy version
    assert head[2] >> 2 == MPY_ARCH[arch]


def test_native_run_is_interrupted(tmp_path):
    """No mp_handle_pending in a native module: its poll calls cmodule/natmod_poll.py's
    function, where the VM raises the KeyboardInterrupt SIGINT scheduled."""
    with native_unix_target(tmp_path) as t:
        took = _interrupt_and_go_on(t, 2.0)
    assert took < 2.0 + 2.0 + 10.0      # the run timeout, a resync as long, the interrupt


def test_qemu_native_run_is_interrupted():
    """On the QEMU boards the VM hook reads Ctrl-C from the UART: the poll's Python call
    reaches it."""
    from micronn import romfs
    from micronn.targets import QemuTarget

    from .conftest import need_firmware

    need_firmware("qemu-m4-stock")
    t = QemuTarget("qemu-m4-stock", romfs=romfs.build({"micronn.mpy": native_module("armv7emsp").read_bytes()}))
    try:
        t.setup()
        t.exec("import sys\nsys.path.append('/rom')\nimport micronn")
        t.serve()
        took = _interrupt_and_go_on(t, 3.0)
    finally:
        t.close()
    # the run timeout, a resync as long, at most INTERRUPT_WAIT for the answer, and slack for a loaded machine
    assert took < 3.0 + 3.0 + 10.0 + 4.0


def test_armv6m_float_division_is_ieee(tmp_path):
    """cmodule/mnn_fdiv.h (armv6m's __aeabi_fdiv) against the host's float division:
    edge cases (zeros, subnormals, infinities, NaN, the largest and smallest) and
    random operands, with quantization-like and subnormal-result ones."""
    if shutil.which("gcc") is None:
        pytest.skip("no gcc")
    (tmp_path / "t.c").write_text(r"""
#include "mnn_fdiv.h"
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
static uint64_t s = 88172645463325252ull;
static uint32_t rnd(void) { s ^= s << 13; s ^= s >> 7; s ^= s << 17; return (uint32_t)s; }
static float f(uint32_t u) { float x; memcpy(&x, &u, 4); return x; }
static uint32_t u(float x) { uint32_t v; memcpy(&v, &x, 4); return v; }
static long bad, n;
static void check(uint32_t a, uint32_t b) {
    float r = f(a) / f(b), m = mnn_fdiv(f(a), f(b));
    n++;
    if (!(isnan(r) && isnan(m)) && u(r) != u(m)) {
        if (bad++ < 5) printf("%08x / %08x: %08x, not %08x\n", a, b, u(m), u(r));
    }
}
int main(void) {
    static const uint32_t edge[] = {0, 1, 2, 0x7fffff, 0x800000, 0x800001, 0x3f800000, 0x3f7fffff, 0x7f7fffff,
                                    0x7f800000, 0x7fc00000, 0x400000, 0x34000000, 0x4b000000, 0x3f000000};
    for (int i = 0; i < 15; i++)
        for (int j = 0; j < 15; j++)
            for (uint32_t sg = 0; sg < 4; sg++) check(edge[i] | (sg & 1) << 31, edge[j] | (sg >> 1) << 31);
    for (long k = 0; k < 2000000; k++) {
        uint32_t a = rnd(), b = rnd();
        if (k % 4 == 1) b = (b & 0x807fffff) | (100 + rnd() % 60) << 23;
        if (k % 4 == 2) a &= 0x80ffffff;
        if (k % 4 == 3) { b = (b & 0x807fffff) | 0x7e800000; a &= 0x81ffffff; }
        check(a, b);
    }
    printf("%ld of %ld differ\n", bad, n);
    return bad != 0;
}
""")
    exe = tmp_path / "t"
    subprocess.run(["gcc", "-O2", "-Wall", "-Wextra", "-Werror", "-I", str(ROOT / "cmodule"), "-o", str(exe),
                    str(tmp_path / "t.c"), "-lm"], check=True)
    p = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and p.stdout.startswith("0 of 2000900 differ"), p.stdout


# QEMU boards built without the module, the .mpy each loads from its ROMFS, and the
# board with the built-in module to compare with.
QEMU_STOCK = [("qemu-m3-stock", "armv7m", "qemu-m3"), ("qemu-m4-stock", "armv7emsp", "qemu-m4"),
              ("qemu-rv32-stock", "rv32imc", "qemu-rv32")]


@pytest.mark.parametrize("board,arch,built_in", QEMU_STOCK)
def test_qemu_native_module_runs_the_shared_models(board, arch, built_in):
    """Firmware without micronn imports micronn-ARCH.mpy from /rom and runs every shared
    model bit-exact with TFLite Micro (3 samples each: the unix test runs 20)."""
    import numpy as np

    from micronn import pack, romfs
    from micronn.reference import tflm_run
    from micronn.run import sample_inputs
    from micronn.targets import QemuTarget

    from .conftest import need_firmware, need_shared
    from .test_shared_models import NAMES

    need_firmware(board)
    mpy = native_module(arch)
    t = QemuTarget(board, romfs=romfs.build({"micronn.mpy": mpy.read_bytes()}))
    try:
        assert t.setup()["romfs"]
        out = t.exec("import sys\nsys.path.append('/rom')\nimport micronn\n"
                     "print(sys.implementation._mpy >> 10, micronn.__file__, micronn.version)")
        fw_arch, path, version = out.split()
        # an Arm firmware takes its own architecture and the Arm ones below it (Cortex-M3: armv7em)
        assert int(fw_arch) >= MPY_ARCH[arch] and (path, version) == ("/rom/micronn.mpy", natmod.module_version())
        t.serve()
        for name in NAMES:
            data = need_shared("models", f"{name}.tflite").read_bytes()
            blob = pack(data, name=name)
            x = sample_inputs(blob, samples=3, seed=7)
            want = tflm_run(data, x)
            t.link.load(blob)
            got = np.stack([np.frombuffer(t.link.run(s.tobytes())[0], np.int8) for s in x]).reshape(want.shape)
            assert np.array_equal(got, want), f"{board} {name}: {np.count_nonzero(got != want)} values differ"
    finally:
        t.close()


@pytest.mark.parametrize("board,arch,built_in", QEMU_STOCK)
def test_qemu_native_module_costs_what_the_built_in_does(board, arch, built_in):
    """`micronn bench --native`: ResNet-8's instructions per inference through the .mpy
    within 5% of the built-in module's (the same kernels, -O2, DSP on the M4)."""
    from micronn import pack
    from micronn.bench import bench

    from .conftest import need_firmware, need_shared

    need_firmware(board)
    need_firmware(built_in)
    blob = pack(need_shared("models", "mlperf_tiny_ic_resnet8.tflite").read_bytes())
    native_module(arch)
    ours = bench(blob, board, native=arch)
    ref = bench(blob, built_in)
    assert ours["output"] == ref["output"]
    ratio = ours["instructions"] / ref["instructions"]
    assert 0.95 < ratio < 1.05, f"{board}: {ours['instructions']:,} instructions, built-in {ref['instructions']:,}"


def test_xtensawin_says_where_to_build_it():
    if shutil.which("xtensa-esp32-elf-gcc"):
        pytest.skip("Espressif's compiler is installed here")
    p = subprocess.run([sys.executable, "-m", "micronn.cli", "natmod", "build", "--arch", "xtensawin"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and p.stdout == ""
    assert p.stderr.startswith("micronn: error: xtensawin needs Espressif's xtensa-esp32-elf-gcc")
    assert "micronn natmod build --arch xtensawin" in p.stderr and len(p.stderr.splitlines()) == 1
