#!/usr/bin/env bash
# Starts the 3-node Varde JetStream cluster on loopback with TLS (mutual,
# also between the nodes) and nkey authorization, and creates the scope
# streams and the directory bucket with 3 replicas:
#   - certificates from `varde nats tls-dev` (CA, server, client "operator")
#   - auth.conf from `varde nats provision --operator-only` (operator only)
#   - n1/n2/n3 on client ports 4222-4224, routes 6222-6224, monitoring 8222-8224
#   - `varde bus init --replicas 3` as the operator
# With CLUSTER_DIRECTORY (a signed directory file) and CLUSTER_ROOT_KEY (its
# root's `ed25519:…` key) it also pushes the directory and provisions every
# member (users, seeds, consumers) with a reload of all three nodes.
# State in .cluster/ (CLUSTER_STATE_DIR); stop with deploy/nats/cluster/stop.sh.
# (These variables deliberately avoid the VARDE_ prefix, which the varde
# configuration reads as setting overrides.)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
STATE="${CLUSTER_STATE_DIR:-$ROOT/.cluster}"
NATS_SERVER="${NATS_SERVER:-$ROOT/.venv/bin/nats-server}"

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

if [[ ! -x "$NATS_SERVER" ]]; then
  "$ROOT/deploy/dev/venv.sh"
fi
cargo build --quiet --manifest-path "$ROOT/Cargo.toml" --workspace --bins
VARDE="$ROOT/target/debug/varde"

"$HERE/stop.sh" >/dev/null 2>&1 || true
mkdir -p "$STATE/logs"
cp "$HERE"/n1.conf "$HERE"/n2.conf "$HERE"/n3.conf "$STATE/"

say "TLS: development CA, server certificate for 127.0.0.1/localhost, client certificate for the operator"
"$VARDE" nats tls-dev --out "$STATE/tls" --client operator >/dev/null

say "Authorization: the operator's nkey (members come with a directory)"
"$VARDE" nats provision --operator-only --out "$STATE"

cat > "$STATE/operator.toml" <<CONF
# The CSIRT's broker administration for the loopback cluster.
[nats]
url = "tls://127.0.0.1:4222,tls://127.0.0.1:4223,tls://127.0.0.1:4224"
nkey_seed = "operator.nk"
tls_ca = "tls/ca.pem"
tls_cert = "tls/client-operator.pem"
tls_key = "tls/client-operator-key.pem"
CONF
if [[ -n "${CLUSTER_DIRECTORY:-}" ]]; then
  cp "$CLUSTER_DIRECTORY" "$STATE/directory.json"
  cat >> "$STATE/operator.toml" <<CONF

[directory]
root_keys = ["${CLUSTER_ROOT_KEY:?set CLUSTER_ROOT_KEY to the directory root key (ed25519:...)}"]
file = "directory.json"
CONF
fi

healthy() {
  # GET /healthz without curl: 200 once the node knows the meta leader.
  local port=$1 status
  { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null || return 1
  printf 'GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
  read -r _ status _ <&3 || true
  exec 3<&- 3>&-
  [[ "$status" == "200" ]]
}

say "Starting n1, n2, n3 (logs in $STATE/logs)"
for n in 1 2 3; do
  (cd "$STATE" && exec "$NATS_SERVER" -c "n$n.conf" >>"logs/n$n.log" 2>&1) &
done
for n in 1 2 3; do
  for _ in $(seq 1 300); do
    healthy "822$((n + 1))" && break
    sleep 0.1
  done
  healthy "822$((n + 1))" || { echo "n$n did not become healthy; see $STATE/logs/n$n.log" >&2; exit 1; }
done

say "community stream and directory bucket with 3 replicas (the directory push makes the other scope streams like it)"
"$VARDE" -c "$STATE/operator.toml" bus init --replicas 3

if [[ -n "${CLUSTER_DIRECTORY:-}" ]]; then
  say "Directory: push and provision every member (reloading all three nodes)"
  "$VARDE" -c "$STATE/operator.toml" directory push "$STATE/directory.json"
  "$VARDE" -c "$STATE/operator.toml" nats provision --out "$STATE" \
    --reload-pid-file "$STATE/n1.pid" --reload-pid-file "$STATE/n2.pid" --reload-pid-file "$STATE/n3.pid"
  echo "member seeds and settings to hand out: $STATE/users/"
fi

say "Cluster is up: tls://127.0.0.1:4222,4223,4224 (operator config $STATE/operator.toml)"
