// micronn on ESP32_GENERIC: MicroPython's configuration of the board, plus ROMFS
// (the "romfs" partition, memory-mapped: blobs there are used in place).
#include "boards/ESP32_GENERIC/mpconfigboard.h"

#define MICROPY_VFS_ROM (1)
