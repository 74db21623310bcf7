# micronn on NUCLEO_F446RE: what MicroPython freezes for its stm32 boards, plus device/.
include("$(PORT_DIR)/boards/manifest.py")
include("../../../device/manifest.py")
