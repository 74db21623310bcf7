// micronn on ESP32_GENERIC_C3: MicroPython's configuration of the board, plus ROMFS
// (the "romfs" partition, memory-mapped: blobs there are used in place).
#include "boards/ESP32_GENERIC_C3/mpconfigboard.h"

#define MICROPY_VFS_ROM (1)
