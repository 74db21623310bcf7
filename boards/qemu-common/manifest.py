# Frozen into every QEMU board: micronn's device-side Python.
include("../../device/manifest.py")
