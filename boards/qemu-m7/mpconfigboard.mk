# qemu-m7: QEMU mps2-an500, Cortex-M7 with the DSP extension.
QEMU_MACHINE = mps2-an500
MICRONN_CPU = cortex-m7
MICRONN_MCU_NAME = Cortex-M7
MPY_CROSS_FLAGS += -march=armv7emsp
# The filesystem: the machine's 16 MB PSRAM, which QEMU backs with the flash file.
CFLAGS += -DMICRONN_FS_BASE=0x60000000 -DMICRONN_FS_SIZE=0x01000000
include $(BOARD_DIR)/../qemu-common/mps2.mk
