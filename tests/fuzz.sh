#!/usr/bin/env bash
# Coverage-guided fuzzing of every parser of outside input, on stable Rust:
# libFuzzer (libfuzzer-sys) with the same SanitizerCoverage flags cargo-fuzz
# passes, which stable rustc accepts; no nightly, no sanitizer runtime.
#
#   tests/fuzz.sh [--quick] [--jobs N] [SECONDS] [TARGET...]
#
# SECONDS per target (default 30). No target builds matrix-sdk: the
# bridge's parsers are in varde-bridge-core. --quick builds the
# dependencies without optimisation (a few minutes cold instead of 12, at a
# fraction of the executions per second): the smoke run of tests/run.sh
# uses `--quick`. --jobs runs targets side by side (default 1). The working
# corpus grows in
# target/fuzz-corpus/<target>, seeded from tests/fuzz/corpus/<target>;
# crashes and hangs land in target/fuzz-artifacts/<target>/. Ends with
#   targets=N seconds_each=S crashes=C hangs=H
# and fails when C or H is not 0.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

QUICK=()
JOBS=1
SECONDS_EACH=30
WANT=()
while (($#)); do
  case "$1" in
    --quick) QUICK=(--config 'profile.dev.package."*".opt-level=0' --config 'profile.dev.package.varde-bus.opt-level=0' --config 'profile.dev.package.varde-hub.opt-level=0' --config 'profile.dev.package.varde-schemas.opt-level=0' --config 'profile.dev.debug=false'); shift ;;
    --jobs) JOBS="$2"; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    [0-9]*) SECONDS_EACH="$1"; shift ;;
    *) WANT+=("$1"); shift ;;
  esac
done

# Its own target dir: different RUSTFLAGS in target/ would rebuild the
# ordinary build from scratch the next time the tests run.
export CARGO_TARGET_DIR="$ROOT/target/fuzz${QUICK:+-quick}"
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
echo "fuzz.sh: building the instrumented varde-fuzz" >&2
# --target keeps RUSTFLAGS off build scripts and proc macros (as cargo-fuzz).
HOST="$(rustc -vV | sed -n 's/^host: //p')"
cargo build --locked -p varde-fuzz --bin varde-fuzz --features libfuzzer --target "$HOST" "${QUICK[@]}"
BIN="$CARGO_TARGET_DIR/$HOST/debug/varde-fuzz"

# The targets the binary was built with (it lists them when asked wrongly;
# libFuzzer counts that exit as a crash of the empty input and writes it
# under -artifact_prefix, which would otherwise be the repository root).
mkdir -p target/fuzz-artifacts
mapfile -t ALL < <(VARDE_FUZZ_TARGET=? "$BIN" -runs=0 -artifact_prefix=target/fuzz-artifacts/list- 2>&1 | sed -n 's/^varde-fuzz: set VARDE_FUZZ_TARGET to one of: //p' | tr ',' '\n' | tr -d ' ')
if ((${#WANT[@]})); then TARGETS=("${WANT[@]}"); else TARGETS=("${ALL[@]}"); fi
((${#TARGETS[@]})) || { echo "fuzz.sh: no targets found in $BIN" >&2; exit 1; }

run_one() {
  local t="$1" work="target/fuzz-corpus/$1" art="target/fuzz-artifacts/$1"
  mkdir -p "$work" "$art"
  local log="$art/last-run.log"
  # -timeout: one input running 10 s is a hang; the outer timeout guards
  # against the fuzzer itself wedging.
  set +e
  VARDE_FUZZ_TARGET="$t" timeout $((SECONDS_EACH + 120)) "$BIN" \
    -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
    -max_len=65536 -print_final_stats=1 -artifact_prefix="$art/" \
    "$work" "tests/fuzz/corpus/$t" >"$log" 2>&1
  local rc=$?
  set -e
  local execs rate cov
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | tr -d 'cov: ')
  echo "target=$t rc=$rc execs=${execs:-0} exec_per_s=${rate:-0} cov=${cov:-0} corpus=$(ls "$work" | wc -l)"
}
export -f run_one
export BIN SECONDS_EACH

printf '%s\n' "${TARGETS[@]}" | xargs -P "$JOBS" -I{} bash -c 'run_one "$@"' _ {}

crashes=0 hangs=0
for t in "${TARGETS[@]}"; do
  art="target/fuzz-artifacts/$t"
  c=$(find "$art" -maxdepth 1 \( -name 'crash-*' -o -name 'oom-*' -o -name 'leak-*' \) -newer "$BIN" | wc -l)
  h=$(find "$art" -maxdepth 1 -name 'timeout-*' -newer "$BIN" | wc -l)
  if ((c + h)); then
    echo "fuzz.sh: $t: $c crash(es), $h hang(s) in $art (last log: $art/last-run.log)" >&2
  fi
  crashes=$((crashes + c)); hangs=$((hangs + h))
done
echo "targets=${#TARGETS[@]} seconds_each=$SECONDS_EACH crashes=$crashes hangs=$hangs"
((crashes == 0 && hangs == 0))
