"""An HTTP/1.1 proxy in front of moto for the re-check benchmark (scripts/bench-recheck).

Every request waits --delay-ms before it goes on, as if AWS were that far
away. A request whose bytes name --hang (a role name), and not --hang-skip,
waits --hang-secs more: one account's calls hanging. Client connections are
kept alive as AWS keeps them (moto closes every connection after its
answer, so this proxy opens one upstream per request): what it counts, TCP
connections accepted and requests, is what the client would open to AWS.
Per action (the query protocol's Action=, or the JSON protocol's
X-Amz-Target) it counts requests and the milliseconds moto took to answer
them (the upstream time, after the delay). With --simulate-standin it
answers SimulatePrincipalPolicy itself (iam_simulate.py), as moto cannot;
with --deny-get-role it refuses iam:GetRole (AccessDenied), as AWS does to a
role with Spot's default policy, which lacks it (moto enforces no policy).

Per session (the credentials one AssumeRole handed out: one check) it keeps
each call's arrival and answer, and reports how many calls a check made,
in how many sequential levels (the longest chain of calls each made after
the one before it was answered; calls side by side share a level) and how
long the check's calls took from the first arrival to the last answer.
Counts go to --stats as JSON every half second and on exit.

    python latency_proxy.py --upstream 127.0.0.1:5000 --delay-ms 100 \
        --stats stats.json --port-file port.txt
"""

import argparse
import asyncio
import json
import os
import re
import signal
import time

import iam_simulate

STATS = {"connections": 0, "requests": 0, "hung": 0, "open": 0, "maxOpen": 0, "inFlight": 0, "maxInFlight": 0,
         "byAction": {}}
ACTION = re.compile(rb"(?:^|&)Action=([A-Za-z]+)")
CREDENTIAL = re.compile(r"Credential=([A-Z0-9]+)/")
ACCESS_KEY_ID = re.compile(rb"<AccessKeyId>([A-Z0-9]+)</AccessKeyId>")
# Per session (access key): [(action, arrived, answered)], monotonic seconds.
SESSIONS = {}
IAM_NS = "https://iam.amazonaws.com/doc/2010-05-08/"


def signer(head):
    """The access key that signed the request."""
    m = CREDENTIAL.search(header(head, "authorization") or "")
    return m.group(1) if m else "unsigned"


def levels(calls):
    """The longest chain of calls each arriving after the one before was answered."""
    calls = sorted(calls, key=lambda c: c[1])
    depth = []
    for i, (_, arrived, _) in enumerate(calls):
        before = [depth[j] for j in range(i) if calls[j][2] <= arrived]
        depth.append(1 + max(before, default=0))
    return max(depth, default=0)


def percentile(values, q):
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def idle(calls):
    """Seconds within the calls' span when none of them was in flight: the
    client's own time between levels."""
    out, reach = 0.0, None
    for _, arrived, answered in sorted(calls, key=lambda c: c[1]):
        if reach is not None and arrived > reach:
            out += arrived - reach
        reach = answered if reach is None else max(reach, answered)
    return out


def session_stats():
    calls, depth, spans, idles = {}, {}, [], []
    for session in SESSIONS.values():
        n, d = str(len(session)), str(levels(session))
        calls[n] = calls.get(n, 0) + 1
        depth[d] = depth.get(d, 0) + 1
        spans.append((max(c[2] for c in session) - min(c[1] for c in session)) * 1000)
        idles.append(idle(session) * 1000)
    return {"count": len(SESSIONS), "calls": calls, "levels": depth,
            "medianMs": percentile(spans, 0.5), "p90Ms": percentile(spans, 0.9),
            "meanMs": sum(spans) / len(spans) if spans else 0.0,
            "medianIdleMs": percentile(idles, 0.5)}


def denied_get_role():
    body = (f'<ErrorResponse xmlns="{IAM_NS}"><Error><Type>Sender</Type><Code>AccessDenied</Code>'
            "<Message>User is not authorized to perform: iam:GetRole</Message></Error>"
            "<RequestId>00000000-0000-4000-8000-000000000000</RequestId></ErrorResponse>")
    return [b"HTTP/1.1 403 Forbidden\r\n", b"Content-Type: text/xml\r\n", b"\r\n"], body.encode(), False


def action_of(head, body):
    m = ACTION.search(body)
    if m:
        return m.group(1).decode()
    return header(head, "x-amz-target") or "other"


def count(action, upstream_ms):
    a = STATS["byAction"].setdefault(action, {"requests": 0, "upstreamMs": 0.0, "maxUpstreamMs": 0.0})
    a["requests"] += 1
    a["upstreamMs"] += upstream_ms
    a["maxUpstreamMs"] = max(a["maxUpstreamMs"], upstream_ms)
MAX_HEADER_LINES = 200


async def read_head(reader):
    """The start line and header lines (bytes, CRLF kept); None at EOF."""
    first = await reader.readline()
    if not first:
        return None
    lines = [first]
    while len(lines) < MAX_HEADER_LINES:
        line = await reader.readline()
        if not line:
            raise ConnectionError("EOF inside headers")
        lines.append(line)
        if line in (b"\r\n", b"\n"):
            return lines
    raise ConnectionError("too many header lines")


def header(lines, name):
    name = name.lower()
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower().decode() == name:
            return v.strip().decode()
    return None


async def forward(raw, args):
    """One request to moto on its own connection; the answer's head and body."""
    host, port = args.upstream.rsplit(":", 1)
    ur, uw = await asyncio.open_connection(host, int(port))
    try:
        uw.write(raw)
        await uw.drain()
        head = await read_head(ur)
        if head is None:
            raise ConnectionError("no answer from upstream")
        length = header(head, "content-length")
        chunked = (header(head, "transfer-encoding") or "").lower() == "chunked"
        if length is not None:
            body = await ur.readexactly(int(length))
        else:
            body = await ur.read()  # until moto closes
        return head, body, chunked
    finally:
        uw.close()


async def handle(cr, cw, args):
    STATS["connections"] += 1
    STATS["open"] += 1
    STATS["maxOpen"] = max(STATS["maxOpen"], STATS["open"])
    hang = args.hang.encode() if args.hang else None
    skip = args.hang_skip.encode() if args.hang_skip else None
    try:
        while True:
            head = await read_head(cr)
            if head is None:
                break
            length = int(header(head, "content-length") or 0)
            body = await cr.readexactly(length)
            raw = b"".join(head) + body
            STATS["requests"] += 1
            STATS["inFlight"] += 1
            STATS["maxInFlight"] = max(STATS["maxInFlight"], STATS["inFlight"])
            arrived = time.monotonic()
            action = action_of(head, body)
            await asyncio.sleep(args.delay_ms / 1000)
            if hang and hang in raw and not (skip and skip in raw):
                STATS["hung"] += 1
                await asyncio.sleep(args.hang_secs)
            started = time.monotonic()
            if args.simulate_standin and iam_simulate.is_simulate(body):
                status, xml = iam_simulate.answer(body)
                rhead = [b"HTTP/1.1 %d %s\r\n" % (status, b"OK" if status == 200 else b"Bad Request"),
                         b"Content-Type: text/xml\r\n", b"\r\n"]
                rbody, chunked = xml, False
            elif args.deny_get_role and action == "GetRole":
                rhead, rbody, chunked = denied_get_role()
            else:
                rhead, rbody, chunked = await forward(raw, args)
            count(action, (time.monotonic() - started) * 1000)
            keep = [l for l in rhead[1:-1]
                    if l.split(b":")[0].strip().lower() not in (b"connection", b"content-length")]
            if not chunked:
                keep.append(b"Content-Length: %d\r\n" % len(rbody))
            cw.write(rhead[0] + b"".join(keep) + b"\r\n" + rbody)
            STATS["inFlight"] -= 1
            await cw.drain()
            # AssumeRole opens a session: the credentials it hands out sign the rest.
            key = signer(head)
            if action == "AssumeRole":
                m = ACCESS_KEY_ID.search(rbody)
                key = m.group(1).decode() if m else key
            SESSIONS.setdefault(key, []).append((action, arrived, time.monotonic()))
            if (header(head, "connection") or "").lower() == "close":
                break
    except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError, OSError):
        pass
    finally:
        STATS["open"] -= 1
        cw.close()


def write_stats(path):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(dict(STATS, sessions=session_stats()), f)
    os.replace(tmp, path)


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--listen", default="127.0.0.1:0")
    p.add_argument("--upstream", required=True)
    p.add_argument("--delay-ms", type=float, default=100)
    p.add_argument("--hang", default="")
    p.add_argument("--hang-secs", type=float, default=60)
    p.add_argument("--hang-skip", default="", help="requests holding these bytes never hang")
    p.add_argument("--simulate-standin", action="store_true",
                   help="answer SimulatePrincipalPolicy here (iam_simulate.py), not at moto")
    p.add_argument("--deny-get-role", action="store_true",
                   help="refuse iam:GetRole, as AWS does to Spot's default policy (moto enforces none)")
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
    for task in asyncio.all_tasks() - {asyncio.current_task()}:
        task.cancel()


if __name__ == "__main__":
    asyncio.run(main())
