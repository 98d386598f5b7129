#!/usr/bin/env python3
"""Helper of bench/batch.sh: compares the batch view's hourly groups with the DuckDB peer's.

  batch_compare.py BATCH.csv DUCKDB.json

BATCH.csv: the batch_hourly rows (hour as YYYY-MM-DDTHH:00:00Z, country, device, sop_row,
sod_row, genre, new_launch t/f, plays), as psql's COPY ... TO STDOUT CSV writes them.
DUCKDB.json: the rows `duckdb_rules.py ... OUT.json` writes (same columns, in that order).
Prints one JSON object: groups and plays of each, groups that differ, the first few.
"""
import csv
import json
import sys

from groups import report


def key(row):
    hour, country, device, sop, sod, genre, new_launch = row[:7]
    if isinstance(new_launch, str):
        new_launch = new_launch in ("t", "true")
    return (hour, country, device, sop, sod, genre, bool(new_launch))


def main(batch_csv, duckdb_json):
    batch = {}
    with open(batch_csv, newline="") as f:
        for row in csv.reader(f):
            batch[key(row)] = batch.get(key(row), 0) + int(row[7])
    duck = {}
    for row in json.load(open(duckdb_json)):
        duck[key(row)] = duck.get(key(row), 0) + int(row[7])
    report("batch", batch, "duckdb", duck, show=lambda k: "|".join(map(str, k)))


if __name__ == "__main__":
    main(*sys.argv[1:3])
