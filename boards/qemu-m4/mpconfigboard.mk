# qemu-m4: QEMU mps2-an386, Cortex-M4 with the DSP extension (SIMD kernels).
QEMU_MACHINE = mps2-an386
MICRONN_CPU = cortex-m4
MICRONN_MCU_NAME = Cortex-M4
MPY_CROSS_FLAGS += -march=armv7emsp
include $(BOARD_DIR)/../qemu-common/mps2.mk
