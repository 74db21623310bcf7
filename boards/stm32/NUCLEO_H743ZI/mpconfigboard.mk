# micronn on ST's NUCLEO-H743ZI: STM32H743ZI, Cortex-M7 at 400 MHz, 2 MB flash
# (1 MB firmware in bank 1; bank 2: 512 KB ROMFS, 512 KB /flash), 1 MB SRAM of
# which the 512 KB AXI SRAM holds data, heap and stack.
MICRONN_BASE_BOARD = $(TOP)/ports/stm32/boards/NUCLEO_H743ZI
MICRONN_SECTIONS_LD = boards/common_basic.ld
include $(BOARD_DIR)/../common/micronn.mk
