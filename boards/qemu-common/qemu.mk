# Shared by micronn's QEMU boards (included from each board's mpconfigboard.mk).
MICRONN_COMMON := $(BOARD_DIR)/../qemu-common
CFLAGS += -DMP_CONFIGFILE='"$(MICRONN_COMMON)/mpconfigboard.h"'
FROZEN_MANIFEST = $(MICRONN_COMMON)/manifest.py
SRC_C += $(MICRONN_COMMON)/board.c
MICROPY_VFS_LFS2 = 1
LDFLAGS += -L$(MICRONN_COMMON)
# board.c's stdin poll stands in for the port's (select.poll on sys.stdin).
LDFLAGS += -Wl,--wrap=mp_hal_stdio_poll -Wl,--wrap=mp_hal_stdin_rx_chr
