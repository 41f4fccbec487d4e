#!/usr/bin/env bash
# Load benchmark of `contract-runtime serve` on 127.0.0.1, driven by `contract-runtime synth`
# (the same binary, release build). Prints events/s and p50/p99 latency for:
#   1. single-event requests with JWTs (one token per sender, verified on every request),
#   2. the same at half the measured rate (the p99 target is for half load),
#   3. batches of 500 events (NDJSON; the contracts' default `max_batch_events`) into Iceberg.
# Targets (2-core machine): >= 20k single-event req/s, >= 100k events/s batched, p99 < 50 ms at
# half load. Usage: benches/load.sh [EVENTS]   (default 200000)
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS="${1:-200000}"
TARGET="${CARGO_TARGET_DIR:-target}"
cargo build --release --quiet -p contract-runtime
BIN="$TARGET/release/contract-runtime"
DATA="$(mktemp -d)"
PORT=18765
"$BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$DATA" --commit-interval-ms 2000 2>"$DATA.log" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -rf "$DATA" "$DATA.log"' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done

synth() { "$BIN" synth --login-endpoint "http://127.0.0.1:$PORT/prod/" \
    --backend-endpoint "http://127.0.0.1:$PORT/prod/put-record" --reuse-token "$@" 2>&1; }

echo "== single-event requests (JWT per request, 64 senders), $EVENTS events"
SINGLE="$(synth --max-count "$EVENTS" --concurrency 64)"
echo "$SINGLE"
RATE="$(echo "$SINGLE" | sed -n 's/^throughput \([0-9]*\) events.*/\1/p')"
HALF=$(( RATE / 2 ))
echo
echo "== single-event requests at half load ($HALF req/s)"
synth --max-count $(( HALF * 10 )) --concurrency 64 --rate "$HALF"
echo
echo "== batches of 500 events, 4 senders, $(( EVENTS * 5 )) events"
synth --max-count $(( EVENTS * 5 )) --concurrency 4 --batch 500
sleep 3
echo
grep -E "committed" "$DATA.log" | tail -3 | sed 's/\x1b\[[0-9;]*m//g'
# synth shares the two cores with the server; wrk (Debian package), when present, measures the
# server with a much lighter client.
if command -v wrk >/dev/null; then
    echo
    echo "== wrk: single-event requests, one token, 64 connections, 10 s"
    TOKEN="$(curl -s "http://127.0.0.1:$PORT/prod/login-as-guest" | sed -n 's/.*"auth_token":"\([^"]*\)".*/\1/p')"
    cat > "$DATA.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"event_id": "00006", "event_type": "Login", "updated_at": "$(date -u '+%F %T')", "event_data": "The only thing we have to fear is fear itself."}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "$TOKEN"
LUA
    wrk -t1 -c64 -d10s --latency -s "$DATA.lua" "http://127.0.0.1:$PORT/prod/put-record" | grep -E "Requests/sec|50%|99%|Non-2xx"
    rm -f "$DATA.lua"
fi

# Deduplication (#21): game_events declares `ingest.dedup` (synth gives every event its id), so
# everything above ran with the index on. The same loads against a serve with --no-dedup, in this
# run, give the ratio; the index's bytes per id come from its allocation (/metrics).
DEDUP_EVENTS=$(( EVENTS / 2 ))
OFF_PORT=18766
OFF_DATA="$(mktemp -d)"
"$BIN" serve --listen "127.0.0.1:$OFF_PORT" --data-dir "$OFF_DATA" --commit-interval-ms 2000 --no-dedup 2>"$OFF_DATA.log" &
OFF_SERVER=$!
trap 'kill $SERVER $OFF_SERVER 2>/dev/null; wait $SERVER $OFF_SERVER 2>/dev/null; rm -rf "$DATA" "$DATA.log" "$OFF_DATA" "$OFF_DATA.log"' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$OFF_PORT/healthz" >/dev/null && break; sleep 0.1; done
rate_at() { # PORT ARGS...: events/s of one synth run
    local port="$1"; shift
    "$BIN" synth --login-endpoint "http://127.0.0.1:$port/prod/" \
        --backend-endpoint "http://127.0.0.1:$port/prod/put-record" --reuse-token "$@" 2>&1 \
        | sed -n 's/^throughput \([0-9]*\) events.*/\1/p'
}
echo
echo "== deduplication on vs off (the same load on each, $DEDUP_EVENTS events single, $(( DEDUP_EVENTS * 5 )) batched)"
for round in 1 2; do
    ON_SINGLE=$(rate_at "$PORT" --max-count "$DEDUP_EVENTS" --concurrency 64)
    OFF_SINGLE=$(rate_at "$OFF_PORT" --max-count "$DEDUP_EVENTS" --concurrency 64)
    ON_BATCH=$(rate_at "$PORT" --max-count $(( DEDUP_EVENTS * 5 )) --concurrency 4 --batch 500)
    OFF_BATCH=$(rate_at "$OFF_PORT" --max-count $(( DEDUP_EVENTS * 5 )) --concurrency 4 --batch 500)
    awk -v r="$round" -v a="$ON_SINGLE" -v b="$OFF_SINGLE" -v c="$ON_BATCH" -v d="$OFF_BATCH" 'BEGIN {
        printf "round %d: single %d vs %d events/s (on/off %.2fx); batched %d vs %d events/s (on/off %.2fx); target >= 0.9x\n",
            r, a, b, a / b, c, d, c / d }'
done
sleep 3
METRICS="$(curl -s "http://127.0.0.1:$PORT/metrics")"
IDS=$(echo "$METRICS" | sed -n 's/^contractc_dedup_ids{contract="game_events"} \([0-9]*\)/\1/p')
BYTES=$(echo "$METRICS" | sed -n 's/^contractc_dedup_index_bytes{contract="game_events"} \([0-9]*\)/\1/p')
awk -v i="$IDS" -v b="$BYTES" 'BEGIN { printf "dedup index: %d ids, %d bytes allocated: %.1f bytes per id (%.0f MiB per million ids)\n", i, b, b / i, b / i * 1e6 / 1048576 }'
