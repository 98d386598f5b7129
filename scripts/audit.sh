#!/usr/bin/env bash
# Supply-chain checks of the dependency graph with cargo-deny and /deny.toml:
#   advisories  RustSec security advisories, yanked crates, unmaintained direct dependencies
#   bans        duplicate versions and wildcard requirements (warnings)
#   licenses    every crate's license is on the allow list
#   sources     crates come from crates.io only
#
#   scripts/audit.sh
#
# Installs cargo-deny once if it is missing (cargo install cargo-deny --locked). The advisory
# database is fetched from GitHub; when that is not reachable (an offline machine, or a CI that
# can reach only package registries), the advisories are checked against the copy fetched last
# time if there is one, else skipped with a warning, and the other three checks still run
# offline: a license, ban or source violation always fails.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"

say() { printf '[audit] %s\n' "$*"; }
warn() { printf '[audit] WARNING: %s\n' "$*" >&2; }
die() { printf '[audit] error: %s\n' "$*" >&2; exit 1; }

LOG_DIR="$ROOT/.services"
mkdir -p "$LOG_DIR"

if ! cargo deny --version >/dev/null 2>&1; then
    command -v cargo >/dev/null 2>&1 || die "cargo is not on PATH; install Rust from https://rustup.rs, then re-run scripts/audit.sh"
    say "installing cargo-deny (cargo install cargo-deny --locked, once; log $LOG_DIR/cargo-deny-install.log)"
    cargo install cargo-deny --locked >"$LOG_DIR/cargo-deny-install.log" 2>&1 ||
        die "cargo install cargo-deny failed (see $LOG_DIR/cargo-deny-install.log); fix the error there, then re-run scripts/audit.sh"
fi
say "$(cargo deny --version)"

DENY=(cargo deny --color never --locked --config "$ROOT/deny.toml")

# cargo-deny reads the whole dependency graph offline, including crates of other platforms that
# a build here never downloads (r-efi, android_system_properties, ...): fetch them first.
cargo fetch --locked >"$LOG_DIR/cargo-fetch.log" 2>&1 ||
    die "cargo fetch failed (see $LOG_DIR/cargo-fetch.log); check that crates.io is reachable, then re-run scripts/audit.sh"

# The advisory database lives under $CARGO_HOME/advisory-dbs once fetched.
ADVISORY_DBS="${CARGO_HOME:-$HOME/.cargo}/advisory-dbs"
have_db() { compgen -G "$ADVISORY_DBS/*/crates" >/dev/null; }

if timeout 300 "${DENY[@]}" fetch db >"$LOG_DIR/cargo-deny-fetch.log" 2>&1; then
    say "advisory database fetched; checking advisories, bans, licenses and sources"
    "${DENY[@]}" --offline check advisories bans licenses sources ||
        die "cargo deny found problems (above): update or replace the crate named, or, for a license, add it to deny.toml with the reason; then re-run scripts/audit.sh"
    say "ok: advisories, bans, licenses and sources"
    exit 0
fi

reason="$( (grep -m1 'fatal:' "$LOG_DIR/cargo-deny-fetch.log" || grep -m1 -E 'error|ERROR' "$LOG_DIR/cargo-deny-fetch.log" || true) | sed 's/^.*\] //; s/^fatal: //')"
if have_db; then
    warn "cannot fetch the RustSec advisory database (${reason:-see $LOG_DIR/cargo-deny-fetch.log}); checking advisories against the copy fetched earlier, which may miss recent advisories"
    "${DENY[@]}" --offline check advisories bans licenses sources ||
        die "cargo deny found problems (above): update or replace the crate named, or, for a license, add it to deny.toml with the reason; then re-run scripts/audit.sh"
    say "ok: bans, licenses and sources; advisories against a possibly stale database"
else
    warn "cannot fetch the RustSec advisory database (${reason:-see $LOG_DIR/cargo-deny-fetch.log}) and no copy was fetched before: ADVISORIES WERE NOT CHECKED. Run scripts/audit.sh where github.com is reachable."
    "${DENY[@]}" --offline check bans licenses sources ||
        die "cargo deny found problems (above): replace the crate named, or, for a license, add it to deny.toml with the reason; then re-run scripts/audit.sh"
    say "ok: bans, licenses and sources (advisories not checked)"
fi
