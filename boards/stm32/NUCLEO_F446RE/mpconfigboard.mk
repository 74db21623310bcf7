# micronn on ST's NUCLEO-F446RE: STM32F446RE, Cortex-M4F at 168 MHz (as
# MicroPython clocks it), 512 KB flash (384 KB firmware, 64 KB ROMFS in sector 4,
# 48 KB /flash in sectors 1-3), 128 KB SRAM.
MICRONN_BASE_BOARD = $(TOP)/ports/stm32/boards/NUCLEO_F446RE
MICRONN_SECTIONS_LD = boards/common_ifs.ld
include $(BOARD_DIR)/../common/micronn.mk
