# Board set-up for micronn: mount the ROMFS partition at /rom and, where the
# board has no filesystem, a RAM-backed littlefs at / (QEMU boards), so that
# mpremote's file copy and open("/rom/...") work as on a real board.
import gc

import vfs


class RAMBlockDev:
    def __init__(self, block_size, num_blocks):
        self.block_size = block_size
        self.data = bytearray(block_size * num_blocks)

    def readblocks(self, block_num, buf, offset=0):
        addr = block_num * self.block_size + offset
        buf[:] = self.data[addr : addr + len(buf)]

    def writeblocks(self, block_num, buf, offset=None):
        addr = block_num * self.block_size + (offset or 0)
        self.data[addr : addr + len(buf)] = buf

    def ioctl(self, op, arg):
        if op == 4:  # block count
            return len(self.data) // self.block_size
        if op == 5:  # block size
            return self.block_size
        if op == 6:  # erase
            return 0
        return None


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


def setup():
    return {"romfs": mount_romfs(), "ramfs": mount_ramfs()}
