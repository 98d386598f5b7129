#!/usr/bin/env bash
# Runs the playsource demo: the README's demo command.
#
# Sets the machine up (scripts/services.sh: Postgres, tansu on 127.0.0.1:9092), builds the
# release binary and runs `playsource demo`, passing its exit code through. Extra arguments
# are passed to `playsource demo`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"

die() { printf '[demo] error: %s\n' "$*" >&2; exit 1; }

"$ROOT/scripts/services.sh" || die "setting up services failed (scripts/services.sh, message above); fix that, then re-run ./scripts/demo.sh"

export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/playsource}"
export KAFKA_BROKERS="${KAFKA_BROKERS:-127.0.0.1:9092}"
export PLAYSOURCE_ARCHIVE="${PLAYSOURCE_ARCHIVE:-$ROOT/data/archive}"

command -v cargo >/dev/null 2>&1 || die "cargo is not on PATH; install Rust from https://rustup.rs, then re-run ./scripts/demo.sh"
printf '[demo] building: cargo build --release -p playsource\n'
cargo build --release -p playsource || die "the release build failed (cargo build --release -p playsource, errors above); fix them, then re-run ./scripts/demo.sh"

printf '[demo] running: target/release/playsource demo %s\n' "$*"
exec "$ROOT/target/release/playsource" demo "$@"
