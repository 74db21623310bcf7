# MicroPython's standard unix variant without micronn (VARIANT_DIR of the unix
# port, built into build/unix-stock/). What needs the parts of lib/ that
# Debian's source package strips is left out, as in boards/unix.
FROZEN_MANIFEST ?= $(VARIANT_DIR)/manifest.py
MICROPY_PY_BTREE = 0
MICROPY_PY_SSL = 0
MICROPY_SSL_MBEDTLS = 0
MICROPY_PY_FFI = 0
