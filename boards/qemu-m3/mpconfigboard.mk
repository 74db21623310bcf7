# qemu-m3: QEMU mps2-an385, Cortex-M3 (no DSP extension: the portable C kernels).
QEMU_MACHINE = mps2-an385
MICRONN_CPU = cortex-m3
MICRONN_MCU_NAME = Cortex-M3
MPY_CROSS_FLAGS += -march=armv7m
# The filesystem: the machine's 16 MB PSRAM, which QEMU backs with the flash file.
CFLAGS += -DMICRONN_FS_BASE=0x21000000 -DMICRONN_FS_SIZE=0x01000000
include $(BOARD_DIR)/../qemu-common/mps2.mk
