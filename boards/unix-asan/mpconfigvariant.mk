# micronn unix firmware with AddressSanitizer and UndefinedBehaviorSanitizer
# (VARIANT_DIR of MicroPython's unix port; built into build/unix-asan/).
# The configuration of boards/unix, compiled with the sanitizers: any undefined
# behaviour aborts (-fno-sanitize-recover), and memory errors outside the GC
# heap (the C stack, static tables, malloc blocks such as mnasan.buffer()'s)
# abort with a report. The GC heap itself is one malloc block to ASan, so a
# test that wants exact bounds for a blob or an arena puts it in mnasan.buffer()
# (mnasan.c, this folder).
# The settings of boards/unix/mpconfigvariant.mk, copied rather than included: a
# change to this folder's files makes `micronn firmware build` start afresh, one
# to another folder's would not.
FROZEN_MANIFEST ?= $(VARIANT_DIR)/../unix/manifest.py
MICROPY_PY_BTREE = 0
MICROPY_PY_SSL = 0
MICROPY_SSL_MBEDTLS = 0
MICROPY_PY_FFI = 0
# nonnull-attribute is left out: MicroPython itself passes NULL with length 0 to
# memset/memcpy (bytearray(0), py/objarray.c), which is harmless and would abort.
SANITIZE = -fsanitize=address,undefined -fno-sanitize=nonnull-attribute -fno-sanitize-recover=undefined \
	-fno-omit-frame-pointer
CFLAGS_EXTRA += $(SANITIZE)
LDFLAGS_EXTRA += $(SANITIZE)
# Keep the symbols: the reports name functions and lines.
STRIP =
