#!/usr/bin/env bash
# Stops the nodes deploy/nats/cluster/start.sh started (state stays for inspection).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
STATE="${CLUSTER_STATE_DIR:-$ROOT/.cluster}"
for pidfile in "$STATE"/n1.pid "$STATE"/n2.pid "$STATE"/n3.pid; do
  [[ -f "$pidfile" ]] || continue
  pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
done
echo "cluster stopped"
