#!/usr/bin/env bash
# The whole test suite: installs what it needs, then runs pytest (its summary is the last line).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# -n 2 --dist loadgroup: the real-time call modules on one worker, the rest on the other (tests/conftest.py)
exec python3 -m pytest -q -p no:cacheprovider -n 2 --dist loadgroup "$@"
