# Shared by the MPS2 boards (an385, an386, an500): the board sets QEMU_MACHINE,
# MICRONN_CPU and MICRONN_MCU_NAME, then includes this.
QEMU_ARCH = arm
CFLAGS += -mthumb -mcpu=$(MICRONN_CPU) -mfloat-abi=soft
CFLAGS += -DQEMU_SOC_MPS2 -DMICROPY_HW_MCU_NAME='"$(MICRONN_MCU_NAME)"' -DMICRONN_CLOCK_HZ=25000000
CFLAGS += -DMICRONN_ROMFS_BASE=0x00300000 -DMICRONN_ROMFS_SIZE=0x00100000
LDSCRIPT = $(BOARD_DIR)/../qemu-common/mps2.ld
SRC_BOARD_O = shared/runtime/gchelper_native.o shared/runtime/gchelper_thumb2.o
MICROPY_HEAP_SIZE = 2097152
include $(BOARD_DIR)/../qemu-common/qemu.mk
