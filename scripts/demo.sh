#!/usr/bin/env bash
# The main job: set everything up, then run the demo on the embedded default
# (local Kafka broker + SQLite under ./var). Leaves the stack running so the
# printed query can be pasted; stop it with: .venv/bin/exchange down
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/exchange demo "$@"
