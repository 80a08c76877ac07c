#!/usr/bin/env bash
# Install what the benchmarks need beyond scripts/setup.sh, idempotently:
# wrk (Debian's package), the HTTP load generator of bench.gateway_lookup.
set -euo pipefail
if command -v wrk >/dev/null; then
  echo "bench-setup: wrk present ($(command -v wrk))"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "error: run as root or install sudo, then: apt-get install -y wrk" >&2; exit 1; }
  SUDO=sudo
fi
echo "bench-setup: installing wrk from Debian's packages"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk
command -v wrk >/dev/null || { echo "error: wrk did not install" >&2; exit 1; }
echo "bench-setup: wrk installed ($(command -v wrk))"
