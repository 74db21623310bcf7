# micronn on NUCLEO_H743ZI: what MicroPython freezes for this board (the
# networking bundle), plus device/.
include("$(PORT_DIR)/boards/NUCLEO_H743ZI/manifest.py")
include("../../../device/manifest.py")
