#!/bin/bash
# Reads by id on SQLite, several release builds interleaved round by round (so that a
# drift of the machine hits each build alike): 32 clients, 8 s per run.
#   BUILDS="base=/work/rel-base new=target/release" ROUNDS=4 bash bench/reads-ab.sh
# Each build directory holds `oxehr`; the load comes from the last build's
# `oxehr-load`. One store (synthea/smart-on-fhir-r4) is imported once and copied per
# build, so every build reads the same file.
set -e
builds=${BUILDS:?BUILDS="name=dir ..."}; rounds=${ROUNDS:-4}
data=$(cd "$(dirname "$0")/../../shared/data/synthea/smart-on-fhir-r4" && pwd)
w=/tmp/reads-ab; rm -rf $w; mkdir -p $w
last=${builds##*=}
OXEHR_LOG=warn $last/oxehr import $data --data $w/seed --journal $w/seed.journal --quiet >/dev/null
echo 'bench admin password' | OXEHR_LOG=warn $last/oxehr user add bench-admin --role system-admin --password-stdin --data $w/seed >/dev/null
OXEHR_LOG=warn $last/oxehr token issue --user bench-admin --scope 'system/*.cruds' --ttl 8h --data $w/seed > $w/token
for b in $builds; do cp -r $w/seed $w/${b%%=*}; done
for round in $(seq 1 $rounds); do
  for b in $builds; do
    name=${b%%=*}; dir=${b#*=}
    port=$((19000 + RANDOM % 500))
    OXEHR_LOG=warn OXEHR_RATE_LIMIT=0 $dir/oxehr serve --listen 127.0.0.1:$port --data $w/$name >/dev/null 2>&1 & pid=$!
    for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/fhir/metadata" >/dev/null && break; sleep 0.1; done
    echo "$name round $round: $($last/oxehr-load --base "http://127.0.0.1:$port/fhir" --token "$(cat $w/token)" --clients 32 --seconds 8 reads --type Observation --ids 3000 | tail -1 | sed 's/.*: //')"
    kill $pid; wait $pid 2>/dev/null || true
  done
done
