"""Prints what tests/tools/heat_proxy.py counted (scripts/bench-heat): write
units per partition key, in the table and each index, their share of all
units, the busiest key, and the workload's repetitions per second at which
that key would take 1,000 write units per second (DynamoDB's limit per
partition).

    python heat_report.py heat.json [--top 15]
"""

import argparse
import json

PARTITION_WCU = 1000  # write units per second one partition takes


def family(label):
    """A key with its ids left out: `table CONN#con-1f…` -> `table CONN#*`."""
    space, _, key = label.partition(" ")
    head, sep, _ = key.partition("#")
    return f"{space} {head}{'#*' if sep else ''}"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("stats")
    p.add_argument("--top", type=int, default=15)
    args = p.parse_args()
    s = json.load(open(args.stats))
    units, writes = s["units"], s["writes"]
    total = sum(units.values())
    if not total:
        raise SystemExit("no write was counted")
    ops = ", ".join(f"{k} {v}" for k, v in sorted(s["ops"].items()))
    n = sum(s["ops"].values()) + s["refused"]
    print(f"  write requests: {ops} (refused: {s['refused']}); moto took {s['writeMs'] / max(n, 1):.0f} ms a write "
          f"on average, {s['maxWriteMs']:.0f} ms at most")
    print(f"  write units: {total} on {len(units)} keys")

    spaces = {}
    for label, u in units.items():
        spaces[label.split(" ")[0]] = spaces.get(label.split(" ")[0], 0) + u
    print("  by table or index:   " + ", ".join(f"{k} {v} ({v / total:.1%})" for k, v in sorted(spaces.items())))

    families = {}
    for label, u in units.items():
        f = families.setdefault(family(label), {"units": 0, "keys": 0, "max": 0})
        f["units"] += u
        f["keys"] += 1
        f["max"] = max(f["max"], u)
    print("  by kind of key (units, share, keys, the busiest one's share):")
    for name, f in sorted(families.items(), key=lambda kv: -kv[1]["units"]):
        print(f"    {name:28} {f['units']:7} {f['units'] / total:7.1%} {f['keys']:6} keys, busiest {f['max'] / total:6.1%}")

    print(f"  the {args.top} busiest keys (units, share, writes):")
    ranked = sorted(units.items(), key=lambda kv: -kv[1])
    for label, u in ranked[: args.top]:
        print(f"    {label[:60]:60} {u:6} {u / total:7.1%} {writes[label]:6}")
    label, u = ranked[0]
    print(f"  busiest key: {label} with {u / total:.1%} of all write units ({u} per run of the workload)")
    print(f"  it reaches {PARTITION_WCU} WCU/s at {PARTITION_WCU / u:.1f} runs of the workload per second "
          f"({total * PARTITION_WCU / u:.0f} write units per second over the whole table)")


if __name__ == "__main__":
    main()
