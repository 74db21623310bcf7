# qemu-m4-stock: qemu-m4 (QEMU mps2-an386, Cortex-M4 + DSP) without the micronn C
# module (board.json: "user_c_module": false), built for the FPU with the hard-float
# ABI as real Cortex-M4F firmware is, so that it loads micronn-armv7emsp.mpy from its
# ROMFS or filesystem (the soft-float qemu-m4 firmware takes armv6m..armv7em only).
# qemu-common/mps2.mk's settings, but hard float (a soft and a hard -mfloat-abi
# together would link libgcc's soft-float multilib).
QEMU_MACHINE = mps2-an386
MICRONN_MCU_NAME = Cortex-M4F
MPY_CROSS_FLAGS += -march=armv7emsp
CFLAGS += -DMICRONN_FS_BASE=0x21000000 -DMICRONN_FS_SIZE=0x01000000
QEMU_ARCH = arm
CFLAGS += -mthumb -mcpu=cortex-m4 -mfpu=fpv4-sp-d16 -mfloat-abi=hard
CFLAGS += -DQEMU_SOC_MPS2 -DMICROPY_HW_MCU_NAME='"$(MICRONN_MCU_NAME)"' -DMICRONN_CLOCK_HZ=25000000
CFLAGS += -DMICRONN_ROMFS_BASE=0x00300000 -DMICRONN_ROMFS_SIZE=0x00100000
LDSCRIPT = $(BOARD_DIR)/../qemu-common/mps2.ld
SRC_BOARD_O = shared/runtime/gchelper_native.o shared/runtime/gchelper_thumb2.o
MICROPY_HEAP_SIZE = 2097152
# The FPU is off at reset: fpu.c turns it on before gc_init(), before any float.
SRC_C += $(BOARD_DIR)/fpu.c
LDFLAGS += -Wl,--wrap=gc_init
include $(BOARD_DIR)/../qemu-common/qemu.mk
