#!/usr/bin/env bash
# Fetch MicroPython 1.25.0 from Debian's source package into a cache folder,
# check its sha256 and unpack it with Debian's patches (which let the build
# run without the stripped lib/ submodules). Idempotent.
#   tools/fetch-micropython.sh DEST_DIR      (default .cache/micropython-1.25.0)
set -euo pipefail

VERSION=1.25.0+ds-1
ORIG_SHA256=7b25be99a502f070b2de81dafc08da7051d992325d6e67daa9045a918fffdbea
DEBIAN_SHA256=87cd89f7900c86b963885dabe25acf3e5348815993f1500278ad8f6464465af4
DSC_SHA256=8c7c406be88a6f3bc19e694eb0bbc5841112243fdf2b5a296e000d8fdc5f3c34

dest=${1:-.cache/micropython-1.25.0}
if [ -f "$dest/.micronn-ok" ]; then
    exit 0
fi
cache=$(dirname "$dest")/debian-src
mkdir -p "$cache"

sudo_() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if [ ! -f "$cache/micropython_${VERSION}.dsc" ]; then
    # trixie's source package; binary packages keep coming from the system's suites.
    if ! apt-cache showsrc micropython 2>/dev/null | grep -q "^Version: ${VERSION}$"; then
        echo "micronn: adding a deb-src entry for Debian trixie (MicroPython ${VERSION})"
        sudo_ tee /etc/apt/sources.list.d/micronn-trixie-src.sources >/dev/null <<SRC
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
        sudo_ apt-get update -qq
    fi
    (cd "$cache" && apt-get source --download-only -qq "micropython=${VERSION}" 2>&1 | grep -v "^W: Download is performed unsandboxed" || true)
fi

(cd "$cache" && sha256sum -c --quiet - <<SUMS
${DSC_SHA256}  micropython_${VERSION}.dsc
${ORIG_SHA256}  micropython_1.25.0+ds.orig.tar.xz
${DEBIAN_SHA256}  micropython_${VERSION}.debian.tar.xz
SUMS
) || { echo "micronn: sha256 mismatch in $cache; delete it and retry" >&2; exit 1; }

rm -rf "$dest"
dpkg-source --no-check -x "$cache/micropython_${VERSION}.dsc" "$dest" >/dev/null
touch "$dest/.micronn-ok"
echo "micronn: MicroPython ${VERSION} unpacked in $dest"
