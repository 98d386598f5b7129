#!/usr/bin/env bash
# Runs the fault-injection suite (stream/tests/faults.rs) and prints its results as a table.
#
#   scripts/faults.sh                  the long variants (20 SIGKILLs, 5 broker restarts, ...)
#   scripts/faults.sh --short          the short variants (what ./scripts/test.sh runs)
#   scripts/faults.sh --pg-restart     accepted and ignored: the Postgres restart scenario always
#                                      runs, against a PostgreSQL server of its own (initdb)
#   scripts/faults.sh --update         also write the table into RELIABILITY.md
#   scripts/faults.sh -- FILTER        only the tests whose name matches FILTER (nextest filter)
#
# Needs the services of scripts/services.sh (Postgres, tansu on 127.0.0.1:9092), the tansu binary
# (the broker-restart scenario starts its own broker on a free port, SQLite storage), PostgreSQL's
# server binaries (the postgres-restart scenario initdb's its own server on a free port: the
# newest /usr/lib/postgresql/*/bin, or PLAYSOURCE_PG_BIN; as root it runs as the postgres user),
# and root for the archive scenario (it mounts a tiny tmpfs). A scenario whose tool is missing
# fails saying so; none skips itself. Tests run one at a time.
#
# Environment: DATABASE_URL, PLAYSOURCE_FAULTS_SEED (repeat the random fault points),
# PLAYSOURCE_KEEP_LOGS=1 (keep the workers' logs; a failing test always keeps them),
# PLAYSOURCE_FAULTS_RESULTS=FILE (collect the result lines of several runs in FILE; the table is
# built from all of them).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"

die() { printf '[faults] error: %s\n' "$*" >&2; exit 1; }

LONG=1 UPDATE=0 FILTER=()
while [ $# -gt 0 ]; do
    case "$1" in
        --short) LONG=0 ;;
        --pg-restart) ;; # the Postgres restart always runs (its own server)
        --update) UPDATE=1 ;;
        --) shift; FILTER=("$@"); break ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) die "unknown argument '$1'; see scripts/faults.sh --help" ;;
    esac
    shift
done

cargo nextest --version >/dev/null 2>&1 || die "cargo-nextest is not installed; run 'cargo install cargo-nextest --locked', then re-run scripts/faults.sh"

export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/playsource}"
export KAFKA_BROKERS="${KAFKA_BROKERS:-127.0.0.1:9092}"
[ "$LONG" = 1 ] && export PLAYSOURCE_FAULTS_LONG=1
# Result lines go to $PLAYSOURCE_FAULTS_RESULTS when set (kept, appended to: several runs make
# one table), else to a temporary file.
KEEP_RESULTS=0
if [ -n "${PLAYSOURCE_FAULTS_RESULTS:-}" ]; then
    RESULTS="$PLAYSOURCE_FAULTS_RESULTS" KEEP_RESULTS=1
    touch "$RESULTS" || die "cannot write PLAYSOURCE_FAULTS_RESULTS=$RESULTS; point it at a writable file"
else
    RESULTS="$(mktemp -t faults-results.XXXXXX)"
fi
export PLAYSOURCE_FAULTS_RESULTS="$RESULTS"

variant=$([ "$LONG" = 1 ] && echo long || echo short)
cmd=(cargo nextest run -p playsource-stream --test faults --no-capture --no-fail-fast "${FILTER[@]}")
printf '[faults] %s variants: %s\n' "$variant" "${cmd[*]}"
started=$SECONDS
rc=0
"${cmd[@]}" || rc=$?
elapsed=$((SECONDS - started))

# FAULT-RESULT key=value ... lines -> a Markdown table.
table() {
    printf '| scenario | runs | events | lost | doubled | seconds | notes |\n| --- | ---: | ---: | ---: | ---: | ---: | --- |\n'
    awk '/^FAULT-RESULT / {
        delete f
        n = index($0, " notes=")
        notes = n ? substr($0, n + 7) : ""
        gsub(/\|/, "\\|", notes)
        for (i = 2; i <= NF; i++) { eq = index($i, "="); if (eq) f[substr($i, 1, eq - 1)] = substr($i, eq + 1) }
        printf "| %s | %s | %s | %s | %s | %s | %s |\n", f["scenario"], f["runs"], f["events"], f["lost"], f["doubled"], f["seconds"], notes
    }' "$RESULTS"
}

echo
echo "[faults] results ($variant variants, $((elapsed / 60)) min $((elapsed % 60)) s, exit code $rc):"
echo
table
echo

if [ "$UPDATE" = 1 ]; then
    [ -s "$RESULTS" ] || die "no results were recorded; nothing to write into RELIABILITY.md"
    block="$(mktemp)"
    {
        echo "<!-- faults-table: written by scripts/faults.sh --update; edit the notes below the markers -->"
        echo "Last run: $(date -u +%Y-%m-%d), \`scripts/faults.sh$([ "$LONG" = 0 ] && echo ' --short')\` ($variant variants, $((elapsed / 60)) min, exit code $rc)."
        echo
        table
        echo "<!-- /faults-table -->"
    } >"$block"
    grep -q '^<!-- faults-table' RELIABILITY.md || die "RELIABILITY.md has no '<!-- faults-table' marker; add the fault section first"
    awk -v blockfile="$block" '
        /^<!-- faults-table/ { while ((getline line < blockfile) > 0) print line; skip = 1; next }
        /^<!-- \/faults-table -->/ { skip = 0; next }
        !skip { print }
    ' RELIABILITY.md >RELIABILITY.md.tmp && mv RELIABILITY.md.tmp RELIABILITY.md
    rm -f "$block"
    echo "[faults] RELIABILITY.md updated"
fi
[ "$KEEP_RESULTS" = 1 ] || rm -f "$RESULTS"
exit "$rc"
