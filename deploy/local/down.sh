#!/usr/bin/env bash
# Stops what deploy/local/up.sh started (state stays in .demo/ for inspection).
set -uo pipefail
DEMO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/.demo"
for pidfile in "$DEMO"/*.pid; do
  [[ -f "$pidfile" ]] || continue
  pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
done
echo "local stack stopped"
