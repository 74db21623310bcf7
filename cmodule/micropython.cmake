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

# `micronn firmware build --ops-from`: the generated mnn_ops_config.h (cmodule/mnn_ops.h).
if(DEFINED ENV{MICRONN_OPS_DIR})
    target_include_directories(usermod_micronn INTERFACE $ENV{MICRONN_OPS_DIR})
    target_compile_definitions(usermod_micronn INTERFACE MNN_OPS_CONFIG)
endif()

target_link_libraries(usermod INTERFACE usermod_micronn)
