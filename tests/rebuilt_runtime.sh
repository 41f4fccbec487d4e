#!/usr/bin/env bash
# Builds contract-runtime from a copy of this workspace whose contracts changed, and prints the
# binary's path. Usage: tests/rebuilt_runtime.sh [rules|versioned|privacy]
#
# - rules (default): changed the way a release changes rules: events older than 30 days are no
#   longer quarantined (a rule loosened), event_data holds at most 16 characters instead of 4096
#   (a rule tightened). runtime/tests/rebuild.rs crashes the workspace's build and restarts this
#   one on the same data (issue #27 item 9). Binary: contract-runtime-rebuilt.
# - versioned: game_events is tests/versioned/game_events.yaml (2.0.0, breaking changes
#   covered by a migration) with its releases 1.1.1 (retired), 1.2.0 and 1.3.0 (issue #20);
#   tests/versioning.py runs old clients against it. Binaries: contract-runtime-versioned, and
#   beside it contract-edge-versioned (the AWS door of the same build).
# - privacy: the contracts are tests/privacy/*.yaml, which declare personal data (`pii: hash`,
#   `mask`, `drop`; issue #23); tests/privacy.py forgets a player from what its serve kept, and
#   tests/glue_job.py compares it with the Glue job's. Binary: contract-runtime-privacy.
#
# Needs target/debug/contractc (tests/run.sh builds it).
#
# The copy shares the target directory (its dependencies are built already) without sharing an
# artefact with the workspace: cargo names a workspace crate's artefacts by its name, version
# and path relative to the workspace, the same in the copy, so the copy's crates get another
# version (and the crates that depend on them other hashes), and its binary another name.
# The copy lives at a fixed path and only files whose bytes changed are written again, so later
# runs rebuild only what changed.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
VARIANT="${1:-rules}"
case "$VARIANT" in
    rules) SUFFIX=rebuilt ;;
    versioned) SUFFIX=versioned ;;
    privacy) SUFFIX=privacy ;;
    *) echo "usage: tests/rebuilt_runtime.sh [rules|versioned|privacy]" >&2; exit 2 ;;
esac
COPY="$TARGET/$SUFFIX-workspace"
CONTRACTC="$TARGET/debug/contractc"
started=$SECONDS

# Writes stdin to $1 unless the file already holds exactly those bytes (keeps its mtime).
write_if_changed() {
    local staged
    staged="$(mktemp)"
    cat >"$staged"
    if cmp -s "$staged" "$1"; then
        rm -f "$staged"
    else
        mkdir -p "$(dirname "$1")"
        mv "$staged" "$1"
    fi
}

# Every source file but the ones changed below and the generated code the copy rebuilds; files
# the workspace no longer has leave the copy too.
cd "$ROOT"
mkdir -p "$COPY"
SOURCES="$(mktemp)"
trap 'rm -f "$SOURCES"' EXIT
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' file; do
    case "$file" in
        generated/* | contracts/game_events.yaml | contracts/match_events.yaml | contracts/game_events.releases/* | runtime/Cargo.toml | runtime/edge/Cargo.toml | Cargo.toml | Cargo.lock) continue ;;
    esac
    [ -f "$file" ] || continue
    printf '%s\n' "$file" >>"$SOURCES"
    case "$file" in
        # The copy's tests compile (below) against its renamed binary.
        runtime/tests/*.rs)
            sed "s/CARGO_BIN_EXE_contract-runtime\"/CARGO_BIN_EXE_contract-runtime-$SUFFIX\"/g" "$file" \
                | write_if_changed "$COPY/$file" ;;
        *) cmp -s "$file" "$COPY/$file" || write_if_changed "$COPY/$file" <"$file" ;;
    esac
done
(cd "$COPY" && find . -type f ! -path './generated/*' ! -path ./contracts/game_events.yaml ! -path ./contracts/match_events.yaml ! -path './contracts/game_events.releases/*' \
    ! -path ./runtime/Cargo.toml ! -path ./runtime/edge/Cargo.toml ! -path ./Cargo.toml ! -path ./Cargo.lock | sed 's|^\./||') \
    | sort | comm -23 - <(sort "$SOURCES") | while IFS= read -r stale; do rm -f "$COPY/$stale"; done

# Each change must apply: a contract edited upstream fails here instead of building a copy
# that is no different.
fail() { echo "rebuilt_runtime.sh: $1" >&2; exit 1; }
case "$VARIANT" in
    privacy) write_if_changed "$COPY/contracts/match_events.yaml" <tests/privacy/match_events.yaml ;;
    *) write_if_changed "$COPY/contracts/match_events.yaml" <contracts/match_events.yaml ;;
esac
case "$VARIANT" in
    rules)
        sed -e 's/offset: -30d, skew: 12h/offset: -3650d, skew: 12h/' -e 's/max_length: 4096/max_length: 16/' \
            contracts/game_events.yaml | write_if_changed "$COPY/contracts/game_events.yaml"
        grep -qF 'offset: -3650d' "$COPY/contracts/game_events.yaml" || fail "the not_before rule did not change"
        grep -qF 'max_length: 16' "$COPY/contracts/game_events.yaml" || fail "event_data's max_length did not change"
        ;;
    versioned)
        write_if_changed "$COPY/contracts/game_events.yaml" <tests/versioned/game_events.yaml
        for release in tests/versioned/game_events.releases/*.yaml; do
            write_if_changed "$COPY/contracts/game_events.releases/$(basename "$release")" <"$release"
        done
        ;;
    privacy)
        write_if_changed "$COPY/contracts/game_events.yaml" <tests/privacy/game_events.yaml
        ;;
esac
sed "/^\[\[bin\]\]/,/^path/ s/^name = \"contract-runtime\"\$/name = \"contract-runtime-$SUFFIX\"/" \
    runtime/Cargo.toml | write_if_changed "$COPY/runtime/Cargo.toml"
grep -qF "name = \"contract-runtime-$SUFFIX\"" "$COPY/runtime/Cargo.toml" || fail "the binary was not renamed"
sed "/^\[\[bin\]\]/,/^path/ s/^name = \"contract-edge\"\$/name = \"contract-edge-$SUFFIX\"/" \
    runtime/edge/Cargo.toml | write_if_changed "$COPY/runtime/edge/Cargo.toml"
grep -qF "name = \"contract-edge-$SUFFIX\"" "$COPY/runtime/edge/Cargo.toml" || fail "the edge function was not renamed"
sed "/^\[workspace.package\]/,/^\[/ s/^version = \".*\"\$/version = \"0.0.0-$SUFFIX\"/" Cargo.toml \
    | write_if_changed "$COPY/Cargo.toml"
grep -qF "version = \"0.0.0-$SUFFIX\"" "$COPY/Cargo.toml" || fail "the workspace's version did not change"
# The lock file names the members' versions: cargo brings the copy's up to date (only those).
write_if_changed "$COPY/Cargo.lock" <Cargo.lock

cd "$COPY"
# contractc writes only the files whose bytes change.
"$CONTRACTC" build >&2
# Built for an integration test, as `cargo test --workspace` builds the workspace's binary: the
# same dependency features, so the dependencies it built serve the copy too (a plain
# `cargo build -p contract-runtime` unifies fewer features and would compile a second set).
CARGO_TARGET_DIR="$TARGET" cargo test --quiet --offline --workspace --no-run --test rebuild >&2
if [ "$VARIANT" = versioned ]; then
    # The AWS door of the same build, beside the runtime (tests/edge_door.py WORKSPACE).
    CARGO_TARGET_DIR="$TARGET" cargo build --quiet --offline -p contract-edge >&2
fi
echo "rebuilt_runtime.sh: built in $((SECONDS - started)) s" >&2
echo "$TARGET/debug/contract-runtime-$SUFFIX"
