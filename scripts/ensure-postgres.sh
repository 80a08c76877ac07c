#!/usr/bin/env bash
# Make sure PostgreSQL server binaries (initdb, pg_ctl, postgres) are installed.
# Tests start their own throwaway server (tests/support/postgres.py), so this
# script never starts the system cluster: while installing, a temporary
# policy-rc.d forbids service starts (unless one is already present).
set -euo pipefail

# In CI (CI=true) always go through apt-get, so a clean machine's run proves the install step.
if [[ -z ${CI:-} ]] && compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
    echo "ensure-postgres: already installed: $(ls -d /usr/lib/postgresql/*/bin | tr '\n' ' ')"
    exit 0
fi

if [[ $(id -u) -eq 0 ]]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
else
    echo "ensure-postgres: PostgreSQL is missing and I am not root and sudo is unavailable;" >&2
    echo "ensure-postgres: install it yourself: apt-get install postgresql" >&2
    exit 1
fi

POLICY=/usr/sbin/policy-rc.d
if [[ ! -e $POLICY ]]; then
    echo "ensure-postgres: installing temporary $POLICY so no service gets started"
    printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$POLICY" >/dev/null
    "${SUDO[@]}" chmod 755 "$POLICY"
    trap '"${SUDO[@]}" rm -f "$POLICY"' EXIT
fi

echo "ensure-postgres: running apt-get update"
"${SUDO[@]}" apt-get update -qq
echo "ensure-postgres: installing postgresql"
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends postgresql

if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
    echo "ensure-postgres: install finished but no initdb under /usr/lib/postgresql/*/bin" >&2
    exit 1
fi
echo "ensure-postgres: installed: $(ls -d /usr/lib/postgresql/*/bin | tr '\n' ' ')"
