#!/usr/bin/env bash
# The searches of bench/search-queries.tsv against one imported SQLite store, with one or
# more release builds interleaved round by round (each build serves the same store in
# turn; searches write only audit records, which no search reads):
#
#   DATA=/work/pop/data VALUES=/tmp/oxehr-synth-15000p-seed1/values.tsv \
#     BUILDS="base=/work/rel-base new=target/release" ROUNDS=2 SECONDS_EACH=8 bash bench/search-ab.sh
#
# DATA is a store made as bench/search.sh makes one (`oxehr-load synth`, then `oxehr
# import` of its shared/ and patients/ directories); VALUES the generator's values.tsv.
# A system administrator `bench-admin` and an 8-hour token are added to the store on the
# first run (the token is kept in DATA/../bench-token). ONLY (comma-separated query
# names) and CLIENTS (16) as for `oxehr-load search`; the load comes from the first
# build's `oxehr-load`.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${DATA:?DATA=store directory}; values=${VALUES:?VALUES=values.tsv}
builds=${BUILDS:?BUILDS=\"name=dir ...\"}; rounds=${ROUNDS:-2}; secs=${SECONDS_EACH:-8}
first=${builds%% *}; first=${first#*=}
token_file="$data/../bench-token"
if [ ! -s "$token_file" ]; then
  echo 'bench admin password' | OXEHR_LOG=warn "$first/oxehr" user add bench-admin --role system-admin --password-stdin --data "$data" >/dev/null
  OXEHR_LOG=warn "$first/oxehr" token issue --user bench-admin --scope 'system/*.cruds' --ttl 8h --data "$data" > "$token_file"
fi
OXEHR_TOKEN=$(cat "$token_file"); export OXEHR_TOKEN
for round in $(seq 1 "$rounds"); do
  for b in $builds; do
    name=${b%%=*}; dir=${b#*=}
    port=$((18000 + RANDOM % 1000))
    OXEHR_LOG=warn OXEHR_RATE_LIMIT=0 "$dir/oxehr" serve --listen 127.0.0.1:$port --data "$data" >/dev/null 2>&1 &
    server=$!
    for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$port/fhir/metadata" >/dev/null && break; sleep 0.1; done
    echo "== $name, round $round"
    "$first/oxehr-load" search --base "http://127.0.0.1:$port/fhir" --clients "${CLIENTS:-16}" --seconds "$secs" \
      --warmup 2 --queries bench/search-queries.tsv --values "$values" ${ONLY:+--only "$ONLY"} | grep '^| [a-z]'
    kill "$server"; wait "$server" 2>/dev/null || true
  done
done
