#!/bin/bash
# HL7 v2 ORU^R01 ingest over MLLP on SQLite (issue 13's target), one or more release
# builds interleaved round by round:
#   BUILDS="base=/work/rel-base new=target/release" ROUNDS=3 CLIENTS=8 bash bench/mllp.sh
# Each build directory holds `oxehr`; the load comes from the last build's `oxehr-load`.
# Each build gets a store of its own with one interface (LOADLAB) and 1,000 patients
# registered by a warm-up run; each round starts from that state again and then sends for SECONDS (15) over CLIENTS (8)
# connections, each waiting for its ACK before the next message, as MLLP senders do.
set -e
builds=${BUILDS:?BUILDS="name=dir ..."}; rounds=${ROUNDS:-3}; clients=${CLIENTS:-8}; secs=${SECONDS_EACH:-15}
w=/tmp/mllp-ab; rm -rf $w; mkdir -p $w
last=${builds##*=}
start() { # dir data → sets pid, port, mport
  port=$((19000 + RANDOM % 500)); mport=$((12000 + RANDOM % 500))
  OXEHR_LOG=warn OXEHR_RATE_LIMIT=0 $1/oxehr serve --listen 127.0.0.1:$port --mllp 127.0.0.1:$mport --data $2 >/dev/null 2>&1 & pid=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/fhir/metadata" >/dev/null && break; sleep 0.1; done
}
for b in $builds; do
  name=${b%%=*}; dir=${b#*=}; d=$w/$name; mkdir -m 700 $d
  echo 'bench admin password' | OXEHR_LOG=warn $dir/oxehr user add bench-admin --role system-admin --password-stdin --data $d >/dev/null
  t=$(OXEHR_LOG=warn $dir/oxehr token issue --user bench-admin --scope 'system/*.cruds' --ttl 8h --data $d)
  start $dir $d
  curl -sf -X PUT -H "Authorization: Bearer $t" -H 'content-type: application/fhir+json' \
    "http://127.0.0.1:$port/fhir/Organization/loadlab" -d '{"resourceType":"Organization","id":"loadlab","name":"Load Lab"}' >/dev/null
  OXEHR_LOG=warn $dir/oxehr interface add loadlab --facility LOADLAB --organization Organization/loadlab --data $d >/dev/null
  $last/oxehr-load --clients 8 --seconds 5 mllp --addr 127.0.0.1:$mport --patients 1000 >/dev/null
  kill $pid; wait $pid 2>/dev/null || true
  cp -a $d $d.start   # each round starts from this state
done
for round in $(seq 1 $rounds); do
  for b in $builds; do
    name=${b%%=*}; dir=${b#*=}
    rm -rf $w/$name; cp -a $w/$name.start $w/$name; sync
    start $dir $w/$name
    echo "$name round $round: $($last/oxehr-load --clients $clients --seconds $secs mllp --addr 127.0.0.1:$mport --patients 1000 | tail -1 | sed 's/^mllp //')"
    kill $pid; wait $pid 2>/dev/null || true
  done
done
