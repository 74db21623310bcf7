# qemu-rv32-stock: qemu-rv32 (QEMU virt, RV32IMC) without the micronn C module
# (board.json: "user_c_module": false): it loads micronn-rv32imc.mpy from its ROMFS.
# The machine, memory map and flags are qemu-rv32's own.
include $(BOARD_DIR)/../qemu-rv32/mpconfigboard.mk
