// micronn unix firmware: MicroPython's standard unix variant plus the
// micronn module (added through USER_C_MODULES) and device/ frozen in.
#define MICROPY_CONFIG_ROM_LEVEL (MICROPY_CONFIG_ROM_LEVEL_EXTRA_FEATURES)

#include "variants/mpconfigvariant_common.h"

// SIGINT schedules KeyboardInterrupt instead of raising it from the signal
// handler (which can land in the middle of an allocation or a frame being
// written): a running model picks it up at its next poll, Python code at the
// VM's next check.
#undef MICROPY_ASYNC_KBD_INTR
#define MICROPY_ASYNC_KBD_INTR (0)

// m.profile(x) counts ticks_us here: the port's ticks_cpu() is always 0.
#define MICRONN_TICKS() mp_hal_ticks_us()
