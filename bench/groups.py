"""Shared by the bench helpers: compares two answers given as {group: plays} and prints one JSON
object with the groups and plays of each (`<name>_groups`, `<name>_plays`), the groups that
differ, the plays they are off by, and the first few differences."""
import json


def report(name_a, a, name_b, b, show=str):
    keys = sorted(set(a) | set(b))
    diff = [(k, a.get(k, 0), b.get(k, 0)) for k in keys if a.get(k, 0) != b.get(k, 0)]
    print(json.dumps({
        f"{name_a}_groups": len(a), f"{name_a}_plays": sum(a.values()),
        f"{name_b}_groups": len(b), f"{name_b}_plays": sum(b.values()),
        "differing_groups": len(diff),
        "plays_off": sum(abs(x - y) for _, x, y in diff),
        "first_differences": [f"{show(k)}: {name_a} {x}, {name_b} {y}" for k, x, y in diff[:5]],
    }))
