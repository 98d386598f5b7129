#!/usr/bin/env bash
# Serving (issue 6): wrk at fixed concurrency against `playsource serve` on a merged dataset
# (batch-complete past days + today's realtime rows). Goals: uncached merged queries ≥ 5 000
# req/s with p99 ≤ 10 ms; cached queries ≥ 50 000 req/s per core (requests / server CPU seconds).
#
# The dataset goes through the whole path: `gen --to kafka` of DAYS past days plus today,
# `stream` (realtime view + archive), `batch` of the past days from the stream's archive.
# Three wrk runs (-t2 -c64 --latency):
#   cached    the same batch-only query (the last two complete days, hourly): served from cache
#   merged    the same merged query (yesterday and today, hourly): never cached (touches today)
#   uncached  a different merged query per request (bench/serving_queries.lua)
#
#   bench/serving.sh                      7 past days, ~1 M messages a day, wrk -d20s
#   BENCH_SCALE=small bench/serving.sh    2 past days, ~50 k messages a day, wrk -d3s

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$BENCH_DIR/stack.sh"

if [ "$BENCH_SCALE" = small ]; then
    DAYS=2 MEMBERS=10000 SPMD=0.2 DURATION="${BENCH_DURATION:-3s}"
else
    DAYS=7 MEMBERS=100000 SPMD=0.4 DURATION="${BENCH_DURATION:-20s}"
fi
VIDEOS=10000
WRK=(wrk -t2 -c64 -d"$DURATION" --latency)
GOAL_UNCACHED_RPS=5000 GOAL_UNCACHED_P99_MS=10 GOAL_CACHED_RPS_CORE=50000
command -v wrk >/dev/null || die "wrk is not on PATH; install the Debian package wrk"

bench_start serving
ARCHIVE="$BENCH_WORK/archive"
TODAY="$(date -u +%F)"
FIRST="$(date -u -d "$TODAY - $DAYS days" +%F)"
YESTERDAY="$(date -u -d "$TODAY - 1 day" +%F)"
TOMORROW="$(date -u -d "$TODAY + 1 day" +%F)"
TWO_AGO="$(date -u -d "$TODAY - 2 days" +%F)"

say "dataset: $((DAYS + 1)) days from $FIRST ($MEMBERS members × $VIDEOS videos) → stream → batch $FIRST..$YESTERDAY"
"$BIN" gen --to kafka --members "$MEMBERS" --videos "$VIDEOS" --start "$FIRST" --days $((DAYS + 1)) \
    --sessions-per-member-day "$SPMD" --catalog-out "$BENCH_WORK/catalog.csv" >"$BENCH_WORK/gen.log" 2>&1 ||
    { cat "$BENCH_WORK/gen.log" >&2; die "gen failed"; }
say "$(grep '^gen: produced' "$BENCH_WORK/gen.log")"
load_catalog "$BENCH_WORK/catalog.csv"
"$BIN" stream --archive "$ARCHIVE" --exit-when-idle 2 --metrics-listen "127.0.0.1:$(free_port)" \
    >"$BENCH_WORK/stream.log" 2>&1 || { tail -n 20 "$BENCH_WORK/stream.log" >&2; die "stream failed"; }
say "$(grep 'playsource stream: idle' "$BENCH_WORK/stream.log")"
"$BIN" batch --from "$FIRST" --to "$YESTERDAY" --archive "$ARCHIVE" --no-progress >"$BENCH_WORK/batch.log" 2>&1 ||
    { tail -n 20 "$BENCH_WORK/batch.log" >&2; die "batch failed"; }
BATCH_PLAYS="$(psql_value 'select sum(plays) from batch_days')"
RT_TODAY="$(psql_value "select coalesce(sum(plays), 0) from rt_hourly where hour >= '$TODAY'")"
HOURLY_ROWS="$(psql_value "select (select count(*) from batch_hourly) + (select count(*) from rt_hourly where hour >= '$TODAY')")"
say "batch view: $BATCH_PLAYS plays over $DAYS days; realtime today: $RT_TODAY plays; $HOURLY_ROWS hourly rows served"

port="$(free_port)"
API="http://127.0.0.1:$port"
spawn serve "$BIN" serve --listen "127.0.0.1:$port"
SERVE_PID=$SPAWNED
wait_http "$API/readyz" 30

CACHED_PATH="/v1/source-of-play?from=${TWO_AGO}T00:00:00Z&to=${TODAY}T00:00:00Z&granularity=hour"
MERGED_PATH="/v1/source-of-play?from=${YESTERDAY}T00:00:00Z&to=${TOMORROW}T00:00:00Z&granularity=hour"
# Both must answer 200 with plays from the views they are meant to read.
for path in "$CACHED_PATH" "$MERGED_PATH"; do
    curl -fsS "$API$path" >"$BENCH_WORK/answer.json" || die "GET $path failed"
    "$PYTHON" -c 'import json, sys; d = json.load(open(sys.argv[1])); assert sum(b["plays"] for b in d["series"]) > 0, "no plays"' \
        "$BENCH_WORK/answer.json" || die "GET $path answered no plays"
done

metric() { curl -fsS "$API/metrics" | awk -v m="$1" '$1 == m || index($1, m "{") == 1 { s += $NF } END { print s + 0 }'; }

# run_wrk NAME ARGS...: one wrk run; sets the globals RPS P50 P99 REQS ERRS SERVE_CPU PG_CPU WRK_CPU HITS.
run_wrk() {
    local name="$1" out="$BENCH_WORK/wrk-$1.txt" s0 p0 h0 t0 t1
    shift
    s0="$(cpu_seconds "$SERVE_PID")" p0="$(postgres_cpu)" h0="$(metric playsource_serving_cache_hits_total)"
    t0="$(now)"
    cpu_wrap "$BENCH_WORK/wrk-$name.cpu" "${WRK[@]}" "$@" >"$out" 2>&1 || { cat "$out" >&2; die "wrk ($name) failed"; }
    t1="$(now)"
    SERVE_CPU="$(calc "$(cpu_seconds "$SERVE_PID") - $s0")" PG_CPU="$(calc "$(postgres_cpu) - $p0")"
    HITS="$(calc "$(metric playsource_serving_cache_hits_total) - $h0")"
    WRK_CPU="$(cat "$BENCH_WORK/wrk-$name.cpu")" WALL="$(calc "$t1 - $t0")"
    read -r RPS P50 P99 REQS ERRS < <(awk '
        function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
        /^ +50%/ { p50 = ms($2) } /^ +99%/ { p99 = ms($2) }
        /requests in/ { reqs = $1 } /^Requests\/sec:/ { rps = $2 }
        /Non-2xx or 3xx responses:/ { errs = $NF }
        END { print rps, p50, p99, reqs, errs + 0 }' "$out")
    [ "$ERRS" = 0 ] || die "wrk ($name): $ERRS answers were not 2xx; see $out and $BENCH_WORK/serve.log"
    grep -q 'Socket errors' "$out" && say "wrk ($name): $(grep 'Socket errors' "$out")"
    printf '%-9s %9.0f req/s  p50 %6.2f ms  p99 %6.2f ms  serve %.1f cpu-s (%.0f req/s per core)  postgres %.1f cpu-s  wrk %.1f cpu-s  cache hits %.0f\n' \
        "$name" "$RPS" "$P50" "$P99" "$SERVE_CPU" "$(calc "$REQS / $SERVE_CPU")" "$PG_CPU" "$WRK_CPU" "$HITS"
}

row() {  # row MEASURE: a Markdown row of the last run's figures
    printf '| %s | %s req/s, p50 %.2f ms, p99 %.2f ms; %s req/s per server core | %s | — | %s |\n' \
        "$1" "$(fmt_int "$RPS")" "$P50" "$P99" "$(fmt_int "$(calc "$REQS / $SERVE_CPU")")" "$2" "$3"
}
cpu_note() {  # the last run's CPU shares
    printf '%s: serve %.0f%%, Postgres %.0f%%, wrk %.0f%%' "$1" "$(calc "100 * $SERVE_CPU / (2 * $WALL)")" \
        "$(calc "100 * $PG_CPU / (2 * $WALL)")" "$(calc "100 * $WRK_CPU / (2 * $WALL)")"
}

echo
run_wrk cached "$API$CACHED_PATH"
[ "$(calc "$HITS >= $REQS * 0.99")" = 1 ] || die "the cached run was not served from the cache ($HITS hits for $REQS requests)"
CACHED_ROW="$(row "cached: same batch-only query (2 days hourly)" "≥ $(fmt_int $GOAL_CACHED_RPS_CORE) req/s per core" \
    "$(printf '%.2f× goal' "$(calc "$REQS / $SERVE_CPU / $GOAL_CACHED_RPS_CORE")")")"
CACHED_NOTE="$(cpu_note cached)"
run_wrk merged "$API$MERGED_PATH"
MERGED_ROW="$(row "merged: same query, yesterday (batch) + today (realtime), hourly" "≥ $(fmt_int $GOAL_UNCACHED_RPS) req/s, p99 ≤ $GOAL_UNCACHED_P99_MS ms" \
    "$(printf '%.2f× / %.2f× goal' "$(calc "$RPS / $GOAL_UNCACHED_RPS")" "$(calc "$P99 / $GOAL_UNCACHED_P99_MS")")")"
MERGED_NOTE="$(cpu_note merged)"
BENCH_FIRST_DAY="$(date -u -d "$FIRST" +%s)" BENCH_TODAY="$(date -u -d "$TODAY" +%s)"
export BENCH_FIRST_DAY BENCH_TODAY  # read by serving_queries.lua
run_wrk uncached -s "$BENCH_DIR/serving_queries.lua" "$API"
[ "$HITS" = 0 ] || die "the uncached run had $HITS cache hits"
UNCACHED_ROW="$(row "uncached: a different merged query per request" "≥ $(fmt_int $GOAL_UNCACHED_RPS) req/s, p99 ≤ $GOAL_UNCACHED_P99_MS ms" \
    "$(printf '%.2f× / %.2f× goal' "$(calc "$RPS / $GOAL_UNCACHED_RPS")" "$(calc "$P99 / $GOAL_UNCACHED_P99_MS")")")"
UNCACHED_NOTE="$(cpu_note uncached)"

REPLICA_ANSWERS="$(metric playsource_serving_replica_answers_total)"
REPLICA_FALLBACKS="$(metric playsource_serving_replica_fallbacks_total)"
say "replica: $REPLICA_ANSWERS answers, $REPLICA_FALLBACKS SQL fallbacks; $(metric playsource_serving_replica_rows) rows, $(metric playsource_serving_replica_bytes) bytes"

section="$BENCH_WORK/section.md"
{
    echo "## Serving (wrk against \`playsource serve\`)"
    echo
    section_header "bench/serving.sh"
    echo "- dataset: $DAYS batch-complete days ($FIRST to $YESTERDAY, $(fmt_int "$BATCH_PLAYS") plays) + today's realtime rows ($(fmt_int "$RT_TODAY") plays so far); $(fmt_int "$HOURLY_ROWS") hourly view rows; $(fmt_int "$MEMBERS") members × $(fmt_int "$VIDEOS") videos; gen → stream → batch from the stream's archive"
    echo "- load: \`${WRK[*]}\` on 127.0.0.1, sharing the 2 cores with the server and Postgres; ratio is figure ÷ goal (req/s; p99)"
    echo
    echo "| measure | figure | goal | peer figure | ratio |"
    echo "| --- | --- | --- | --- | --- |"
    echo "$CACHED_ROW"
    echo "$MERGED_ROW"
    echo "$UNCACHED_ROW"
    echo
    echo "Notes: answers touching a day that is not batch-complete are never cached; they come from the server's in-memory replica of the hourly views (\`--memory-days\`) when a shared snapshot check shows nothing committed since it was read (else after a reload; from Postgres only if that fails or the range is older than the window) ($(fmt_int "$REPLICA_ANSWERS") replica answers, $(fmt_int "$REPLICA_FALLBACKS") by SQL over the three runs); \`--cache-capacity 0\` does not disable the cache (capacity is at least 1). req/s per core = requests ÷ the server's CPU seconds. CPU shares of 2 cores — $CACHED_NOTE; $MERGED_NOTE; $UNCACHED_NOTE."
} >"$section"
record serving "$section"
