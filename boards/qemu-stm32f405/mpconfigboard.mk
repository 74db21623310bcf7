# qemu-stm32f405: QEMU netduinoplus2, an STM32F405 (Cortex-M4F) with the real
# chip's memory: 1 MB flash (firmware, then a ROMFS partition), 128 KB SRAM.
QEMU_ARCH = arm
QEMU_MACHINE = netduinoplus2
CFLAGS += -mthumb -mcpu=cortex-m4 -mfloat-abi=soft
CFLAGS += -DQEMU_SOC_STM32 -DMICROPY_HW_MCU_NAME='"STM32F405"' -DMICRONN_CLOCK_HZ=168000000
CFLAGS += -DMICRONN_ROMFS_BASE=0x08080000 -DMICRONN_ROMFS_SIZE=0x00080000
# The filesystem: the 64 KB of SRAM QEMU maps beyond the chip's 128 KB
# (QEMU 7.2 models 192 KB at 0x20000000), loaded from the flash file at start.
CFLAGS += -DMICRONN_FS_BASE=0x20020000 -DMICRONN_FS_SIZE=0x00010000
LDSCRIPT = $(BOARD_DIR)/../qemu-common/stm32f405.ld
SRC_BOARD_O = shared/runtime/gchelper_native.o shared/runtime/gchelper_thumb2.o
MPY_CROSS_FLAGS += -march=armv7emsp
MICROPY_HEAP_SIZE = 102400
include $(BOARD_DIR)/../qemu-common/qemu.mk
