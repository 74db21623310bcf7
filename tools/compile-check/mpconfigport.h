// micronn compile check: a small MicroPython configuration, enough to compile
// the binding (cmodule/modmicronn.c) with a bare-metal cross compiler, without
// a port's HAL. The features match what the binding uses on the real ports:
// the GC heap, array, float (single precision), streams.
#include <stdint.h>

#define MICROPY_CONFIG_ROM_LEVEL        (MICROPY_CONFIG_ROM_LEVEL_CORE_FEATURES)
#define MICROPY_ENABLE_GC               (1)
#define MICROPY_ENABLE_COMPILER         (1)
#define MICROPY_FLOAT_IMPL              (MICROPY_FLOAT_IMPL_FLOAT)
#define MICROPY_LONGINT_IMPL            (MICROPY_LONGINT_IMPL_MPZ)
#define MICROPY_PY_ARRAY                (1)
#define MICROPY_PY_IO                   (1)
#define MICROPY_ROM_TEXT_COMPRESSION    (0)
#define MICROPY_ALLOC_PATH_MAX          (128)

typedef intptr_t mp_int_t;
typedef uintptr_t mp_uint_t;
typedef long mp_off_t;

#define MICROPY_HW_BOARD_NAME "micronn-compile-check"
#define MICROPY_HW_MCU_NAME "any"
#define MP_STATE_PORT MP_STATE_VM
