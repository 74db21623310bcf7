// qemu-m4-stock: the qemu port's start-up leaves the Cortex-M4's FPU off, and this
// firmware is built with the hard-float ABI. main() calls gc_init() before any
// floating-point code runs: the linker sends that call here first (--wrap).
#include <stddef.h>
#include <stdint.h>

void __real_gc_init(void *start, void *end);

void __wrap_gc_init(void *start, void *end) {
    volatile uint32_t *cpacr = (volatile uint32_t *)0xE000ED88u;
    *cpacr |= 0xFu << 20;       // CP10 and CP11: full access
    __asm volatile ("dsb\n isb" ::: "memory");
    __real_gc_init(start, end);
}
