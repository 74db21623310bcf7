// The HAL configuration of MicroPython's B_L475E_IOT01A board.
#include "boards/B_L475E_IOT01A/stm32l4xx_hal_conf.h"
