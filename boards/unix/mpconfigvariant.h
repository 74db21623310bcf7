// micronn unix firmware: MicroPython's standard unix variant plus the
// micronn module (added through USER_C_MODULES) and device/ frozen in.
#define MICROPY_CONFIG_ROM_LEVEL (MICROPY_CONFIG_ROM_LEVEL_EXTRA_FEATURES)

#include "variants/mpconfigvariant_common.h"
