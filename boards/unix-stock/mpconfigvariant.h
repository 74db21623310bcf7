// MicroPython's standard unix variant as it is, without micronn: the firmware
// the native module (build/natmod/micronn-x64.mpy) is tested on. Nothing is
// frozen and no user C module is linked (board.json: "user_c_module": false).
#define MICROPY_CONFIG_ROM_LEVEL (MICROPY_CONFIG_ROM_LEVEL_EXTRA_FEATURES)

#include "variants/mpconfigvariant_common.h"
