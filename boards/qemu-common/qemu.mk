# Shared by micronn's QEMU boards (included from each board's mpconfigboard.mk).
MICRONN_COMMON := $(BOARD_DIR)/../qemu-common
CFLAGS += -DMP_CONFIGFILE='"$(MICRONN_COMMON)/mpconfigboard.h"'
FROZEN_MANIFEST = $(MICRONN_COMMON)/manifest.py
SRC_C += $(MICRONN_COMMON)/board.c
MICROPY_VFS_LFS2 = 1
LDFLAGS += -L$(MICRONN_COMMON)
# board.c's stdin poll stands in for the port's (select.poll on sys.stdin).
LDFLAGS += -Wl,--wrap=mp_hal_stdio_poll -Wl,--wrap=mp_hal_stdin_rx_chr
# No semihosting: QEMU runs these boards without -semihosting, so that board
# code cannot reach the host (SYS_SYSTEM runs a host command). board.c stands in
# for the port's two uses: console set-up (nothing to do) and exit (a reset).
LDFLAGS += -Wl,--wrap=mp_semihosting_init -Wl,--wrap=exit
# mnboot.boot() after every mp_init() (board.c): /rom and the filesystem.
LDFLAGS += -Wl,--wrap=mp_init
