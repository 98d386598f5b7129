#!/usr/bin/env python3
"""Helpers of bench/join.sh around the Flink peer (standard library only).

  join_peer.py catalog SRC.csv DST.csv
      Copies gen's catalog CSV for the peer, which splits catalog lines on every comma (no CSV
      quoting): commas inside titles become spaces. Ids, genres and launch dates are unchanged;
      titles are in no answer.
  join_peer.py compare FLINK_RESULT DOMAIN_RESULT
      Compares two hourly group files (hour_ms|country|device|sop|sod|genre|new_launch|plays) and
      prints one JSON object: groups and plays of each, groups that differ, the first few.
"""
import csv
import sys

from groups import report


def peer_catalog(src, dst):
    with open(src, newline="") as f:
        rows = list(csv.reader(f))
    with open(dst, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(rows[0])
        changed = 0
        for r in rows[1:]:
            if "," in r[1]:
                changed += 1
                r[1] = r[1].replace(",", " ")
            w.writerow(r)
    print(f"peer catalog: {len(rows) - 1} titles, {changed} with commas in the title rewritten")


def load(path):
    groups = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                key, _, n = line.rpartition("|")
                groups[key] = groups.get(key, 0) + int(n)
    return groups


def compare(flink_path, domain_path):
    report("flink", load(flink_path), "domain", load(domain_path))


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"catalog": peer_catalog, "compare": compare}[cmd](*args)
