# qemu-m4: QEMU mps2-an386, Cortex-M4 with the DSP extension (SIMD kernels).
QEMU_MACHINE = mps2-an386
MICRONN_CPU = cortex-m4
MICRONN_MCU_NAME = Cortex-M4
MPY_CROSS_FLAGS += -march=armv7emsp
# The filesystem: the machine's 16 MB PSRAM, which QEMU backs with the flash file.
CFLAGS += -DMICRONN_FS_BASE=0x21000000 -DMICRONN_FS_SIZE=0x01000000
include $(BOARD_DIR)/../qemu-common/mps2.mk
