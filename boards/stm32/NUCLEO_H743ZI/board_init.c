// The early start-up code of MicroPython's NUCLEO_H743ZI board (the port
// compiles every .c file of BOARD_DIR).
#include "boards/NUCLEO_H743ZI/board_init.c"
