#!/usr/bin/env bash
# Issue 6: the batch layer vs the DuckDB peer on the same archive. `playsource gen --to archive`
# writes 7 lookback days of impressions plus the batch days; `playsource batch` recomputes the
# batch days into a dedicated database; the anchors' duckdb_rules.py runs docs/reference.md §3 as one SQL
# query over the same Parquet files and catalog CSV; the batch view's hourly groups must equal
# the peer's exactly.
#
#   BENCH_SCALE=small   ~1 M events (20 k members x 5 k titles); full: 100 M events, 1 M x 10 k
#   BATCH_EVENTS / BATCH_MEMBERS / BATCH_VIDEOS / BATCH_DAYS   override the workload
#   BATCH_DATABASE_URL   [postgres://postgres@127.0.0.1:5432/playsource_bench] (dropped and
#                        re-created by every run)
#   BATCH_PERF=1         also profile `playsource batch` with `perf record -g` (a second run)
#   BATCH_LAYOUT=pyarrow rewrite the archive as pyarrow writes it with its defaults before both
#                        runs (bench/pyarrow_layout.py: one file per hour folder, snappy, int64
#                        ids, microsecond timestamps; issue #19); default: gen's own layout
#   BATCH_GEN_FLAGS      extra flags for `playsource gen` (e.g. `--sessions-per-member-day 0.085`
#                        to spread a small workload over every day; BATCH_EVENTS then caps it)
#   BENCH_KEEP=1         keep the archive (deleted at the end otherwise)
#   ANCHORS=/work/shared/anchors   BENCH_WORK=<folder for the archive>
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ANCHORS="${ANCHORS:-/work/shared/anchors}"
if [ "$BENCH_SCALE" = full ]; then
    : "${BATCH_EVENTS:=100000000}" "${BATCH_MEMBERS:=1000000}" "${BATCH_VIDEOS:=10000}"
else
    : "${BATCH_EVENTS:=1000000}" "${BATCH_MEMBERS:=20000}" "${BATCH_VIDEOS:=5000}"
fi
: "${BATCH_DAYS:=2}" "${BATCH_FIRST_DAY:=2026-11-01}" "${BATCH_SEED:=42}"
LOOKBACK=7
START="$(date -u -d "$BATCH_FIRST_DAY - $LOOKBACK days" +%F)"
LAST_DAY="$(date -u -d "$BATCH_FIRST_DAY + $((BATCH_DAYS - 1)) days" +%F)"
# One day more than read: `gen --events` ends its traffic shortly before its period does, and the
# last batch day must be whole.
GEN_DAYS=$((LOOKBACK + BATCH_DAYS + 1))
DB_URL="${BATCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/playsource_bench}"
DB_NAME="${DB_URL##*/}"
WORK="${BENCH_WORK:-$ROOT/target/bench/batch-$BENCH_SCALE}"
ARCHIVE="$WORK/archive"
[ -f "$ANCHORS/duckdb_rules.py" ] || die "the DuckDB peer is missing: $ANCHORS/duckdb_rules.py (set ANCHORS)"
"$PYTHON" -c 'import duckdb' 2>/dev/null || die "$PYTHON has no duckdb module; pip install duckdb (or set PLAYSOURCE_PYTHON)"
# Explicit topics and archive: the environment's fallbacks must not point the run elsewhere.
unset PLAYSOURCE_ARCHIVE PLAYSOURCE_IMPRESSIONS_TOPIC PLAYSOURCE_PLAYS_TOPIC PLAYSOURCE_BATCH_THREADS
topics=(--impressions-topic impressions --plays-topic plays)

bin="$(playsource_bin)"
rm -rf "$WORK" && mkdir -p "$WORK"
timed() { # timed NAME CMD...: runs CMD with /usr/bin/time into $WORK/NAME.time (wall user sys maxrss_kb)
    local name="$1"; shift
    /usr/bin/time -f '%e %U %S %M' -o "$WORK/$name.time" "$@"
}

# 1. The archive and the catalog.
say "gen: $BATCH_EVENTS messages, $BATCH_MEMBERS members x $BATCH_VIDEOS titles, $GEN_DAYS days from $START"
# shellcheck disable=SC2086 # BATCH_GEN_FLAGS is a list of flags
timed gen "$bin" gen --to archive --archive "$ARCHIVE" "${topics[@]}" --catalog-out "$WORK/catalog.csv" \
    --seed "$BATCH_SEED" --members "$BATCH_MEMBERS" --videos "$BATCH_VIDEOS" --start "$START" \
    --days "$GEN_DAYS" --events "$BATCH_EVENTS" ${BATCH_GEN_FLAGS:-} --progress >"$WORK/gen.log"
cat "$WORK/gen.log" >&2
BATCH_LAYOUT="${BATCH_LAYOUT:-own}"
case "$BATCH_LAYOUT" in
    own) ;;
    pyarrow)
        say "pyarrow layout: rewriting the archive with pyarrow's defaults"
        mv "$ARCHIVE" "$WORK/gen-archive"
        "$PYTHON" "$BENCH_DIR/pyarrow_layout.py" "$WORK/gen-archive" "$ARCHIVE" >"$WORK/layout.log"
        cat "$WORK/layout.log" >&2
        rm -rf "$WORK/gen-archive" ;;
    *) die "BATCH_LAYOUT=$BATCH_LAYOUT: use own or pyarrow" ;;
esac
archive_bytes="$(du -sb "$ARCHIVE" | cut -f1)"

# 2. A dedicated database with the catalog.
say "database $DB_NAME: dropped, initialised, catalog loaded"
drop_database "$DB_URL"
"$bin" init --database-url "$DB_URL" >&2
"$bin" catalog load --database-url "$DB_URL" "$WORK/catalog.csv" >&2

# 3. playsource batch over the batch days, then the DuckDB peer on the same files.
say "playsource batch --from $BATCH_FIRST_DAY --to $LAST_DAY"
RUST_LOG="${RUST_LOG:-info}" timed batch "$bin" batch --database-url "$DB_URL" --archive "$ARCHIVE" "${topics[@]}" \
    --from "$BATCH_FIRST_DAY" --to "$LAST_DAY" --no-progress >"$WORK/batch.log" 2>&1 ||
    { cat "$WORK/batch.log" >&2; die "playsource batch failed (log above)"; }
cat "$WORK/batch.log" >&2
say "duckdb_rules.py $ARCHIVE ... $BATCH_FIRST_DAY $BATCH_DAYS"
timed duckdb "$PYTHON" "$ANCHORS/duckdb_rules.py" "$ARCHIVE" "$WORK/catalog.csv" "$BATCH_FIRST_DAY" "$BATCH_DAYS" \
    "$WORK/duckdb.json" >"$WORK/duckdb.log" 2>&1 || { cat "$WORK/duckdb.log" >&2; die "the DuckDB peer failed (log above)"; }
cat "$WORK/duckdb.log" >&2

# 4. Same answer: the batch view's hourly groups vs the peer's.
psql -q "$DB_URL" -c "\\copy (SELECT to_char(hour AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:00:00\"Z\"'), country, device, sop_row, sod_row, genre, new_launch, plays FROM batch_hourly WHERE plays <> 0 AND hour >= DATE '$BATCH_FIRST_DAY' AND hour < DATE '$LAST_DAY' + 1) TO '$WORK/batch_hourly.csv' CSV"
"$PYTHON" "$BENCH_DIR/batch_compare.py" "$WORK/batch_hourly.csv" "$WORK/duckdb.json" >"$WORK/compare.json"

# 5. Optional profile of a second batch run.
if [ "${BATCH_PERF:-0}" = 1 ]; then
    command -v perf >/dev/null || die "BATCH_PERF=1 needs perf"
    say "perf record -g playsource batch (second run)"
    perf record -q -g -o "$WORK/perf.data" "$bin" batch --database-url "$DB_URL" --archive "$ARCHIVE" "${topics[@]}" \
        --from "$BATCH_FIRST_DAY" --to "$LAST_DAY" --no-progress >/dev/null 2>&1
    perf report -i "$WORK/perf.data" --stdio --no-children --sort symbol 2>/dev/null |
        grep -E '^ +[0-9.]+%' | head -15 | sed -E 's/^ +([0-9.]+%) +\[.\] ([^ ]+).*/\1 \2/' >"$WORK/perf_top.txt" || true
    cat "$WORK/perf_top.txt" >&2
fi

# 6. Figures and the section.
out="$WORK/section.md"
"$PYTHON" - "$WORK" "$archive_bytes" "$BENCH_SCALE" >"$WORK/figures.md" <<'PY'
import json, os, re, sys
work, archive_bytes, scale = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def t(name):
    wall, user, sys_, rss = open(f"{work}/{name}.time").read().split()
    return float(wall), float(user) + float(sys_), int(rss) / 1024
cmp = json.load(open(f"{work}/compare.json"))
gen_log = open(f"{work}/layout.log" if os.path.exists(f"{work}/layout.log") else f"{work}/gen.log").read()
m = re.search(r"wrote (\d+) rows in (\d+) files", gen_log)
rows, files = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
(gw, gc, grss), (bw, bc, brss), (dw, dc, drss) = t("gen"), t("batch"), t("duckdb")
dm = re.search(r"([\d.]+)s$", open(f"{work}/duckdb.log").read().strip())
d_query = float(dm.group(1)) if dm else dw
same = cmp["differing_groups"] == 0
M = lambda x: f"{x / 1e6:.2f} M" if x >= 1e6 else f"{x / 1e3:.0f} k"
print("| measure | figure | goal | peer figure (same run) | ratio |")
print("| --- | --- | --- | --- | --- |")
print(f"| `playsource batch`, wall | {bw:.1f} s ({M(rows / bw)} archived rows/s) | ≤ 60 s at 100 M events, faster than DuckDB | DuckDB: {dw:.1f} s ({d_query:.1f} s query, the rest Python and import) | {dw / bw:.2f}× the process, {d_query / bw:.2f}× the query alone (>1: playsource faster) |")
print(f"| CPU | {bc:.1f} CPU-s ({bc / bw:.1f} cores), {brss:.0f} MB peak RSS | — | {dc:.1f} CPU-s ({dc / dw:.1f} cores), {drss:.0f} MB peak RSS | {dc / bc:.2f}× |")
print(f"| hourly groups, batch view vs DuckDB | {cmp['batch_groups']} groups, {cmp['batch_plays']} plays | identical | {cmp['duckdb_groups']} groups, {cmp['duckdb_plays']} plays | {'identical' if same else str(cmp['differing_groups']) + ' groups differ (' + str(cmp['plays_off']) + ' plays)'} |")
layout = " (then rewritten by pyarrow_layout.py)" if os.path.exists(f"{work}/layout.log") else ""
print(f"| archive: `playsource gen --to archive`{layout} | gen {gw:.1f} s; {rows:,} rows in {files} files, {archive_bytes / 2**20:.0f} MiB ({archive_bytes / max(rows, 1):.0f} bytes/row) | — | — | — |")
print()
if not same:
    print("- first differences (batch vs DuckDB): " + "; ".join(cmp["first_differences"]))
days = re.findall(r"(\d{4}-\d{2}-\d{2}): published generation \d+[^\n]*", open(f"{work}/batch.log").read())
secs = re.findall(r'secs=([\d.]+)', open(f"{work}/batch.log").read())
if secs:
    print(f"- batch per day (from its log, seconds): {', '.join(f'{float(s):.1f}' for s in secs)}")
if os.path.exists(f"{work}/perf_top.txt"):
    top = [l.strip() for l in open(f"{work}/perf_top.txt") if l.strip()][:8]
    if top:
        print("- perf hotspots of a second batch run (self time): " + "; ".join(f"`{l}`" for l in top))
if scale != "full":
    print("- not the issue's scale (100 M events): fixed costs (process start, catalog, publish) weigh more here")
PY
{
    if [ "$BATCH_LAYOUT" = pyarrow ]; then
        printf '## Batch vs the DuckDB peer on an archive written by pyarrow (issue 19)\n\n'
        section_header "bench/batch.sh (BENCH_SCALE=$BENCH_SCALE BATCH_LAYOUT=pyarrow)"
        printf -- '- layout: the archive below rewritten by `bench/pyarrow_layout.py` (pyarrow defaults: one file per hour folder, snappy, dictionary strings, timestamp[us], int64 ids, string event ids)\n'
    else
        printf '## Batch vs the DuckDB peer (issue 6)\n\n'
        section_header "bench/batch.sh (BENCH_SCALE=$BENCH_SCALE)"
    fi
    printf -- '- workload: `playsource gen --to archive --members %s --videos %s --events %s --days %s --start %s --seed %s%s` (7 lookback days of impressions + %s batch days %s to %s + one day after them that neither side reads; gen defaults otherwise, 0.5%% redeliveries archived as the stream would)\n\n' \
        "$BATCH_MEMBERS" "$BATCH_VIDEOS" "$BATCH_EVENTS" "$GEN_DAYS" "$START" "$BATCH_SEED" "${BATCH_GEN_FLAGS:+ $BATCH_GEN_FLAGS}" "$BATCH_DAYS" "$BATCH_FIRST_DAY" "$LAST_DAY"
    cat "$WORK/figures.md"
    cat <<EOF
- playsource: \`playsource batch --from $BATCH_FIRST_DAY --to $LAST_DAY\` on a fresh database
  (catalog loaded by \`playsource catalog load\`), every core; it also writes each day's enriched
  plays as Parquet and publishes both views to Postgres, which the peer does not.
- DuckDB: \`duckdb_rules.py ARCHIVE CATALOG $BATCH_FIRST_DAY $BATCH_DAYS OUT.json\` of the anchors
  (one SQL query over the same Parquet files, every core), timed as a whole process.
- answers: batch_hourly rows of the batch days compared exactly with the peer's groups (hour,
  country, device, SoP, SoD, genre, new launch, plays).
EOF
} >"$out"
if [ "$BENCH_RECORD" = 1 ]; then cat "$out"; fi
if [ "$BATCH_LAYOUT" = pyarrow ]; then record "batch-pyarrow-$BATCH_EVENTS" "$out"; else record batch "$out"; fi
[ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$ARCHIVE"
