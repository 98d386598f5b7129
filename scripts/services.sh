#!/usr/bin/env bash
# Make this machine ready to build, test and demo playsource (idempotent).
#
#   scripts/services.sh          set everything up / start what is not running
#   scripts/services.sh stop     stop the tansu broker and the S3 server started by this script
#   scripts/services.sh status   show what is running
#
# Steps: Postgres (start + database), Debian packages, Python venv under
# .services/venv (pyarrow, confluent-kafka, duckdb, check-jsonschema, schemathesis), tansu
# (Kafka-protocol broker) on 127.0.0.1:9092, an S3-protocol server (moto) on 127.0.0.1:9000 with
# the bucket `playsource-test` (the archive store's tests; PLAYSOURCE_S3_ENDPOINT).
#
# Environment:
#   DATABASE_URL                 default postgres://postgres@127.0.0.1:5432/playsource
#   PLAYSOURCE_TANSU_STORAGE     default memory://tansu/ (e.g. sqlite://.services/tansu.db)
#   PLAYSOURCE_SKIP_APT=1        skip the Debian package step
#   PLAYSOURCE_SKIP_TANSU=1      skip installing/starting tansu
#   PLAYSOURCE_SKIP_S3=1         skip starting the S3 server
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SERVICES_DIR="$ROOT/.services"
VENV="$SERVICES_DIR/venv"
TANSU_LOG="$SERVICES_DIR/tansu.log"
TANSU_PID="$SERVICES_DIR/tansu.pid"
TANSU_HOST=127.0.0.1
TANSU_PORT=9092
TANSU_STORAGE="${PLAYSOURCE_TANSU_STORAGE:-memory://tansu/}"
S3_HOST=127.0.0.1
S3_PORT=9000
S3_BUCKET=playsource-test
S3_LOG="$SERVICES_DIR/s3.log"
S3_PID="$SERVICES_DIR/s3.pid"
DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/playsource}"

# Python packages the tests and the compose check need (tests call .services/venv/bin/python);
# schemathesis fuzzes the HTTP API from its OpenAPI document (scripts/schemathesis.sh; its CLI
# changed in 4.x, hence the range).
PY_REQUIREMENTS=("pyarrow>=15" "confluent-kafka>=2.3" "duckdb>=1.0" "check-jsonschema>=0.28" "schemathesis>=4,<5" "moto[server]>=5.1,<6")
# Debian packages later work needs: chromium (headless dashboard test), prometheus (promtool), wrk.
APT_PACKAGES=(chromium prometheus wrk)

step() { printf '[services] %-10s %s\n' "$1" "$2"; }
die() { printf '[services] error: %s\n' "$*" >&2; exit 1; }

export PATH="$HOME/.cargo/bin:$PATH"
mkdir -p "$SERVICES_DIR"

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo "$@"
    else die "need root to run '$*'; run scripts/services.sh as root or install sudo"
    fi
}

# ---------------------------------------------------------------- daemon helpers
# The broker and the S3 server are both daemons this script starts, records in a pid file and
# stops; these helpers hold that once. NAME is the step name, PIDFILE its pid file, PATTERN a
# word its command line must contain (so a recycled pid is never taken for ours).

daemon_pid() { # PIDFILE PATTERN
    local pid
    pid="$(cat "$1" 2>/dev/null)" || return 1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && grep -qa "$2" "/proc/$pid/cmdline" 2>/dev/null || return 1
    echo "$pid"
}

daemon_stop() { # NAME PIDFILE PATTERN
    local pid
    if ! pid="$(daemon_pid "$2" "$3")"; then
        rm -f "$2"
        step "$1" "not running (nothing started by this script)"
        return 0
    fi
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$2"
    step "$1" "stopped (pid $pid)"
}

daemon_status() { # NAME PIDFILE PATTERN HOST PORT LOG
    local pid
    if pid="$(daemon_pid "$2" "$3")"; then step "$1" "running (pid $pid, log $6)"
    elif port_open "$4" "$5"; then step "$1" "something (not started here) listens on $4:$5"
    else step "$1" "not running"; fi
}

# Starts a daemon unless it (or anything else) already listens on HOST:PORT, then waits until
# READY (a function) succeeds. Sets DAEMON_STARTED to what happened, for the step's line.
daemon_up() { # NAME PIDFILE PATTERN HOST PORT LOG TIMEOUT READY -- COMMAND...
    local name="$1" pidfile="$2" pattern="$3" host="$4" port="$5" log="$6" timeout="$7" ready="$8"
    shift 9
    local pid
    if pid="$(daemon_pid "$pidfile" "$pattern")"; then
        DAEMON_STARTED="already running, pid $pid; "
    elif port_open "$host" "$port"; then
        pid=""
        DAEMON_STARTED="already running, not started by this script; "
    else
        rm -f "$pidfile"
        # setsid: the daemon outlives this script and its terminal.
        (
            cd "$ROOT" || exit 1
            setsid "$@" >>"$log" 2>&1 </dev/null &
            echo $! >"$pidfile"
        )
        pid="$(cat "$pidfile")"
        DAEMON_STARTED="started pid $pid, log $log; "
    fi
    local deadline=$((SECONDS + timeout))
    until "$ready"; do
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$pidfile"
            die "$name exited right after start (see $log); fix the error there, then re-run scripts/services.sh"
        fi
        [ $SECONDS -lt $deadline ] ||
            die "$name does not answer on $host:$port after $timeout s (see $log); free the port or run scripts/services.sh stop, then re-run"
        sleep 1
    done
}

# Creates the test bucket (idempotent); fails when nothing answers S3 on the port.
s3_bucket_ready() {
    "$VENV/bin/python" - "http://$S3_HOST:$S3_PORT/$S3_BUCKET" <<'PY' >/dev/null 2>&1
import sys, urllib.request
req = urllib.request.Request(sys.argv[1], method="PUT")
try:
    urllib.request.urlopen(req, timeout=3)
except urllib.error.HTTPError as e:
    sys.exit(0 if e.code == 409 else 1)
PY
}

# Asks the broker for metadata over the Kafka protocol (confluent-kafka AdminClient).
kafka_answers() {
    "$VENV/bin/python" - "$TANSU_HOST:$TANSU_PORT" <<'PY' >/dev/null 2>&1
import sys
from confluent_kafka.admin import AdminClient
admin = AdminClient({"bootstrap.servers": sys.argv[1], "socket.timeout.ms": 3000, "log_level": 0})
md = admin.list_topics(timeout=3)
sys.exit(0 if md.brokers else 1)
PY
}

case "${1:-up}" in
    stop)
        daemon_stop tansu "$TANSU_PID" tansu
        daemon_stop s3 "$S3_PID" moto
        exit 0 ;;
    status)
        if pg_isready -q -d "$DATABASE_URL" 2>/dev/null; then step postgres "accepting connections"; else step postgres "not accepting connections"; fi
        daemon_status tansu "$TANSU_PID" tansu "$TANSU_HOST" "$TANSU_PORT" "$TANSU_LOG"
        daemon_status s3 "$S3_PID" moto "$S3_HOST" "$S3_PORT" "$S3_LOG"
        exit 0 ;;
    up) ;;
    *) die "unknown argument '$1'; use: scripts/services.sh [up|stop|status]" ;;
esac

# ---------------------------------------------------------------- 1. Debian packages

apt_step() {
    if [ "${PLAYSOURCE_SKIP_APT:-}" = 1 ]; then
        step apt "skipped (PLAYSOURCE_SKIP_APT=1)"
        return
    fi
    if ! command -v dpkg-query >/dev/null 2>&1; then
        step apt "skipped (not a Debian/Ubuntu system; install ${APT_PACKAGES[*]} yourself)"
        return
    fi
    local wanted=("${APT_PACKAGES[@]}") missing=()
    # The Postgres server, when there is none on this machine at all.
    if ! command -v pg_isready >/dev/null 2>&1 || { ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 && ! pg_isready -q -d "$DATABASE_URL" 2>/dev/null; }; then
        wanted+=(postgresql)
    fi
    # A C toolchain (rdkafka and tansu build C code), and python venv support.
    command -v cc >/dev/null 2>&1 && command -v make >/dev/null 2>&1 || wanted+=(build-essential)
    command -v pkg-config >/dev/null 2>&1 || wanted+=(pkg-config)
    command -v python3 >/dev/null 2>&1 || wanted+=(python3)
    python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || wanted+=(python3-venv)
    local p
    for p in "${wanted[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        step apt "ok (${wanted[*]} already installed)"
        return
    fi
    step apt "installing ${missing[*]} (apt-get, once)"
    local log="$SERVICES_DIR/apt.log"
    # Do not let package scripts start daemons (e.g. a prometheus server) on this machine.
    local policy=/usr/sbin/policy-rc.d made_policy=0
    if [ ! -e "$policy" ]; then
        as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod +x $policy" && made_policy=1
    fi
    local rc=0
    {
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q &&
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
    } >"$log" 2>&1 || rc=$?
    [ "$made_policy" = 1 ] && as_root rm -f "$policy"
    [ "$rc" -eq 0 ] || die "apt-get could not install ${missing[*]} (see $log); fix the package sources or install them by hand, then re-run scripts/services.sh"
    step apt "ok (installed ${missing[*]})"
}

# ---------------------------------------------------------------- 2. Postgres

postgres_step() {
    command -v pg_isready >/dev/null 2>&1 || die "pg_isready is not on PATH; install the Debian package postgresql-client (or postgresql), then re-run scripts/services.sh"
    # Split DATABASE_URL into the server part and the database name.
    local base="${DATABASE_URL%%\?*}" query=""
    [ "$base" != "$DATABASE_URL" ] && query="?${DATABASE_URL#*\?}"
    local db="${base##*/}"
    local server="${base%/*}"
    [ -n "$db" ] && [ "$server" != "${base}" ] && [[ "$server" == *://* ]] || die "DATABASE_URL '$DATABASE_URL' has no database name; use e.g. postgres://postgres@127.0.0.1:5432/playsource"
    local admin_url="$server/postgres$query"

    # host and port of the server, to find the local cluster that should serve it.
    local hostport host port
    hostport="${server#*://}"
    hostport="${hostport##*@}"
    host="${hostport%:*}"
    port="${hostport##*:}"
    [ "$host" != "$hostport" ] || port=5432
    [ -n "$host" ] || host=localhost

    local started=""
    if ! pg_isready -q -d "$admin_url"; then
        local cluster=""
        if [[ "$host" =~ ^(127\.0\.0\.1|localhost|\[::1\])$ ]] && command -v pg_lsclusters >/dev/null 2>&1; then
            cluster="$(pg_lsclusters -h 2>/dev/null | awk -v p="$port" '$3 == p { print $1 " " $2; exit }')"
        fi
        [ -n "$cluster" ] ||
            die "Postgres does not accept connections at $server and no local cluster listens on port $port; start Postgres or set DATABASE_URL, then re-run scripts/services.sh"
        step postgres "not accepting connections; starting cluster ${cluster/ //}"
        # shellcheck disable=SC2086 # "$cluster" is "VERSION NAME"
        as_root pg_ctlcluster --skip-systemctl-redirect $cluster start >"$SERVICES_DIR/pg_ctlcluster.log" 2>&1 ||
            as_root pg_ctlcluster $cluster start >>"$SERVICES_DIR/pg_ctlcluster.log" 2>&1 ||
            die "could not start Postgres cluster ${cluster/ //} (see $SERVICES_DIR/pg_ctlcluster.log and /var/log/postgresql/); start it by hand, then re-run scripts/services.sh"
        started="started the cluster; "
        for _ in $(seq 1 60); do pg_isready -q -d "$admin_url" && break; sleep 0.5; done
        pg_isready -q -d "$admin_url" || die "Postgres at $server did not come up within 30 s (see /var/log/postgresql/); check its log, then re-run scripts/services.sh"
    fi

    local exists
    exists="$(psql "$admin_url" -XAtqc "select 1 from pg_database where datname = '$db'" 2>"$SERVICES_DIR/psql.err")" ||
        die "cannot log in to Postgres at $server ($(head -n1 "$SERVICES_DIR/psql.err")); allow user/host in pg_hba.conf or set DATABASE_URL, then re-run scripts/services.sh"
    if [ "$exists" = 1 ]; then
        step postgres "ok (${started}database $db exists at $server)"
    else
        psql "$admin_url" -XAtqc "create database \"$db\"" >/dev/null 2>"$SERVICES_DIR/psql.err" ||
            die "cannot create database $db at $server ($(head -n1 "$SERVICES_DIR/psql.err")); grant CREATEDB to the user or create it by hand"
        step postgres "ok (${started}created database $db at $server)"
    fi
}

# ---------------------------------------------------------------- 3. Python venv

venv_step() {
    local stamp="$VENV/.playsource-requirements" want
    want="$(printf '%s\n' "${PY_REQUIREMENTS[@]}")"
    if [ -x "$VENV/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        step python "ok ($VENV: ${PY_REQUIREMENTS[*]})"
        return
    fi
    command -v python3 >/dev/null 2>&1 || die "python3 is not on PATH; install Python 3.9+ (Debian: apt-get install python3 python3-venv), then re-run scripts/services.sh"
    if [ ! -x "$VENV/bin/python" ]; then
        python3 -m venv "$VENV" >"$SERVICES_DIR/venv.log" 2>&1 ||
            die "could not create the Python venv at $VENV (see $SERVICES_DIR/venv.log); install python3-venv, then re-run scripts/services.sh"
    fi
    step python "installing ${PY_REQUIREMENTS[*]} into $VENV (pip)"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${PY_REQUIREMENTS[@]}" >"$SERVICES_DIR/pip.log" 2>&1 ||
        die "pip could not install ${PY_REQUIREMENTS[*]} (see $SERVICES_DIR/pip.log); check network access to PyPI, then re-run scripts/services.sh"
    "$VENV/bin/python" -c 'import pyarrow, confluent_kafka, duckdb, schemathesis, moto.server' >>"$SERVICES_DIR/pip.log" 2>&1 ||
        die "the venv at $VENV cannot import pyarrow/confluent_kafka/duckdb/schemathesis (see $SERVICES_DIR/pip.log); delete $VENV and re-run scripts/services.sh"
    printf '%s\n' "$want" >"$stamp"
    step python "ok ($VENV)"
}

# ---------------------------------------------------------------- 4. tansu

tansu_step() {
    if [ "${PLAYSOURCE_SKIP_TANSU:-}" = 1 ]; then
        step tansu "skipped (PLAYSOURCE_SKIP_TANSU=1)"
        return
    fi
    if ! command -v tansu >/dev/null 2>&1; then
        command -v cargo >/dev/null 2>&1 || die "tansu is missing and cargo is not on PATH; install Rust from https://rustup.rs, then re-run scripts/services.sh"
        step tansu "installing with cargo (once, takes 10+ minutes; log $SERVICES_DIR/tansu-install.log)"
        cargo install tansu --locked --features dynostore,libsql >"$SERVICES_DIR/tansu-install.log" 2>&1 ||
            die "cargo install tansu failed (see $SERVICES_DIR/tansu-install.log); fix the build error shown there, then re-run scripts/services.sh"
    fi

    # Waits until it really answers the Kafka protocol, not just TCP.
    daemon_up tansu "$TANSU_PID" tansu "$TANSU_HOST" "$TANSU_PORT" "$TANSU_LOG" 60 kafka_answers -- \
        tansu broker \
            --listener-url "tcp://$TANSU_HOST:$TANSU_PORT" \
            --advertised-listener-url "tcp://$TANSU_HOST:$TANSU_PORT" \
            --storage-engine "$TANSU_STORAGE"
    step tansu "ok (${DAEMON_STARTED}storage $TANSU_STORAGE; Kafka protocol answers on $TANSU_HOST:$TANSU_PORT)"
}

# ---------------------------------------------------------------- 5. S3 server

# moto's S3 server: enough of the protocol for the archive store (PUT, conditional PUT with
# If-None-Match, GET, HEAD, LIST v2, DELETE, multipart); data in memory, like the test broker.
s3_step() {
    if [ "${PLAYSOURCE_SKIP_S3:-}" = 1 ]; then
        step s3 "skipped (PLAYSOURCE_SKIP_S3=1)"
        return
    fi
    daemon_up s3 "$S3_PID" moto "$S3_HOST" "$S3_PORT" "$S3_LOG" 30 s3_bucket_ready -- \
        "$VENV/bin/moto_server" -H "$S3_HOST" -p "$S3_PORT"
    step s3 "ok (${DAEMON_STARTED}bucket $S3_BUCKET on http://$S3_HOST:$S3_PORT)"
}

apt_step
postgres_step
venv_step
tansu_step
s3_step
step "done" "services ready: DATABASE_URL=$DATABASE_URL KAFKA_BROKERS=$TANSU_HOST:$TANSU_PORT PLAYSOURCE_PYTHON=$VENV/bin/python PLAYSOURCE_S3_ENDPOINT=http://$S3_HOST:$S3_PORT"
