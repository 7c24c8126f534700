#!/usr/bin/env bash
# Soak: mixed load for a long time (default 30 minutes) against one SQLite server, to
# see whether latency stays stable and memory stays flat.
#
#   bench/soak.sh [minutes]            # writes /tmp/oxehr-soak/soak.tsv (RSS, and its anonymous and file-backed parts) and soak.svg
#
# Each minute: 16 clients reading Observations by id and 16 clients creating Patients,
# at once (32 in all), while the server's RSS is sampled every 5 s from /proc. The
# store starts from the Synthea smart-on-fhir-r4 bundles (../shared/data). The release
# build is used; the server runs with OXEHR_RATE_LIMIT=0 (one token drives the load).
set -euo pipefail
cd "$(dirname "$0")/.."
minutes="${1:-30}"
out=/tmp/oxehr-soak
rm -rf "$out"; mkdir -p "$out"
cargo build --release -p oxehr -p oxehr-loadgen >/dev/null
bin=target/release/oxehr; load=target/release/oxehr-load
$bin import ../shared/data/synthea/smart-on-fhir-r4 --data "$out/data" --quiet >/dev/null
echo 'bench admin password' | OXEHR_LOG=warn $bin user add bench-admin --role system-admin --password-stdin --data "$out/data" >/dev/null
token=$(OXEHR_LOG=warn $bin token issue --user bench-admin --scope 'system/*.cruds' --ttl 8h --data "$out/data")
port=$((19500 + RANDOM % 400))
OXEHR_LOG=warn OXEHR_RATE_LIMIT=0 $bin serve --listen 127.0.0.1:$port --data "$out/data" & pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
base="http://127.0.0.1:$port/fhir"
( while kill -0 $pid 2>/dev/null; do
    echo "$(date +%s) $(awk '/VmRSS/ {print $2}' /proc/$pid/status)" >> "$out/rss.txt"; sleep 5
  done ) &
printf 'minute\treads_per_s\treads_p99_ms\tcreates_per_s\tcreates_p99_ms\trss_mib\tanon_mib\tfile_mib\n' > "$out/soak.tsv"
for m in $(seq 1 "$minutes"); do
  $load --base "$base" --token "$token" --clients 16 --seconds 60 reads --type Observation --ids 3000 > "$out/r.txt" &
  rpid=$!
  $load --base "$base" --token "$token" --clients 16 --seconds 60 creates > "$out/c.txt"
  wait $rpid
  r=$(tail -1 "$out/r.txt"); c=$(tail -1 "$out/c.txt")
  rs=$(sed -E 's/.*= ([0-9]+)\/s.*/\1/' <<<"$r"); rp=$(sed -E 's/.*p99 ([0-9.]+).*/\1/' <<<"$r")
  cs=$(sed -E 's/.*= ([0-9]+)\/s.*/\1/' <<<"$c"); cp=$(sed -E 's/.*p99 ([0-9.]+).*/\1/' <<<"$c")
  # RSS, and its parts: the process's own memory (anonymous) and pages of files it maps
  # (the database under mmap, the binary).
  mib() { awk -v k="$1:" '$1 == k {printf "%.0f", $2/1024}' /proc/$pid/status; }
  rss=$(mib VmRSS); anon=$(mib RssAnon); file=$(mib RssFile)
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$m" "$rs" "$rp" "$cs" "$cp" "$rss" "$anon" "$file" | tee -a "$out/soak.tsv"
done
# The memory plot: RSS over time, as SVG.
python3 - "$out" <<'PY'
import sys
out = sys.argv[1]
pts = [tuple(map(float, l.split())) for l in open(f"{out}/rss.txt") if len(l.split()) == 2]
t0 = pts[0][0]
xs = [(t - t0) / 60 for t, _ in pts]; ys = [kb / 1024 for _, kb in pts]
W, H, P = 720, 300, 50
xmax = max(xs) or 1; ymax = max(ys) * 1.15 or 1
sx = lambda x: P + x / xmax * (W - 2 * P); sy = lambda y: H - P + 0 - y / ymax * (H - 2 * P)
poly = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in zip(xs, ys))
ticks = "".join(f'<text x="{P-8}" y="{sy(v):.0f}" text-anchor="end" font-size="11">{v:.0f}</text><line x1="{P}" x2="{W-P}" y1="{sy(v):.0f}" y2="{sy(v):.0f}" stroke="#ddd"/>' for v in [ymax*i/4 for i in range(5)])
xt = "".join(f'<text x="{sx(v):.0f}" y="{H-P+18}" text-anchor="middle" font-size="11">{v:.0f}</text>' for v in [xmax*i/6 for i in range(7)])
svg = f'''<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>{ticks}{xt}
<polyline fill="none" stroke="#1f5f99" stroke-width="2" points="{poly}"/>
<text x="{W/2}" y="{H-8}" text-anchor="middle" font-size="12">minutes</text>
<text x="14" y="{H/2}" transform="rotate(-90 14 {H/2})" text-anchor="middle" font-size="12">server RSS (MiB)</text>
<text x="{W/2}" y="22" text-anchor="middle" font-size="14">oxehr serve RSS under 32 clients of mixed load</text></svg>'''
open(f"{out}/soak.svg", "w").write(svg)
PY
echo "wrote $out/soak.tsv and $out/soak.svg"
