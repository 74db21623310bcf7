# qemu-m7: QEMU mps2-an500, Cortex-M7 with the DSP extension.
QEMU_MACHINE = mps2-an500
MICRONN_CPU = cortex-m7
MICRONN_MCU_NAME = Cortex-M7
MPY_CROSS_FLAGS += -march=armv7emsp
include $(BOARD_DIR)/../qemu-common/mps2.mk
