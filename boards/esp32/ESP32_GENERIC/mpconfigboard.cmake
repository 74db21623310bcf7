# micronn on ESP32_GENERIC: MicroPython's board with ROMFS and device/ frozen.
set(MICRONN_BASE_BOARD ESP32_GENERIC)
set(MICRONN_PARTITIONS ../common/partitions-4MiB-micronn.csv)
include(${CMAKE_CURRENT_LIST_DIR}/../common/micronn.cmake)
