#!/usr/bin/env bash
# Issue 16 (item 5): the raw archive on local disk and on an S3 server, as `playsource gen --to
# archive` writes it and as the stream writes it, and `playsource batch` over each. One workload
# (one day of events, same seed) gives four archives:
#
#   gen-local     playsource gen --to archive --archive DIR
#   gen-s3        playsource gen --to archive --archive s3://BUCKET/PREFIX
#   stream-local  playsource gen --to kafka, then playsource stream --exit-when-idle into DIR
#   stream-s3     the same topics read again by a second consumer group into s3://BUCKET/PREFIX
#
# and for each: the data files per hour of the Hive layout and bytes per file (files under
# `_`-prefixed areas, not yet published, counted apart), then `playsource batch --date D` over it
# (wall time, archived rows per second). The four batch runs must count the same plays.
#
#   bench/archive_s3.sh                       10 M events, 1 M members x 10 k videos
#   BENCH_SCALE=small bench/archive_s3.sh     200 k events (a few minutes; not recorded)
#   BENCH_EVENTS / BENCH_MEMBERS / BENCH_VIDEOS   another workload
#   PLAYSOURCE_S3_ENDPOINT [http://127.0.0.1:9000]  PLAYSOURCE_S3_BUCKET [playsource-test]
#       the S3 server (scripts/services.sh starts one); AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY
#       [test / test, what the test server takes] and AWS_REGION [us-east-1]
#   BENCH_KEEP=1   keep the local archives, the S3 prefixes and the topics
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$BENCH_DIR/stack.sh"

if [ "$BENCH_SCALE" = small ]; then EVENTS_DEFAULT=200000; else EVENTS_DEFAULT=10000000; fi
EVENTS="${BENCH_EVENTS:-$EVENTS_DEFAULT}"
MEMBERS="${BENCH_MEMBERS:-1000000}"
VIDEOS="${BENCH_VIDEOS:-10000}"
DAY=2026-11-01
SEED=42
IDLE=2
S3_ENDPOINT="${PLAYSOURCE_S3_ENDPOINT:-http://127.0.0.1:9000}"
S3_BUCKET="${PLAYSOURCE_S3_BUCKET:-playsource-test}"
export AWS_ENDPOINT_URL="$S3_ENDPOINT"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
export AWS_REGION="${AWS_REGION:-us-east-1}"
"$PYTHON" -c 'import boto3' 2>/dev/null || die "$PYTHON has no boto3 module (scripts/services.sh installs it with the S3 server)"
(exec 3<>"/dev/tcp/$(sed -E 's|^[a-z]+://([^:/]+).*|\1|' <<<"$S3_ENDPOINT")/$(sed -E 's|^[a-z]+://[^:/]+:?([0-9]*).*|\1|' <<<"$S3_ENDPOINT")") 2>/dev/null ||
    die "no S3 server at $S3_ENDPOINT; start it with scripts/services.sh or set PLAYSOURCE_S3_ENDPOINT"
unset PLAYSOURCE_ARCHIVE PLAYSOURCE_BATCH_THREADS

bench_start archive
S3_PREFIX="bench-archive-$BENCH_STAMP"
declare -A ARCHIVE=(
    [gen-local]="$BENCH_WORK/gen-local"
    [gen-s3]="s3://$S3_BUCKET/$S3_PREFIX/gen"
    [stream-local]="$BENCH_WORK/stream-local"
    [stream-s3]="s3://$S3_BUCKET/$S3_PREFIX/stream"
)
KINDS=(gen-local gen-s3 stream-local stream-s3)
s3_cleanup() {
    [ "${BENCH_KEEP:-0}" = 1 ] && return
    "$PYTHON" - "$S3_ENDPOINT" "$S3_BUCKET" "$S3_PREFIX/" <<'PY' 2>/dev/null || true
import sys, boto3
endpoint, bucket, prefix = sys.argv[1:]
s3 = boto3.client("s3", endpoint_url=endpoint)
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
    keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
    if keys:
        s3.delete_objects(Bucket=bucket, Delete={"Objects": keys})
PY
}
trap 's3_cleanup; bench_cleanup' EXIT

timed() { # timed NAME CMD...: CMD with /usr/bin/time into $BENCH_WORK/NAME.time (wall user sys maxrss_kb)
    local name="$1"; shift
    /usr/bin/time -f '%e %U %S %M' -o "$BENCH_WORK/$name.time" "$@"
}
workload=(--seed "$SEED" --members "$MEMBERS" --videos "$VIDEOS" --start "${DAY}T00:00:00Z" --days 1 --events "$EVENTS")

# 1. gen --to archive, locally and on S3 (the same files).
for kind in gen-local gen-s3; do
    say "$kind: gen --to archive --archive ${ARCHIVE[$kind]} ($EVENTS events)"
    timed "write-$kind" "$BIN" gen --to archive --archive "${ARCHIVE[$kind]}" "${workload[@]}" \
        --catalog-out "$BENCH_WORK/catalog.csv" >"$BENCH_WORK/write-$kind.log" 2>&1 ||
        { cat "$BENCH_WORK/write-$kind.log" >&2; die "gen --to archive failed ($kind)"; }
    say "$(grep '^gen: wrote' "$BENCH_WORK/write-$kind.log")"
done
load_catalog "$BENCH_WORK/catalog.csv"

# 2. The same workload through Kafka, archived by the stream: into a local folder, then (a second
#    consumer group over the same topics) into S3.
say "gen --to kafka ($EVENTS events)"
"$BIN" gen --to kafka "${workload[@]}" >"$BENCH_WORK/produce.log" 2>&1 ||
    { cat "$BENCH_WORK/produce.log" >&2; die "gen --to kafka failed"; }
say "$(grep '^gen: produced' "$BENCH_WORK/produce.log")"
# The second stream gets a database of its own: one realtime view is fed by one consumer group.
base="${DATABASE_URL%%\?*}"
declare -A STREAM_DB=(
    [stream-local]="$DATABASE_URL"
    [stream-s3]="${base}_s3${DATABASE_URL#"$base"}"
)
drop_database "${STREAM_DB[stream-s3]}"
"$BIN" init --database-url "${STREAM_DB[stream-s3]}" >"$BENCH_WORK/init-s3.log" 2>&1 ||
    { cat "$BENCH_WORK/init-s3.log" >&2; die "playsource init of the second database failed"; }
for kind in stream-local stream-s3; do
    say "$kind: stream --exit-when-idle $IDLE --archive ${ARCHIVE[$kind]}"
    DATABASE_URL="${STREAM_DB[$kind]}" timed "write-$kind" "$BIN" stream --archive "${ARCHIVE[$kind]}" --group-id "$PLAYSOURCE_GROUP_ID-$kind" \
        --exit-when-idle "$IDLE" --metrics-listen "127.0.0.1:$(free_port)" >"$BENCH_WORK/write-$kind.log" 2>&1 ||
        { tail -n 20 "$BENCH_WORK/write-$kind.log" >&2; die "stream failed ($kind)"; }
    say "$(grep 'playsource stream: idle' "$BENCH_WORK/write-$kind.log" || true)"
done

# 3. Files of each archive: data files per hour of the Hive layout, bytes per file, and what is
#    still under `_`-prefixed areas.
for kind in "${KINDS[@]}"; do
    "$PYTHON" - "${ARCHIVE[$kind]}" "$S3_ENDPOINT" "$PLAYSOURCE_IMPRESSIONS_TOPIC" "$PLAYSOURCE_PLAYS_TOPIC" \
        >"$BENCH_WORK/files-$kind.json" <<'PY'
import json, os, sys
from collections import Counter
root, endpoint, *topics = sys.argv[1:]
files = []  # (path relative to the root, bytes)
if root.startswith("s3://"):
    import boto3
    bucket, _, prefix = root[5:].partition("/")
    s3 = boto3.client("s3", endpoint_url=endpoint)
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
        files += [(o["Key"][len(prefix) + 1:], o["Size"]) for o in page.get("Contents", [])]
else:
    for d, _, names in os.walk(root):
        files += [(os.path.relpath(os.path.join(d, n), root), os.path.getsize(os.path.join(d, n))) for n in names]
per_hour, sizes, pending, pending_bytes = Counter(), [], 0, 0
for rel, size in files:
    parts = rel.split("/")
    if parts[0] not in topics or not rel.endswith(".parquet"):
        continue
    if any(p.startswith(("_", ".")) for p in parts[1:]):
        pending += 1
        pending_bytes += size
        continue
    hour = tuple(p for p in parts[1:-1] if p.startswith(("date=", "hour=")))
    per_hour[(parts[0],) + hour] += 1
    sizes.append(size)
hours = len(per_hour)
print(json.dumps({
    "files": len(sizes), "hours": hours, "bytes": sum(sizes),
    "files_per_hour": len(sizes) / max(hours, 1), "max_files_per_hour": max(per_hour.values(), default=0),
    "bytes_per_file": sum(sizes) / max(len(sizes), 1), "pending_files": pending, "pending_bytes": pending_bytes,
}))
PY
    say "$kind: $(cat "$BENCH_WORK/files-$kind.json")"
done

# 4. playsource batch over each archive (the same database: each run replaces the day).
for kind in "${KINDS[@]}"; do
    say "$kind: batch --date $DAY --archive ${ARCHIVE[$kind]}"
    RUST_LOG="${RUST_LOG:-info}" timed "batch-$kind" "$BIN" batch --date "$DAY" --archive "${ARCHIVE[$kind]}" \
        --no-progress >"$BENCH_WORK/batch-$kind.log" 2>&1 ||
        { tail -n 20 "$BENCH_WORK/batch-$kind.log" >&2; die "playsource batch failed ($kind)"; }
    psql_value "select plays from batch_days where day = '$DAY'" >"$BENCH_WORK/plays-$kind.txt"
    say "$(grep "^$DAY: published" "$BENCH_WORK/batch-$kind.log")"
done

# 5. Figures and the section.
out="$BENCH_WORK/section.md"
"$PYTHON" - "$BENCH_WORK" "${KINDS[@]}" >"$BENCH_WORK/figures.md" <<'PY'
import json, re, sys
work, kinds = sys.argv[1], sys.argv[2:]
def t(name):
    wall, user, sys_, rss = open(f"{work}/{name}.time").read().split()
    return float(wall), float(user) + float(sys_), int(rss) / 1024
plays = {k: open(f"{work}/plays-{k}.txt").read().strip() for k in kinds}
same = len(set(plays.values())) == 1
M = lambda x: f"{x / 1e6:.2f} M" if x >= 1e6 else f"{x / 1e3:.0f} k"
print("| archive | written in | data files (Hive layout) | files per hour (mean / max) | bytes per file | not yet published (`_` areas) | `playsource batch`, wall | archived rows/s | CPU, peak RSS |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
base = None
for k in kinds:
    f = json.load(open(f"{work}/files-{k}.json"))
    ww, _, _ = t(f"write-{k}")
    bw, bc, brss = t(f"batch-{k}")
    log = open(f"{work}/write-{k}.log").read()
    m = re.search(r"wrote (\d+) rows", log) or re.search(r"processed (\d+) messages", log)
    n = int(m.group(1)) if m else 0
    base = base or bw
    print(f"| {k} | {ww:.1f} s | {f['files']:,} ({f['bytes'] / 2**20:.0f} MiB) | {f['files_per_hour']:.1f} / {f['max_files_per_hour']} | {f['bytes_per_file'] / 1024:.0f} KiB | {f['pending_files']} files, {f['pending_bytes'] / 2**20:.1f} MiB | {bw:.1f} s ({bw / base:.2f}× gen-local) | {M(n / bw)} | {bc:.1f} CPU-s, {brss:.0f} MB |")
print()
print(f"- plays counted by the four batch runs: {', '.join(f'{k} {v}' for k, v in plays.items())} ({'identical' if same else '**they differ**'})")
PY
{
    printf '## The archive on local disk and on S3: files and batch (issue 16)\n\n'
    section_header "BENCH_EVENTS=$EVENTS bench/archive_s3.sh"
    printf -- '- workload: `playsource gen --seed %s --members %s --videos %s --start %sT00:00:00Z --days 1 --events %s`, written by `gen --to archive` and, through tansu (8 partitions per topic), by `playsource stream --exit-when-idle %s`\n' \
        "$SEED" "$MEMBERS" "$VIDEOS" "$DAY" "$EVENTS" "$IDLE"
    printf -- '- S3: %s (bucket `%s`), on this machine\n\n' "$S3_ENDPOINT" "$S3_BUCKET"
    cat "$BENCH_WORK/figures.md"
    cat <<EOF
- *written in*: \`gen --to archive\` as a whole process; the stream from its start to its idle exit
  (including the ${IDLE} s of idleness). *archived rows/s*: rows the archive holds (gen's
  report; the stream's messages processed) over the batch's wall time.
- \`playsource batch --date $DAY --archive ARCHIVE\` on one database, every core; each run replaces
  the day (it reads the plays twice and the impressions once, and writes the enriched plays
  into the same archive).
EOF
} >"$out"
if [ "$BENCH_RECORD" = 1 ]; then cat "$out"; fi
record archive_s3 "$out"
grep -q "identical" "$BENCH_WORK/figures.md" || die "the four batch runs counted different plays (see above)"
