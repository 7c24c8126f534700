#!/bin/bash
# PostgreSQL with and without a read replica (--database-replica), on this machine:
# reads by id and creates, the primary alone against the primary plus one hot standby,
# interleaved round by round.
#   B=target/release ROUNDS=3 CLIENTS=16 bash bench/replica.sh
# Makes its own two-server cluster (initdb a primary, pg_basebackup -R a standby, each on
# a port of its own; as the `postgres` account when run as root), imports
# synthea/smart-on-fhir-r4 through the primary, then serves it both ways. Reads read
# Observations by id for 8 s; creates post Patients for 8 s.
set -e
B=${B:-target/release}; rounds=${ROUNDS:-3}; clients=${CLIENTS:-16}
data=$(cd "$(dirname "$0")/../../shared/data/synthea/smart-on-fhir-r4" && pwd)
bin=$(pg_config --bindir)
w=/tmp/replica-bench; p1=15431; p2=15432
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
stop() { for c in standby primary; do [ -d $w/$c ] && as_pg $bin/pg_ctl -D $w/$c -m immediate -w stop >/dev/null 2>&1 || true; done; }
stop; rm -rf $w; mkdir -p $w; [ "$(id -u)" = 0 ] && chown postgres: $w
trap stop EXIT
opts="-c listen_addresses=127.0.0.1 -k $w -c max_wal_senders=4 -c shared_buffers=256MB"
as_pg $bin/initdb -D $w/primary -A trust -U postgres --no-sync >/dev/null
as_pg $bin/pg_ctl -D $w/primary -o "-p $p1 $opts" -l $w/primary.log -w start >/dev/null
as_pg $bin/pg_basebackup -h 127.0.0.1 -p $p1 -U postgres -D $w/standby -R -X stream --checkpoint=fast
as_pg $bin/pg_ctl -D $w/standby -o "-p $p2 $opts" -l $w/standby.log -w start >/dev/null
P=postgres://postgres@127.0.0.1:$p1/postgres; R=postgres://postgres@127.0.0.1:$p2/postgres
s=$w/secrets; mkdir -m 700 $s
OXEHR_LOG=warn $B/oxehr import $data --database $P --data $s --quiet >/dev/null
echo 'bench admin password' | OXEHR_LOG=warn $B/oxehr user add bench-user --role system-admin --password-stdin --database $P --data $s >/dev/null
t=$(OXEHR_LOG=warn $B/oxehr token issue --user bench-user --scope 'system/*.cruds' --ttl 8h --database $P --data $s)
for round in $(seq 1 $rounds); do
  for mode in primary replica; do
    extra=(); [ $mode = replica ] && extra=(--database-replica $R)
    port=$((19000 + RANDOM % 500))
    OXEHR_LOG=warn OXEHR_RATE_LIMIT=0 $B/oxehr serve --listen 127.0.0.1:$port --database $P "${extra[@]}" --data $s >/dev/null 2>&1 & pid=$!
    for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/fhir/metadata" >/dev/null && break; sleep 0.1; done
    base="http://127.0.0.1:$port/fhir"
    echo "$mode round $round reads: $($B/oxehr-load --base $base --token "$t" --clients $clients --seconds 8 reads --type Observation --ids 3000 | tail -1 | sed 's/.*: //')"
    echo "$mode round $round creates: $($B/oxehr-load --base $base --token "$t" --clients $clients --seconds 8 creates | tail -1 | sed 's/.*: //')"
    [ $mode = replica ] && curl -s -H "Authorization: Bearer $t" "http://127.0.0.1:$port/metrics" | grep -E '^oxehr_store_replica' | tr '\n' ' ' && echo
    kill $pid; wait $pid 2>/dev/null || true
  done
done
