# What MicroPython's standard unix variant freezes that Debian's stripped source
# has (asyncio; mip, ssl and unix-ffi come from micropython-lib, which it lacks).
# Nothing of micronn: the native module and device/ are loaded from files.
include("$(MPY_DIR)/extmod/asyncio")  # noqa: F821
