"""micronn.mpy installed like a MicroPython package (issue 15): `micronn install` and
`mpremote mip install` put the native module on a QEMU board running stock firmware
(qemu-m4-stock: MicroPython without micronn, started with `micronn board start`), and
`import micronn` takes it after a soft reset; the board's sys.implementation._mpy
picks the file, and one the board cannot import is refused before anything is written."""

from __future__ import annotations

import json
import re

import pytest

from micronn import blob, natmod, sessions
from micronn.errors import MicronnError
from micronn.install import ARCH_INDEX, check_file, decode_mpy, file_header, pick_arch, takes

from .conftest import native_module, need_firmware
from .test_format import GRAPH_KNOWN, _graph
from .test_workspace import MICRONN, MPREMOTE, sh, start

X = bytes(range(8))
Y = GRAPH_KNOWN[X]

# Which micronn `import micronn` gives on the board, its __file__ made absolute, or that there is none.
WHICH = """\
import os
try:
    import micronn
    f = micronn.__file__
    print('micronn', micronn.version, f if f.startswith('/') else os.getcwd().rstrip('/') + '/' + f)
except ImportError:
    print('no micronn')
"""

CLASSIFY = f"""\
import micronn
m = micronn.Model(open("t.mnb", "rb").read())
print("outputs", list(m.run({X!r})), "from", micronn.__file__)
"""


@pytest.fixture
def state(tmp_path, monkeypatch):
    """A state folder of our own (no other run's boards), every board stopped at the end."""
    monkeypatch.setenv("MICRONN_STATE_DIR", str(tmp_path / "state"))
    (tmp_path / "t.mnb").write_bytes(blob.write(_graph()))
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    for s in sessions.sessions():
        sessions.stop(s["name"])


def which(port: str) -> str:
    """`import micronn` after a soft reset: 'micronn VERSION PATH' or 'no micronn'."""
    return sh(MPREMOTE + ["connect", port, "soft-reset", "+", "exec", WHICH]).stdout.strip()


def refused(cmd: list[str], *want: str) -> str:
    r = sh(MICRONN + cmd, check=False)
    assert r.returncode == 1 and r.stdout == "" and len(r.stderr.splitlines()) == 1, (cmd, r.stdout, r.stderr)
    assert r.stderr.startswith("micronn: error: ") and all(w in r.stderr for w in want), (cmd, r.stderr)
    return r.stderr


def test_install_and_mip_on_stock_firmware(state):
    need_firmware("qemu-m4-stock")
    mpy = native_module("armv7emsp")
    version = natmod.module_version()
    port = start("qemu-m4-stock")
    assert which(port) == "no micronn"          # the firmware has none: what imports below is the file

    # a file the board cannot import is refused, before anything is written
    refused(["install", "--port", port, "--arch", "x64"], "armv7emsp firmware", "micronn-x64.mpy (x64)",
            "incompatible .mpy arch")
    refused(["install", "--port", port, "--arch", "armv7emdp"], "micronn-armv7emdp.mpy (armv7emdp)")
    refused(["install", "--port", port, "--dest", "nowhere"], "/nowhere is not on its sys.path", "--force")
    listing = sh(MPREMOTE + ["connect", port, "ls", ":"]).stdout
    assert "micronn" not in listing and "lib/" not in listing, listing

    # micronn install --port: the board's architecture, the file's bytes, the import after a soft reset
    r = sh(MICRONN + ["install", "--port", port], timeout=180)
    m = re.search(rf"^installed micronn-armv7emsp\.mpy \(([\d,]+) bytes\) as :(\S+) on {re.escape(port)}$",
                  r.stdout, re.M)
    assert m and int(m[1].replace(",", "")) == mpy.stat().st_size, r.stdout
    remote = "/" + m[2]
    assert remote.endswith("/micronn.mpy") and ".mpy 6.3 armv7emsp" in r.stdout, r.stdout
    assert f"import micronn after a soft reset: micronn {version} from {remote}" in r.stdout, r.stdout
    r = sh(MPREMOTE + ["connect", port, "cp", "t.mnb", ":t.mnb", "+", "soft-reset", "+", "exec", CLASSIFY])
    assert f"outputs {Y} from " in r.stdout, r.stdout

    # --target: the running board; the board's sha256 of its file is the .mpy's, so nothing is copied again
    r = sh(MICRONN + ["install", "--target", "qemu-m4-stock"], timeout=180)
    assert f"using the running board qemu-m4-stock (qemu-m4-stock) on {port}" in r.stderr, r.stderr
    assert "same sha256): nothing written" in r.stdout and f"micronn {version} from {remote}" in r.stdout, r.stdout

    # mpremote mip install from the package file `micronn natmod build` writes beside the .mpy
    pkg = natmod.write_package("armv7emsp")
    assert json.loads(pkg.read_text()) == {"urls": [["micronn.mpy", mpy.name]], "version": version}
    sh(MPREMOTE + ["connect", port, "rm", ":" + remote])
    assert which(port) == "no micronn"
    folder = remote.rpartition("/")[0] or "/"
    # mip installs into the first /lib folder of sys.path (the QEMU boards put /lib there); else --target
    mip = ["--target", folder] if folder != "/lib" else []
    r = sh(MPREMOTE + ["connect", port, "mip", "install", *mip, str(pkg)], timeout=180)
    assert "Done" in r.stdout, r.stdout
    assert which(port) == f"micronn {version} {remote}"


def test_firmware_with_micronn_built_in_is_refused(state):
    need_firmware("qemu-m4")
    port = start("qemu-m4")
    refused(["install", "--port", port], "has micronn", "built in", "--force")
    assert "micronn" not in sh(MPREMOTE + ["connect", port, "ls", ":"]).stdout


def test_install_mistakes_are_one_line(state):
    refused(["install"], "--port DEVICE or --target BOARD")
    refused(["install", "--target", "qemu-m4-stock"], "no qemu-m4-stock board is running", "micronn board start")
    refused(["install", "--target", "unix"], "MICROPYPATH")
    refused(["install", "--port", "qemu-m4-stock"], "no board of that name is running")


@pytest.mark.parametrize("arch", natmod.DEFAULT_ARCHES)
def test_board_mpy_picks_the_file(arch):
    """Firmware of each architecture: its _mpy (as MicroPython makes it from the same
    header bytes the .mpy carries) decodes to the file's header, and picks that file."""
    p = natmod.mpy_file(arch)
    if not p.exists():
        pytest.skip(f"{p} not built (make natmod)")
    head = p.read_bytes()[:4]
    board = decode_mpy(head[1] | head[2] << 8)
    assert board == file_header(head)
    assert board["arch"] == arch and pick_arch(board["arch_index"]) == arch
    check_file({**board, "micropython": "1.25.0"}, file_header(head), p.name, "board")
    # another .mpy sub-version (another MicroPython release's native ABI) is refused
    with pytest.raises(MicronnError, match="incompatible .mpy file"):
        check_file({**board, "sub_version": board["sub_version"] ^ 1, "micropython": "1.2x"}, file_header(head),
                   p.name, "board")


def test_thumb_firmware_takes_the_thumb_architectures_below_its_own():
    # Cortex-M3 and soft-float Cortex-M4 firmware say armv7em, for which micronn builds nothing: armv7m
    assert pick_arch(ARCH_INDEX["armv7em"]) == "armv7m"
    assert takes(ARCH_INDEX["armv7emdp"], ARCH_INDEX["armv7emsp"])
    assert not takes(ARCH_INDEX["armv7emsp"], ARCH_INDEX["armv7emdp"])
    assert not takes(ARCH_INDEX["armv7emsp"], ARCH_INDEX["x64"]) and not takes(ARCH_INDEX["x64"], ARCH_INDEX["x86"])
    with pytest.raises(MicronnError, match="no micronn.mpy for xtensa firmware"):
        pick_arch(ARCH_INDEX["xtensa"])
