# micronn user C module (CMake-based ports: esp32, rp2).
# Pass USER_C_MODULES=/path/to/micronn/cmodule/micropython.cmake.
add_library(usermod_micronn INTERFACE)

file(GLOB MICRONN_KERNELS ${CMAKE_CURRENT_LIST_DIR}/kernels/*.c)

target_sources(usermod_micronn INTERFACE
    ${CMAKE_CURRENT_LIST_DIR}/modmicronn.c
    ${CMAKE_CURRENT_LIST_DIR}/loader.c
    ${CMAKE_CURRENT_LIST_DIR}/runtime.c
    ${MICRONN_KERNELS}
)

target_include_directories(usermod_micronn INTERFACE
    ${CMAKE_CURRENT_LIST_DIR}
)

target_link_libraries(usermod INTERFACE usermod_micronn)
