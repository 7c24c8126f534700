#!/bin/bash
# Reads by id on SQLite, several release builds interleaved round by round (so that a
# drift of the machine hits each build alike): 32 clients, 8 s per run.
#   BUILDS="base=/work/rel-base new=target/release" ROUNDS=4 bash bench/reads-ab.sh
# Each build directory holds `oxehr`; the load comes from the last build's
# `oxehr-load`. Each build imports synthea/smart-on-fhir-r4 into a store of its own
# (a build may not open a newer build's schema).
#
# AS=admin (default) reads as a system administrator: no access rule to apply.
# AS=clinician reads as a clinician of the organization that cares for the patient with
# the most Observations, standing for a Practitioner of the data (so the Consent rules
# look up the Practitioner's roles and care teams): only that patient's Observations are
# visible, and those are what it reads.
set -e
builds=${BUILDS:?BUILDS="name=dir ..."}; rounds=${ROUNDS:-4}; as=${AS:-admin}
data=$(cd "$(dirname "$0")/../../shared/data/synthea/smart-on-fhir-r4" && pwd)
w=/tmp/reads-ab; rm -rf $w; mkdir -p $w
last=${builds##*=}
for b in $builds; do
  name=${b%%=*}; dir=${b#*=}; d=$w/$name
  OXEHR_LOG=warn $dir/oxehr import $data --data $d --journal $d.journal --quiet >/dev/null
  if [ "$as" = clinician ]; then
    org=$(sqlite3 $d/oxehr.sqlite "SELECT k.org_id FROM care k JOIN compartment c ON c.patient_id = k.patient_id \
      JOIN resource r ON r.rid = c.rid AND r.rtype = 'Observation' GROUP BY k.org_id ORDER BY count(*) DESC, k.org_id LIMIT 1")
    person=$(sqlite3 $d/oxehr.sqlite "SELECT id FROM resource WHERE rtype = 'Practitioner' ORDER BY id LIMIT 1")
    echo 'bench clinician password' | OXEHR_LOG=warn $dir/oxehr user add bench-user --role clinician \
      --organization $org --person Practitioner/$person --no-mfa --password-stdin --data $d >/dev/null
    OXEHR_LOG=warn $dir/oxehr token issue --user bench-user --scope 'user/*.rs' --ttl 8h --data $d > $d.token
  else
    echo 'bench admin password' | OXEHR_LOG=warn $dir/oxehr user add bench-user --role system-admin --password-stdin --data $d >/dev/null
    OXEHR_LOG=warn $dir/oxehr token issue --user bench-user --scope 'system/*.cruds' --ttl 8h --data $d > $d.token
  fi
done
for round in $(seq 1 $rounds); do
  for b in $builds; do
    name=${b%%=*}; dir=${b#*=}
    port=$((19000 + RANDOM % 500))
    OXEHR_LOG=warn OXEHR_RATE_LIMIT=0 $dir/oxehr serve --listen 127.0.0.1:$port --data $w/$name >/dev/null 2>&1 & pid=$!
    for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/fhir/metadata" >/dev/null && break; sleep 0.1; done
    echo "$name round $round: $($last/oxehr-load --base "http://127.0.0.1:$port/fhir" --token "$(cat $w/$name.token)" --clients 32 --seconds 8 reads --type Observation --ids 3000 | tail -1 | sed 's/.*: //')"
    kill $pid; wait $pid 2>/dev/null || true
  done
done
