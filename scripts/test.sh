#!/usr/bin/env bash
# The whole test suite: installs what it needs, then runs pytest (its summary is the last line).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# -n 4 --dist loadgroup: the real-time call modules on workers of their own (tests/conftest.py)
exec python3 -m pytest -q -p no:cacheprovider -n 4 --dist loadgroup "$@"
