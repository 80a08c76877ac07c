#!/usr/bin/env bash
# Set everything up and run every test tier: lint, types, unit, integration
# (real Kafka, SQLite and PostgreSQL) and end-to-end.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/ensure-postgres.sh
bash scripts/ensure-browser.sh

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy"
.venv/bin/mypy
echo "== lint-imports"
.venv/bin/lint-imports --no-cache

echo "== pytest"
# Two workers (pytest-xdist), each with its own broker and PostgreSQL: the integration tests
# spend much of their time waiting on Kafka and subprocesses (docs/development.md). A test
# file stays on one worker (its module fixtures start once). Arguments come after: -n 0
# runs everything in one process.
exec bash scripts/pytest.sh -n 2 --dist loadfile "$@"
