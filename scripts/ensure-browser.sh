#!/usr/bin/env bash
# What the console's browser tests and screenshots need, installed idempotently:
# Debian's chromium (Playwright drives it: its own browser download is not reachable),
# a CJK font (fonts-noto-cjk) so Chinese pages render, and the tests' npm packages
# (axe-core, oidc-provider) from tests/e2e/browser/package-lock.json.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
# In CI (CI=true) always go through apt-get, so a clean machine's run proves the install step.
if [[ -n ${CI:-} || ! -x /usr/bin/chromium ]]; then need+=(chromium); fi
if [[ -n ${CI:-} ]] || ! dpkg -s fonts-noto-cjk >/dev/null 2>&1; then need+=(fonts-noto-cjk); fi
if ((${#need[@]})); then
    if [[ $(id -u) -eq 0 ]]; then
        SUDO=()
    elif command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
    else
        echo "ensure-browser: ${need[*]} missing and I am not root and sudo is unavailable;" >&2
        echo "ensure-browser: install them yourself: apt-get install ${need[*]}" >&2
        exit 1
    fi
    echo "ensure-browser: installing ${need[*]} (apt-get)"
    "${SUDO[@]}" apt-get update -qq
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
[[ -x /usr/bin/chromium ]] || { echo "ensure-browser: /usr/bin/chromium is missing" >&2; exit 1; }

command -v npm >/dev/null || { echo "ensure-browser: npm (Node.js) is required" >&2; exit 1; }
modules=tests/e2e/browser
stamp=$modules/node_modules/.installed-$(sha256sum $modules/package-lock.json | cut -c1-16)
if [[ ! -f $stamp ]]; then
    echo "ensure-browser: installing the browser tests' npm packages (npm ci)"
    npm ci --prefix $modules --no-audit --no-fund --loglevel=error >/dev/null
    touch "$stamp"
fi
echo "ensure-browser: $(/usr/bin/chromium --version 2>/dev/null | head -1)"
