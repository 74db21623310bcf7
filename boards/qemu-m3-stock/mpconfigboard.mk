# qemu-m3-stock: qemu-m3 (QEMU mps2-an385, Cortex-M3) without the micronn C module
# (board.json: "user_c_module": false). It loads the native module micronn-armv7m.mpy
# from its ROMFS or filesystem; device/ stays frozen (the inference server).
QEMU_MACHINE = mps2-an385
MICRONN_CPU = cortex-m3
MICRONN_MCU_NAME = Cortex-M3
MPY_CROSS_FLAGS += -march=armv7m
CFLAGS += -DMICRONN_FS_BASE=0x21000000 -DMICRONN_FS_SIZE=0x01000000
include $(BOARD_DIR)/../qemu-common/mps2.mk
