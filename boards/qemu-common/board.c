// micronn QEMU boards: a ticks clock, the ROMFS segment, select.poll on stdin,
// Ctrl-C while code runs, a reset in place of semihosting's exit, and the
// board's set-up (/rom and the filesystem) at every reset.
#include "py/mphal.h"
#include "py/mperrno.h"
#include "py/runtime.h"
#include "py/stream.h"
#include "extmod/vfs.h"
#include "uart.h"

// Ticks. Under `qemu -icount shift=0` every instruction advances the virtual
// clock by 1 ns. The counters below accumulate timer deltas in 32-bit
// arithmetic (no 64-bit division on a Cortex-M3).
#if defined(__arm__)
// SysTick: 24 bits counting down at the core clock.
#define SYST_CSR (*(volatile uint32_t *)0xe000e010)
#define SYST_RVR (*(volatile uint32_t *)0xe000e014)
#define SYST_CVR (*(volatile uint32_t *)0xe000e018)
#define TIMER_HZ MICRONN_CLOCK_HZ

static uint32_t timer_last;

static uint32_t timer_delta(void) {
    if (!(SYST_CSR & 1)) {
        SYST_RVR = 0xffffff;
        SYST_CVR = 0;
        SYST_CSR = 5;       // enable, processor clock, no interrupt
        timer_last = SYST_CVR;
    }
    uint32_t now = SYST_CVR;
    uint32_t d = (timer_last - now) & 0xffffff;
    timer_last = now;
    return d;
}
#elif defined(__riscv)
// The machine timer (mtime), 10 MHz on QEMU's virt machine.
#define TIMER_HZ 10000000

static uint32_t timer_last;

static uint32_t timer_delta(void) {
    uint32_t now;
    __asm__ volatile ("rdtime %0" : "=r" (now));
    uint32_t d = now - timer_last;
    timer_last = now;
    return d;
}
#endif

static uint32_t ticks_raw, us_total, us_rem, ms_total, ms_rem;

static void ticks_update(void) {
    uint32_t d = timer_delta();
    ticks_raw += d;
    us_rem += d;
    us_total += us_rem / (TIMER_HZ / 1000000);
    us_rem %= TIMER_HZ / 1000000;
    ms_rem += d;
    ms_total += ms_rem / (TIMER_HZ / 1000);
    ms_rem %= TIMER_HZ / 1000;
}

mp_uint_t mp_hal_ticks_cpu(void) {
    ticks_update();
    return ticks_raw;
}

mp_uint_t mp_hal_ticks_us(void) {
    ticks_update();
    return us_total;
}

mp_uint_t mp_hal_ticks_ms(void) {
    ticks_update();
    return ms_total;
}

void mp_hal_delay_us(mp_uint_t us) {
    mp_uint_t t0 = mp_hal_ticks_us();
    while (mp_hal_ticks_us() - t0 < us) {
    }
}

// time.sleep() and sleep_ms(): Ctrl-C ends them (KeyboardInterrupt).
void mp_hal_delay_ms(mp_uint_t ms) {
    mp_uint_t t0 = mp_hal_ticks_us();
    while (mp_hal_ticks_us() - t0 < ms * 1000) {
        mp_event_handle_nowait();
    }
}

uint64_t mp_hal_time_ns(void) {
    return 0;
}

// ROMFS: one segment at a fixed address of the emulated memory.
mp_obj_t mp_vfs_rom_ioctl(size_t n_args, const mp_obj_t *args) {
    switch (mp_obj_get_int(args[0])) {
        case MP_VFS_ROM_IOCTL_GET_NUMBER_OF_SEGMENTS:
            return MP_OBJ_NEW_SMALL_INT(MICRONN_ROMFS_SIZE ? 1 : 0);
        case MP_VFS_ROM_IOCTL_GET_SEGMENT:
            if (MICRONN_ROMFS_SIZE && n_args > 1 && mp_obj_get_int(args[1]) == 0) {
                return mp_obj_new_memoryview('B', MICRONN_ROMFS_SIZE, (void *)MICRONN_ROMFS_BASE);
            }
            return MP_OBJ_NEW_SMALL_INT(-MP_EINVAL);
        default:
            return MP_OBJ_NEW_SMALL_INT(-MP_EINVAL);
    }
}

// select.poll on sys.stdin, as on real ports: the inference server times out
// inside a frame whose bytes stop coming. The qemu port's mp_hal_stdio_poll
// never reports input, and its UART cannot be read without taking the byte, so
// the linker redirects both stdio hooks here (qemu.mk: --wrap): bytes taken
// from the UART wait in a ring until they are read. The ring is also where
// Ctrl-C is found while a program runs (MICROPY_INTERNAL_EVENT_HOOK, and every
// 64 bytecodes): as a real port's UART interrupt does, the interrupt character
// schedules KeyboardInterrupt and is not stored, whatever waits before it (the
// host's resynchronisation sends two kilobytes before its Ctrl-C).
#define RX_RING_SIZE (4096)
static uint8_t rx_ring[RX_RING_SIZE];
static uint32_t rx_head, rx_tail;       // free-running counts of bytes stored and read

static void rx_take(void) {
    int c;
    while (rx_head - rx_tail < RX_RING_SIZE && (c = uart_rx_chr()) != UART_RX_NO_CHAR) {
        if (c == mp_interrupt_char) {
            mp_sched_keyboard_interrupt();
            continue;
        }
        rx_ring[rx_head++ % RX_RING_SIZE] = (uint8_t)c;
    }
}

int __real_mp_hal_stdin_rx_chr(void);

uintptr_t __wrap_mp_hal_stdio_poll(uintptr_t poll_flags) {
    uintptr_t ready = poll_flags & MP_STREAM_POLL_WR;
    if (poll_flags & MP_STREAM_POLL_RD) {
        rx_take();
        if (rx_head != rx_tail) {
            ready |= MP_STREAM_POLL_RD;
        }
    }
    return ready;
}

void micronn_board_event_hook(void) {
    rx_take();
}

// No semihosting (qemu.mk): the console is the UART alone, and exit() (from
// machine.reset() or a fatal error) resets the board as a real one would;
// QEMU keeps its UART pty across the reset.
void __wrap_mp_semihosting_init(void) {
}

NORETURN void __wrap_exit(int status) {
    (void)status;
    #if defined(__arm__)
    // AIRCR: VECTKEY | SYSRESETREQ
    *(volatile uint32_t *)0xe000ed0c = 0x05fa0004;
    #elif defined(__riscv)
    // The virt machine's test device: reset.
    *(volatile uint32_t *)0x100000 = 0x7777;
    #endif
    for (;;) {
    }
}

int __wrap_mp_hal_stdin_rx_chr(void) {
    if (rx_head != rx_tail) {
        return rx_ring[rx_tail++ % RX_RING_SIZE];
    }
    return __real_mp_hal_stdin_rx_chr();
}

// The board's set-up at every start and soft reset, as boot.py does on real
// ports (the qemu port runs none): mnboot.boot() mounts the ROMFS at /rom and
// the filesystem in emulated memory at /, so that a plain `mpremote` finds
// both after its soft reset. The linker sends main()'s mp_init() here
// (qemu.mk: --wrap).
void __real_mp_init(void);

void __wrap_mp_init(void) {
    __real_mp_init();
    nlr_buf_t nlr;
    if (nlr_push(&nlr) == 0) {
        mp_obj_t mod = mp_import_name(qstr_from_str("mnboot"), mp_const_none, MP_OBJ_NEW_SMALL_INT(0));
        mp_obj_t args[2] = {
            mp_obj_new_int_from_uint(MICRONN_FS_BASE), mp_obj_new_int_from_uint(MICRONN_FS_SIZE)
        };
        mp_call_function_n_kw(mp_load_attr(mod, qstr_from_str("boot")), 2, 0, args);
        nlr_pop();
    } else {
        mp_obj_print_exception(&mp_plat_print, MP_OBJ_FROM_PTR(nlr.ret_val));
    }
}
