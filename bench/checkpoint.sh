#!/usr/bin/env bash
# Checkpoints of one large unit (issue 17): `stream/benches/checkpoint.rs` fills one engine with
# N (member, video) pairs and measures its RSS, the first (full) checkpoint layer and an
# incremental one after 1 % of the pairs changed (the loop's share and the encoding and writing
# off the loop, sizes), the loop's events/s while a layer is written beside it against without,
# the background merge of the chain and the restore. Layers are taken as the stream does: begun,
# then copied in slices between events. Goals: incremental ≤ 5 % of full, no hold of the loop
# > 100 ms while checkpointing, restore ≥ 1 M keys/s.
#
#   bench/checkpoint.sh                       100 M keys (about 14 GB of memory at the peak)
#   BENCH_SCALE=small bench/checkpoint.sh     1 M keys
#   BENCH_KEYS=10000000 bench/checkpoint.sh   another size
#   BENCH_ARCHIVE=s3://bucket/prefix          layers on an object store (AWS_* variables)

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [ "$BENCH_SCALE" = small ]; then KEYS_DEFAULT=1000000; else KEYS_DEFAULT=100000000; fi
KEYS="${BENCH_KEYS:-$KEYS_DEFAULT}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/playsource-bench-checkpoint.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

say "building the checkpoint bench (release)"
(cd "$ROOT" && cargo bench -q -p playsource-stream --bench checkpoint --no-run) >&2 || die "building stream/benches/checkpoint.rs failed"
say "running with $KEYS keys (layers in ${BENCH_ARCHIVE:-$WORK})"
(cd "$ROOT" && BENCH_KEYS="$KEYS" BENCH_STORE="$WORK" /usr/bin/time -f '%e %M' -o "$WORK/time" \
    cargo bench -q -p playsource-stream --bench checkpoint) >"$WORK/figures.txt" || die "the checkpoint bench failed"
cat "$WORK/figures.txt" >&2

out="$WORK/section.md"
"$PYTHON" - "$WORK" >"$WORK/table.md" <<'PY'
import sys
work = sys.argv[1]
f = dict(l.split(": ", 1) for l in open(f"{work}/figures.txt").read().splitlines() if ": " in l)
wall, peak_kb = open(f"{work}/time").read().split()
g = lambda k: float(f[k])
GB = lambda b: f"{b / 2**30:.2f} GiB"
MB = lambda b: f"{b / 2**20:.1f} MiB"
share = g("incremental_share_of_full")
hold = max(g("full_longest_hold_s"), g("incremental_longest_hold_s"))
rate = g("restore_keys_per_s")
ok = lambda c: "met" if c else "**not met**"
print("| figure | value |")
print("| --- | --- |")
print(f"| pairs (keys) in the unit | {int(g('keys')):,} |")
print(f"| engine state (its own count) / process RSS after filling | {GB(g('state_bytes'))} / {GB(g('rss_bytes'))} |")
print(f"| filling, one impression per pair | {g('fill_events_per_s') / 1e6:.2f} M events/s |")
def sliced(kind, label):
    print(f"| {label}: loop's longest hold (its beginning {g(kind + '_begin_on_loop_s') * 1000:.1f} ms, or one slice) | {g(kind + '_longest_hold_s') * 1000:.1f} ms |")
    print(f"| {label}: copy in slices, beginning to last slice | {g(kind + '_copy_wall_s'):.2f} s, {int(g(kind + '_slices')):,} slices; the loop fed {g(kind + '_events_per_s_while_copying') / 1e6:.2f} M events/s meanwhile |")
sliced("full", "full layer")
print(f"| full layer: sort, encode, write (off the loop) | {g('full_write_s'):.2f} s, {MB(g('full_bytes'))} |")
print(f"| incremental layer after 1 % changed ({int(g('changed_pairs')):,} pairs), taken at once (before slicing) | {g('incremental_take_at_once_s') * 1000:.1f} ms hold |")
sliced("incremental", "incremental layer")
print(f"| longest hold of the loop while checkpointing | {hold * 1000:.1f} ms ({ok(hold <= 0.1)}: ≤ 100 ms) |")
print(f"| incremental layer: sort, encode, write (off the loop) | {g('incremental_write_s'):.3f} s, {MB(g('incremental_bytes'))} |")
print(f"| incremental / full size | {share * 100:.2f} % ({ok(share <= 0.05)}: ≤ 5 %) |")
print(f"| loop's events/s alone / while a full layer is written beside it | {g('loop_events_per_s_alone') / 1e6:.2f} M / {g('loop_events_per_s_while_writing') / 1e6:.2f} M (the write took {g('full_write_beside_loop_s'):.1f} s) |")
print(f"| merge of the chain into one full layer (background) | {g('merge_s'):.2f} s, {MB(g('merged_bytes'))} |")
print(f"| restore from the chain (full + incremental) | {g('restore_chain_s'):.2f} s = {rate / 1e6:.2f} M keys/s ({ok(rate >= 1e6)}: ≥ 1 M keys/s) |")
print(f"| restore from the merged layer | {g('restore_merged_s'):.2f} s |")
print(f"| peak RSS of the bench process | {GB(int(peak_kb) * 1024)} (wall {float(wall):.0f} s) |")
PY
{
    printf '## Checkpoints of one large unit (issue 17)\n\n'
    section_header "BENCH_KEYS=$KEYS bench/checkpoint.sh"
    printf -- '- store: %s (local disk unless BENCH_ARCHIVE is set); one engine, one impression per pair, then 1 %% of the pairs given a second impression\n\n' "${BENCH_ARCHIVE:-a temporary folder}"
    cat "$WORK/table.md"
    cat <<'MD'

- *hold*: a time the consumer loop does nothing but checkpoint work: `Engine::begin_layer` (the
  engine's small parts) or one slice of `Engine::continue_layer` (copying the changed pairs'
  slots; 5 ms at most, every 10 ms, events fed in between, as `stream/src/checkpoint/unit.rs`
  does); sorting, encoding and writing run in the flush task on another core.
- *while a full layer is written beside it*: the loop feeding events on one core while another
  thread encodes and writes a full layer; on 2 cores the two share memory bandwidth.
MD
} >"$out"
if [ "$BENCH_RECORD" = 1 ]; then cat "$out"; fi
record checkpoint "$out"
