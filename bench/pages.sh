#!/usr/bin/env bash
# Clinician chart pages benchmark (issue 11): latency of the chart summary, a trend chart,
# the patient list and its search at 8 concurrent clients, and the weight of each page;
# then the patient portal (issue 12) as the chart's patient: the home page, "who looked
# at my record" (its first page, of the audit records the clinicians' runs wrote) and the
# appointments page.
#
#   bench/pages.sh [sqlite|postgres|both] [patients]      (default: sqlite 1000)
#
# 1. builds target/release/oxehr and oxehr-load (honours CARGO_TARGET_DIR; OXEHR_BENCH_OXEHR
#    runs another oxehr binary instead, for an A/B);
# 2. generates the patients with `oxehr-load synth --managing-organization ORG` unless
#    they are cached in $OXEHR_BENCH_CACHE/oxehr-synth-<patients>p-seed<seed>-org (default
#    /tmp): copies of the 89 SMART-on-FHIR Synthea patients, each managed by ORG (Beverly
#    Hospital, an Organization of the shipped hospital file, which keeps its id), so that
#    ORG has all of them in its care;
# 3. for each backend, on a fresh store: imports the hospital file and the patients
#    (`oxehr import`); creates two clinicians (`oxehr user add --no-mfa`):
#    `bench-clinician` of ORG (every patient in care) and `solo-clinician` of the
#    organization of the chart patient's encounters (that one patient in care); serves the
#    store, prints the sign-in page's weight (curl) and runs `oxehr-load pages`: the
#    clients sign in through the sign-in form, then each page for OXEHR_BENCH_SECONDS
#    after a 2 s warm-up, every answer must be 200 (the table's "body bytes" is each
#    page's weight); then the summary and the trend again as `solo-clinician`.
#
# The chart's patient is the first copy of the shipped Synthea patient with the most
# resources: Angelic Mueller (194 bundle entries; 192 resources in her compartment: 82
# Observations, 31 Claims, 19 Encounters, 19 ExplanationOfBenefits, 12
# MedicationRequests, …). The search posts the family name of a random generated
# patient (each family name is shared by 4 copies).
#
# With OXEHR_BENCH_OLD=<another oxehr binary>, the summary is then measured again on the
# same store with that binary and this one, alternating, two rounds (an A/B).
#
# On a shared machine, OXEHR_BENCH_MAX_LOAD=1.0 waits (up to 10 minutes, polling every 30
# s) for the 1-minute load average to fall below it after the import.
#
# Needs curl and jq. Environment: OXEHR_BENCH_SECONDS (per page, default 20), OXEHR_BENCH_CLIENTS (8),
# OXEHR_BENCH_SEED (1), OXEHR_BENCH_SYNTHEA (default ../shared/data/synthea),
# OXEHR_BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432; the database
# oxehr_pages_bench is dropped and created, and analyzed after the import).
set -euo pipefail
cd "$(dirname "$0")/.."
which="${1:-sqlite}"
patients="${2:-1000}"
seconds="${OXEHR_BENCH_SECONDS:-20}"
clients="${OXEHR_BENCH_CLIENTS:-8}"
seed="${OXEHR_BENCH_SEED:-1}"
pg="${OXEHR_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}"
db=oxehr_pages_bench
org=37c0de84-bcaf-3624-82bf-a89b2ac441b8  # BEVERLY HOSPITAL CORPORATION
case "$which" in
  sqlite|postgres|both) ;;
  *) echo "usage: bench/pages.sh [sqlite|postgres|both] [patients]" >&2; exit 2 ;;
esac

cargo build --release -p oxehr -p oxehr-loadgen >/dev/null
target_dir="${CARGO_TARGET_DIR:-target}"
bin=${OXEHR_BENCH_OXEHR:-$target_dir/release/oxehr}
load=$target_dir/release/oxehr-load

synthea="${OXEHR_BENCH_SYNTHEA:-../shared/data/synthea}"
data="${OXEHR_BENCH_CACHE:-/tmp}/oxehr-synth-${patients}p-seed${seed}-org"
if [ ! -f "$data/values.tsv" ]; then
  rm -rf "$data"
  $load synth --patients "$patients" --seed "$seed" --source "$synthea/smart-on-fhir-r4" \
    --managing-organization "$org" --out "$data"
else
  echo "using the generated data in $data"
fi

# The chart's patient: the first copy of Angelic Mueller, and her encounters' organization.
patient=$(awk -F'\t' '$2 ~ /^Mueller/ {print $1; exit}' "$data/values.tsv")
solo_org=$(jq -r '[.entry[].resource | select(.resourceType == "Encounter")
    | .serviceProvider.reference | sub("^(urn:uuid:|Organization/)"; "")] | unique | .[0]' \
  "$(grep -l "\"id\":\"$patient\"" "$data"/patients/*.json | head -1)")
echo "chart patient: Patient/$patient (Angelic Mueller's copy); its encounters' organization: $solo_org"

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

trend="/patients/$patient/trend?code=http%3A//loinc.org%7C29463-7&period=all"

pages() {
  local user=$1; shift
  OXEHR_LOAD_PASSWORD="$user password" $load --base "$base" --clients "$clients" --seconds "$seconds" \
    pages --user "$user" --warmup 2 --values "$data/values.tsv" "$@"
}

# Serves the store with oxehr binary $1 (sets $server and $base).
serve_with() {
  port=$((18000 + RANDOM % 1000))
  base="http://127.0.0.1:$port"
  # shellcheck disable=SC2046
  OXEHR_LOG=warn OXEHR_RATE_LIMIT=0 $1 serve --listen 127.0.0.1:$port $(storage_args "$backend") &
  server=$!
  for _ in $(seq 1 300); do curl -sf "$base/fhir/metadata" >/dev/null && break; sleep 0.1; done
}

wait_for_quiet() {
  [ -n "${OXEHR_BENCH_MAX_LOAD:-}" ] || return 0
  for _ in $(seq 1 20); do
    awk -v l="$(cut -d' ' -f1 /proc/loadavg)" -v m="$OXEHR_BENCH_MAX_LOAD" 'BEGIN { exit !(l < m) }' && return 0
    sleep 30
  done
}

stop() {
  kill "$server"; wait "$server" 2>/dev/null || true
}

run_backend() {
  backend=$1
  fresh "$backend"
  echo
  echo "## $backend, $patients patients"
  # shellcheck disable=SC2046
  OXEHR_LOG=warn $bin import "$data/shared" $(storage_args "$backend") --journal "$work/journal" --quiet | sed 's/^/import (shared): /'
  # shellcheck disable=SC2046
  OXEHR_LOG=warn $bin import "$data/patients" $(storage_args "$backend") --journal "$work/journal" --quiet | sed 's/^/import: /'
  if [ "$backend" = postgres ]; then
    psql "$pg/$db" -qc "VACUUM ANALYZE" >/dev/null
  fi
  # The chart's patient, signed in to the portal (issue 12).
  # shellcheck disable=SC2046
  echo "bench-patient password" | OXEHR_LOG=warn $bin user add bench-patient --role patient \
    --person "Patient/$patient" --password-stdin $(storage_args "$backend")
  for u in "bench-clinician $org" "solo-clinician $solo_org"; do
    set -- $u
    # shellcheck disable=SC2046
    echo "$1 password" | OXEHR_LOG=warn $bin user add "$1" --role clinician --organization "$2" \
      --no-mfa --password-stdin $(storage_args "$backend")
  done
  wait_for_quiet
  serve_with "$bin"
  echo "sign-in page: $(curl -s -o /dev/null -w '%{size_download}' "$base/") bytes"
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  pages bench-clinician \
    --page "summary=/patients/$patient" \
    --page "trend=$trend" \
    --page "list=/patients" \
    --page "search=POST /patients name={family}" \
    --page "form=/patients/$patient/add/vital-signs" \
    --page "stylesheet=/static/oxehr.css"
  echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "### the same chart as a clinician with only this patient in care"
  pages solo-clinician --page "summary=/patients/$patient" --page "trend=$trend"
  echo "### the patient portal, as the chart's patient (issue 12)"
  # The clinicians' runs above wrote an audit record per records call about this patient:
  # the access log's size.
  case "$backend" in
    sqlite) n=$(sqlite3 "$work/data/oxehr.sqlite" "SELECT count(*) FROM audit_log WHERE patient = '$patient'") ;;
    postgres) n=$(psql "$pg/$db" -Atc "SELECT count(*) FROM audit_log WHERE patient = '$patient'") ;;
  esac
  echo "audit records of the chart's patient: $n"
  pages bench-patient --page "portal-home=/" --page "access-log=/portal/$patient/access-log" \
    --page "access-log-all=/portal/$patient/access-log?mine=1" \
    --page "appointments=/portal/$patient/appointments"
  echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
  stop
  # A/B of the summary against another build, on the same store, alternating.
  if [ -n "${OXEHR_BENCH_OLD:-}" ]; then
    for round in 1 2; do
      for v in "old $OXEHR_BENCH_OLD" "new $bin"; do
        set -- $v
        serve_with "$2"
        echo "### A/B round $round: $1 ($2), load average $(cut -d' ' -f1-3 /proc/loadavg)"
        pages bench-clinician --page "summary=/patients/$patient" | grep '^summary'
        pages solo-clinician --page "summary=/patients/$patient" | grep '^summary'
        stop
      done
    done
  fi
}

case "$which" in
  sqlite|postgres) run_backend "$which" ;;
  both) run_backend sqlite; run_backend postgres ;;
esac
