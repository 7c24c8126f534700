#!/bin/bash
# A/B of the cost of access control and auditing, on SQLite, same machine, same day:
# OLD = release build of a commit before issue 4's request path (db074e4: no tokens, no
# policy, no audit), NEW = release build to measure. Build each with, e.g.:
#   git worktree add /tmp/wt-old db074e4 && (cd /tmp/wt-old && CARGO_TARGET_DIR=/work/target-bench-old cargo build --release -p oxehr -p oxehr-loadgen)
#   CARGO_TARGET_DIR=/work/target-bench-new cargo build --release -p oxehr -p oxehr-loadgen
# then: OLD=/work/target-bench-old/release NEW=/work/target-bench-new/release bash bench/access-ab.sh
# Imports synthea/smart-on-fhir-r4 into each, then alternates 8 s of reads by id and of
# durable creates, 32 clients, two rounds each (the old server ignores the token).
set -e
old=${OLD:-/work/target-bench-old/release}; new=${NEW:-/work/target-bench-new/release}
data=$(cd "$(dirname "$0")/../../shared/data/synthea/smart-on-fhir-r4" && pwd)
w=/tmp/ab; rm -rf $w; mkdir -p $w
for v in old new; do
  bin=$(eval echo \$$v)/oxehr
  /usr/bin/time -f "$v import peak RSS %M KB, %e s" $bin import $data --data $w/$v --journal $w/$v.journal --quiet 2>&1 | tail -2
done
echo 'bench admin password' | OXEHR_LOG=warn $new/oxehr user add bench-admin --role system-admin --password-stdin --data $w/new >/dev/null
TOKEN=$(OXEHR_LOG=warn $new/oxehr token issue --user bench-admin --scope 'system/*.cruds' --ttl 8h --data $w/new)
for round in 1 2; do
  for v in old new; do
    bin=$(eval echo \$$v)/oxehr
    port=$((19000 + RANDOM % 500))
    OXEHR_LOG=warn OXEHR_RATE_LIMIT=0 $bin serve --listen 127.0.0.1:$port --data $w/$v & pid=$!
    for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/fhir/metadata" >/dev/null && break; sleep 0.1; done
    echo "== $v round $round reads"
    $new/oxehr-load --base "http://127.0.0.1:$port/fhir" --token "$TOKEN" --clients 32 --seconds 8 reads --type Observation --ids 3000 | tail -2
    echo "== $v round $round creates"
    $new/oxehr-load --base "http://127.0.0.1:$port/fhir" --token "$TOKEN" --clients 32 --seconds 8 creates | tail -2
    kill $pid; wait $pid 2>/dev/null || true
  done
done
