# Freeze micronn's device-side Python into the unix firmware.
include("../../device/manifest.py")
