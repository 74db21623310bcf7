// micronn on NUCLEO_F446RE: MicroPython's configuration of the board, plus a ROMFS
// partition in the internal flash (region FLASH_ROMFS of micronn.ld), which
// vfs.rom_ioctl() serves and `mpremote romfs deploy` can write.
#include "boards/NUCLEO_F446RE/mpconfigboard.h"

#define MICROPY_HW_ROMFS_ENABLE_INTERNAL_FLASH (1)
#define MICROPY_HW_ROMFS_ENABLE_PART0 (1)
