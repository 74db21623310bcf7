# micronn on ESP32_GENERIC_S3: MicroPython's board with ROMFS and device/ frozen.
set(MICRONN_BASE_BOARD ESP32_GENERIC_S3)
set(MICRONN_PARTITIONS ../common/partitions-8MiB-micronn.csv)
include(${CMAKE_CURRENT_LIST_DIR}/../common/micronn.cmake)
