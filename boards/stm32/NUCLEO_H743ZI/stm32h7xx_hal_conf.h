// The HAL configuration of MicroPython's NUCLEO_H743ZI board.
#include "boards/NUCLEO_H743ZI/stm32h7xx_hal_conf.h"
