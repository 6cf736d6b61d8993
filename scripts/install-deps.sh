#!/bin/sh
# Installs the Debian packages lobe needs, and nothing that is already there.
# Idempotent: a second run installs nothing and prints nothing but its summary.
# Usage: scripts/install-deps.sh [--bench]   (--bench adds the PyTorch peer)
set -eu

packages="build-essential cmake pkg-config re2c lemon llvm-19-dev clang-19 \
libopenblas-dev check libclang-rt-19-dev graphviz \
libedf-dev libmatio-dev libhdf5-dev libnifti2-dev libzip-dev"
[ "${1:-}" = "--bench" ] && packages="$packages python3 python3-torch"

missing=""
for p in $packages; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    missing="$missing $p"
done

if [ -z "$missing" ]; then
  echo "install-deps: all packages present"
  exit 0
fi

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "install-deps: installing$missing"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing
