# Shared by micronn's stm32 boards. A board folder here is a thin layer over
# MicroPython's own board of the same name (MICRONN_BASE_BOARD, in the same
# MicroPython checkout): its settings, pins and HAL configuration are used as
# they are; micronn adds the module (USER_C_MODULES, given by `micronn firmware
# build`), freezes device/ and moves the flash layout to make room for ROMFS.
include $(MICRONN_BASE_BOARD)/mpconfigboard.mk

# The pins: the port's recipe reads BOARD_PINS, so point it at the original
# board's pins.csv. Its pattern rule for genhdr/pins.h (and pins_BOARD.c, the
# af headers) also wants $(BOARD_DIR)/pins.csv as a prerequisite; this folder
# has none, so the rule below declares it made from the original, with nothing
# to do. As a secondary file that need not exist, it only makes the pin files
# be regenerated when the original pins.csv is newer than them.
override BOARD_PINS = $(MICRONN_BASE_BOARD)/pins.csv
$(BOARD_DIR)/pins.csv: $(MICRONN_BASE_BOARD)/pins.csv ;
.SECONDARY: $(BOARD_DIR)/pins.csv

# The board's memory map with a ROMFS partition (micronn.ld), then the port's
# usual output sections.
LD_FILES = $(BOARD_DIR)/micronn.ld $(MICRONN_SECTIONS_LD)

FROZEN_MANIFEST = $(BOARD_DIR)/manifest.py
