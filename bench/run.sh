#!/usr/bin/env bash
# Reproduces the figures in BENCHMARKS.md on this machine.
#
#   bench/run.sh [sqlite|postgres|both] [runs]
#
# For each backend and each run, on a fresh store: imports every Synthea bundle in
# ../shared/data/synthea with `oxehr import` (resources/s, peak RSS), then serves it and
# drives 32 clients with `oxehr-load`: read by id (Observation) and durable creates.
# PostgreSQL: OXEHR_BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432),
# database oxehr_bench is dropped and created for each run.
set -euo pipefail
cd "$(dirname "$0")/.."
which="${1:-both}"
runs="${2:-3}"
seconds="${OXEHR_BENCH_SECONDS:-10}"
pg="${OXEHR_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}"
data_sets=(../shared/data/synthea/smart-on-fhir-r4 ../shared/data/synthea/synthea-v3)

cargo build --release -p oxehr -p oxehr-loadgen >/dev/null
bin=target/release/oxehr
load=target/release/oxehr-load
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

storage_args() {
  case "$1" in
    sqlite) echo "--data $work/data" ;;
    postgres) echo "--database $pg/oxehr_bench" ;;
  esac
}

fresh() {
  rm -rf "$work/data" "$work/journal"
  if [ "$1" = postgres ]; then
    psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS oxehr_bench WITH (FORCE)" >/dev/null
    psql "$pg/postgres" -qc "CREATE DATABASE oxehr_bench" >/dev/null
  fi
}

run_backend() {
  local backend=$1
  for r in $(seq 1 "$runs"); do
    fresh "$backend"
    echo "## $backend run $r"
    # shellcheck disable=SC2046
    $bin import "${data_sets[@]}" $(storage_args "$backend") --journal "$work/journal" --quiet | sed 's/^/import: /'
    # The load tool signs in as a system administrator, as a script would.
    # shellcheck disable=SC2046
    echo 'bench admin password' | OXEHR_LOG=warn $bin user add bench-admin --role system-admin --password-stdin $(storage_args "$backend") >/dev/null
    # shellcheck disable=SC2046
    OXEHR_TOKEN=$(OXEHR_LOG=warn $bin token issue --user bench-admin --scope 'system/*.cruds' --ttl 8h $(storage_args "$backend"))
    export OXEHR_TOKEN
    port=$((18000 + RANDOM % 1000))
    # shellcheck disable=SC2046
    OXEHR_LOG=warn OXEHR_RATE_LIMIT=0 $bin serve --listen 127.0.0.1:$port $(storage_args "$backend") &
    server=$!
    for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/fhir/metadata" >/dev/null && break; sleep 0.1; done
    $load --base "http://127.0.0.1:$port/fhir" --clients 32 --seconds "$seconds" reads --type Observation --ids 6000
    $load --base "http://127.0.0.1:$port/fhir" --clients 32 --seconds "$seconds" creates
    kill "$server"; wait "$server" 2>/dev/null || true
  done
}

case "$which" in
  sqlite|postgres) run_backend "$which" ;;
  both) run_backend sqlite; run_backend postgres ;;
  *) echo "usage: bench/run.sh [sqlite|postgres|both] [runs]" >&2; exit 2 ;;
esac
