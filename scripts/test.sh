#!/usr/bin/env bash
# Runs every check and test of playsource: the README's test command, and what CI runs.
#
# Sets the machine up first (scripts/services.sh: Postgres, tansu on 127.0.0.1:9092, the
# Python venv), then: compose-file validation, the Prometheus rules and config (promtool) and
# the Grafana dashboard JSON, rustfmt, clippy, the test suite
# (cargo-nextest when installed, else cargo test) and doc tests. Stops at the first failure.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"

say() { printf '\n[test] ==> %s\n' "$*"; }
die() { printf '\n[test] error: %s\n' "$*" >&2; exit 1; }

# run NAME HINT COMMAND...: runs one step, stops with a one-sentence error if it fails.
run() {
    local name="$1" hint="$2"
    shift 2
    say "$name: $*"
    local rc=0
    "$@" || rc=$?
    [ "$rc" -eq 0 ] || die "step '$name' failed with exit code $rc ($*); $hint, then re-run ./scripts/test.sh"
}

"$ROOT/scripts/services.sh" || die "setting up services failed (scripts/services.sh, message above); fix that, then re-run ./scripts/test.sh"

export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/playsource}"
export KAFKA_BROKERS="${KAFKA_BROKERS:-127.0.0.1:9092}"
export PROPTEST_CASES="${PROPTEST_CASES:-10000}"
export PLAYSOURCE_PYTHON="$ROOT/.services/venv/bin/python"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-$([ -t 1 ] && echo auto || echo never)}"
[ -x "$PLAYSOURCE_PYTHON" ] || die "$PLAYSOURCE_PYTHON is missing; delete .services/venv and re-run ./scripts/test.sh"

cargo fmt --version >/dev/null 2>&1 || die "cargo fmt is not installed; run 'rustup component add rustfmt', then re-run ./scripts/test.sh"
cargo clippy --version >/dev/null 2>&1 || die "cargo clippy is not installed; run 'rustup component add clippy', then re-run ./scripts/test.sh"

run "compose file" "fix docker-compose.yml against the Compose spec" \
    "$ROOT/.services/venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec docker-compose.yml

command -v promtool >/dev/null 2>&1 || die "promtool is not installed; run 'apt-get install prometheus' (scripts/services.sh does), then re-run ./scripts/test.sh"

run "alert rules" "fix deploy/prometheus/alerts.yml" \
    promtool check rules deploy/prometheus/alerts.yml

run "alert rule tests" "fix deploy/prometheus/alerts.yml or deploy/prometheus/alerts_test.yml" \
    promtool test rules deploy/prometheus/alerts_test.yml

# rule_files are resolved relative to the config file, so this also checks alerts.yml is found.
run "prometheus config" "fix deploy/prometheus/prometheus.yml" \
    promtool check config deploy/prometheus/prometheus.yml

run "grafana dashboard" "fix the JSON of deploy/grafana/dashboards/playsource.json" \
    "$PLAYSOURCE_PYTHON" -m json.tool deploy/grafana/dashboards/playsource.json /dev/null

for src in serving/src stream/src; do
    run "module imports one way ($src)" "break the cycle named above: move what both files need into a module both import" \
        python3 scripts/import_cycles.py "$src"
done

run "format" "run 'cargo fmt --all' and commit the result" \
    cargo fmt --all -- --check

run "clippy" "fix the lints shown above" \
    cargo clippy --workspace --all-targets -- -D warnings

run "supply chain (cargo deny)" "fix the license, ban or source problem shown above (see deny.toml)" \
    "$ROOT/scripts/audit.sh"

if cargo nextest --version >/dev/null 2>&1; then
    run "tests (nextest)" "fix the failing tests listed above" \
        cargo nextest run --workspace --no-fail-fast
    run "doc tests" "fix the failing doc tests listed above" \
        cargo test --workspace --doc
else
    run "tests (cargo test)" "fix the failing tests listed above" \
        cargo test --workspace --no-fail-fast
fi

say "all checks passed"
