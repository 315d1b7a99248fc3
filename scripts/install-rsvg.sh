#!/usr/bin/env bash
# Installs Debian's librsvg2-bin (rsvg-convert) for the SVG rendering test, if missing.
# Idempotent: does nothing when rsvg-convert is already on PATH. The test renders every kind of SVG
# kvpa writes (simulate, backtest, up) to PNG with it, as a real viewer would.
set -euo pipefail
if command -v rsvg-convert >/dev/null 2>&1; then
  exit 0
fi
SUDO=""
if [[ "$(id -u)" != "0" ]]; then
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends librsvg2-bin >/dev/null
command -v rsvg-convert >/dev/null
