#!/usr/bin/env bash
# The whole test suite: installs what it needs, then runs pytest (its summary is the last line).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec python3 -m pytest -q -p no:cacheprovider "$@"
