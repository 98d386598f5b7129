#!/usr/bin/env bash
# Takeover after `kill -9` (issue 17): one unit (topics of ONE partition) holding N distinct
# (member, video) keys; the stream is killed and restarted at once, and the bench measures the
# time from the kill until a NEW event, produced right after the restart, is visible in the API
# (`playsource serve`). Goal: ≤ 10 s with 10 M keys per unit.
#
#   1. fill: `gen` produces the workload; `stream --exit-when-idle` reads it all and, as it exits,
#      checkpoints the engine (exact at the committed offsets);
#   2. live: a stream restarts (a clean restart, timed too), a tail of BENCH_TAIL events is
#      produced and committed (no checkpoint meanwhile: it is what the takeover replays), then the
#      stream is killed with SIGKILL;
#   3. takeover: a new stream starts BENCH_RESTART_DELAY s after the kill (default 0) and a probe
#      produces one impression and one play (ts = now, a video id of its own) and polls
#      GET /v1/videos/{id}/discovery until the play counts. Phases, from the new stream's log:
#      group join (→ "partitions assigned"), restore (→ "unit assigned": lease, checkpoint loaded
#      and decoded), replay of the tail (→ "partition rebuilt; live"), then the first flush
#      and the API (→ visible).
#
#   bench/takeover.sh                          10 M keys (1 M members × 10 k videos), tail 100 k
#   BENCH_SCALE=small bench/takeover.sh        200 k keys, tail 10 k, about a minute
#   BENCH_KEYS=1000000 bench/takeover.sh       another size (BENCH_EVENTS overrides the events
#                                              produced for it, about 1.2 per key by default)
#   BENCH_SESSION_TIMEOUT_MS=6000              the streams' --session-timeout-ms (default 6000,
#                                              Kafka's smallest by default)
#   BENCH_INSTANCE_ID=stream-0                 the streams' --instance-id (static membership)
#   BENCH_REPLICA_NAME=stream-0                the streams' --replica-name (default stream-0: the
#                                              restart removes its dead predecessor from the
#                                              group at once); BENCH_REPLICA_NAME= measures the
#                                              session-timeout path instead
#   BENCH_RESTART_DELAY=7                      seconds between the kill and the restart
#   BENCH_TAKEOVER_TIMEOUT=120                 give up when the event is not visible by then

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$BENCH_DIR/stack.sh"

if [ "$BENCH_SCALE" = small ]; then
    KEYS="${BENCH_KEYS:-200000}" MEMBERS="${BENCH_MEMBERS:-100000}" TAIL="${BENCH_TAIL:-10000}"
else
    KEYS="${BENCH_KEYS:-10000000}" MEMBERS="${BENCH_MEMBERS:-1000000}" TAIL="${BENCH_TAIL:-100000}"
fi
VIDEOS="${BENCH_VIDEOS:-10000}"
EVENTS="${BENCH_EVENTS:-$((KEYS * 12 / 10))}"
SESSION_MS="${BENCH_SESSION_TIMEOUT_MS:-6000}"
RESTART_DELAY="${BENCH_RESTART_DELAY:-0}"
TIMEOUT="${BENCH_TAKEOVER_TIMEOUT:-120}"
GOAL=10

bench_start takeover
# bench_start made topics of `playsource init`'s 8 partitions; this bench wants one unit.
delete_topics || true
export PLAYSOURCE_IMPRESSIONS_TOPIC="${PLAYSOURCE_IMPRESSIONS_TOPIC}-p1"
export PLAYSOURCE_PLAYS_TOPIC="${PLAYSOURCE_PLAYS_TOPIC}-p1"
export PLAYSOURCE_ENRICHED_TOPIC="${PLAYSOURCE_ENRICHED_TOPIC}-p1"
export PLAYSOURCE_DLQ_TOPIC="${PLAYSOURCE_DLQ_TOPIC}-p1"
"$BIN" init --partitions 1 >"$BENCH_WORK/init1.log" 2>&1 || { cat "$BENCH_WORK/init1.log" >&2; die "playsource init --partitions 1 failed"; }

ARCHIVE="$BENCH_WORK/archive"
stream_flags=(--archive "$ARCHIVE" --session-timeout-ms "$SESSION_MS")
[ -n "${BENCH_INSTANCE_ID:-}" ] && stream_flags+=(--instance-id "$BENCH_INSTANCE_ID")
REPLICA_NAME="${BENCH_REPLICA_NAME-stream-0}"
[ -n "$REPLICA_NAME" ] && stream_flags+=(--replica-name "$REPLICA_NAME")
# Event time ends about now, so the probe's event (ts = now) is neither late nor far ahead.
START="$(date -u -d '1 day ago' +%Y-%m-%dT%H:%M:%SZ)"
world=(--members "$MEMBERS" --videos "$VIDEOS" --start "$START" --days 1)

# gen_to_kafka LOG ARGS...: produces, prints gen's summary line, sets MESSAGES to its count.
gen_to_kafka() {
    local log="$1"
    shift
    "$BIN" gen --to kafka "${world[@]}" --malformed-share 0 "$@" >"$log" 2>&1 ||
        { cat "$log" >&2; die "gen failed"; }
    local line
    line="$(grep '^gen: produced' "$log")" || die "gen printed no summary (see $log)"
    say "$line"
    MESSAGES="$(sed -E 's/^gen: produced ([0-9]+) messages.*/\1/' <<<"$line")"
}

# committed: messages committed in stream_offsets, both topics together.
committed() { psql_value "select coalesce(sum(next_offset), 0) from stream_offsets where group_id = '$PLAYSOURCE_GROUP_ID'"; }

# metric NAME PORT: the sum of a metric's samples on a stream's /metrics.
metric() { curl -fsS "http://127.0.0.1:$2/metrics" 2>/dev/null | awk -v n="$1" '$1 == n || index($1, n "{") == 1 { s += $NF } END { print s + 0 }'; }

# log_epoch FILE REGEX: the time (seconds since the epoch) of the first log line matching REGEX.
log_epoch() {
    local line
    line="$(grep -m1 -E "$2" "$1")" || return 0
    date -u -d "$(awk '{ print $1 }' <<<"$line")" +%s.%N 2>/dev/null || true
}

# ---- 1. fill -----------------------------------------------------------------------------
say "producing $(fmt_int "$EVENTS") events ($(fmt_int "$MEMBERS") members × $(fmt_int "$VIDEOS") videos) to one partition"
gen_to_kafka "$BENCH_WORK/gen.log" --events "$EVENTS" --catalog-out "$BENCH_WORK/catalog.csv"
FILL_MESSAGES="$MESSAGES"
load_catalog "$BENCH_WORK/catalog.csv"

say "fill: streaming until idle (the exit checkpoints the engine)"
t0="$(now)"
"$BIN" stream "${stream_flags[@]}" --exit-when-idle 2 --metrics-listen "127.0.0.1:$(free_port)" \
    >"$BENCH_WORK/fill.log" 2>&1 || { tail -n 20 "$BENCH_WORK/fill.log" >&2; die "the fill stream failed"; }
FILL_SECS="$(calc "$(now) - $t0")"
read -r SNAP_IMP SNAP_PLAYS SNAP_BYTES < <(psql_value "select impressions_offset, plays_offset, (select sum(b) from unnest(layer_bytes) b) from stream_checkpoints where group_id = '$PLAYSOURCE_GROUP_ID' and partition = 0" | tr '|' ' ') ||
    die "the fill left no checkpoint of partition 0"
[ "$((SNAP_IMP + SNAP_PLAYS))" = "$FILL_MESSAGES" ] ||
    die "the checkpoint is at $((SNAP_IMP + SNAP_PLAYS)) messages, expected $FILL_MESSAGES"
say "fill took ${FILL_SECS} s; checkpoint at $FILL_MESSAGES messages, $(fmt_int "$SNAP_BYTES") bytes"

# ---- 2. live, then kill -9 ------------------------------------------------------------------
api_port="$(free_port)"
API="http://127.0.0.1:$api_port"
spawn serve "$BIN" serve --listen "127.0.0.1:$api_port"
wait_http "$API/readyz" 30

say "live: restarting the stream (clean restart), then a tail of $(fmt_int "$TAIL") events"
live_port="$(free_port)"
t_live0="$(now)"
spawn live "$BIN" stream "${stream_flags[@]}" --checkpoint-interval-secs 86400 --metrics-listen "127.0.0.1:$live_port"
LIVE_PID=$SPAWNED
for _ in $(seq 1 $((TIMEOUT * 10))); do
    grep -q 'unit assigned' "$BENCH_WORK/live.log" 2>/dev/null && break
    kill -0 "$LIVE_PID" 2>/dev/null || { tail -n 20 "$BENCH_WORK/live.log" >&2; die "the live stream stopped"; }
    sleep 0.1
done
t_live1="$(log_epoch "$BENCH_WORK/live.log" 'unit assigned')"
[ -n "$t_live1" ] || die "the restarted stream got no partition within $TIMEOUT s (see $BENCH_WORK/live.log)"
CLEAN_SECS="$(calc "$t_live1 - $t_live0")"
gen_to_kafka "$BENCH_WORK/tail.log" --events "$TAIL" --seed 7
TOTAL=$((FILL_MESSAGES + MESSAGES))
for i in $(seq 1 $((TIMEOUT * 10))); do
    [ "$(committed)" -ge "$TOTAL" ] && break
    [ "$i" -lt $((TIMEOUT * 10)) ] || die "the live stream did not commit the tail within $TIMEOUT s"
    sleep 0.1
done
sleep 1.5  # a heartbeat or two: the member is settled in the group, as in production
KEYS_LIVE="$(metric playsource_stream_state_keys "$live_port")"

say "kill -9 of the stream (state: $(fmt_int "$KEYS_LIVE") keys; replay after the checkpoint: $(fmt_int "$MESSAGES") messages)"
t_kill="$(now)"
kill -KILL "$LIVE_PID"
wait "$LIVE_PID" 2>/dev/null || true
sleep "$RESTART_DELAY"

# ---- 3. takeover ---------------------------------------------------------------------------
take_port="$(free_port)"
t_restart="$(now)"
spawn takeover "$BIN" stream "${stream_flags[@]}" --metrics-listen "127.0.0.1:$take_port"
TAKE_PID=$SPAWNED
# The new stream's flushes, sampled every 0.1 s: time, flushes committed, seconds spent in their
# transactions (stopped on exit with the other background processes).
(
    while kill -0 "$TAKE_PID" 2>/dev/null; do
        curl -fsS "http://127.0.0.1:$take_port/metrics" 2>/dev/null |
            awk -v t="$(now)" '/^playsource_stream_flushes_total/ { f += $NF } /^playsource_stream_flush_transaction_seconds_sum/ { s += $NF } END { print t, f + 0, s + 0 }' || true
        sleep 0.1
    done
) >"$BENCH_WORK/flushes.txt" &
BENCH_PIDS+=("$!")
"$PYTHON" - "$KAFKA_BROKERS" "$PLAYSOURCE_IMPRESSIONS_TOPIC" "$PLAYSOURCE_PLAYS_TOPIC" "$API" "$TIMEOUT" \
    >"$BENCH_WORK/probe.txt" 2>"$BENCH_WORK/probe.err" <<'PY' || true
import datetime as dt, http.client, json, random, sys, time, urllib.parse
from confluent_kafka import Producer
brokers, imp_topic, play_topic, api, timeout = sys.argv[1:6]
iso = lambda t: dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
day = lambda t, d: (dt.datetime.fromtimestamp(t, dt.timezone.utc).date() + dt.timedelta(days=d)).isoformat() + "T00:00:00Z"
video, member, run = 900_000_000 + random.randrange(1 << 20), 77_000_001, f"{int(time.time())}"
p = Producer({"bootstrap.servers": brokers, "linger.ms": 0, "acks": "all"})
t = time.time()
common = {"ts": iso(t), "member_id": member, "video_id": video, "country": "US", "device": "tv"}
p.produce(imp_topic, key=str(member), value=json.dumps({"event_id": f"takeover-i-{run}", **common,
          "page": "home", "row_type": "trending_now", "row_index": 0, "rank": 0}))
p.produce(play_topic, key=str(member), value=json.dumps({"event_id": f"takeover-p-{run}", **common,
          "session_id": f"takeover-{run}"}))
if p.flush(30):
    sys.exit("the probe's events were not delivered")
produced = time.time()
u = urllib.parse.urlsplit(api)
path = f"/v1/videos/{video}/discovery?from={day(t, -1)}&to={day(t, 2)}"
while time.time() - t < float(timeout):
    try:
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=5)
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        if r.status == 200 and json.loads(body)["plays"] > 0:
            print(produced, time.time())
            sys.exit(0)
    except (OSError, http.client.HTTPException):
        pass
    time.sleep(0.05)
sys.exit(f"the probe's play was not visible within {timeout} s")
PY
read -r t_produced t_visible <"$BENCH_WORK/probe.txt" || true
KEYS_NOW="$(metric playsource_stream_state_keys "$take_port")"
REPLAYED="$(metric playsource_stream_replayed_total "$take_port")"
if [ -z "${t_visible:-}" ]; then
    cat "$BENCH_WORK/probe.err" >&2
    grep -E 'partitions (assigned|revoked)|unit assigned|live|WARN|ERROR' "$BENCH_WORK/takeover.log" | tail -n 10 >&2 || true
    grep -qE 'partitions assigned partitions=\[[0-9]' "$BENCH_WORK/takeover.log" ||
        say "the restarted stream got no partitions (group join never completed; on tansu see docs/stream.md, \"Fast takeover\")"
    die "the new event was not visible within $TIMEOUT s of the restart"
fi
t_assigned="$(log_epoch "$BENCH_WORK/takeover.log" 'partitions assigned partitions=\[[0-9]')"
t_unit="$(log_epoch "$BENCH_WORK/takeover.log" 'unit assigned')"
t_rebuilt="$(log_epoch "$BENCH_WORK/takeover.log" 'partition rebuilt; live')"
t_rebuilt="${t_rebuilt:-$t_unit}"  # no replay: live at assignment
# The first flush committed after the unit went live (the one that carries the probe's events,
# unless the tail's last messages needed one) and the time its transaction took.
read -r t_flush FLUSH_TX < <(awk -v live="$t_rebuilt" '$1 >= live && $2 > 0 { print $1, $3; exit }' "$BENCH_WORK/flushes.txt") || true
t_flush="${t_flush:-$t_visible}" FLUSH_TX="${FLUSH_TX:-0}"
# Sampled every 0.1 s, it can be seen after the API already showed the event.
t_flush="$(awk -v f="$t_flush" -v v="$t_visible" 'BEGIN { printf "%.6f", (f < v) ? f : v }')"

TOTAL_SECS="$(calc "$t_visible - $t_kill")"
JOIN="$(calc "$t_assigned - $t_restart")"
RESTORE="$(calc "$t_unit - $t_assigned")"
REPLAY="$(calc "$t_rebuilt - $t_unit")"
FIRST="$(calc "$t_visible - $t_rebuilt")"
TO_FLUSH="$(calc "$t_flush - $t_rebuilt")"
DELAY="$(calc "$t_restart - $t_kill")"

printf '\ntakeover after kill -9, %s keys in the unit (%s at the kill): %.2f s from the kill to the new event visible in the API (goal ≤ %s s)\n' \
    "$(fmt_int "$KEYS_NOW")" "$(fmt_int "$KEYS_LIVE")" "$TOTAL_SECS" "$GOAL"
printf '  kill → restart %.2f s; restart → partitions assigned (process start, group join) %.2f s;\n' "$DELAY" "$JOIN"
printf '  restore (lease, checkpoint of %s bytes read and decoded) %.2f s; replay of %s messages %.2f s;\n' \
    "$(fmt_int "$SNAP_BYTES")" "$RESTORE" "$(fmt_int "$REPLAYED")" "$REPLAY"
printf '  live → visible (read, flush, API) %.2f s, of which live → first flush committed %.2f s (its transaction %.2f s);\n' "$FIRST" "$TO_FLUSH" "$FLUSH_TX"
printf '  probe produced %.2f s after the restart\n' "$(calc "$t_produced - $t_restart")"
printf '  for comparison: a clean restart (the group empty) to its unit assigned %.2f s; the fill (%s messages) %.1f s\n' \
    "$CLEAN_SECS" "$(fmt_int "$FILL_MESSAGES")" "$FILL_SECS"

section="$BENCH_WORK/section.md"
{
    echo "## Takeover after kill -9 (issue 17)"
    echo
    section_header "BENCH_KEYS=$KEYS BENCH_SESSION_TIMEOUT_MS=$SESSION_MS${BENCH_INSTANCE_ID:+ BENCH_INSTANCE_ID=$BENCH_INSTANCE_ID} BENCH_REPLICA_NAME=$REPLICA_NAME bench/takeover.sh"
    echo "- workload: one unit (topics of 1 partition) filled by \`gen\` with $(fmt_int "$FILL_MESSAGES") messages ($(fmt_int "$MEMBERS") members × $(fmt_int "$VIDEOS") videos) and checkpointed, then a tail of $(fmt_int "$MESSAGES") messages committed after the checkpoint; \`kill -9\`, restart after ${RESTART_DELAY} s with \`--session-timeout-ms $SESSION_MS\`${BENCH_INSTANCE_ID:+ and \`--instance-id $BENCH_INSTANCE_ID\`}${REPLICA_NAME:+ and \`--replica-name $REPLICA_NAME\` (LeaveGroup of the dead predecessor)} on tansu; one new impression and play produced right after the restart, polled on \`GET /v1/videos/{id}/discovery\`"
    echo
    echo "| measure | figure | goal | peer figure | ratio |"
    echo "| --- | --- | --- | --- | --- |"
    printf '| kill -9 → new event visible in the API, %s keys in the unit | %.2f s | ≤ %s s | clean restart to unit assigned: %.2f s | %.2f× goal |\n' \
        "$(fmt_int "$KEYS_NOW")" "$TOTAL_SECS" "$GOAL" "$CLEAN_SECS" "$(calc "$TOTAL_SECS / $GOAL")"
    printf '| phases: restart delay / group join / restore / replay / live → visible | %.2f / %.2f / %.2f / %.2f / %.2f s | — | — | — |\n' \
        "$DELAY" "$JOIN" "$RESTORE" "$REPLAY" "$FIRST"
    echo
    printf 'Notes: live → visible %.2f s, of which %.2f s until the first flush committed (its transaction %.2f s). Checkpoint of %s bytes (its layer files in the archive) for %s keys; replayed %s messages after it. Group join counts from the new process'"'"'s start to its "partitions assigned" log line (start-up checks included); restore to "unit assigned"; replay to "partition rebuilt; live".\n' \
        "$FIRST" "$TO_FLUSH" "$FLUSH_TX" "$(fmt_int "$SNAP_BYTES")" "$(fmt_int "$KEYS_NOW")" "$(fmt_int "$REPLAYED")"
} >"$section"
record takeover "$section"
