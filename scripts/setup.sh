#!/usr/bin/env bash
# Set up everything the exchange needs on a fresh machine, idempotently:
# a virtual environment with the project and its dev tools, and the pinned Kafka jars.
# Needs: Python >= 3.11, Java 17, Maven (all on the base machine).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

"$PYTHON" - <<'PY' || { echo "error: Python >= 3.11 is required" >&2; exit 1; }
import sys
sys.exit(0 if sys.version_info >= (3, 11) else 1)
PY
command -v java >/dev/null || { echo "error: Java 17 is required to run the Kafka broker" >&2; exit 1; }

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
  echo "setup: installing the project and its dependencies into .venv"
  # pip's and setuptools' chatter goes to a log, shown only if the install fails.
  if ! { .venv/bin/python -m pip install --quiet --upgrade pip &&
         .venv/bin/python -m pip install --quiet -e '.[dev]'; } >.venv/pip-install.log 2>&1; then
    cat .venv/pip-install.log >&2
    echo "error: installing the Python dependencies failed (log above)" >&2
    exit 1
  fi
  rm -f .venv/.installed-*
  touch "$stamp"
fi
bash deploy/kafka/fetch.sh
