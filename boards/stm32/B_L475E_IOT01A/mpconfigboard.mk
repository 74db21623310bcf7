# micronn on ST's B-L475E-IOT01A Discovery kit: STM32L475VG, Cortex-M4F at
# 80 MHz, 1 MB flash (512 KB firmware, 384 KB ROMFS, 128 KB /flash), 128 KB SRAM.
MICRONN_BASE_BOARD = $(TOP)/ports/stm32/boards/B_L475E_IOT01A
MICRONN_SECTIONS_LD = boards/common_basic.ld
include $(BOARD_DIR)/../common/micronn.mk
