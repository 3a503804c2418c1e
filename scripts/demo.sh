#!/usr/bin/env bash
# The main job on one machine: a complete patient intake call on loopback, on the embedded
# providers. Installs what it needs first (Debian packages and the Python package, as root).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec voiceagent demo "$@"
