# Shared by the bench scripts (source it): machine facts, the release binary, the results file.
#
#   BENCH_SCALE=small   run every bench at a small size (CI keeps them working; figures are not
#                       recorded in RESULTS.md unless BENCH_RECORD=1)
#   BENCH_RECORD=0|1    write the figures into bench/RESULTS.md (default: 1 at full scale)
#   PLAYSOURCE_BIN=PATH use this playsource binary instead of building target/release/playsource

set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
RESULTS="$BENCH_DIR/RESULTS.md"
BENCH_SCALE="${BENCH_SCALE:-full}"
if [ "$BENCH_SCALE" = full ]; then BENCH_RECORD="${BENCH_RECORD:-1}"; else BENCH_RECORD="${BENCH_RECORD:-0}"; fi
PYTHON="${PLAYSOURCE_PYTHON:-$ROOT/.services/venv/bin/python}"
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/playsource}"
export KAFKA_BROKERS="${KAFKA_BROKERS:-127.0.0.1:9092}"
export PATH="$HOME/.cargo/bin:$PATH"

say() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] error: %s\n' "$*" >&2; exit 1; }

# One line describing the machine: cores, memory, CPU model.
machine() {
    local model mem
    model="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
    mem="$(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
    printf '%s cores, %s, %s' "$(nproc)" "$mem" "$model"
}

# Builds the release binary once and prints its path (PLAYSOURCE_BIN: use that binary instead).
playsource_bin() {
    if [ -n "${PLAYSOURCE_BIN:-}" ]; then
        [ -x "$PLAYSOURCE_BIN" ] || die "PLAYSOURCE_BIN=$PLAYSOURCE_BIN is not an executable; unset it to build one"
        printf '%s' "$PLAYSOURCE_BIN"
        return
    fi
    (cd "$ROOT" && cargo build --release -q -p playsource) >&2 || die "release build failed"
    printf '%s/target/release/playsource' "$ROOT"
}

# Seconds since the epoch, with nanoseconds.
now() { date +%s.%N; }

# CPU seconds (user + system) used so far by process PID and its children that it waited for.
cpu_seconds() {
    awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15 + $16 + $17) / hz }' "/proc/$1/stat"
}

# record NAME FILE: replaces the section NAME of RESULTS.md with the Markdown in FILE (between
# the markers <!-- bench:NAME --> and <!-- /bench:NAME -->, appended when missing). A no-op when
# BENCH_RECORD=0, so small runs never overwrite real figures.
record() {
    local name="$1" file="$2"
    if [ "$BENCH_RECORD" != 1 ]; then say "not recorded (BENCH_RECORD=$BENCH_RECORD):"; cat "$file" >&2; return; fi
    "$PYTHON" - "$RESULTS" "$name" "$file" <<'PY'
import re, sys
results, name, body = sys.argv[1], sys.argv[2], open(sys.argv[3]).read().rstrip() + "\n"
text = open(results).read() if __import__("os").path.exists(results) else "# Benchmark results\n"
start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
block = f"{start}\n{body}{end}"
pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
open(results, "w").write(text)
PY
    say "recorded in bench/RESULTS.md ($name)"
}

# drop_database URL: drops the database URL names, if it exists (connected to the same server's
# `postgres` database), so a run starts from `playsource init` on an empty one.
drop_database() {
    local base="${1%%\?*}"
    local server="${base%/*}" db="${base##*/}" query="${1#"$base"}"
    PGOPTIONS='-c client_min_messages=warning' psql "$server/postgres$query" -XAtqc "drop database if exists \"$db\" with (force)" >/dev/null ||
        die "cannot drop database $db at $server; check that Postgres is up (scripts/services.sh)"
}

# The header lines every section starts with: command, machine, date.
section_header() {
    printf -- '- command: `%s`\n- machine: %s\n- date: %s\n' "$1" "$(machine)" "$(date -u +%Y-%m-%d)"
}
