#!/usr/bin/env bash
# pytest with the given arguments, where collecting no test is a failure (pytest's exit 5),
# not a pass. Used by scripts/test.sh and scripts/fast.sh.
set -uo pipefail
cd "$(dirname "$0")/.."
.venv/bin/pytest -p no:cacheprovider "$@"
status=$?
if [ "$status" -eq 5 ]; then
  echo "error: pytest collected no tests; that is a failure, not a pass" >&2
  exit 1
fi
exit "$status"
