# micronn user C module (make-based ports: unix, qemu, stm32, ...).
# Point USER_C_MODULES at the directory that contains this one.
MICRONN_DIR := $(USERMOD_DIR)

# Only the binding is scanned for qstrs; the core is plain C.
SRC_USERMOD_C += $(MICRONN_DIR)/modmicronn.c
SRC_USERMOD_LIB_C += $(MICRONN_DIR)/loader.c
SRC_USERMOD_LIB_C += $(MICRONN_DIR)/runtime.c
SRC_USERMOD_LIB_C += $(wildcard $(MICRONN_DIR)/kernels/*.c)

CFLAGS_USERMOD += -I$(MICRONN_DIR)

# `micronn firmware build --ops-from`: MICRONN_OPS_DIR (from the environment) holds
# the generated mnn_ops_config.h, the ops of the given models (cmodule/mnn_ops.h).
ifneq ($(MICRONN_OPS_DIR),)
CFLAGS_USERMOD += -DMNN_OPS_CONFIG -I$(MICRONN_OPS_DIR)
endif

# The kernels are the hot path: optimise them for speed even where the port
# builds everything else for size (-Os). The last -O flag wins.
MICRONN_OBJ_DIR := $(BUILD)/$(patsubst $(USER_C_MODULES)/%,%,$(MICRONN_DIR))
$(MICRONN_OBJ_DIR)/kernels/%.o: CFLAGS += -O2
