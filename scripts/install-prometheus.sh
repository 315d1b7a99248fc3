#!/usr/bin/env bash
# Installs Debian's prometheus package (2.42 on bookworm) for the integration tests, if missing.
# Idempotent: does nothing when a prometheus binary is already on PATH or at $KVPA_PROMETHEUS_BIN.
# Only the binary is used: the tests start it by hand on 127.0.0.1, never through systemd.
set -euo pipefail
if [[ -n "${KVPA_PROMETHEUS_BIN:-}" && -x "${KVPA_PROMETHEUS_BIN}" ]] || command -v prometheus >/dev/null 2>&1; then
  exit 0
fi
SUDO=""
if [[ "$(id -u)" != "0" ]]; then
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# --no-install-recommends: the node exporter and the web assets are not needed.
$SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
# The package enables a systemd unit; without systemd it simply does not start, which is what we want.
command -v prometheus >/dev/null
