#!/usr/bin/env bash
# Runs every test of the project: formatting, lints, unit, golden, property and CLI tests.
# Usage: tests/run.sh            (from anywhere; installs what it needs)
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

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

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, warnings denied)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "contractc check contracts/"
cargo run --quiet --locked -p contractc -- check contracts

step "cargo test"
cargo test --workspace --locked
