#!/usr/bin/env bash
# Fuzzes the HTTP API from its own OpenAPI document with schemathesis: a real `playsource serve`
# on a free port, over a scratch database holding batch and realtime data, must never answer 5xx
# and must answer what /openapi.json says (status codes, content types, headers, bodies).
#
#   scripts/schemathesis.sh [extra flags for `schemathesis run`]
#
# Steps: build playsource (unless PLAYSOURCE_BIN is set), create a scratch database with
# `playsource init`, fill it (`gen` into a scratch archive, `catalog load`, `batch` for one day,
# realtime rows for the next), start `playsource serve`, run
# `schemathesis run http://127.0.0.1:PORT/openapi.json --checks all`, then stop the server and
# drop the database. Exits non-zero on any failed check. Settings: scripts/schemathesis.toml.
#
# Environment:
#   DATABASE_URL                  server to use; the scratch database is created beside the one
#                                 named here (default postgres://postgres@127.0.0.1:5432/playsource)
#   KAFKA_BROKERS                 for `playsource init` (default 127.0.0.1:9092)
#   PLAYSOURCE_BIN                the playsource binary (default: cargo build, target/debug)
#   PLAYSOURCE_PYTHON             Python of the venv holding schemathesis
#                                 (default .services/venv/bin/python, from scripts/services.sh)
#   SCHEMATHESIS_MAX_EXAMPLES     test cases per operation and phase (default 100)
#   SCHEMATHESIS_SEED             seed of the generated cases (default: a random one, printed)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$HOME/.cargo/bin:$PATH"

say() { printf '[schemathesis] %s\n' "$*"; }
die() { printf '[schemathesis] error: %s\n' "$*" >&2; exit 1; }

BASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/playsource}"
export KAFKA_BROKERS="${KAFKA_BROKERS:-127.0.0.1:9092}"
PY="${PLAYSOURCE_PYTHON:-$ROOT/.services/venv/bin/python}"
ST="$(dirname "$PY")/schemathesis"
MAX_EXAMPLES="${SCHEMATHESIS_MAX_EXAMPLES:-100}"
SEED="${SCHEMATHESIS_SEED:-$RANDOM$RANDOM}"

[ -x "$PY" ] || die "no Python at $PY; run scripts/services.sh (it creates the venv) or set PLAYSOURCE_PYTHON"
[ -x "$ST" ] || die "schemathesis is not installed in $(dirname "$(dirname "$PY")"); run scripts/services.sh (it installs it), then re-run"
command -v psql >/dev/null 2>&1 || die "psql is not on PATH; install the Debian package postgresql-client, then re-run"

if [ -n "${PLAYSOURCE_BIN:-}" ]; then
    BIN="$PLAYSOURCE_BIN"
else
    say "building playsource (cargo build -p playsource)"
    cargo build -q -p playsource --bin playsource --manifest-path "$ROOT/Cargo.toml" ||
        die "cargo build failed (output above); fix the build, then re-run"
    BIN="$ROOT/target/debug/playsource"
fi
[ -x "$BIN" ] || die "no playsource binary at $BIN; build it or set PLAYSOURCE_BIN"

# A scratch world: database, topics and archive of its own.
ID="st_$(date +%s)_$$"
SERVER_URL="${BASE_URL%%\?*}"
SERVER_URL="${SERVER_URL%/*}"
export DATABASE_URL="$SERVER_URL/playsource_$ID"
export PLAYSOURCE_IMPRESSIONS_TOPIC="t-imp-$ID" PLAYSOURCE_PLAYS_TOPIC="t-plays-$ID"
export PLAYSOURCE_ENRICHED_TOPIC="t-enr-$ID" PLAYSOURCE_DLQ_TOPIC="t-dlq-$ID"
WORK="$(mktemp -d)"
export PLAYSOURCE_ARCHIVE="$WORK/archive"
SERVER_PID=""

cleanup() {
    local rc=$?
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    psql "$SERVER_URL/postgres" -XAtqc "DROP DATABASE IF EXISTS \"playsource_$ID\" WITH (FORCE)" >/dev/null 2>&1 ||
        say "warning: could not drop the scratch database playsource_$ID; drop it by hand"
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT INT TERM

run() {
    "$BIN" "$@" >>"$WORK/setup.log" 2>&1 || {
        cat "$WORK/setup.log" >&2
        die "playsource $1 failed (output above)"
    }
}

DAY1="$(date -u -d '3 days ago' +%F)"
DAY2="$(date -u -d '2 days ago' +%F)"
say "scratch database playsource_$ID; data for $DAY1 (batch) and $DAY2 (realtime)"
run init --partitions 1
run gen --to archive --seed 11 --members 300 --videos 200 --start "$DAY1" --days 1 --catalog-out "$WORK/catalog.csv"
run catalog load "$WORK/catalog.csv"
run batch --date "$DAY1" --no-progress
# Realtime rows for the day after (what the stream writes), so answers merge both views.
psql "$DATABASE_URL" -XAtq -v ON_ERROR_STOP=1 >/dev/null <<SQL || die "cannot insert the realtime rows"
INSERT INTO rt_hourly (hour, country, device, sop_row, sod_row, genre, new_launch, plays)
SELECT '$DAY2'::timestamptz + h * interval '1 hour', c, d, 'top_picks', 'trending_now', 'drama', h % 2 = 0, 1 + h
FROM generate_series(0, 23) h, (VALUES ('US'), ('BR')) cs(c), (VALUES ('tv'), ('mobile')) ds(d);
INSERT INTO rt_video_daily (day, video_id, sod_row, plays)
SELECT '$DAY2'::date, v, 'trending_now', v FROM generate_series(1, 20) v;
SQL

PORT="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$BIN" serve --listen "127.0.0.1:$PORT" >"$WORK/serve.log" 2>&1 &
SERVER_PID=$!
ready=""
for _ in $(seq 1 100); do
    if "$PY" -c "import urllib.request, sys; urllib.request.urlopen('http://127.0.0.1:$PORT/readyz', timeout=1)" 2>/dev/null; then
        ready=1
        break
    fi
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.2
done
[ -n "$ready" ] || { cat "$WORK/serve.log" >&2; die "playsource serve did not become ready on 127.0.0.1:$PORT (log above)"; }

say "schemathesis $("$ST" --version | awk '{print $NF}') against http://127.0.0.1:$PORT/openapi.json (seed $SEED, $MAX_EXAMPLES examples)"
rc=0
# Run from the scratch folder: schemathesis keeps a cache (.schemathesis/) in its working folder.
cd "$WORK"
"$ST" --no-color --config-file "$ROOT/scripts/schemathesis.toml" run "http://127.0.0.1:$PORT/openapi.json" \
    --checks all \
    --max-examples "$MAX_EXAMPLES" \
    --seed "$SEED" \
    --workers 2 \
    --request-timeout 15 \
    --max-response-time 10 \
    --generation-database none \
    "$@" || rc=$?
if [ "$rc" -ne 0 ]; then
    say "server log (last 40 lines):"
    tail -n 40 "$WORK/serve.log" >&2
    die "schemathesis found failures (exit $rc; report above); replay with SCHEMATHESIS_SEED=$SEED scripts/schemathesis.sh"
fi
say "ok: no 5xx and every answer matches /openapi.json"
