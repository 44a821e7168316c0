"""The regions AWS publishes per partition, read from botocore's data files.

    python aws_regions.py BOTOCORE_DATA_DIR

Prints {"partitions.json": {partition: [region, ...]}, "endpoints.json": {...}}:
each file's regions that match the partition's regionRegex, so pseudo-regions
such as aws-global do not count.
"""
import json
import pathlib
import re
import sys


def regions(path, id_key):
    doc = json.loads(path.read_text())
    out = {}
    for p in doc["partitions"]:
        pattern = re.compile(p["regionRegex"])
        out[p[id_key]] = sorted(r for r in p["regions"] if pattern.match(r))
    return out


data = pathlib.Path(sys.argv[1])
print(json.dumps({
    "partitions.json": regions(data / "partitions.json", "id"),
    "endpoints.json": regions(data / "endpoints.json", "partition"),
}))
