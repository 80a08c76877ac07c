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
set +e
.venv/bin/pytest -p no:cacheprovider "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "error: pytest collected no tests; that is a failure, not a pass" >&2
  exit 1
fi
exit "$status"
