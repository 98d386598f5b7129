"""Rewrites a playsource archive as another tool would write it: pyarrow with its defaults.

    pyarrow_layout.py SRC DST

For every hour folder of SRC (`<topic>/date=D/hour=H/*.parquet`) one file
`DST/<topic>/date=D/hour=H/part-0.parquet`, written by `pq.write_table` with pyarrow's defaults
(snappy pages, dictionary-encoded pages, one row group per 1 Mi rows) and the column types a
pandas/pyarrow pipeline produces: low-cardinality strings as dictionary columns, `ts` as
timestamp[us, UTC], ids as int64, `row_index`/`rank`
as int64, `event_id` a plain string; playsource's own `_partition`/`_offset` columns dropped.
Issue #19 measures the batch layer against DuckDB on this layout (bench/batch.sh
BATCH_LAYOUT=pyarrow). Prints one line: rows and files written.
"""

import os
import sys

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

CASTS = {
    "ts": pa.timestamp("us", tz="UTC"),
    "member_id": pa.int64(),
    "video_id": pa.int64(),
    "row_index": pa.int64(),
    "rank": pa.int64(),
}

# Low-cardinality strings as dictionary columns (what pandas categoricals become), so readers get
# Arrow dictionary arrays; event_id and session_id stay plain strings.
DICTIONARY = {"page", "row_type", "country", "device"}


def rewrite(src: str, dst: str) -> tuple[int, int]:
    rows = files = 0
    for topic in sorted(os.listdir(src)):
        if topic.startswith(("_", ".")) or topic == "enriched_plays":
            continue
        for dirpath, dirnames, filenames in os.walk(os.path.join(src, topic)):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(("_", ".")))
            parts = sorted(f for f in filenames if f.endswith(".parquet") and not f.startswith(("_", ".")))
            if not parts:
                continue
            table = pa.concat_tables(pq.read_table(os.path.join(dirpath, f)) for f in parts)
            table = table.drop_columns([c for c in ("_partition", "_offset") if c in table.column_names])
            cols = []
            for name in table.column_names:
                col = table[name]
                if name in CASTS:
                    col = pc.cast(col, CASTS[name])
                elif name in DICTIONARY:
                    col = pc.dictionary_encode(pc.cast(col, pa.string()))
                elif pa.types.is_dictionary(col.type):
                    col = pc.cast(col, pa.string())
                cols.append(col)
            table = pa.table(cols, names=table.column_names)
            out_dir = os.path.join(dst, os.path.relpath(dirpath, src))
            os.makedirs(out_dir, exist_ok=True)
            pq.write_table(table, os.path.join(out_dir, "part-0.parquet"))
            rows += table.num_rows
            files += 1
    return rows, files


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: pyarrow_layout.py SRC DST")
    n, f = rewrite(sys.argv[1], sys.argv[2])
    print(f"pyarrow layout: wrote {n} rows in {f} files")
