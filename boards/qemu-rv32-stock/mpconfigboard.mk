# qemu-rv32-stock: qemu-rv32 (QEMU virt, RV32IMC) without the micronn C module
# (board.json: "user_c_module": false): it loads micronn-rv32imc.mpy from its ROMFS.
QEMU_ARCH = riscv32
QEMU_MACHINE = virt
# rv32imac with the 2.2 ISA spec (CSR instructions in the base): the name that
# matches Debian's rv32imac/ilp32 multilib of libgcc and picolibc.
RV32_ARCH = rv32imac
CFLAGS += -misa-spec=2.2
AFLAGS += -misa-spec=2.2
LDFLAGS += -misa-spec=2.2
CFLAGS += -DQEMU_SOC_VIRT -DMICROPY_HW_MCU_NAME='"$(RV32_ARCH)"' -DMICRONN_CLOCK_HZ=10000000
CFLAGS += -DMICRONN_ROMFS_BASE=0x80800000 -DMICRONN_ROMFS_SIZE=0x00100000
# The filesystem: 1 MB of RAM after the ROMFS image, loaded from the flash file at start.
CFLAGS += -DMICRONN_FS_BASE=0x80900000 -DMICRONN_FS_SIZE=0x00100000
LDSCRIPT = $(BOARD_DIR)/../qemu-common/virt-rv32.ld
SRC_BOARD_O += shared/runtime/gchelper_native.o shared/runtime/gchelper_rv32i.o
MPY_CROSS_FLAGS += -march=rv32imc
MICROPY_HEAP_SIZE = 1048576
include $(BOARD_DIR)/../qemu-common/qemu.mk
