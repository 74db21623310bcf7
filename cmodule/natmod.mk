# micronn as a native module, micronn.mpy, for one architecture: the same
# sources as the user C module (the binding, loader, runtime and kernels) linked
# by MicroPython's tools/mpy_ld.py through py/dynruntime.mk.
# `micronn natmod build --arch ARCH` (host/micronn/natmod.py) writes a Makefile
# into build/natmod/ARCH/ that sets ARCH, MPY_DIR and MICRONN_DIR and includes
# this file; the result is build/natmod/ARCH/micronn.mpy.
MOD = micronn
KERNELS := $(patsubst $(MICRONN_DIR)/%,%,$(wildcard $(MICRONN_DIR)/kernels/*.c))
SRC = modmicronn.c loader.c runtime.c $(KERNELS) natmod_poll.py
vpath %.c $(MICRONN_DIR)
vpath %.py $(MICRONN_DIR)

# -Wextra for micronn's code; MicroPython's headers are taken as system headers.
CFLAGS_EXTRA += -I$(MICRONN_DIR) -I$(MICRONN_DIR)/kernels -Wextra -isystem $(MPY_DIR)
# Floats go through the firmware's float objects on every architecture (the
# armv6m, armv7m and rv32imc default is none): soft float where there is no FPU.
MICROPY_FLOAT_IMPL = float
# libgcc (soft float, division) and the C library's maths (rv32imc: picolibc's
# libc.a, string functions too); the binding supplies what is not linked. The
# x64 build links nothing (glibc's libm.a is a linker script mpy_ld cannot read).
ifeq ($(ARCH),x64)
CFLAGS_EXTRA += -DMICRONN_OWN_STRING=1 -DMICRONN_OWN_ROUNDF=1
else ifeq ($(ARCH),armv6m)
LINK_RUNTIME = 1
CFLAGS_EXTRA += -DMICRONN_OWN_STRING=1
# libgcc's soft-float division for Cortex-M0 has a jump table mpy_ld cannot link:
# calls to it go to mnn_fdiv.h's mnn_fdiv instead (the rule at the end).
CFLAGS_EXTRA += -DMICRONN_OWN_FDIV=1
else ifeq ($(ARCH),rv32imc)
LINK_RUNTIME = 1
else
LINK_RUNTIME = 1
CFLAGS_EXTRA += -DMICRONN_OWN_STRING=1
endif

include $(MPY_DIR)/py/dynruntime.mk

# As in the firmware (cmodule/micropython.mk): the kernels are built for speed.
$(BUILD)/kernels/%.o: CFLAGS += -O2

# dynruntime.mk's rules know no headers: rebuild on a header's or this file's change.
CFLAGS += -MMD
$(SRC_O): $(MICRONN_DIR)/natmod.mk
-include $(SRC_O:.o=.d)

ifeq ($(ARCH),armv6m)
$(BUILD)/%.o: %.c $(CONFIG_H) Makefile
	$(ECHO) "CC $<"
	$(Q)$(CROSS)gcc $(CFLAGS) -o $@ -c $<
	$(Q)$(CROSS)objcopy --redefine-sym __aeabi_fdiv=mnn_fdiv $@
endif
