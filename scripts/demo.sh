#!/usr/bin/env bash
# The main job on one machine: start `voiceagent serve` on loopback and place real calls to it.
# Installs what it needs first (Debian packages and the Python package, as root).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

PORT="${VOICEAGENT_DEMO_PORT:-5070}"
LOG="$(mktemp -t voiceagent-demo.XXXXXX.log)"
WORK="$(mktemp -d -t voiceagent-demo.XXXXXX)"
voiceagent serve --sip-host 127.0.0.1 --sip-port "$PORT" --rtp-ports 31000-31999 2>"$LOG" &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true' EXIT
for _ in $(seq 50); do grep -q '"listening"' "$LOG" && break; sleep 0.1; done

echo "demo: placing 10 calls with SIPp to sip:service@127.0.0.1:$PORT" >&2
(cd "$WORK" && sipp -sn uac "127.0.0.1:$PORT" -m 10 -r 5 -d 1000 -mi 127.0.0.1 -i 127.0.0.1 \
    -nostdin -timeout 60 -trace_stat -fd 1 >/dev/null 2>&1) && rc=0 || rc=$?
echo "demo: SIPp exit code $rc (0 = every call succeeded)" >&2
echo "demo: server log (JSON lines):" >&2
grep -E '"(listening|call_answered|call_confirmed|call_ended)"' "$LOG" | head -12
exit "$rc"
