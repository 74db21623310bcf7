// The HAL configuration of MicroPython's NUCLEO_F446RE board.
#include "boards/NUCLEO_F446RE/stm32f4xx_hal_conf.h"
