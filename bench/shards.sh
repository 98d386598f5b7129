#!/usr/bin/env bash
# Issue 19 (item 3): one day's batch recomputation split into shards (`playsource batch --date D
# --shard I/N`, docs/batch.md "Shards"). One day of `playsource gen` traffic goes through tansu
# (8 partitions per topic) into a local archive written by `playsource stream --exit-when-idle`,
# so every file says its Kafka partition and shard I reads only the files of its partitions. Then:
#
#   - the whole day without --shard (the reference: its views and its wall time);
#   - for each N: every shard I/N alone, one after another (per-shard wall, CPU and events/s:
#     the figure a machine of its own would give), then the N shards started together on this
#     machine (wall from the first start to the last exit, publishing included);
#
# and after every run the published day (batch_hourly, batch_video_daily) must equal the
# reference byte for byte. The capacity model of docs/batch.md takes r from the alone runs.
#
#   bench/shards.sh                       10 M events, 1 M members x 10 k videos, N = 1 2 4
#   BENCH_SCALE=small bench/shards.sh     200 k events (a minute or two; not recorded)
#   BENCH_EVENTS / BENCH_MEMBERS / BENCH_VIDEOS   another workload
#   BENCH_SHARDS="1 2 4 8"                the shard counts
#   BENCH_KEEP=1                          keep the archive, the logs and the topics
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$BENCH_DIR/stack.sh"

if [ "$BENCH_SCALE" = small ]; then EVENTS_DEFAULT=200000; else EVENTS_DEFAULT=10000000; fi
EVENTS="${BENCH_EVENTS:-$EVENTS_DEFAULT}"
MEMBERS="${BENCH_MEMBERS:-1000000}"
VIDEOS="${BENCH_VIDEOS:-10000}"
read -r -a SHARDS <<<"${BENCH_SHARDS:-1 2 4}"
DAY=2026-11-01
SEED=42
unset PLAYSOURCE_ARCHIVE PLAYSOURCE_BATCH_THREADS PLAYSOURCE_BATCH_SHARD

bench_start shards
ARCHIVE="$BENCH_WORK/archive"
world=(--seed "$SEED" --members "$MEMBERS" --videos "$VIDEOS" --start "${DAY}T00:00:00Z" --days 1)
timed() { # timed NAME CMD...: CMD with /usr/bin/time into $BENCH_WORK/NAME.time (wall user sys maxrss_kb)
    local name="$1"; shift
    /usr/bin/time -f '%e %U %S %M' -o "$BENCH_WORK/$name.time" "$@"
}

# 1. The day through Kafka into a stream-written archive; the catalog.
"$BIN" gen --to archive --archive "$BENCH_WORK/unused" "${world[@]}" --events 1 \
    --catalog-out "$BENCH_WORK/catalog.csv" >"$BENCH_WORK/catalog-gen.log" 2>&1 ||
    { cat "$BENCH_WORK/catalog-gen.log" >&2; die "gen --catalog-out failed"; }
load_catalog "$BENCH_WORK/catalog.csv"
say "gen --to kafka ($EVENTS events)"
"$BIN" gen --to kafka "${world[@]}" --events "$EVENTS" >"$BENCH_WORK/produce.log" 2>&1 ||
    { cat "$BENCH_WORK/produce.log" >&2; die "gen --to kafka failed"; }
say "$(grep '^gen: produced' "$BENCH_WORK/produce.log")"
say "stream --exit-when-idle 2 --archive $ARCHIVE"
"$BIN" stream --archive "$ARCHIVE" --exit-when-idle 2 --metrics-listen "127.0.0.1:$(free_port)" \
    >"$BENCH_WORK/stream.log" 2>&1 || { tail -n 20 "$BENCH_WORK/stream.log" >&2; die "stream failed"; }

# Archived rows of the day by Kafka partition (the `_partition` column the stream writes).
"$PYTHON" - "$ARCHIVE" "$PLAYSOURCE_IMPRESSIONS_TOPIC" "$PLAYSOURCE_PLAYS_TOPIC" "$DAY" >"$BENCH_WORK/rows.json" <<'PY'
import json, os, sys
from collections import Counter
import pyarrow.parquet as pq
root, imp, plays, day = sys.argv[1:]
rows = Counter()
for topic in (imp, plays):
    for d, dirs, names in os.walk(os.path.join(root, topic, f"date={day}")):
        dirs[:] = [x for x in dirs if not x.startswith(("_", "."))]
        for n in names:
            if n.endswith(".parquet") and not n.startswith(("_", ".")):
                t = pq.read_table(os.path.join(d, n), columns=["_partition"])
                rows.update(t.column(0).to_pylist())
print(json.dumps({str(p): n for p, n in sorted(rows.items())}))
PY
ROWS="$("$PYTHON" -c 'import json,sys; print(sum(json.load(open(sys.argv[1])).values()))' "$BENCH_WORK/rows.json")"
say "archive: $ROWS rows of $DAY"

# The published day, sorted, for byte-for-byte comparison.
dump() {
    psql -XAtq "$DATABASE_URL" -c "SELECT * FROM batch_hourly WHERE hour >= DATE '$DAY' AND hour < DATE '$DAY' + 1 ORDER BY 1,2,3,4,5,6,7" >"$1"
    psql -XAtq "$DATABASE_URL" -c "SELECT * FROM batch_video_daily WHERE day = DATE '$DAY' ORDER BY 1,2,3" >>"$1"
}
same_as_reference() { # NAME
    dump "$BENCH_WORK/view-$1.txt"
    cmp -s "$BENCH_WORK/view-whole.txt" "$BENCH_WORK/view-$1.txt" ||
        die "the day published by $1 differs from the one-machine run (diff $BENCH_WORK/view-whole.txt $BENCH_WORK/view-$1.txt)"
}
batch() { # NAME ARGS...: one timed `playsource batch --date DAY` run
    local name="$1"; shift
    timed "$name" "$BIN" batch --date "$DAY" --archive "$ARCHIVE" --no-progress "$@" >"$BENCH_WORK/$name.log" 2>&1 ||
        { tail -n 20 "$BENCH_WORK/$name.log" >&2; die "playsource batch $* failed"; }
}

# 2. The whole day on this machine: the reference.
say "batch --date $DAY (no shards)"
batch whole
dump "$BENCH_WORK/view-whole.txt"
[ -s "$BENCH_WORK/view-whole.txt" ] || die "the one-machine run published nothing"

# 3. Each N: the shards alone, then together.
for n in "${SHARDS[@]}"; do
    for i in $(seq 1 "$n"); do
        say "batch --shard $i/$n (alone)"
        batch "alone-$n-$i" --shard "$i/$n"
    done
    same_as_reference "alone-$n"
    say "batch --shard 1..$n/$n (together)"
    t0="$(now)"
    pids=()
    for i in $(seq 1 "$n"); do
        batch "together-$n-$i" --shard "$i/$n" &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "$pid" || die "a shard of $n failed (logs in $BENCH_WORK)"; done
    echo "$(calc "$(now) - $t0")" >"$BENCH_WORK/together-$n.wall"
    same_as_reference "together-$n"
done

# 4. Figures and the section.
section="$BENCH_WORK/section.md"
"$PYTHON" - "$BENCH_WORK" "$ROWS" "${SHARDS[@]}" >"$BENCH_WORK/figures.md" <<'PY'
import json, sys
work, rows, shards = sys.argv[1], int(sys.argv[2]), [int(n) for n in sys.argv[3:]]
per_partition = {int(p): n for p, n in json.load(open(f"{work}/rows.json")).items()}
def t(name):
    wall, user, sys_, _ = open(f"{work}/{name}.time").read().split()
    return float(wall), float(user) + float(sys_)
M = lambda x: f"{x / 1e6:.2f} M"
whole_wall, whole_cpu = t("whole")
print("| shards N | per shard alone: wall mean / max | per shard: events/s (r) | per shard: CPU-s (mean) | capacity 3600·r, events/day per shard-hour | N together on this machine: wall, events/s |")
print("| --- | --- | --- | --- | --- | --- |")
print(f"| — (no `--shard`) | {whole_wall:.2f} s | {M(rows / whole_wall)} | {whole_cpu:.1f} | {rows / whole_wall * 3600 / 1e9:.1f} G | — |")
for n in shards:
    walls, rates, cpus = [], [], []
    for i in range(1, n + 1):
        w, c = t(f"alone-{n}-{i}")
        share = sum(v for p, v in per_partition.items() if p % n == i - 1)
        walls.append(w); cpus.append(c); rates.append(share / w)
    r = sum(rates) / n
    together = float(open(f"{work}/together-{n}.wall").read())
    print(f"| {n} | {sum(walls) / n:.2f} / {max(walls):.2f} s | {M(r)} | {sum(cpus) / n:.1f} | {r * 3600 / 1e9:.1f} G | {together:.2f} s, {M(rows / together)} |")
PY
{
    printf '## Batch in shards (issue 19)\n\n'
    section_header "bench/shards.sh (BENCH_SCALE=$BENCH_SCALE, BENCH_SHARDS=\"${SHARDS[*]}\")"
    printf -- '- workload: `playsource gen --to kafka %s --events %s` through tansu (8 partitions per topic) into a local archive by `playsource stream --exit-when-idle 2`: %s archived rows of %s (impressions and plays of the day; no lookback days in this workload)\n\n' \
        "${world[*]}" "$EVENTS" "$(fmt_int "$ROWS")" "$DAY"
    cat "$BENCH_WORK/figures.md"
    cat <<EOF

- every run: \`playsource batch --date $DAY --archive ARCHIVE [--shard I/N]\` with every core (\`--threads\` default);
  the day each run published (batch_hourly and batch_video_daily rows) was compared byte for
  byte with the one-machine run: identical for every N, alone and together.
- *alone*: the shards of N one after another, each with the machine to itself (what N machines
  would each give); *r* = the archived rows of the shard's partitions over its wall time,
  publishing included for the last one. *together*: the N shards started at once on these 2
  cores, from the first start to the last exit; on N machines the day would take about the
  slowest alone wall.
- the stream-written files carry their partition, so shard I reads only the files of partitions
  p with p mod N = I − 1; with files of another tool every shard reads every file and keeps its
  members' rows, so r then counts rows read, not kept (docs/batch.md, capacity model).
EOF
} >"$section"
cat "$BENCH_WORK/figures.md" >&2
record shards "$section"
