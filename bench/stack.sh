# Shared by catchup.sh, freshness.sh and serving.sh (source it after lib.sh): a fresh database and
# fresh topics per run, background processes stopped on exit, CPU seconds of the services.
#
#   BENCH_KEEP=1   keep the work directory (logs, archive) and the topics after the run

BENCH_STAMP="$(date -u +%Y%m%d%H%M%S)-$$"
BENCH_WORK="$(mktemp -d "${TMPDIR:-/tmp}/playsource-bench.XXXXXX")"
BENCH_PIDS=()
BENCH_TOPICS_MADE=0

# Stops every process started with `spawn` (TERM, then KILL after 10 s), deletes the run's topics
# and work directory. Installed as the EXIT trap by `bench_start`.
bench_cleanup() {
    local rc=$? pid
    for pid in "${BENCH_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${BENCH_PIDS[@]}"; do
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    if [ "$BENCH_TOPICS_MADE" = 1 ] && [ "${BENCH_KEEP:-0}" != 1 ]; then delete_topics || true; fi
    if [ "${BENCH_KEEP:-0}" = 1 ]; then say "kept $BENCH_WORK"; else rm -rf "$BENCH_WORK"; fi
    exit "$rc"
}

# bench_start NAME: the EXIT trap, a fresh database playsource_bench_NAME (dropped and created,
# then `playsource init`), fresh topic names and consumer group, the release binary in $BIN.
bench_start() {
    local name="$1"
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
    BIN="$(playsource_bin)"
    [ -x "$PYTHON" ] || die "no Python at $PYTHON; run scripts/services.sh (it makes the venv) or set PLAYSOURCE_PYTHON"
    command -v psql >/dev/null || die "psql is not on PATH; install postgresql-client"
    wait_for_broker
    local base="${DATABASE_URL%%\?*}"
    export DATABASE_URL="${base%/*}/playsource_bench_${name}${DATABASE_URL#"$base"}"
    drop_database "$DATABASE_URL"
    export PLAYSOURCE_IMPRESSIONS_TOPIC="bench-$name-$BENCH_STAMP-impressions"
    export PLAYSOURCE_PLAYS_TOPIC="bench-$name-$BENCH_STAMP-plays"
    export PLAYSOURCE_ENRICHED_TOPIC="bench-$name-$BENCH_STAMP-enriched"
    export PLAYSOURCE_DLQ_TOPIC="bench-$name-$BENCH_STAMP-dlq"
    export PLAYSOURCE_GROUP_ID="bench-$name-$BENCH_STAMP"
    BENCH_TOPICS_MADE=1
    "$BIN" init >"$BENCH_WORK/init.log" 2>&1 || { cat "$BENCH_WORK/init.log" >&2; die "playsource init failed"; }
    say "$(tail -n1 "$BENCH_WORK/init.log")"
}

# Waits up to 5 minutes for the Kafka broker (tansu may still be starting at session start).
wait_for_broker() {
    local host="${KAFKA_BROKERS%%,*}"
    for _ in $(seq 1 300); do
        (exec 3<>"/dev/tcp/${host%:*}/${host##*:}") 2>/dev/null && return 0
        sleep 1
    done
    die "no Kafka broker at $host after 5 minutes; start it with scripts/services.sh"
}

# Deletes the run's four topics (tansu keeps them in memory otherwise).
delete_topics() {
    "$PYTHON" - "$KAFKA_BROKERS" "$PLAYSOURCE_IMPRESSIONS_TOPIC" "$PLAYSOURCE_PLAYS_TOPIC" \
        "$PLAYSOURCE_ENRICHED_TOPIC" "$PLAYSOURCE_DLQ_TOPIC" <<'PY' 2>/dev/null
import sys
from confluent_kafka.admin import AdminClient
admin = AdminClient({"bootstrap.servers": sys.argv[1]})
for f in admin.delete_topics(sys.argv[2:], operation_timeout=10).values():
    try:
        f.result(15)
    except Exception:
        pass
PY
}

# spawn NAME CMD...: runs CMD in the background (output in $BENCH_WORK/NAME.log), stopped on exit;
# its pid is left in $SPAWNED.
spawn() {
    local name="$1"
    shift
    "$@" >"$BENCH_WORK/$name.log" 2>&1 &
    SPAWNED=$!
    BENCH_PIDS+=("$SPAWNED")
}

# cpu_wrap FILE CMD...: runs CMD in the foreground and writes the CPU seconds it used (user +
# system, children included) to FILE, which works after CMD has exited (unlike cpu_seconds).
cpu_wrap() {
    local file="$1"
    shift
    bash -c '"$@"; rc=$?; awk -v hz="$(getconf CLK_TCK)" "{ print (\$16 + \$17) / hz }" /proc/$$/stat >"$0"; exit $rc' \
        "$file" "$@"
}

# The broker's pid: .services/tansu.pid, else whatever listens on the broker's port.
broker_pid() {
    local pid port="${KAFKA_BROKERS%%,*}"
    port="${port##*:}"
    pid="$(cat "$ROOT/.services/tansu.pid" 2>/dev/null || true)"
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then echo "$pid"; return; fi
    ss -ltnpH "sport = :$port" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n1 | cut -d= -f2
}

# CPU seconds of the broker so far ("0" when its pid is not known).
broker_cpu() {
    local pid
    pid="$(broker_pid)"
    if [ -n "$pid" ]; then cpu_seconds "$pid"; else echo 0; fi
}

# CPU seconds of every Postgres process so far (ended backends count in the postmaster's children
# time). Includes other clients of the same server.
postgres_cpu() {
    local pids
    pids="$(ps -u postgres -o pid= 2>/dev/null | sed 's|^ *\(.*\)|/proc/\1/stat|')"
    [ -n "$pids" ] || { echo 0; return; }
    # A backend that ended meanwhile is skipped (its time is in the postmaster's children time).
    # shellcheck disable=SC2086 # one file per pid
    awk -v hz="$(getconf CLK_TCK)" '{ s += ($14 + $15 + $16 + $17) / hz } END { print s + 0 }' $pids 2>/dev/null || true
}

# A free TCP port on 127.0.0.1.
free_port() {
    "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_http URL SECS: waits until URL answers 200.
wait_http() {
    for _ in $(seq 1 $(($2 * 10))); do
        curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    die "$1 did not answer 200 within $2 s"
}

# load_catalog FILE: `playsource catalog load FILE`.
load_catalog() {
    "$BIN" catalog load "$1" >"$BENCH_WORK/catalog.log" 2>&1 || { cat "$BENCH_WORK/catalog.log" >&2; die "catalog load failed"; }
}

# calc EXPR: floating-point arithmetic (awk), e.g. calc '3 / 2'.
calc() { awk "BEGIN { print $1 }"; }

# fmt_int N: 1234567 -> 1 234 567 (the RESULTS.md style).
fmt_int() { printf '%.0f' "$1" | sed -e ':a' -e 's/\([0-9]\)\([0-9]\{3\}\)\($\| \)/\1 \2\3/; ta'; }

# psql_value SQL: one value from the run's database.
psql_value() { psql "$DATABASE_URL" -XAtqc "$1"; }
