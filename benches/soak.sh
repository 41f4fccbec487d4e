#!/usr/bin/env bash
# Soak benchmark of `contract-runtime serve` (release build): steady `synth` load with commits
# every 2 s, and table maintenance on its defaults. Prints, early in the run (once the time
# constants have passed: a fifth of the run, at least 700 s with the defaults) and at the end:
# data files, snapshots, metadata bytes (current metadata files), warehouse bytes, serve's RSS,
# and a full pyiceberg scan of the events table (seconds, and per million rows), then the
# ratios end/early.
# Targets: files, snapshots, metadata and RSS flat (bounded by configuration, not by run time);
# scan time per row at the end within 1.5x the early one.
#
# Usage: benches/soak.sh [RATE] [SECONDS]      default 5000 events/s for 1200 s
#        benches/soak.sh --short                1000 events/s for 120 s, time constants scaled
#                                               down (maintenance every 5 s, snapshots kept 20 s,
#                                               orphans deleted after 10 s)
# Needs CONTRACTC_PYTHON (a Python with pyiceberg), as the tests do. CONTRACT_RUNTIME=PATH
# uses that binary instead of building the release one.
set -euo pipefail
cd "$(dirname "$0")/.."
MAINTENANCE=()
if [ "${1:-}" = "--short" ]; then
    RATE=1000 SECONDS_TOTAL=120 EARLY_AT=50
    MAINTENANCE=(--maintenance-interval-s 5 --orphan-grace-s 10 --max-snapshot-age-s 20)
else
    # Defaults: snapshots kept 600 s, orphans deleted after 300 s, maintenance every 60 s.
    RATE="${1:-5000}" SECONDS_TOTAL="${2:-1200}"
    EARLY_AT=$((SECONDS_TOTAL / 5 > 700 ? SECONDS_TOTAL / 5 : 700))
fi
PYTHON="${CONTRACTC_PYTHON:?set CONTRACTC_PYTHON to a Python with pyiceberg (see tests/run.sh)}"
"$PYTHON" -c "import pyiceberg" || { echo "pyiceberg missing in $PYTHON" >&2; exit 1; }
if [ -n "${CONTRACT_RUNTIME:-}" ]; then
    BIN="$CONTRACT_RUNTIME"   # tests/run.sh runs the short mode on its debug build
else
    cargo build --release --quiet -p contract-runtime
    BIN="${CARGO_TARGET_DIR:-target}/release/contract-runtime"
fi
DATA="$(mktemp -d)"
PORT=18766
"$BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$DATA" --commit-interval-ms 2000 \
    --dev-mint-scopes --guests-per-minute 0 "${MAINTENANCE[@]}" 2>"$DATA.log" &
SERVER=$!
SYNTH=
trap 'kill $SYNTH $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -rf "$DATA" "$DATA.log"' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done

"$BIN" synth --login-endpoint "http://127.0.0.1:$PORT/prod/" \
    --backend-endpoint "http://127.0.0.1:$PORT/prod/put-record" --reuse-token \
    --rate "$RATE" --duration "${SECONDS_TOTAL}s" --batch 100 --concurrency 4 >/dev/null 2>"$DATA.synth" &
SYNTH=$!

# Prints "files snapshots metadata_bytes warehouse_bytes rss_bytes rows scan_seconds".
figures() {
    local metrics files snapshots metadata rss
    metrics="$(curl -sf "http://127.0.0.1:$PORT/metrics")"
    sum() { awk -v name="$1" '$1 ~ "^"name"[{]" { s += $2 } END { printf "%d", s }' <<<"$metrics"; }
    files="$(sum contractc_table_data_files)"
    snapshots="$(sum contractc_table_snapshots)"
    metadata="$(sum contractc_table_metadata_bytes)"
    rss="$(awk '/^VmRSS:/ { print $2 * 1024 }' "/proc/$SERVER/status")"
    scan="$("$PYTHON" - "$DATA" <<'EOF'
import sys, time
from pyiceberg.catalog.sql import SqlCatalog
d = sys.argv[1]
catalog = SqlCatalog("contractc", uri="sqlite:///%s/catalog.db" % d, warehouse="file://%s/warehouse" % d)
table = catalog.load_table("analytics_events_db.events_table")
started = time.perf_counter()
rows = table.scan().to_arrow().num_rows
print(rows, "%.3f" % (time.perf_counter() - started))
EOF
)"
    echo "$files $snapshots $metadata $(du -sb "$DATA/warehouse" | cut -f1) $rss $scan"
}

show() {
    local label="$1"; shift
    local files="$1" snapshots="$2" metadata="$3" warehouse="$4" rss="$5" rows="$6" scan="$7"
    printf '%-6s data files %5d  snapshots %4d  metadata %8d B  warehouse %10d B  rss %5d MiB  rows %9d  scan %6.2f s (%5.2f s per M rows)\n' \
        "$label" "$files" "$snapshots" "$metadata" "$warehouse" $((rss / 1048576)) "$rows" "$scan" \
        "$(awk -v s="$scan" -v r="$rows" 'BEGIN { printf "%.3f", (r > 0 ? s * 1e6 / r : 0) }')"
}

echo "soak: $RATE events/s for $SECONDS_TOTAL s, commits every 2 s"
sleep "$EARLY_AT"
read -r -a EARLY <<<"$(figures)"
show early "${EARLY[@]}"
sleep $((SECONDS_TOTAL - EARLY_AT - 5))
read -r -a END <<<"$(figures)"
show end "${END[@]}"
wait $SYNTH || true
SYNTH=
grep -E "^sent|^throughput" "$DATA.synth" || true
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
per_row() { awk -v s="$1" -v r="$2" 'BEGIN { printf "%.9f", (r > 0 ? s / r : 0) }'; }
echo "end/early: data files $(ratio "${END[0]}" "${EARLY[0]}")  snapshots $(ratio "${END[1]}" "${EARLY[1]}")" \
    " metadata $(ratio "${END[2]}" "${EARLY[2]}")  rss $(ratio "${END[4]}" "${EARLY[4]}")" \
    " rows $(ratio "${END[5]}" "${EARLY[5]}")  scan per row $(ratio "$(per_row "${END[6]}" "${END[5]}")" "$(per_row "${EARLY[6]}" "${EARLY[5]}")")"
echo "maintenance: $(grep -c 'compacted' "$DATA.log" || true) compactions, $(grep -c 'deleted unreferenced' "$DATA.log" || true) orphan deletions logged"
