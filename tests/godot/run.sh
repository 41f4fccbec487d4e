#!/usr/bin/env bash
# The Godot client's checks (no Godot binary can be installed here, see tests/godot/README.md):
# gdparse and gdlint (gdtoolkit) on the runtime and every module, the GDScript interpreter's own
# tests, the runtime's tests run in it, and the corpus agreement of every module run in it.
# Usage: tests/godot/run.sh VENV CORPUS_DIR
# Ends with `godot: N passed, M failed`. A missing gdtoolkit is a failure, never a skip.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT="$PWD"
VENV="${1:?usage: tests/godot/run.sh VENV CORPUS_DIR}"
CORPUS="${2:?usage: tests/godot/run.sh VENV CORPUS_DIR}"
PY="$VENV/bin/python"
RUNTIME=compiler/templates/godot/contractc_runtime.gd
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

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

if [ ! -x "$VENV/bin/gdparse" ] || [ ! -x "$VENV/bin/gdlint" ] || ! "$PY" -c "import gdtoolkit" 2>/dev/null; then
    fail "gdtoolkit is missing from $VENV: $PY -m pip install -r tests/requirements.txt"
    echo "godot: $passed passed, $failed failed"
    exit 1
fi

# The modules: generated ones, and the hand-written samples of contracts without one.
mapfile -t GENERATED < <(ls generated/*/clients/godot/addons/contractc_*/*.gd \
    tests/fixtures/*/expected/*/clients/godot/addons/contractc_*/*.gd 2>/dev/null)
MODULES=()
for file in "${GENERATED[@]}"; do
    if [ "$(basename "$file")" = contractc_runtime.gd ]; then
        if cmp -s "$file" "$RUNTIME"; then ok "$file is the runtime template"; else fail "$file differs from $RUNTIME"; fi
    else
        MODULES+=("$file")
    fi
done
for sample in tests/godot/sample/*.gd; do
    name=$(basename "$sample" .gd)
    if ! printf '%s\n' "${MODULES[@]}" | grep -q "/contractc_$name/$name.gd$"; then MODULES+=("$sample"); fi
done

for file in "$RUNTIME" "${MODULES[@]}"; do
    if "$VENV/bin/gdparse" "$file" >"$WORK/gdparse.log" 2>&1; then ok "gdparse $file"; else fail "gdparse $file:"; cat "$WORK/gdparse.log"; fi
    # gdlint reads tests/godot/gdlintrc from its working directory.
    if (cd tests/godot && "$VENV/bin/gdlint" "$ROOT/$file") >"$WORK/gdlint.log" 2>&1; then
        ok "gdlint $file"
    else
        fail "gdlint $file:"; cat "$WORK/gdlint.log"
    fi
done

"$PY" tests/godot/test_gdscript.py >"$WORK/interpreter.log" 2>&1
grep -E '^FAIL' "$WORK/interpreter.log"; tail -1 "$WORK/interpreter.log"
count "$WORK/interpreter.log" "gdscript interpreter"

"$PY" tests/godot/test_runtime.py >"$WORK/runtime.log" 2>&1
grep -E '^FAIL' "$WORK/runtime.log"; tail -1 "$WORK/runtime.log"
count "$WORK/runtime.log" "godot runtime"

"$PY" tests/godot/agreement.py "$CORPUS" "${MODULES[@]}" >"$WORK/agreement.log" 2>&1
grep -E '^(FAIL|#)' "$WORK/agreement.log"; tail -1 "$WORK/agreement.log"
count "$WORK/agreement.log" "godot agreement"

echo "godot: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
