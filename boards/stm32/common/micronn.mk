# Shared by micronn's stm32 boards. A board folder here is a thin layer over
# MicroPython's own board of the same name (MICRONN_BASE_BOARD, in the same
# MicroPython checkout): its settings, pins and HAL configuration are used as
# they are; micronn adds the module (USER_C_MODULES, given by `micronn firmware
# build`), freezes device/ and moves the flash layout to make room for ROMFS.
include $(MICRONN_BASE_BOARD)/mpconfigboard.mk

# The port reads pins.csv from BOARD_DIR; take the original board's.
override BOARD_PINS = $(MICRONN_BASE_BOARD)/pins.csv

# The board's memory map with a ROMFS partition (micronn.ld), then the port's
# usual output sections.
LD_FILES = $(BOARD_DIR)/micronn.ld $(MICRONN_SECTIONS_LD)

FROZEN_MANIFEST = $(BOARD_DIR)/manifest.py
