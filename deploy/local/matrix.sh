#!/usr/bin/env bash
# The Matrix half of the local stack (called by deploy/local/up.sh after the
# bus demo; needs what up.sh made in .demo/):
#   - Synapse from .venv/ on 127.0.0.1 (SQLite, deploy/synapse/homeserver.dev.yaml)
#   - a bridge bot and a demo member (kari, of gjovik) registered; kari's
#     Matrix id and a bridge key added to the directory, re-signed, pushed
#   - an end-to-end encrypted room (TLP:AMBER) and an unencrypted one
#     (TLP:GREEN, Norwegian) made by kari, the bot invited
#   - varde-bridge running in the background (.demo/bridge.pid, log in
#     .demo/logs/bridge.log, metrics on 127.0.0.1:19464)
#   - a TLP:AMBER advisory and a TLP:GREEN one published, then read back:
#     the GREEN one with a plain client call, the AMBER one as a plain
#     client receives it (ciphertext) and decrypted by kari's own
#     cross-signed device (`varde-bridge read-room`).
# Stop everything with deploy/local/down.sh.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DEMO="$ROOT/.demo"
NATS_PORT="${VARDE_DEMO_NATS_PORT:-14222}"
HS_PORT="${VARDE_DEMO_SYNAPSE_PORT:-18008}"
METRICS_PORT="${VARDE_DEMO_METRICS_PORT:-19464}"
HS="http://127.0.0.1:$HS_PORT"
PY="$ROOT/.venv/bin/python"
MX="$PY $ROOT/deploy/local/matrix_demo.py"

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
secret() { "$PY" -c 'import secrets; print(secrets.token_urlsafe(24))'; }

[[ -f "$DEMO/directory.draft.json" ]] || { echo "run deploy/local/up.sh first" >&2; exit 1; }

say "Building varde-bridge (already built by up.sh: the workspace build)"
cargo build --quiet --manifest-path "$ROOT/Cargo.toml" --workspace --bins
VARDE="$ROOT/target/debug/varde"
BRIDGE="$ROOT/target/debug/varde-bridge"

say "Starting Synapse on 127.0.0.1:$HS_PORT (SQLite, dev policy)"
mkdir -p "$DEMO/synapse" "$DEMO/matrix" "$DEMO/logs"
chmod 700 "$DEMO/matrix"
cp "$ROOT/deploy/synapse/homeserver.dev.yaml" "$DEMO/synapse/homeserver.dev.yaml"
if [[ ! -f "$DEMO/synapse/instance.yaml" ]]; then
  cat > "$DEMO/synapse/instance.yaml" <<CONF
# Per-instance config of the local demo; the policy is in homeserver.dev.yaml.
server_name: "localhost"
public_baseurl: "$HS/"
listeners:
  - port: $HS_PORT
    bind_addresses: ["127.0.0.1"]
    type: http
    tls: false
    x_forwarded: false
    resources:
      - names: [client]
        compress: false
database:
  name: sqlite3
  args:
    database: "$DEMO/synapse/homeserver.db"
media_store_path: "$DEMO/synapse/media_store"
signing_key_path: "$DEMO/synapse/signing.key"
macaroon_secret_key: "$(secret)"
form_secret: "$(secret)"
CONF
  "$PY" -c 'import base64, os; print("ed25519 a_demo " + base64.b64encode(os.urandom(32)).decode().rstrip("="))' \
    > "$DEMO/synapse/signing.key"
fi
(cd "$DEMO/synapse" && PYTHONUNBUFFERED=1 exec "$PY" -m synapse.app.homeserver \
  -c homeserver.dev.yaml -c instance.yaml) >"$DEMO/logs/synapse.log" 2>&1 &
echo $! > "$DEMO/synapse.pid"
for _ in $(seq 1 300); do
  "$PY" -c "import urllib.request; urllib.request.urlopen('$HS/health', timeout=2)" 2>/dev/null && break
  sleep 0.3
done
"$PY" -c "import urllib.request; urllib.request.urlopen('$HS/health', timeout=2)" \
  || { echo "Synapse did not start; see .demo/logs/synapse.log" >&2; exit 1; }

say "Registering the bridge bot and a demo member (kari, Gjøvik kommune)"
for who in varde kari; do
  [[ -f "$DEMO/matrix/$who.password" ]] || (umask 077; secret > "$DEMO/matrix/$who.password")
done
read -r BOT_ID _ < <($MX register "$HS" varde "$(cat "$DEMO/matrix/varde.password")")
read -r KARI_ID KARI_TOKEN < <($MX register "$HS" kari "$(cat "$DEMO/matrix/kari.password")")
echo "bot $BOT_ID, member $KARI_ID"

say "Directory: $KARI_ID belongs to gjovik; gjovik gets a bridge key; re-sign and push"
cd "$DEMO"
$MX add-matrix-user directory.draft.json gjovik "$KARI_ID"
if [[ ! -f keys/gjovik-bridge.age ]]; then
  "$VARDE" keygen --org gjovik --role bridge --out keys >/dev/null
  "$VARDE" directory add-key --file directory.draft.json --card keys/gjovik-bridge.pub.json >/dev/null
fi
"$VARDE" directory sign --file directory.draft.json --root-key keys/root.sign --out directory.json
"$VARDE" -c kcsirt/varde.toml directory push directory.json

say "Provisioning the bridge's NATS user and durable consumer (the broker reloads)"
"$VARDE" -c kcsirt/varde.toml nats provision --out "$DEMO/nats" --reload-pid-file "$DEMO/nats.pid" >/dev/null
BRIDGE_NATS="$(ls "$DEMO"/nats/users/gjovik_bridge_*.toml | head -1)"
[[ -f "$BRIDGE_NATS" ]] || { echo "no provisioned bridge user in $DEMO/nats/users" >&2; exit 1; }
echo "bridge NATS user $(basename "$BRIDGE_NATS" .toml)"

say "Kari creates an encrypted room (TLP:AMBER) and an unencrypted one (TLP:GREEN) and invites the bot"
AMBER_ROOM="$($MX create-room "$HS" "$KARI_TOKEN" "Gjøvik CSIRT (AMBER)" encrypted "$BOT_ID")"
GREEN_ROOM="$($MX create-room "$HS" "$KARI_TOKEN" "Varsler (GREEN)" plain "$BOT_ID")"
echo "amber room $AMBER_ROOM (encrypted), green room $GREEN_ROOM"

say "Kari's own E2EE device (cross-signed) comes online before anything is encrypted for her"
VARDE_READER_PASSWORD="$(cat "$DEMO/matrix/kari.password")" "$BRIDGE" read-room \
  --homeserver "$HS" --user "$KARI_ID" --store "$DEMO/matrix/reader-kari"

say "Writing .demo/bridge/bridge.toml and starting varde-bridge"
mkdir -p "$DEMO/bridge"
ROOT_PUB="$(grep -o 'ed25519:[A-Za-z0-9+/=]*' "$DEMO/kcsirt/varde.toml" | head -1)"
cat > "$DEMO/bridge/bridge.toml" <<CONF
# varde-bridge configuration for gjovik (demo). Paths are relative to this file.
[identity]
org = "gjovik"
age = "../keys/gjovik-bridge.age"
signing = "../keys/gjovik-bridge.sign"

[directory]
root_keys = ["$ROOT_PUB"]
file = "../directory.json"
state = "state/directory.json"

$(sed -e 's#^nkey_seed = "#nkey_seed = "../nats/users/#' \
      -e 's#^tls_ca = "ca.pem"#tls_ca = "../nats/tls/ca.pem"#' "$BRIDGE_NATS")

[matrix]
homeserver = "$HS"
user = "$BOT_ID"
password_file = "../matrix/varde.password"
device_id = "VARDEDEMO"
store = "state/matrix"
allowed_inviters = ["localhost"]

[metrics]
listen = "127.0.0.1:$METRICS_PORT"

[[rooms]]
room = "$AMBER_ROOM"
name = "gjovik-amber"
kinds = ["advisory", "alert", "notification"]
ceiling = "TLP:AMBER"
language = "en"
urgent_alerts = true

[[rooms]]
room = "$GREEN_ROOM"
name = "varsler"
kinds = ["advisory", "alert"]
labels = ["TLP:CLEAR", "TLP:GREEN"]
ceiling = "TLP:GREEN"
language = "nb"
CONF
"$BRIDGE" -c "$DEMO/bridge/bridge.toml" run >"$DEMO/logs/bridge.log" 2>&1 &
echo $! > "$DEMO/bridge.pid"
for _ in $(seq 1 240); do
  grep -q "varde-bridge running" "$DEMO/logs/bridge.log" && break
  kill -0 "$(cat "$DEMO/bridge.pid")" 2>/dev/null || { tail -20 "$DEMO/logs/bridge.log"; exit 1; }
  sleep 0.5
done
grep -q "varde-bridge running" "$DEMO/logs/bridge.log" || { tail -20 "$DEMO/logs/bridge.log"; exit 1; }

say "varde-bridge check-config"
"$BRIDGE" -c "$DEMO/bridge/bridge.toml" check-config || true

say "kcsirt publishes a TLP:AMBER advisory to gjovik and a TLP:GREEN one to the community"
"$VARDE" -c kcsirt/varde.toml publish advisory --tlp amber --to gjovik \
  --advisory-id KCSIRT-2026-0043 --title "Remote code execution in Fortinet FortiGate SSL-VPN" \
  --summary "Pre-authentication RCE, exploited in the wild. Gjøvik runs affected units." \
  --severity critical --cve CVE-2026-23456 --product "Fortinet:FortiGate:< 7.4.8" \
  --action "Upgrade to 7.4.8" --action "Hunt for the published indicators since 1 May" \
  --reference https://fortiguard.example/psirt/FG-IR-26-001
"$VARDE" -c kcsirt/varde.toml publish advisory --tlp green --community \
  --advisory-id KCSIRT-2026-0044 --title "Phishing campaign against municipal payroll" \
  --summary "Mails impersonate the payroll system; block the sender domain." \
  --severity medium --action "Block lonn-portal.example" | tee "$DEMO/green.published"
GREEN_ID="$(awk '/^published/ {print $4; exit}' "$DEMO/green.published")"

say "The GREEN room, read back with a plain client call (no encryption involved):"
for _ in $(seq 1 60); do
  $MX show "$HS" "$KARI_TOKEN" "$GREEN_ROOM" 1 | grep KCSIRT-2026-0044 >/dev/null && break
  sleep 0.5
done
$MX show "$HS" "$KARI_TOKEN" "$GREEN_ROOM" 1

say "The AMBER room as a plain client receives it (end-to-end encrypted):"
for _ in $(seq 1 60); do
  $MX show "$HS" "$KARI_TOKEN" "$AMBER_ROOM" 5 | grep "m.room.encrypted from $BOT_ID" >/dev/null && break
  sleep 0.5
done
$MX show "$HS" "$KARI_TOKEN" "$AMBER_ROOM" 2

say "From the room back to the bus: Kari acknowledges the GREEN advisory with a command"
$MX send "$HS" "$KARI_TOKEN" "$GREEN_ROOM" "!varde ack $GREEN_ID"
for _ in $(seq 1 60); do
  $MX show "$HS" "$KARI_TOKEN" "$GREEN_ROOM" 1 | grep -q "Kvittert for" && break
  sleep 0.5
done
$MX show "$HS" "$KARI_TOKEN" "$GREEN_ROOM" 1 | grep -v formatted_body
say "The CSIRT sees the signed ack (sealed TLP:AMBER to kcsirt) with varde tail:"
for _ in $(seq 1 20); do
  "$VARDE" -c kcsirt/varde.toml tail --since 10m --kind ack >"$DEMO/acks.txt" 2>/dev/null || true
  grep -q "ack" "$DEMO/acks.txt" && break
  sleep 0.5
done
cat "$DEMO/acks.txt"

say "The AMBER room decrypted by kari's own device (varde-bridge read-room):"
VARDE_READER_PASSWORD="$(cat "$DEMO/matrix/kari.password")" "$BRIDGE" read-room \
  --homeserver "$HS" --user "$KARI_ID" --store "$DEMO/matrix/reader-kari" \
  --room "$AMBER_ROOM" --limit 3 --wait-for KCSIRT-2026-0043 --timeout 60s

say "Matrix is up: Synapse $HS (users in .demo/matrix/), bridge log .demo/logs/bridge.log, metrics http://127.0.0.1:$METRICS_PORT/metrics"
