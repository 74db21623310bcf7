# Board set-up for micronn: mount the ROMFS partition at /rom and the board's
# filesystem at / (QEMU boards: a littlefs in emulated memory that the host can
# back with a file, or, on a board with neither, one in the heap), so that
# mpremote's file copy and open("/rom/...") work as on a real board.
import gc
import sys

import vfs


class MemBlockDev:
    """A block device over a buffer: a bytearray, or memory at a fixed address."""

    def __init__(self, mem, block_size):
        self.mem = memoryview(mem)
        self.block_size = block_size

    def readblocks(self, block_num, buf, offset=0):
        addr = block_num * self.block_size + offset
        buf[:] = self.mem[addr : addr + len(buf)]

    def writeblocks(self, block_num, buf, offset=None):
        addr = block_num * self.block_size + (offset or 0)
        self.mem[addr : addr + len(buf)] = buf

    def ioctl(self, op, arg):
        if op == 4:  # block count
            return len(self.mem) // self.block_size
        if op == 5:  # block size
            return self.block_size
        if op == 6:  # erase
            return 0
        return None


class RAMBlockDev(MemBlockDev):
    def __init__(self, block_size, num_blocks):
        super().__init__(bytearray(block_size * num_blocks), block_size)


def _mounted(path):
    try:
        return any(m[1] == path for m in vfs.mount())
    except (AttributeError, TypeError):
        return False


def mount_romfs():
    """Mount ROMFS segment 0 at /rom; True if there is one."""
    if _mounted("/rom"):
        return True
    try:
        if vfs.rom_ioctl(1) < 1:
            return False
        seg = vfs.rom_ioctl(2, 0)
        if not isinstance(seg, memoryview) or bytes(seg[:3]) != b"\xd2\xcd\x31":
            return False
        vfs.mount(vfs.VfsRom(seg), "/rom")
        return True
    except (OSError, AttributeError):
        return False


def mount_ramfs(size=None):
    """A littlefs in RAM at / when nothing is mounted there."""
    if _mounted("/"):
        return False
    gc.collect()
    if size is None:
        free = gc.mem_free()
        if free < 1024 * 1024:      # small boards keep their heap for models
            return False
        size = min(512 * 1024, free // 4) // 512 * 512
    bdev = RAMBlockDev(512, size // 512)
    vfs.VfsLfs2.mkfs(bdev)
    vfs.mount(vfs.VfsLfs2(bdev), "/")
    return True


def mount_flash(base, size):
    """The littlefs in the memory at base (size bytes) at /, made if there is
    none there; QEMU boards keep it in memory the host backs with a file."""
    if _mounted("/"):
        return True
    import uctypes

    bdev = MemBlockDev(uctypes.bytearray_at(base, size), 4096 if size >= 1 << 20 else 512)
    try:
        fs = vfs.VfsLfs2(bdev)
    except OSError:
        vfs.VfsLfs2.mkfs(bdev)
        fs = vfs.VfsLfs2(bdev)
    vfs.mount(fs, "/")
    # /lib on the path, as on esp32 and rp2: where mip and `micronn install` put packages
    if "/lib" not in sys.path:
        sys.path.append("/lib")
    return True


def boot(fs_base=0, fs_size=0):
    """Run by the QEMU firmware at every start and soft reset (board.c)."""
    mount_romfs()
    if fs_size:
        mount_flash(fs_base, fs_size)


def setup():
    return {"romfs": mount_romfs(), "ramfs": mount_ramfs()}
