#!/usr/bin/env bash
# Install the Debian packages micronn needs; does nothing when they are there.
set -euo pipefail

packages=(
    build-essential pkg-config libffi-dev dpkg-dev xz-utils
    gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm
    gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf qemu-system-misc
    gcc-xtensa-lx106 binutils-xtensa-lx106 picolibc-xtensa-lx106-elf
    clang libclang-rt-14-dev llvm
    dataset-fashion-mnist
)
python3 -c "import venv, ensurepip" 2>/dev/null || packages+=(python3-venv)

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo_() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
echo "micronn: installing Debian packages: ${missing[*]}"
sudo_ apt-get update -qq
sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
