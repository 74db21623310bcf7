# micronn on ESP32_GENERIC_S3: what MicroPython freezes for its esp32 boards, plus device/.
include("$(PORT_DIR)/boards/manifest.py")
include("../../../device/manifest.py")
