#!/usr/bin/env bash
# Tests of the generated clients: compiled under each language's strict settings, checked
# against the labelled corpus, and run against a real `contract-runtime serve`.
# Usage: tests/clients/run.sh CONTRACT_RUNTIME_BINARY CORPUS_DIR
# Ends with `clients: N passed, M failed`. A missing toolchain is a failure, never a skip.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT="$PWD"
RUNTIME="${1:?usage: tests/clients/run.sh CONTRACT_RUNTIME_BINARY CORPUS_DIR}"
CORPUS="${2:?usage: tests/clients/run.sh CONTRACT_RUNTIME_BINARY CORPUS_DIR}"
NODE_CACHE="${CONTRACTC_NODE_CACHE:-$HOME/.cache/contractc/node}"
TYPESCRIPT_VERSION=5.9.3
TYPES_NODE_VERSION=20.19.9

WORK="$(mktemp -d)"
SERVE_PID=""
cleanup() {
    if [ -n "$SERVE_PID" ]; then kill -TERM "$SERVE_PID" 2>/dev/null; wait "$SERVE_PID" 2>/dev/null; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

passed=0
failed=0
fail() { echo "FAIL - $*"; failed=$((failed + 1)); }
ok() { echo "ok - $*"; passed=$((passed + 1)); }
# Adds up the `<suite>: N passed, M failed` line of a test program's output.
count() {
    local line
    line=$(sed -n 's/^[a-z0-9 -]*: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$1" | tail -1)
    if [ -z "$line" ]; then
        fail "$2 printed no summary (crashed?)"
        return
    fi
    passed=$((passed + ${line% *}))
    failed=$((failed + ${line#* }))
}

# ----- serve ---------------------------------------------------------------------------------
start_serve() {
    if [ ! -x "$RUNTIME" ]; then
        fail "no contract-runtime binary at $RUNTIME (cargo build -p contract-runtime)"
        return 1
    fi
    PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    mkdir -p "$WORK/serve"
    (cd "$WORK/serve" && exec "$RUNTIME" serve --listen "127.0.0.1:$PORT" --data-dir "$WORK/serve/data" \
        --commit-interval-ms 300 --dev-mint-scopes --guests-per-minute 0) >"$WORK/serve.log" 2>&1 &
    SERVE_PID=$!
    for _ in $(seq 1 100); do
        if curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1; then
            BASE_URL="http://127.0.0.1:$PORT/prod/"
            return 0
        fi
        sleep 0.1
    done
    fail "serve did not start: $(tail -5 "$WORK/serve.log")"
    return 1
}

# ----- TypeScript ------------------------------------------------------------------------------
typescript() {
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        fail "typescript: node and npm are missing: apt-get install nodejs npm (Node 18 or newer)"
        return
    fi
    if [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 18 ]; then
        fail "typescript: Node $(node --version) is too old: the client needs Node 18+ (global fetch)"
        return
    fi
    local tsc="$NODE_CACHE/node_modules/.bin/tsc"
    if [ ! -x "$tsc" ] || [ "$("$tsc" --version)" != "Version $TYPESCRIPT_VERSION" ] \
        || ! grep -q "\"version\": \"$TYPES_NODE_VERSION\"" "$NODE_CACHE/node_modules/@types/node/package.json" 2>/dev/null; then
        mkdir -p "$NODE_CACHE"
        [ -f "$NODE_CACHE/package.json" ] || echo '{"private": true}' >"$NODE_CACHE/package.json"
        (cd "$NODE_CACHE" && npm install --no-audit --no-fund --silent \
            "typescript@$TYPESCRIPT_VERSION" "@types/node@$TYPES_NODE_VERSION") || {
            fail "typescript: npm install typescript@$TYPESCRIPT_VERSION failed"
            return
        }
    fi
    local strict=(--strict --noUnusedLocals --noUnusedParameters --noImplicitReturns
        --noFallthroughCasesInSwitch --noImplicitOverride --forceConsistentCasingInFileNames)
    local build="$WORK/ts"
    mkdir -p "$build/contracts"
    local dir name
    for dir in generated/*/clients/typescript tests/fixtures/*/expected/*/clients/typescript; do
        name=$(basename "$(dirname "$(dirname "$dir")")")
        cp -r "$dir" "$build/contracts/$name"
    done
    # The generated modules alone, as a browser build sees them: DOM library, no Node types.
    cp "$WORK/snippets/first_event.ts" "$WORK/snippets/sign_in.ts" "$build/contracts/"
    local modules=("$build"/contracts/*/*.ts)
    mkdir -p "$WORK/no-types"
    if "$tsc" "${strict[@]}" --target es2020 --module es2020 --moduleResolution bundler \
        --lib es2020,dom --typeRoots "$WORK/no-types" --noEmit "${modules[@]}" >"$WORK/tsc-browser.log" 2>&1; then
        ok "typescript: generated modules compile under tsc --strict (browser: DOM lib, no Node types)"
    else
        fail "typescript: generated modules do not compile (browser):"; cat "$WORK/tsc-browser.log"
    fi
    if "$tsc" "${strict[@]}" --target es2022 --module es2022 --moduleResolution bundler \
        --lib es2022,dom --typeRoots "$WORK/no-types" --noEmit "$build/contracts/first_event.ts" "$build/contracts/sign_in.ts" >"$WORK/tsc-snippet.log" 2>&1; then
        ok "typescript: the first-event and sign-in snippets of docs/clients.md compile"
    else
        fail "typescript: the first-event or sign-in snippet of docs/clients.md does not compile:"; cat "$WORK/tsc-snippet.log"
    fi
    cp tests/clients/typescript/*.ts "$build/"
    if (cd "$build" && "$tsc" "${strict[@]}" --target es2022 --module es2022 --moduleResolution bundler \
        --lib es2022,dom --types node --typeRoots "$NODE_CACHE/node_modules/@types" --outDir out \
        ./*.ts contracts/*/*.ts) >"$WORK/tsc-node.log" 2>&1; then
        ok "typescript: generated modules and tests compile under tsc --strict (Node)"
    else
        fail "typescript: tests do not compile (Node):"; cat "$WORK/tsc-node.log"
        return
    fi
    echo '{"type": "module"}' >"$build/out/package.json"
    node "$build/out/conformance.js" "$CORPUS" >"$WORK/ts-conformance.log" 2>&1
    grep -E '^(FAIL|#)' "$WORK/ts-conformance.log"; tail -1 "$WORK/ts-conformance.log"
    count "$WORK/ts-conformance.log" "typescript conformance"
    node "$build/out/unit.js" >"$WORK/ts-unit.log" 2>&1
    cat "$WORK/ts-unit.log"
    count "$WORK/ts-unit.log" "typescript unit"
    if [ -n "${BASE_URL:-}" ]; then
        mkdir -p "$WORK/ts-state"
        node "$build/out/e2e.js" "$BASE_URL" "$WORK/ts-state" >"$WORK/ts-e2e.log" 2>&1
        cat "$WORK/ts-e2e.log"
        count "$WORK/ts-e2e.log" "typescript e2e"
    fi
}

# ----- C# (Unity package, compiled with Mono outside the engine) --------------------------------
csharp() {
    if ! command -v mcs >/dev/null || ! command -v mono >/dev/null; then
        fail "csharp: mcs and mono are missing: apt-get install mono-mcs mono-runtime libmono-system-net-http4.0-cil"
        return
    fi
    local build="$WORK/cs"
    mkdir -p "$build"
    local sources=(generated/*/clients/unity/Runtime/*.cs tests/fixtures/*/expected/*/clients/unity/Runtime/*.cs)
    # Each package alone, as Unity compiles its assembly (outside the engine: no UNITY_ symbols).
    local dir all_ok=1
    for dir in generated/*/clients/unity/Runtime tests/fixtures/*/expected/*/clients/unity/Runtime; do
        if ! mcs -langversion:7 -warnaserror+ -warn:4 -target:library -r:System.Net.Http.dll \
            -out:"$build/$(basename "$(dirname "$(dirname "$(dirname "$dir")")")").dll" "$dir"/*.cs >"$WORK/mcs.log" 2>&1; then
            all_ok=0
            fail "csharp: $dir does not compile with warnings as errors:"; cat "$WORK/mcs.log"
        fi
    done
    [ "$all_ok" -eq 1 ] && ok "csharp: every package compiles (mcs -langversion:7 -warnaserror+ -warn:4)"
    if mcs -langversion:7 -warnaserror+ -warn:4 -target:library -r:System.Net.Http.dll -out:"$build/FirstEvent.dll" \
        generated/game_events/clients/unity/Runtime/*.cs "$WORK/snippets/FirstEvent.cs" "$WORK/snippets/SignIn.cs" >"$WORK/mcs-snippet.log" 2>&1; then
        ok "csharp: the first-event and sign-in snippets of docs/clients.md compile"
    else
        fail "csharp: the first-event or sign-in snippet of docs/clients.md does not compile:"; cat "$WORK/mcs-snippet.log"
    fi
    if ! mcs -langversion:7 -warnaserror+ -warn:4 -r:System.Net.Http.dll -out:"$build/Tests.exe" \
        "${sources[@]}" tests/clients/csharp/Tests.cs >"$WORK/mcs-tests.log" 2>&1; then
        fail "csharp: the tests do not compile:"; cat "$WORK/mcs-tests.log"
        return
    fi
    mono "$build/Tests.exe" conformance "$CORPUS" >"$WORK/cs-conformance.log" 2>&1
    grep -E '^(FAIL|#)' "$WORK/cs-conformance.log"; tail -1 "$WORK/cs-conformance.log"
    count "$WORK/cs-conformance.log" "csharp conformance"
    mono "$build/Tests.exe" unit >"$WORK/cs-unit.log" 2>&1
    cat "$WORK/cs-unit.log"
    count "$WORK/cs-unit.log" "csharp unit"
    if [ -n "${BASE_URL:-}" ]; then
        mkdir -p "$WORK/cs-state"
        mono "$build/Tests.exe" e2e "$BASE_URL" "$WORK/cs-state" >"$WORK/cs-e2e.log" 2>&1
        cat "$WORK/cs-e2e.log"
        count "$WORK/cs-e2e.log" "csharp e2e"
    fi
}

# ----- C++ (the engine-free core; the Unreal module needs the engine and is not compiled) -------
cpp() {
    if ! command -v g++ >/dev/null || { [ ! -f /usr/include/x86_64-linux-gnu/curl/curl.h ] && [ ! -f /usr/include/curl/curl.h ]; }; then
        fail "cpp: g++ or libcurl headers are missing: apt-get install g++ libcurl4-openssl-dev"
        return
    fi
    local build="$WORK/cpp" dir name all_ok=1
    local strict=(-std=c++17 -Wall -Wextra -Werror)
    mkdir -p "$build/contracts"
    for dir in generated/*/clients/unreal/core tests/fixtures/*/expected/*/clients/unreal/core; do
        name=$(basename "$(dirname "$(dirname "$(dirname "$dir")")")")
        cp -r "$dir" "$build/contracts/$name"
        printf '#include "%s.hpp"\n#include "contractc_curl.hpp"\n' "$name" >"$build/$name.cpp"
        if ! g++ "${strict[@]}" -fsyntax-only -I "$build/contracts/$name" "$build/$name.cpp" >"$WORK/gxx.log" 2>&1; then
            all_ok=0
            fail "cpp: $dir does not compile with g++ ${strict[*]}:"; cat "$WORK/gxx.log"
        fi
    done
    [ "$all_ok" -eq 1 ] && ok "cpp: every core compiles alone (g++ ${strict[*]})"
    local snippet
    for snippet in first_event sign_in; do
        if g++ "${strict[@]}" -I "$build/contracts/game_events" -o "$build/$snippet" "$WORK/snippets/$snippet.cpp" -lcurl \
            >"$WORK/gxx-snippet.log" 2>&1; then
            ok "cpp: the ${snippet//_/-} snippet of docs/clients.md compiles"
        else
            fail "cpp: the ${snippet//_/-} snippet of docs/clients.md does not compile:"; cat "$WORK/gxx-snippet.log"
        fi
    done
    cp tests/clients/cpp/tests.cpp "$build/"
    if ! (cd "$build" && g++ "${strict[@]}" -O1 -o tests tests.cpp -lcurl) >"$WORK/gxx-tests.log" 2>&1; then
        fail "cpp: the tests do not compile:"; cat "$WORK/gxx-tests.log"
        return
    fi
    "$build/tests" conformance "$CORPUS" >"$WORK/cpp-conformance.log" 2>&1
    grep -E '^(FAIL|#)' "$WORK/cpp-conformance.log"; tail -1 "$WORK/cpp-conformance.log"
    count "$WORK/cpp-conformance.log" "cpp conformance"
    TMPDIR="$WORK" "$build/tests" unit >"$WORK/cpp-unit.log" 2>&1
    cat "$WORK/cpp-unit.log"
    count "$WORK/cpp-unit.log" "cpp unit"
    if [ -n "${BASE_URL:-}" ]; then
        mkdir -p "$WORK/cpp-state"
        "$build/tests" e2e "$BASE_URL" "$WORK/cpp-state" >"$WORK/cpp-e2e.log" 2>&1
        cat "$WORK/cpp-e2e.log"
        count "$WORK/cpp-e2e.log" "cpp e2e"
        # The persistent queue across kill -9: a child enqueues offline, printing each id once the
        # journal has it, and is killed mid-stream; a new process must find every printed event
        # (and at most the one being written), send each once, and then have nothing left.
        mkdir -p "$WORK/cpp-queue"
        : >"$WORK/cpp-printed.txt"
        "$build/tests" queue-fill "$WORK/cpp-queue" 1000000 >"$WORK/cpp-printed.txt" 2>&1 &
        local child=$! lines=0
        for _ in $(seq 1 200); do
            lines=$(wc -l <"$WORK/cpp-printed.txt")
            [ "$lines" -ge 500 ] && break
            sleep 0.05
        done
        kill -KILL "$child" 2>/dev/null
        wait "$child" 2>/dev/null
        echo "# killed the queue-fill child after $(wc -l <"$WORK/cpp-printed.txt") acknowledged events"
        "$build/tests" queue-resume "$BASE_URL" "$WORK/cpp-queue" "$WORK/cpp-printed.txt" >"$WORK/cpp-queue.log" 2>&1
        cat "$WORK/cpp-queue.log"
        count "$WORK/cpp-queue.log" "cpp queue-resume"
    fi
}

# ----- any contract text `check` accepts compiles in every language (#25) ----------------------
# Seeded contracts with hostile text wherever a contract holds text and keyword names wherever it
# holds a name, through check and build, then each generated language's compiler or parser
# (tests/clients/fuzz_text.py; FUZZ_TEXT_SEED replays another seed). It needs the venv's Python
# (PyYAML, gdtoolkit) and contractc beside the runtime binary.
fuzz_text() {
    local python="${CONTRACTC_PYTHON:-python3}"
    "$python" tests/clients/fuzz_text.py --contractc "$(dirname "$RUNTIME")/contractc" >"$WORK/fuzz-text.log" 2>&1
    cat "$WORK/fuzz-text.log"
    count "$WORK/fuzz-text.log" "fuzz text"
}

# ----- exactly once under faults (#21) ---------------------------------------------------------
# The TypeScript, C# and C++ clients and synth send through a proxy that loses answers, resets
# uploads and answers late, while serve and the clients are killed with -9 and started again:
# serve's lake must hold every event once (tests/exactly_once.py). Its own serve and data.
exactly_once() {
    local python="${CONTRACTC_PYTHON:-python3}"
    if [ ! -f "$WORK/ts/out/faults.js" ]; then
        fail "exactly once: the TypeScript producer did not compile"
        return
    fi
    local producers=("typescript=node $WORK/ts/out/faults.js")
    if [ -f "$WORK/cs/Tests.exe" ]; then producers+=("csharp=mono $WORK/cs/Tests.exe faults"); else fail "exactly once: no C# producer (the C# tests did not compile)"; fi
    if [ -x "$WORK/cpp/tests" ]; then producers+=("cpp=$WORK/cpp/tests faults"); else fail "exactly once: no C++ producer (the C++ tests did not compile)"; fi
    "$python" tests/exactly_once.py "$RUNTIME" "${producers[@]}" >"$WORK/exactly-once.log" 2>&1
    cat "$WORK/exactly-once.log"
    count "$WORK/exactly-once.log" "exactly once"
}

# ----- the game's own sign-in (#25) -----------------------------------------------------------
# Each client with a token provider backed by a second, test-only identity provider
# (tests/clients/test_idp.py) against its own serve started with --trust-issuer (both started
# and stopped by tests/clients/sign_in.py, which reads the lake for player_id and exactly once).
sign_in() {
    local python="${CONTRACTC_PYTHON:-python3}"
    local clients=()
    if [ -f "$WORK/ts/out/sign_in.js" ]; then clients+=("typescript=node $WORK/ts/out/sign_in.js"); else fail "sign in: no TypeScript client (the tests did not compile)"; fi
    if [ -f "$WORK/cs/Tests.exe" ]; then clients+=("csharp=mono $WORK/cs/Tests.exe sign-in"); else fail "sign in: no C# client (the tests did not compile)"; fi
    if [ -x "$WORK/cpp/tests" ]; then clients+=("cpp=$WORK/cpp/tests sign-in"); else fail "sign in: no C++ client (the tests did not compile)"; fi
    [ "${#clients[@]}" -gt 0 ] || return
    "$python" tests/clients/sign_in.py "$RUNTIME" "${clients[@]}" >"$WORK/sign-in.log" 2>&1
    cat "$WORK/sign-in.log"
    count "$WORK/sign-in.log" "sign in"
}

# ----- many builds at once (#20) -----------------------------------------------------------------
# These clients are generated from game_events 1.2.0. Against a serve whose game_events is 2.0.0
# with 1.2.0 released (tests/rebuilt_runtime.sh versioned, given as CONTRACTC_VERSIONED_RUNTIME),
# their events are judged as 1.2.0 and upcast (tests/versioning.py), as are the reference
# client's.
versioning() {
    local python="${CONTRACTC_PYTHON:-python3}"
    if [ -z "${CONTRACTC_VERSIONED_RUNTIME:-}" ] || [ ! -x "$CONTRACTC_VERSIONED_RUNTIME" ]; then
        fail "versioning: CONTRACTC_VERSIONED_RUNTIME is not set to a built runtime (tests/rebuilt_runtime.sh versioned)"
        return
    fi
    local producers=()
    if [ -f "$WORK/ts/out/faults.js" ]; then producers+=("typescript=node $WORK/ts/out/faults.js"); else fail "versioning: no TypeScript producer"; fi
    if [ -f "$WORK/cs/Tests.exe" ]; then producers+=("csharp=mono $WORK/cs/Tests.exe faults"); else fail "versioning: no C# producer"; fi
    if [ -x "$WORK/cpp/tests" ]; then producers+=("cpp=$WORK/cpp/tests faults"); else fail "versioning: no C++ producer"; fi
    (cd tests && "$python" versioning.py "$CONTRACTC_VERSIONED_RUNTIME" "${producers[@]}") >"$WORK/versioning.log" 2>&1
    cat "$WORK/versioning.log"
    count "$WORK/versioning.log" "versioning"
}

# ----- Godot: the names the snippets of docs/clients.md use (parsed and linted, with the addon, by tests/godot/run.sh)
godot_snippets() {
    python3 tests/clients/gdscript_snippets.py "$WORK/snippets/first_event.gd" "$WORK/snippets/sign_in.gd" \
        >"$WORK/gd-snippets.log" 2>&1
    cat "$WORK/gd-snippets.log"
    passed=$((passed + $(grep -c '^ok - ' "$WORK/gd-snippets.log")))
    failed=$((failed + $(grep -c '^FAIL - ' "$WORK/gd-snippets.log")))
    grep -qE '^(ok|FAIL) - ' "$WORK/gd-snippets.log" || fail "godot: the snippet check printed nothing (crashed?)"
}

started=$(date +%s)
python3 tests/clients/doc_snippets.py docs/clients.md "$WORK/snippets" || fail "docs/clients.md: its snippets (first event, sign-in) not found"
start_serve || true
typescript
csharp
cpp
fuzz_text
exactly_once
sign_in
versioning
godot_snippets
if [ -n "$SERVE_PID" ]; then
    kill -TERM "$SERVE_PID" && wait "$SERVE_PID"
    status=$?
    SERVE_PID=""
    if [ "$status" -eq 0 ]; then ok "serve stopped cleanly"; else fail "serve exited with $status: $(tail -5 "$WORK/serve.log")"; fi
fi
echo "client tests took $(( $(date +%s) - started )) s"
echo "clients: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
