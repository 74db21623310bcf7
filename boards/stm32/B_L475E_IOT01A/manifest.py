# micronn on B_L475E_IOT01A: what MicroPython freezes for its stm32 boards, plus device/.
include("$(PORT_DIR)/boards/manifest.py")
include("../../../device/manifest.py")
