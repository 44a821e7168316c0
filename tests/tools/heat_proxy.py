"""An HTTP/1.1 proxy in front of moto's DynamoDB that counts write units per
partition key, in the table and in each global secondary index, for the heat
benchmark (scripts/bench-heat).

Every write (PutItem, UpdateItem, DeleteItem, TransactWriteItems,
BatchWriteItem) is taken one at a time: forwarded, and once moto accepted it,
each item it wrote is compared with a shadow copy of the table (the item
before). A Put's item is its request's; an Update's is read back from moto
(GetItem), so any update expression counts as moto applied it. Per item
written, as DynamoDB bills it:

- the table: ceil(max(size before, size after) / 1 KB) units on its `pk`;
- each index (projection read from DescribeTable): an item entering it costs
  a put by its index entry's size (table and index keys, the projected
  attributes, 100 bytes); leaving it a delete; changing its index key a
  delete and a put; staying under the same key, a write only if a
  projected attribute changed.

Refused writes (a failed condition, a cancelled transaction) count nothing:
they write no index, and the table's unit they cost is not heat of a key
that data accumulates on. A transaction's items count once each (DynamoDB
bills them twice on the table, never on its indexes: the shares of index
keys would only shrink).

Counts go to --stats as JSON every half second and on exit:
{"units": {"<space> <key>": units}, "writes": {...}, "ops": {...}}, the space
being `table` or the index's name.

    python heat_proxy.py --upstream 127.0.0.1:5000 --stats heat.json --port-file port.txt
"""

import argparse
import asyncio
import base64
import json
import math
import os
import signal
import time
from decimal import Decimal

from latency_proxy import forward, header, read_head

WRITES = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}
STATS = {"units": {}, "writes": {}, "ops": {}, "refused": 0, "writeMs": 0.0, "maxWriteMs": 0.0}
# (table, key json) -> item (DynamoDB JSON), as moto holds it after the last counted write.
SHADOW = {}
# table -> {"key": [hash, range], "indexes": {name: {"key": [...], "projection": ..., "include": [...]}}}
TABLES = {}
LOCK = asyncio.Lock()
INDEX_OVERHEAD = 100  # bytes DynamoDB adds to each index entry


def number_size(n):
    """Bytes of a number: one per two significant digits, plus one."""
    digits = str(abs(Decimal(n)).normalize()).replace(".", "").lstrip("0") or "0"
    if "E" in digits:  # normalize() may answer 1E+3
        digits = digits.split("E")[0].replace(".", "")
    return (len(digits) + 1) // 2 + 1


def value_size(v):
    (t, x), = v.items()
    if t == "S":
        return len(x.encode())
    if t == "N":
        return number_size(x)
    if t == "B":
        return len(base64.b64decode(x))
    if t in ("BOOL", "NULL"):
        return 1
    if t == "SS":
        return sum(len(s.encode()) for s in x)
    if t == "NS":
        return sum(number_size(n) for n in x)
    if t == "BS":
        return sum(len(base64.b64decode(b)) for b in x)
    if t == "L":
        return 3 + sum(1 + value_size(e) for e in x)
    if t == "M":
        return 3 + sum(1 + len(k.encode()) + value_size(e) for k, e in x.items())
    raise ValueError(f"unknown attribute type {t}")


def item_size(item, names=None):
    return sum(len(k.encode()) + value_size(v) for k, v in item.items() if names is None or k in names)


def units(size):
    return max(1, math.ceil(size / 1024))


def count(space, key, u):
    label = f"{space} {key}"
    STATS["units"][label] = STATS["units"].get(label, 0) + u
    STATS["writes"][label] = STATS["writes"].get(label, 0) + 1


def scalar(v):
    (_, x), = v.items()
    return x


async def call(args, target, payload):
    """One DynamoDB request of the proxy's own, straight to moto."""
    body = json.dumps(payload).encode()
    host = args.upstream
    raw = (f"POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-amz-json-1.0\r\n"
           f"X-Amz-Target: DynamoDB_20120810.{target}\r\n"
           "Authorization: AWS4-HMAC-SHA256 Credential=testing/20200101/us-east-1/dynamodb/aws4_request, "
           "SignedHeaders=host, Signature=0\r\n"
           f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body
    head, rbody, _ = await forward(raw, args)
    if b" 200 " not in head[0]:
        raise RuntimeError(f"{target}: {head[0]!r} {rbody[:300]!r}")
    return json.loads(rbody)


async def table(args, name):
    if name not in TABLES:
        t = (await call(args, "DescribeTable", {"TableName": name}))["Table"]
        indexes = {}
        for i in t.get("GlobalSecondaryIndexes", []):
            p = i["Projection"]
            indexes[i["IndexName"]] = {"key": [k["AttributeName"] for k in i["KeySchema"]],
                                       "projection": p["ProjectionType"],
                                       "include": p.get("NonKeyAttributes", [])}
        TABLES[name] = {"key": [k["AttributeName"] for k in t["KeySchema"]], "indexes": indexes}
    return TABLES[name]


def entry(t, index, item):
    """The index entry of `item`, or None when it is not in the index."""
    if item is None or any(k not in item for k in index["key"]):
        return None
    if index["projection"] == "ALL":
        kept = set(item)
    else:
        kept = set(t["key"]) | set(index["key"])
        if index["projection"] == "INCLUDE":
            kept |= set(index["include"])
    return {k: v for k, v in item.items() if k in kept}


def account(t, key, old, new):
    """Counts one item's write: `old` and `new` are the item before and after (None: absent)."""
    count("table", scalar(key[t["key"][0]]), units(max(item_size(old) if old else 0, item_size(new) if new else 0)))
    for iname, index in t["indexes"].items():
        a, b = entry(t, index, old), entry(t, index, new)
        size = lambda e: units(item_size(e) + INDEX_OVERHEAD)
        ka = [scalar(a[k]) for k in index["key"]] if a else None
        kb = [scalar(b[k]) for k in index["key"]] if b else None
        if a is None and b is None:
            continue
        if a is not None and b is not None and ka == kb:
            if a != b:
                count(iname, kb[0], max(size(a), size(b)))
            continue
        if a is not None:
            count(iname, ka[0], size(a))
        if b is not None:
            count(iname, kb[0], size(b))


def key_of(t, item):
    return json.dumps({k: item[k] for k in t["key"]}, sort_keys=True)


async def written(args, op, req, resp):
    """The (table, key, item after) of each item a successful write wrote."""
    out = []

    async def after_update(name, key):
        got = await call(args, "GetItem", {"TableName": name, "Key": key, "ConsistentRead": True})
        return got.get("Item")

    if op == "PutItem":
        out.append((req["TableName"], req["Item"], req["Item"]))
    elif op == "DeleteItem":
        out.append((req["TableName"], req["Key"], None))
    elif op == "UpdateItem":
        out.append((req["TableName"], req["Key"], await after_update(req["TableName"], req["Key"])))
    elif op == "TransactWriteItems":
        for w in req["TransactItems"]:
            if "Put" in w:
                out.append((w["Put"]["TableName"], w["Put"]["Item"], w["Put"]["Item"]))
            elif "Delete" in w:
                out.append((w["Delete"]["TableName"], w["Delete"]["Key"], None))
            elif "Update" in w:
                u = w["Update"]
                out.append((u["TableName"], u["Key"], await after_update(u["TableName"], u["Key"])))
    elif op == "BatchWriteItem":
        left = {json.dumps(x, sort_keys=True) for name, xs in resp.get("UnprocessedItems", {}).items() for x in xs}
        for name, xs in req["RequestItems"].items():
            for x in xs:
                if json.dumps(x, sort_keys=True) in left:
                    continue
                if "PutRequest" in x:
                    out.append((name, x["PutRequest"]["Item"], x["PutRequest"]["Item"]))
                else:
                    out.append((name, x["DeleteRequest"]["Key"], None))
    return out


async def record(args, op, req, resp):
    STATS["ops"][op] = STATS["ops"].get(op, 0) + 1
    for name, key_source, new in await written(args, op, req, resp):
        t = await table(args, name)
        k = (name, key_of(t, key_source))
        old = SHADOW.get(k)
        account(t, key_source, old, new)
        if new is None:
            SHADOW.pop(k, None)
        else:
            SHADOW[k] = new


async def handle(cr, cw, args):
    try:
        while True:
            head = await read_head(cr)
            if head is None:
                break
            length = int(header(head, "content-length") or 0)
            body = await cr.readexactly(length)
            raw = b"".join(head) + body
            target = header(head, "x-amz-target") or ""
            op = target.rsplit(".", 1)[-1]
            if op in WRITES:
                # One write at a time: the shadow's "before" is moto's.
                async with LOCK:
                    started = time.monotonic()
                    rhead, rbody, chunked = await forward(raw, args)
                    ms = (time.monotonic() - started) * 1000
                    STATS["writeMs"] += ms
                    STATS["maxWriteMs"] = max(STATS["maxWriteMs"], ms)
                    if b" 200 " in rhead[0]:
                        await record(args, op, json.loads(body), json.loads(rbody or b"{}"))
                    else:
                        STATS["refused"] += 1
            else:
                rhead, rbody, chunked = await forward(raw, args)
            keep = [l for l in rhead[1:-1]
                    if l.split(b":")[0].strip().lower() not in (b"connection", b"content-length")]
            if not chunked:
                keep.append(b"Content-Length: %d\r\n" % len(rbody))
            cw.write(rhead[0] + b"".join(keep) + b"\r\n" + rbody)
            await cw.drain()
            if (header(head, "connection") or "").lower() == "close":
                break
    except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError, OSError):
        pass
    finally:
        cw.close()


def write_stats(path):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(STATS, f)
    os.replace(tmp, path)


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--listen", default="127.0.0.1:0")
    p.add_argument("--upstream", required=True)
    p.add_argument("--stats", required=True)
    p.add_argument("--port-file", required=True)
    args = p.parse_args()
    host, port = args.listen.rsplit(":", 1)
    server = await asyncio.start_server(lambda r, w: handle(r, w, args), host, int(port), backlog=1024)
    with open(args.port_file, "w") as f:
        f.write(str(server.sockets[0].getsockname()[1]))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        while not stop.is_set():
            write_stats(args.stats)
            try:
                await asyncio.wait_for(stop.wait(), 0.5)
            except asyncio.TimeoutError:
                pass
    write_stats(args.stats)
    tasks = asyncio.all_tasks() - {asyncio.current_task()}
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


if __name__ == "__main__":
    asyncio.run(main())
