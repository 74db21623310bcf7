#!/usr/bin/env bash
# The compile check: micronn's C module (loader, runtime, kernels and the
# MicroPython binding) compiles warning-free with -Wall -Wextra -Werror for each
# real board family with its exact flags: Cortex-M4F (STM32F4/L4), Cortex-M7
# (STM32H7), rv32imc (ESP32-C3) and Xtensa lx106 (a portability check for the
# ESP32/ESP32-S3 compilers). Options: --family F, --extra FILE.c, -v.
#   tools/compile-check.sh                       (as in make test)
#   tools/compile-check.sh --family cortex-m7 -v
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
py=$root/.venv/bin/python
[ -x "$py" ] || py=python3
PYTHONPATH=$root/host${PYTHONPATH:+:$PYTHONPATH} exec "$py" -m micronn.cross "$@"
