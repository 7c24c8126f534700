#!/bin/bash
# A/B of issue 10's hardening on the request path, on SQLite, same machine, same day:
# OLD = release build of cd65854 (before issue 10), NEW = release build to measure.
# What changed on the hot paths: every request runs under an interrupt (an Arc and a
# thread-local), SQLite reads have a progress handler (every 2,000 VM steps), writes
# check narratives with an XML parser, and a transaction validates its Bundle's own
# elements. Build each with, e.g.:
#   git worktree add /tmp/wt-old cd65854 && (cd /tmp/wt-old && CARGO_TARGET_DIR=/work/target-bench-old cargo build --release -p oxehr -p oxehr-loadgen)
#   CARGO_TARGET_DIR=/work/target-bench-new cargo build --release -p oxehr -p oxehr-loadgen
# then: OLD=/work/target-bench-old/release NEW=/work/target-bench-new/release bash bench/hardening-ab.sh
# Imports synthea/smart-on-fhir-r4 into each (timed), then alternates 8 s of reads by
# id and of durable creates, 32 clients, two rounds each.
set -e
old=${OLD:-/work/target-bench-old/release}; new=${NEW:-/work/target-bench-new/release}
data=$(cd "$(dirname "$0")/../../shared/data/synthea/smart-on-fhir-r4" && pwd)
w=/tmp/hab; rm -rf $w; mkdir -p $w
for v in old new; do
  bin=$(eval echo \$$v)/oxehr
  /usr/bin/time -f "$v import peak RSS %M KB, %e s" $bin import $data --data $w/$v --journal $w/$v.journal --quiet 2>&1 | tail -2
  echo 'bench admin password' | OXEHR_LOG=warn $bin user add bench-admin --role system-admin --password-stdin --data $w/$v >/dev/null
  OXEHR_LOG=warn $bin token issue --user bench-admin --scope 'system/*.cruds' --ttl 8h --data $w/$v > $w/$v.token
done
for round in 1 2; do
  for v in old new; do
    bin=$(eval echo \$$v)/oxehr
    port=$((19000 + RANDOM % 500))
    OXEHR_LOG=warn OXEHR_RATE_LIMIT=0 $bin serve --listen 127.0.0.1:$port --data $w/$v & pid=$!
    for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/fhir/metadata" >/dev/null && break; sleep 0.1; done
    echo "== $v round $round reads"
    $new/oxehr-load --base "http://127.0.0.1:$port/fhir" --token "$(cat $w/$v.token)" --clients 32 --seconds 8 reads --type Observation --ids 3000 | tail -2
    echo "== $v round $round creates"
    $new/oxehr-load --base "http://127.0.0.1:$port/fhir" --token "$(cat $w/$v.token)" --clients 32 --seconds 8 creates | tail -2
    kill $pid; wait $pid 2>/dev/null || true
  done
done
