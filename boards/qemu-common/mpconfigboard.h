// micronn QEMU boards: MicroPython's qemu port configuration plus what the
// inference server and deployment need: binary stdin/stdout, a ticks clock,
// ROMFS in the emulated flash and a littlefs filesystem.
#include "mpconfigport.h"

#undef MICROPY_PY_SYS_STDIO_BUFFER
#define MICROPY_PY_SYS_STDIO_BUFFER (1)

#undef MICROPY_PY_TIME
#define MICROPY_PY_TIME (1)
#define MICROPY_PY_TIME_TIME_TIME_NS (0)

// select.poll on sys.stdin (board.c): the inference server's frame timeout.
#undef MICROPY_PY_SELECT
#define MICROPY_PY_SELECT (1)

#undef MICROPY_VFS_ROM_IOCTL
#define MICROPY_VFS_ROM_IOCTL (1)

// Where the host places a ROMFS image (qemu -device loader); 0 size: none.
#ifndef MICRONN_ROMFS_BASE
#define MICRONN_ROMFS_BASE (0)
#define MICRONN_ROMFS_SIZE (0)
#endif

// The board's filesystem: a littlefs in emulated memory that QEMU can back
// with a host file (the board's "flash"), mounted at / at every (soft) reset
// by board.c; 0 size: none.
#ifndef MICRONN_FS_BASE
#define MICRONN_FS_BASE (0)
#define MICRONN_FS_SIZE (0)
#endif

#define MICROPY_HW_ENABLE_UART_REPL (0)

// Ctrl-C reaches a running program: the UART has no receive interrupt here,
// so every event poll (a running micronn model polls between bursts of work)
// looks at it (board.c).
void micronn_board_event_hook(void);
#define MICROPY_INTERNAL_EVENT_HOOK (micronn_board_event_hook())

// Ctrl-C in a Python loop: every 64th backward jump or return of the VM also
// looks at the UART (the hook only schedules KeyboardInterrupt).
#define MICROPY_VM_HOOK_COUNT (64)
#define MICROPY_VM_HOOK_INIT static unsigned int vm_hook_divisor = MICROPY_VM_HOOK_COUNT;
#define MICROPY_VM_HOOK_POLL if (--vm_hook_divisor == 0) { \
        vm_hook_divisor = MICROPY_VM_HOOK_COUNT; \
        micronn_board_event_hook(); \
}
#define MICROPY_VM_HOOK_LOOP MICROPY_VM_HOOK_POLL
#define MICROPY_VM_HOOK_RETURN MICROPY_VM_HOOK_POLL
