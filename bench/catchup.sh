#!/usr/bin/env bash
# Stream catch-up (issue 6): N events pre-produced to the local broker, then `playsource stream`
# reads them all into the realtime view (Postgres) and the Parquet archive. Goal: ≥ 150 000
# events/s on 2 cores. Also reports the CPU shares of the stream, the broker and Postgres, and
# checks the result (realtime view = plays produced; archive = valid messages produced).
#
#   bench/catchup.sh                      10 M events, 1 M members × 10 k videos
#   BENCH_SCALE=small bench/catchup.sh    200 k events, well under a minute
#   BENCH_EVENTS=1000000 bench/catchup.sh another size
#   BENCH_STREAM_FLAGS=--no-enriched      extra flags for `playsource stream` (experiments)

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$BENCH_DIR/stack.sh"

if [ "$BENCH_SCALE" = small ]; then EVENTS_DEFAULT=200000; else EVENTS_DEFAULT=10000000; fi
EVENTS="${BENCH_EVENTS:-$EVENTS_DEFAULT}"
MEMBERS="${BENCH_MEMBERS:-1000000}"
VIDEOS="${BENCH_VIDEOS:-10000}"
IDLE=2                 # --exit-when-idle (not timed: the catch-up ends at the last archived row)
MALFORMED=0.0005       # a few dead letters, so the DLQ path runs too
GOAL=150000

bench_start catchup
ARCHIVE="$BENCH_WORK/archive"

say "producing $EVENTS events ($MEMBERS members × $VIDEOS videos, one day) to the broker"
"$BIN" gen --to kafka --events "$EVENTS" --members "$MEMBERS" --videos "$VIDEOS" --days 1 \
    --malformed-share "$MALFORMED" --catalog-out "$BENCH_WORK/catalog.csv" >"$BENCH_WORK/gen.log" 2>&1 ||
    { cat "$BENCH_WORK/gen.log" >&2; die "gen failed"; }
produced_line="$(grep '^gen: produced' "$BENCH_WORK/gen.log")"
say "$produced_line"
# "gen: produced M messages: I impressions, P plays, D duplicates, L late, X malformed to ..."
read -r MESSAGES IMPRESSIONS PLAYS DUPLICATES LATE MALFORMED_N < <(
    sed -E 's/^gen: produced ([0-9]+) messages: ([0-9]+) impressions, ([0-9]+) plays, ([0-9]+) duplicates, ([0-9]+) late, ([0-9]+) malformed.*/\1 \2 \3 \4 \5 \6/' <<<"$produced_line")
load_catalog "$BENCH_WORK/catalog.csv"

EXPECTED_ARCHIVED=$((IMPRESSIONS + PLAYS + DUPLICATES))  # valid messages, redeliveries included

# The broker's ceiling, same run: a bare librdkafka consumer reads both topics from the
# beginning to the end and does nothing else (crates/kafka/examples/bare_consume.rs).
say "bare consumer: reading both topics to their end (the broker's ceiling)"
(cd "$ROOT" && cargo build --release -q -p playsource-kafka --example bare_consume) >&2 || die "building the bare consumer failed"
"$ROOT/target/release/examples/bare_consume" "$KAFKA_BROKERS" "$PLAYSOURCE_IMPRESSIONS_TOPIC" "$PLAYSOURCE_PLAYS_TOPIC" \
    >"$BENCH_WORK/bare.log" 2>&1 || { cat "$BENCH_WORK/bare.log" >&2; die "the bare consumer failed"; }
cat "$BENCH_WORK/bare.log" >&2
BARE_RATE="$(sed -nE 's/.*: ([0-9]+) messages\/s$/\1/p' "$BENCH_WORK/bare.log")"
[ -n "$BARE_RATE" ] || die "the bare consumer printed no rate (see $BENCH_WORK/bare.log)"

# The stream runs until idle; a poller samples its metrics and the CPU counters every 0.2 s, so
# the catch-up ends when the last row is archived (after its flush committed), not at the exit,
# which comes IDLE s or more later.
say "streaming (until idle for ${IDLE} s)"
metrics_port="$(free_port)"
samples="$BENCH_WORK/samples.txt"
broker0="$(broker_cpu)" pg0="$(postgres_cpu)" t0="$(now)"
# shellcheck disable=SC2086 # BENCH_STREAM_FLAGS is a list of flags
spawn stream "$BIN" stream --archive "$ARCHIVE" --exit-when-idle "$IDLE" --metrics-listen "127.0.0.1:$metrics_port" ${BENCH_STREAM_FLAGS:-}
STREAM_PID=$SPAWNED
while kill -0 "$STREAM_PID" 2>/dev/null; do
    line="$(curl -fsS "http://127.0.0.1:$metrics_port/metrics" 2>/dev/null |
        awk '/^playsource_stream_consumed_total/ { c += $NF } /^playsource_stream_archived_rows_total/ { a += $NF } END { print c + 0, a + 0 }')" || line=""
    [ -n "$line" ] && echo "$(now) $line $(cpu_seconds "$STREAM_PID" 2>/dev/null || echo 0) $(broker_cpu) $(postgres_cpu)" >>"$samples"
    sleep 0.2
done
wait "$STREAM_PID" || { tail -n 20 "$BENCH_WORK/stream.log" >&2; die "stream failed"; }
t1="$(now)"
summary="$(grep 'playsource stream: idle' "$BENCH_WORK/stream.log")" || die "the stream did not print its summary (see $BENCH_WORK/stream.log)"
CONSUMED="$(sed -E 's/.*processed ([0-9]+) messages in ([0-9]+) flushes.*/\1/' <<<"$summary")"
FLUSHES="$(sed -E 's/.*processed ([0-9]+) messages in ([0-9]+) flushes.*/\2/' <<<"$summary")"
# first sample with messages consumed; first sample with everything archived (its CPU counters)
t_first="$(awk '$2 > 0 { print $1; exit }' "$samples")"
read -r t_done STREAM_CPU broker_done pg_done < <(awk -v n="$EXPECTED_ARCHIVED" '$3 >= n { print $1, $4, $5, $6; exit }' "$samples") || true
[ -n "${t_done:-}" ] || die "the stream's metrics never showed all $EXPECTED_ARCHIVED rows archived (see $samples)"

WALL="$(calc "$t1 - $t0")"
BUSY="$(calc "$t_done - $t0")"
STARTUP="$(calc "$t_first - $t0")"
RATE="$(calc "$CONSUMED / $BUSY")"
# From the first message read to the last row archived: what compares with the bare consumer,
# which is timed the same way (no group join, no start-up).
RATE_READING="$(calc "$CONSUMED / ($t_done - $t_first)")"
BROKER_CPU="$(calc "$broker_done - $broker0")"
PG_CPU="$(calc "$pg_done - $pg0")"
share() { calc "100 * $1 / (2 * $BUSY)"; }

say "checking the result"
RT_PLAYS="$(psql_value 'select coalesce(sum(plays), 0) from rt_hourly')"
RT_VIDEO_PLAYS="$(psql_value 'select coalesce(sum(plays), 0) from rt_video_daily')"
TOO_LATE="$(psql_value 'select coalesce(sum(events), 0) from rt_too_late')"
ARCHIVED="$("$PYTHON" - "$ARCHIVE" "$PLAYSOURCE_IMPRESSIONS_TOPIC" "$PLAYSOURCE_PLAYS_TOPIC" <<'PY'
import sys, duckdb
root, imp, plays = sys.argv[1:]
n, con = 0, duckdb.connect()
for topic in (imp, plays):
    n += con.execute(f"select count(*) from read_parquet('{root}/{topic}/*/*/*.parquet')").fetchone()[0]
print(n)
PY
)"
ok=1
check() { if [ "$2" = "$3" ]; then say "ok: $1 = $2"; else say "WRONG: $1 = $2, expected $3"; ok=0; fi; }
check "messages consumed" "$CONSUMED" "$MESSAGES"
check "plays in rt_hourly" "$RT_PLAYS" "$PLAYS"
check "plays in rt_video_daily" "$RT_VIDEO_PLAYS" "$PLAYS"
check "too-late events" "$TOO_LATE" 0
check "archived rows (valid messages, redeliveries included)" "$ARCHIVED" "$EXPECTED_ARCHIVED"

printf '\ncatch-up of %s messages: %.1f s from start to the last archived row (first message after %.1f s; exit after %.1f s), %s flushes\n' \
    "$CONSUMED" "$BUSY" "$STARTUP" "$WALL" "$FLUSHES"
printf '  %.0f events/s (goal %s); from the first message: %.0f events/s, bare consumer %s messages/s (%.0f%%)\n' "$RATE" "$GOAL" "$RATE_READING" "$BARE_RATE" "$(calc "100 * $RATE_READING / $BARE_RATE")"
printf '  CPU seconds meanwhile: stream %.1f (%.0f%% of 2 cores), broker %.1f (%.0f%%), postgres %.1f (%.0f%%)\n' \
    "$STREAM_CPU" "$(share "$STREAM_CPU")" "$BROKER_CPU" "$(share "$BROKER_CPU")" "$PG_CPU" "$(share "$PG_CPU")"

section="$BENCH_WORK/section.md"
{
    echo "## Stream catch-up (Kafka → Postgres view + Parquet archive)"
    echo
    section_header "BENCH_EVENTS=$EVENTS ${BENCH_STREAM_FLAGS:+BENCH_STREAM_FLAGS=\"$BENCH_STREAM_FLAGS\" }bench/catchup.sh"
    echo "- workload: $(fmt_int "$MESSAGES") messages pre-produced to tansu (8 partitions per topic as \`playsource init\` makes them): $(fmt_int "$IMPRESSIONS") impressions, $(fmt_int "$PLAYS") plays, $(fmt_int "$DUPLICATES") redeliveries, $(fmt_int "$MALFORMED_N") malformed; $(fmt_int "$MEMBERS") members × $(fmt_int "$VIDEOS") videos over one day; $(case " ${BENCH_STREAM_FLAGS:-} " in *" --no-enriched "*) echo "no enriched plays (--no-enriched)" ;; *) echo "enriched plays published" ;; esac)"
    echo "- result checked: $([ "$ok" = 1 ] && echo "realtime view = plays produced, archive = valid messages produced" || echo "**MISMATCH, see the run's output**")"
    echo
    echo "| measure | figure | goal | peer figure | ratio |"
    echo "| --- | --- | --- | --- | --- |"
    printf '| catch-up throughput, process start to last row in the view and archive | %s events/s (%s in %.1f s) | ≥ %s events/s on 2 cores | — | %.2f× goal |\n' \
        "$(fmt_int "$RATE")" "$(fmt_int "$CONSUMED")" "$BUSY" "$(fmt_int "$GOAL")" "$(calc "$RATE / $GOAL")"
    printf '| catch-up throughput from the first message read to the last row archived, vs a bare consumer of the same topics timed the same way (the broker ceiling), same run | %s events/s | ≥ 85 %% of the bare consumer | bare librdkafka consumer: %s messages/s | %.0f %% |\n' \
        "$(fmt_int "$RATE_READING")" "$(fmt_int "$BARE_RATE")" "$(calc "100 * $RATE_READING / $BARE_RATE")"
    echo
 printf 'Notes: the first message was read %.1f s after the start (group join, unit assignment); CPU over the %.1f s catch-up: stream %.1f s (%.0f%% of 2 cores), broker (tansu) %.1f s (%.0f%%), Postgres %.1f s (%.0f%%, all its clients); %s flushes (the default interval unless BENCH_STREAM_FLAGS says otherwise: %s). Shares well below 100%% mean the stream waits rather than computes.\n' \
        "$STARTUP" "$BUSY" "$STREAM_CPU" "$(share "$STREAM_CPU")" "$BROKER_CPU" "$(share "$BROKER_CPU")" "$PG_CPU" "$(share "$PG_CPU")" "$FLUSHES" "${BENCH_STREAM_FLAGS:-none}"
} >"$section"
record catchup "$section"
[ "$ok" = 1 ] || die "the result is wrong (see above)"
