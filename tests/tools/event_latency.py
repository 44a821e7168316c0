"""Event latency of a local `serve` (scripts/bench-events): from a state
change's answer to the webhook receiver's request, on loopback.

A receiver (this process, port --receiver-port) answers 204 to every POST
and notes when each arrived. Per event: a connection is created (pending,
no event) and disconnected (connection.disconnected, one webhook
delivery); the clock starts when the DELETE's answer has been read and
stops when the receiver has the event of that connection. Events go one at
a time, each waiting for its delivery (or --timeout), so none queues
behind another. Prints the median, 90th and 99th percentiles.

    python event_latency.py --server http://127.0.0.1:3000 --token T \
        --receiver-port 4000 --events 200
"""

import argparse
import http.client
import http.server
import json
import statistics
import sys
import threading
import time
from urllib.parse import urlsplit

ARRIVED = {}  # connection id -> perf_counter at the receiver
LOCK = threading.Condition()


class Receiver(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):  # noqa: N802 (http.server's name)
        at = time.perf_counter()
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        self.send_response(204)
        self.send_header("content-length", "0")
        self.end_headers()
        try:
            cid = json.loads(body)["data"]["id"]
        except (ValueError, KeyError, TypeError):
            return
        with LOCK:
            ARRIVED.setdefault(cid, at)
            LOCK.notify_all()

    def log_message(self, *_):
        pass


def call(conn, method, path, token, body=None):
    headers = {"authorization": f"Bearer {token}"}
    data = None
    if body is not None:
        data = json.dumps(body)
        headers["content-type"] = "application/json"
    conn.request(method, path, body=data, headers=headers)
    resp = conn.getresponse()
    text = resp.read()
    if resp.status >= 300:
        raise SystemExit(f"{method} {path}: {resp.status} {text[:300]!r}")
    return json.loads(text) if text else None


def percentile(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--receiver-port", type=int, required=True)
    ap.add_argument("--events", type=int, default=200)
    ap.add_argument("--timeout", type=float, default=5.0)
    args = ap.parse_args()

    rx = http.server.ThreadingHTTPServer(("127.0.0.1", args.receiver_port), Receiver)
    threading.Thread(target=rx.serve_forever, daemon=True).start()
    u = urlsplit(args.server)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    call(conn, "POST", "/v1/webhooks", args.token,
         {"url": f"http://127.0.0.1:{args.receiver_port}/hook", "events": ["connection.disconnected"]})

    latencies, missed = [], 0
    for i in range(args.events):
        c = call(conn, "POST", "/v1/connections", args.token,
                 {"accountId": f"act-ev{i}t{int(time.time())}", "partition": "aws",
                  "permissions": {"mode": "default"}})
        call(conn, "DELETE", f"/v1/connections/{c['id']}", args.token)
        answered = time.perf_counter()
        deadline = answered + args.timeout
        with LOCK:
            while c["id"] not in ARRIVED and time.perf_counter() < deadline:
                LOCK.wait(deadline - time.perf_counter())
            at = ARRIVED.get(c["id"])
        if at is None:
            missed += 1
        else:
            latencies.append(max(0.0, at - answered) * 1e3)
    rx.shutdown()
    if not latencies:
        raise SystemExit("no event reached the receiver")
    med, p90, p99 = statistics.median(latencies), percentile(latencies, 0.9), percentile(latencies, 0.99)
    print(f"  {len(latencies)} events (missed {missed}): median {med:.1f} ms, 90th percentile {p90:.1f} ms, "
          f"99th percentile {p99:.1f} ms, max {max(latencies):.1f} ms")
    ok = med < 50 and p99 < 200 and missed == 0
    print(f"  target median < 50 ms and 99th percentile < 200 ms: {'met' if ok else 'MISSED'}")
    sys.exit(0 if missed == 0 else 1)


if __name__ == "__main__":
    main()
