#!/usr/bin/env bash
# Runs every test of the project: formatting, lints, unit, golden, property, CLI, conformance
# (Rust validators, draft-04 models, and the generated PySpark under a local Spark).
# Usage: tests/run.sh            (from anywhere; installs what it needs)
# Environment: CONTRACTC_VENV    Python venv to use/create (default: .venv in the checkout)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

step() { printf '\n==> %s\n' "$*"; }

# Installs the Debian packages named in the array `missing` (empty: nothing to do).
install_missing() {
    [ ${#missing[@]} -eq 0 ] && return 0
    if command -v apt-get >/dev/null; then
        apt-get update -qq && apt-get install -y -qq "${missing[@]}"
    else
        echo "missing ${missing[*]} and apt-get unavailable: install them" >&2
        exit 1
    fi
}

step "toolchain"
if ! command -v cargo >/dev/null; then
    echo "cargo not found: install Rust (https://rustup.rs) first" >&2
    exit 1
fi
for component in rustfmt clippy; do
    if command -v rustup >/dev/null && ! rustup component list --installed 2>/dev/null | grep -q "^$component"; then
        rustup component add "$component"
    fi
done
cargo --version

step "system packages (Java for Spark, jarjar for the Iceberg runtime's Jackson, promtool for the alert rules)"
missing=()
command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
[ -f /usr/share/java/jarjar.jar ] || missing+=(libjarjar-java)
command -v promtool >/dev/null || missing+=(prometheus)
install_missing
java -version 2>&1 | head -1

step "python venv (pyspark, pyiceberg, moto)"
VENV="${CONTRACTC_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt
"$VENV/bin/python" -c "import pyspark; print('pyspark', pyspark.__version__)"

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, warnings denied)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "contractc check contracts/ and build --check"
cargo build --quiet --locked -p contractc
CONTRACTC="${CARGO_TARGET_DIR:-$ROOT/target}/debug/contractc"
"$CONTRACTC" check contracts
"$CONTRACTC" build --check

step "cargo test"
# The runtime's tests read its Iceberg tables back with pyiceberg from this venv.
export CONTRACTC_PYTHON="$VENV/bin/python"
"$CONTRACTC_PYTHON" -c "import pyiceberg; print('pyiceberg', pyiceberg.__version__)"
CARGO_TEST_LOG="$(mktemp)"
cargo test --workspace --locked 2>&1 | tee "$CARGO_TEST_LOG"

step "a kill -9 across a rebuild loses nothing acknowledged (runtime/tests/rebuild.rs)"
# The second build is a copy of the workspace with game_events' rules changed, built beside it:
# about a minute when the dependencies are built already, seconds when nothing changed.
REBUILT_RUNTIME="$(tests/rebuilt_runtime.sh)"
CONTRACTC_REBUILT_RUNTIME="$REBUILT_RUNTIME" cargo test --locked -p contract-runtime --test rebuild \
    -- --ignored 2>&1 | tee -a "$CARGO_TEST_LOG"

step "many builds at once: contract-runtime with game_events at 2.0.0 and 1.2.0 released (#20)"
# Built like the rebuild's copy; tests/clients/run.sh runs the 1.2.0 clients against it.
CONTRACTC_VERSIONED_RUNTIME="$(tests/rebuilt_runtime.sh versioned)"
export CONTRACTC_VERSIONED_RUNTIME

step "players' privacy on serve: personal data stored as declared, a player forgotten without a trace (#23)"
# A copy built like the others, from tests/privacy/*.yaml (hashed, masked and dropped fields).
CONTRACTC_PRIVACY_RUNTIME="$(tests/rebuilt_runtime.sh privacy)"
PRIVACY_LOG="$(mktemp)"
(cd tests && "$VENV/bin/python" privacy.py "$CONTRACTC_PRIVACY_RUNTIME") | tee "$PRIVACY_LOG"

step "README and docs commands, run as written (tests/docs_commands.py)"
# Its own step, after cargo test built the binaries: a cargo run inside cargo test would wait on
# the build directory's lock.
DOCS_LOG="$(mktemp)"
"$VENV/bin/python" tests/docs_commands.py --bin-dir "${CARGO_TARGET_DIR:-$ROOT/target}/debug" \
    --python "$VENV/bin/python" | tee "$DOCS_LOG"

step "generated Python compiles"
mapfile -t SCRIPTS < <(ls generated/*/glue/streaming_job.py tests/fixtures/*/expected/*/glue/streaming_job.py)
mapfile -t ERASURE_SCRIPTS < <(ls generated/*/glue/erasure_job.py tests/fixtures/*/expected/*/glue/erasure_job.py)
mapfile -t MAINTENANCE_SCRIPTS < <(ls generated/*/glue/maintenance_job.py tests/fixtures/*/expected/*/glue/maintenance_job.py)
"$VENV/bin/python" -m py_compile "${SCRIPTS[@]}" "${ERASURE_SCRIPTS[@]}" "${MAINTENANCE_SCRIPTS[@]}"
echo "$((${#SCRIPTS[@]} + ${#ERASURE_SCRIPTS[@]} + ${#MAINTENANCE_SCRIPTS[@]})) scripts compile"

step "PySpark conformance (generated Glue rules vs the labelled corpus)"
CORPUS="$(mktemp -d)"
trap 'rm -rf "$CORPUS"' EXIT
"$CONTRACTC" corpus contracts tests/fixtures --out "$CORPUS"
SPARK_LOG="$(mktemp)"
SPARK_LOCAL_IP=127.0.0.1 "$VENV/bin/python" tests/pyspark_conformance.py "$CORPUS" "${SCRIPTS[@]}" 2> >(grep -v -E "WARN|setLogLevel|^\s*$" >&2) | tee "$SPARK_LOG"

step "the Glue jobs, executed (local Spark + Iceberg), against serve's lake"
GLUE_LOG="$(mktemp)"
(cd tests && SPARK_LOCAL_IP=127.0.0.1 "$VENV/bin/python" glue_job.py "${CARGO_TARGET_DIR:-$ROOT/target}/debug/contract-runtime" "$CORPUS") \
    2> >(grep -v -E "WARN|setLogLevel|^\s*$" >&2) | tee "$GLUE_LOG"

step "the Glue job with game_events at 2.0.0 and 1.2.0 released, against serve (#20)"
# The versioned copy's own job and corpus (every supported version's), with mixed-version traffic.
VCORPUS="$(mktemp -d)"
(cd "$(dirname "$CONTRACTC_VERSIONED_RUNTIME")/../versioned-workspace" && "$CONTRACTC" corpus contracts --out "$VCORPUS")
VGLUE_LOG="$(mktemp)"
(cd tests && SPARK_LOCAL_IP=127.0.0.1 "$VENV/bin/python" glue_job.py "$CONTRACTC_VERSIONED_RUNTIME" "$VCORPUS" \
    "$(dirname "$CONTRACTC_VERSIONED_RUNTIME")/../versioned-workspace") \
    2> >(grep -v -E "WARN|setLogLevel|^\s*$" >&2) | tee "$VGLUE_LOG"
rm -rf "$VCORPUS"

step "the Glue job with personal data declared, against serve: the same hashes, no raw value kept (#23)"
PCORPUS="$(mktemp -d)"
(cd "$(dirname "$CONTRACTC_PRIVACY_RUNTIME")/../privacy-workspace" && "$CONTRACTC" corpus contracts --out "$PCORPUS")
PGLUE_LOG="$(mktemp)"
(cd tests && SPARK_LOCAL_IP=127.0.0.1 "$VENV/bin/python" glue_job.py "$CONTRACTC_PRIVACY_RUNTIME" "$PCORPUS" \
    "$(dirname "$CONTRACTC_PRIVACY_RUNTIME")/../privacy-workspace") \
    2> >(grep -v -E "WARN|setLogLevel|^\s*$" >&2) | tee "$PGLUE_LOG"
rm -rf "$PCORPUS"

step "the generated erasure job under local Spark + Iceberg: a player forgotten from the job's lake (#23)"
ERASURE_LOG="$(mktemp)"
(cd tests && SPARK_LOCAL_IP=127.0.0.1 "$VENV/bin/python" erasure_job.py "$(dirname "$CONTRACTC_PRIVACY_RUNTIME")/../privacy-workspace") \
    2> >(grep -v -E "WARN|setLogLevel|^\s*$" >&2) | tee "$ERASURE_LOG"

step "the generated maintenance job under local Spark + Iceberg: a lake of small batches compacted, same rows, exactly once kept (#24)"
# About five minutes: the streaming job writes twelve micro-batches per contract first.
MAINTENANCE_LOG="$(mktemp)"
(cd tests && SPARK_LOCAL_IP=127.0.0.1 "$VENV/bin/python" maintenance_job.py "$ROOT") \
    2> >(grep -v -E "WARN|setLogLevel|^\s*$" >&2) | tee "$MAINTENANCE_LOG"

step "the generated Athena views under local Spark SQL, over the streaming job's tables (#24)"
VIEWS_LOG="$(mktemp)"
(cd tests && SPARK_LOCAL_IP=127.0.0.1 "$VENV/bin/python" athena_views.py "$ROOT") \
    2> >(grep -v -E "WARN|setLogLevel|^\s*$" >&2) | tee "$VIEWS_LOG"

step "the generated Prometheus alert rules under promtool: check, and series that fire and do not fire each alert (#24)"
ALERTS_LOG="$(mktemp)"
"$VENV/bin/python" tests/alert_rules.py contracts generated | tee "$ALERTS_LOG"

step "the AWS edge function under cargo-lambda's emulator, on moto's Kinesis: serve's answers, the Glue job's rows"
cargo build --quiet --locked -p contract-edge
EDGE_LOG="$(mktemp)"
(cd tests && SPARK_LOCAL_IP=127.0.0.1 "$VENV/bin/python" edge_door.py "${CARGO_TARGET_DIR:-$ROOT/target}/debug/contract-runtime" \
    "${CARGO_TARGET_DIR:-$ROOT/target}/debug/contract-edge" "$CORPUS") \
    2> >(grep -v -E "WARN|setLogLevel|^\s*$" >&2) | tee "$EDGE_LOG"

step "the edge function with game_events at 2.0.0 and 1.2.0 released: serve's answers, the Glue job's rows (#20)"
VEDGE_LOG="$(mktemp)"
VCORPUS="$(mktemp -d)"
(cd "$(dirname "$CONTRACTC_VERSIONED_RUNTIME")/../versioned-workspace" && "$CONTRACTC" corpus contracts --out "$VCORPUS")
(cd tests && SPARK_LOCAL_IP=127.0.0.1 "$VENV/bin/python" edge_door.py "$CONTRACTC_VERSIONED_RUNTIME" \
    "$(dirname "$CONTRACTC_VERSIONED_RUNTIME")/contract-edge-versioned" "$VCORPUS" \
    "$(dirname "$CONTRACTC_VERSIONED_RUNTIME")/../versioned-workspace") \
    2> >(grep -v -E "WARN|setLogLevel|^\s*$" >&2) | tee "$VEDGE_LOG"
rm -rf "$VCORPUS"

step "generated clients (TypeScript, C#, C++): strict compiles, conformance, against serve"
missing=()
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
command -v curl >/dev/null || missing+=(curl)
command -v mcs >/dev/null || missing+=(mono-mcs)
command -v mono >/dev/null || missing+=(mono-runtime)
[ -n "$(find /usr/lib/mono -name System.Net.Http.dll -print -quit 2>/dev/null)" ] || missing+=(libmono-system-net-http4.0-cil)
command -v g++ >/dev/null || missing+=(g++)
[ -f /usr/include/x86_64-linux-gnu/curl/curl.h ] || [ -f /usr/include/curl/curl.h ] || missing+=(libcurl4-openssl-dev)
install_missing
CLIENTS_LOG="$(mktemp)"
tests/clients/run.sh "${CARGO_TARGET_DIR:-$ROOT/target}/debug/contract-runtime" "$CORPUS" | tee "$CLIENTS_LOG"

step "Godot client (GDScript, no engine here): gdparse + gdlint, the interpreter's tests, the corpus agreement run in it"
# tests/godot/README.md: what is executed (checks, JSON, formats) and what is parsed and linted only.
"$VENV/bin/gdlint" --version >/dev/null 2>&1 || { echo "gdtoolkit missing from $VENV (tests/requirements.txt)" >&2; exit 1; }
GODOT_LOG="$(mktemp)"
tests/godot/run.sh "$VENV" "$CORPUS" "${CARGO_TARGET_DIR:-$ROOT/target}/debug/contract-runtime" | tee "$GODOT_LOG"

step "quality console in a real browser (headless Chromium driven by selenium)"
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
install_missing
CONSOLE_LOG="$(mktemp)"
"$VENV/bin/python" tests/console_browser.py "${CARGO_TARGET_DIR:-$ROOT/target}/debug/contract-runtime" | tee "$CONSOLE_LOG"

step "soak, short mode (benches/soak.sh --short on the debug build: figures, no assertions)"
CONTRACT_RUNTIME="${CARGO_TARGET_DIR:-$ROOT/target}/debug/contract-runtime" benches/soak.sh --short

step "summary"
# One closing line for everything: Rust tests (all crates) plus the PySpark conformance cases.
passed=$(sed -n 's/^test result: [a-zA-Z]*\. \([0-9]*\) passed.*/\1/p' "$CARGO_TEST_LOG" | awk '{s+=$1} END {print s+0}')
failed=$(sed -n 's/^test result: .* \([0-9]*\) failed.*/\1/p' "$CARGO_TEST_LOG" | awk '{s+=$1} END {print s+0}')
spark_cases=$(sed -n 's/^pyspark conformance: \([0-9]*\) cases, \([0-9]*\) disagreements$/\1 \2/p' "$SPARK_LOG")
spark_total=${spark_cases% *}
spark_failed=${spark_cases#* }
glue_cases=$(sed -n 's/^glue job: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$GLUE_LOG" "$VGLUE_LOG" "$PGLUE_LOG" \
    | awk '{p+=$1; f+=$2} END {print p+0, f+0}')
glue_passed=${glue_cases% *}
glue_failed=${glue_cases#* }
clients_cases=$(sed -n 's/^clients: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$CLIENTS_LOG")
clients_passed=${clients_cases% *}
clients_failed=${clients_cases#* }
console_cases=$(sed -n 's/^console browser: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$CONSOLE_LOG")
console_passed=${console_cases% *}
console_failed=${console_cases#* }
edge_cases=$(sed -n 's/^edge door: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$EDGE_LOG" "$VEDGE_LOG" \
    | awk '{p+=$1; f+=$2} END {print p+0, f+0}')
edge_passed=${edge_cases% *}
edge_failed=${edge_cases#* }
docs_cases=$(sed -n 's/^docs commands: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$DOCS_LOG")
docs_passed=${docs_cases% *}
docs_failed=${docs_cases#* }
privacy_cases=$(sed -n 's/^\(privacy\|erasure job\): \([0-9]*\) passed, \([0-9]*\) failed$/\2 \3/p' "$PRIVACY_LOG" "$ERASURE_LOG" \
    | awk '{p+=$1; f+=$2} END {print p+0, f+0}')
privacy_passed=${privacy_cases% *}
privacy_failed=${privacy_cases#* }
lake_cases=$(sed -n 's/^\(maintenance job\|athena views\): \([0-9]*\) passed, \([0-9]*\) failed$/\2 \3/p' "$MAINTENANCE_LOG" "$VIEWS_LOG" \
    | awk '{p+=$1; f+=$2} END {print p+0, f+0}')
lake_passed=${lake_cases% *}
lake_failed=${lake_cases#* }
godot_cases=$(sed -n 's/^godot: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$GODOT_LOG")
godot_passed=${godot_cases% *}
godot_failed=${godot_cases#* }
alert_cases=$(sed -n 's/^alert rules: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$ALERTS_LOG")
alert_passed=${alert_cases% *}
alert_failed=${alert_cases#* }
rm -f "$GODOT_LOG" "$ALERTS_LOG" "$CARGO_TEST_LOG" "$SPARK_LOG" "$GLUE_LOG" "$VGLUE_LOG" "$PGLUE_LOG" "$PRIVACY_LOG" "$ERASURE_LOG" "$MAINTENANCE_LOG" "$VIEWS_LOG" "$EDGE_LOG" "$VEDGE_LOG" "$CLIENTS_LOG" "$CONSOLE_LOG" "$DOCS_LOG"
echo "rust tests: $passed passed, $failed failed; pyspark conformance cases: $spark_total, $spark_failed disagreeing; glue job checks: $glue_passed passed, $glue_failed failed; edge door checks: $edge_passed passed, $edge_failed failed; client checks: $clients_passed passed, $clients_failed failed; console browser checks: $console_passed passed, $console_failed failed; docs commands: $docs_passed passed, $docs_failed failed; privacy checks: $privacy_passed passed, $privacy_failed failed; lake maintenance and view checks: $lake_passed passed, $lake_failed failed; alert rule checks: $alert_passed passed, $alert_failed failed; godot client checks: $godot_passed passed, $godot_failed failed"
echo "total: $((passed + spark_total - spark_failed + glue_passed + edge_passed + clients_passed + console_passed + docs_passed + privacy_passed + lake_passed + alert_passed + godot_passed)) passed, $((failed + spark_failed + glue_failed + edge_failed + clients_failed + console_failed + docs_failed + privacy_failed + lake_failed + alert_failed + godot_failed)) failed"
