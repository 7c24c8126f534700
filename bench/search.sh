#!/usr/bin/env bash
# Search benchmark (issue 3): p50/p99 of the queries in bench/search-queries.tsv at 16
# concurrent clients, over N generated Synthea patients.
#
#   bench/search.sh [sqlite|postgres|both] [patients]      (default: both 1000)
#
# 1. builds target/release/oxehr and oxehr-load (honours CARGO_TARGET_DIR);
# 2. generates the patients with `oxehr-load synth` unless they are cached in
#    $OXEHR_BENCH_CACHE/oxehr-synth-<patients>p-seed<seed>[-v3] (default /tmp);
# 3. for each backend, on a fresh store: imports the shared Organization/Practitioner
#    bundles, then the patient bundles (`oxehr import`, prints resources/s), serves the
#    store and runs `oxehr-load search` (each query for OXEHR_BENCH_SECONDS after a 2 s
#    warm-up), which prints one line per query and a markdown table.
#
# Environment: OXEHR_BENCH_SECONDS (per query, default 10), OXEHR_BENCH_CLIENTS (16),
# OXEHR_BENCH_SEED (1), OXEHR_BENCH_SYNTHEA (the shipped bundles, default
# ../shared/data/synthea), OXEHR_BENCH_SYNTHEA_V3=1 (also copy the five Synthea 3.x patients),
# OXEHR_BENCH_QUERIES (default bench/search-queries.tsv), OXEHR_BENCH_ONLY (comma-separated
# query names), OXEHR_BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432; the
# database oxehr_search_bench is dropped and created, and analyzed after the import unless
# OXEHR_BENCH_ANALYZE=0).
set -euo pipefail
cd "$(dirname "$0")/.."
which="${1:-both}"
patients="${2:-1000}"
seconds="${OXEHR_BENCH_SECONDS:-10}"
clients="${OXEHR_BENCH_CLIENTS:-16}"
seed="${OXEHR_BENCH_SEED:-1}"
queries="${OXEHR_BENCH_QUERIES:-bench/search-queries.tsv}"
only="${OXEHR_BENCH_ONLY:-}"
pg="${OXEHR_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}"
db=oxehr_search_bench
case "$which" in
  sqlite|postgres|both) ;;
  *) echo "usage: bench/search.sh [sqlite|postgres|both] [patients]" >&2; exit 2 ;;
esac

cargo build --release -p oxehr -p oxehr-loadgen >/dev/null
target_dir="${CARGO_TARGET_DIR:-target}"
bin=$target_dir/release/oxehr
load=$target_dir/release/oxehr-load

synthea="${OXEHR_BENCH_SYNTHEA:-../shared/data/synthea}"
sources=(--source "$synthea/smart-on-fhir-r4")
key="oxehr-synth-${patients}p-seed${seed}"
if [ "${OXEHR_BENCH_SYNTHEA_V3:-0}" = 1 ]; then
  sources+=(--source "$synthea/synthea-v3")
  key="$key-v3"
fi
data="${OXEHR_BENCH_CACHE:-/tmp}/$key"
if [ ! -f "$data/values.tsv" ]; then
  rm -rf "$data"
  $load synth --patients "$patients" --seed "$seed" "${sources[@]}" --out "$data"
else
  echo "using the generated data in $data"
fi
echo "data: $(find "$data/patients" -name '*.json' | wc -l) patient bundles, $(du -sh "$data" | cut -f1)"

work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

storage_args() {
  case "$1" in
    sqlite) echo "--data $work/data" ;;
    postgres) echo "--database $pg/$db" ;;
  esac
}

export PGOPTIONS="${PGOPTIONS:---client-min-messages=warning}"

fresh() {
  rm -rf "$work/data" "$work/journal"
  if [ "$1" = postgres ]; then
    psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
    psql "$pg/postgres" -qc "CREATE DATABASE $db" >/dev/null
  fi
}

# After a bulk load PostgreSQL has no planner statistics until autovacuum gets to the
# tables, and it may do so in the middle of a measurement: analyze once, up front.
analyze() {
  if [ "$1" = postgres ] && [ "${OXEHR_BENCH_ANALYZE:-1}" = 1 ]; then
    local start=$SECONDS
    psql "$pg/$db" -qc "VACUUM ANALYZE" >/dev/null
    echo "VACUUM ANALYZE: $((SECONDS - start)) s"
  fi
}

store_size() {
  case "$1" in
    sqlite) du -sh "$work/data" | cut -f1 ;;
    postgres) psql "$pg/postgres" -Atc "SELECT pg_size_pretty(pg_database_size('$db'))" ;;
  esac
}

run_backend() {
  local backend=$1
  fresh "$backend"
  echo
  echo "## $backend, $patients patients"
  # shellcheck disable=SC2046
  OXEHR_LOG=warn $bin import "$data/shared" $(storage_args "$backend") --journal "$work/journal" --quiet | sed 's/^/import (shared): /'
  # shellcheck disable=SC2046
  OXEHR_LOG=warn $bin import "$data/patients" $(storage_args "$backend") --journal "$work/journal" --quiet | sed 's/^/import: /'
  analyze "$backend"
  echo "store size: $(store_size "$backend")"
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
  for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$port/fhir/metadata" >/dev/null && break; sleep 0.1; done
  $load search --base "http://127.0.0.1:$port/fhir" --clients "$clients" --seconds "$seconds" --warmup 2 \
    --queries "$queries" --values "$data/values.tsv" ${only:+--only "$only"}
  kill "$server"; wait "$server" 2>/dev/null || true
}

case "$which" in
  sqlite|postgres) run_backend "$which" ;;
  both) run_backend sqlite; run_backend postgres ;;
esac
