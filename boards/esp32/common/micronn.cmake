# Shared by micronn's esp32 boards. A board folder here is a thin layer over
# MicroPython's own board of the same name (MICRONN_BASE_BOARD) in the same
# checkout: its sdkconfig and settings are used as they are; micronn adds the
# module (USER_C_MODULES=.../cmodule/micropython.cmake, given by `micronn
# firmware build`), freezes device/ and installs a partition table with a
# "romfs" partition (MICRONN_PARTITIONS), which the port maps and serves as
# ROMFS segment 0 (MICROPY_VFS_ROM in mpconfigboard.h).
include(${CMAKE_CURRENT_SOURCE_DIR}/boards/${MICRONN_BASE_BOARD}/mpconfigboard.cmake)

# An sdkconfig fragment naming the partition table by its absolute path, added
# after the board's own fragments so that it wins.
set(MICRONN_SDKCONFIG ${CMAKE_BINARY_DIR}/sdkconfig.micronn)
file(WRITE ${MICRONN_SDKCONFIG}
    "CONFIG_PARTITION_TABLE_CUSTOM=y\n"
    "CONFIG_PARTITION_TABLE_CUSTOM_FILENAME=\"${CMAKE_CURRENT_LIST_DIR}/${MICRONN_PARTITIONS}\"\n")
list(APPEND SDKCONFIG_DEFAULTS ${MICRONN_SDKCONFIG})

set(MICROPY_FROZEN_MANIFEST ${MICROPY_BOARD_DIR}/manifest.py)
