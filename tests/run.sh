#!/usr/bin/env bash
# The whole Varde test suite: unit tests, integration tests against real
# nats-server and Synapse processes (started per test on free loopback
# ports by the harness in tests/src), and a quick run of the benchmarks.
# This is the README's test command, and what .ci/run calls.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# Pinned servers and tools in .venv/ (no-op when present).
deploy/dev/venv.sh

# The reference age CLI (Debian package) for the interoperability tests.
if ! command -v age >/dev/null || ! command -v age-keygen >/dev/null; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "tests/run.sh: installing Debian's age package" >&2
    apt-get install -y -qq age >/dev/null 2>&1 || { apt-get update -qq >/dev/null && apt-get install -y -qq age >/dev/null; }
  else
    echo "tests/run.sh: the reference age CLI is missing; install it (apt-get install age)" >&2
    exit 1
  fi
fi

# systemd-analyze checks the shipped units (tests/tests/deploy.rs).
if ! command -v systemd-analyze >/dev/null && [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
  echo "tests/run.sh: installing systemd for systemd-analyze" >&2
  apt-get install -y -qq systemd >/dev/null 2>&1 || { apt-get update -qq >/dev/null && apt-get install -y -qq systemd >/dev/null; }
fi

# Debian's chromium and its chromedriver for the board's browser test
# (tests/tests/board.rs), installed like the servers.
if { ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; } \
  && [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
  echo "tests/run.sh: installing Debian's chromium and chromium-driver" >&2
  apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null && apt-get install -y -qq chromium chromium-driver >/dev/null; }
fi

# Binaries first: CLI tests run target/debug/varde and varde-bridge.
# One feature resolution for bins and tests (resolver 2 would otherwise
# build the shared dependencies twice: without and with dev-dependencies).
cargo build --workspace --bins --tests

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --profile ci
  # nextest does not run doctests
  cargo test --workspace --doc
else
  cargo test --workspace
fi

# Fuzzing smoke: every core parser target, instrumented, 10 s each (the
# long runs' figures are in README.md). The bridge's targets replay their
# corpus in the test run above (tests/fuzz/tests/corpus.rs).
echo "== tests/fuzz.sh --quick --jobs 2 10"
tests/fuzz.sh --quick --jobs 2 10

# Benchmarks are figures, never assertions: a quick run proves they work.
echo "== varde bench --quick"
target/debug/varde bench --quick
echo "== varde bench hub --quick"
target/debug/varde bench hub --quick
echo "== varde bench national --quick"
target/debug/varde bench national --quick
echo "== varde-bridge bench --quick"
target/debug/varde-bridge bench --quick
