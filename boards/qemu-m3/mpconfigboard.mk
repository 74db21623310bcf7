# qemu-m3: QEMU mps2-an385, Cortex-M3 (no DSP extension: the portable C kernels).
QEMU_MACHINE = mps2-an385
MICRONN_CPU = cortex-m3
MICRONN_MCU_NAME = Cortex-M3
MPY_CROSS_FLAGS += -march=armv7m
include $(BOARD_DIR)/../qemu-common/mps2.mk
