# qemu-m4: QEMU mps2-an386, Cortex-M4 with the DSP extension (SIMD kernels).
QEMU_ARCH = arm
QEMU_MACHINE = mps2-an386
CFLAGS += -mthumb -mcpu=cortex-m4 -mfloat-abi=soft
CFLAGS += -DQEMU_SOC_MPS2 -DMICROPY_HW_MCU_NAME='"Cortex-M4"' -DMICRONN_CLOCK_HZ=25000000
CFLAGS += -DMICRONN_ROMFS_BASE=0x00300000 -DMICRONN_ROMFS_SIZE=0x00100000
LDSCRIPT = $(BOARD_DIR)/../qemu-common/mps2.ld
SRC_BOARD_O = shared/runtime/gchelper_native.o shared/runtime/gchelper_thumb2.o
MPY_CROSS_FLAGS += -march=armv7emsp
MICROPY_HEAP_SIZE = 2097152
include $(BOARD_DIR)/../qemu-common/qemu.mk
