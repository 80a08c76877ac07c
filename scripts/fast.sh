#!/usr/bin/env bash
# The development lane: pytest alone, without ruff, mypy, lint-imports or PostgreSQL's
# install check. With no arguments it runs the unit tests on two workers (about a
# minute and a half here); arguments replace that and go to pytest as they are, e.g.
#   bash scripts/fast.sh tests/unit/test_wire.py -q
#   bash scripts/fast.sh -n 2 tests/integration/test_slice.py
# Before a commit, run the README's test command, as CI does: bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh  # only checks, unless pyproject.toml changed

if [ "$#" -eq 0 ]; then
  set -- -n 2 -q tests/unit
fi
exec bash scripts/pytest.sh "$@"
