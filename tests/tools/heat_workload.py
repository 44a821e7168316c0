"""The heat benchmark's workload (scripts/bench-heat): many tenants at once,
through the product's own API (`account-connect serve`) and moto's IAM.

Per tenant (--parallel of them at work at once): two webhooks to a receiver
in this process; --connections connections, each connected to a role of
its own (a real verification against moto); two checks of each; an
external-ID rotation of half of them, completed (the role's trust policy
updated, the role connected again); one webhook's secret rotated; a third
of them disconnected; two test events per webhook. Then, once, the fleet
re-check (`account-connect recheck`, which pages the connected index), and
waits until no delivery is pending: every event fanned out and sent.

The receiver answers 503 to the first attempt of one message in four (the
delivery is retried five seconds later) and 204 otherwise.

    python heat_workload.py --api http://127.0.0.1:3000 --bin target/debug/account-connect \
        --receiver-port 8123 --tenants 12 --connections 6
"""

import argparse
import concurrent.futures
import hashlib
import http.server
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

import boto3

ACCOUNT = "123456789012"  # moto's
RECEIVED = {"requests": 0, "refused": 0}
SEEN = set()
LOCK = threading.Lock()


class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length") or 0))
        mid = self.headers.get("webhook-id", "")
        with LOCK:
            RECEIVED["requests"] += 1
            first = mid not in SEEN
            SEEN.add(mid)
            fail = first and hashlib.sha256(mid.encode()).digest()[0] % 4 == 0
            if fail:
                RECEIVED["refused"] += 1
        self.send_response(503 if fail else 204)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *_):
        pass


def call(api, token, method, path, body=None, key=None, ok=()):
    """The answer's JSON; a 503 (the store timed out under the benchmark's
    proxy, which takes writes one at a time) is tried again; a status in
    `ok` answers None (what a retry of a request that went through gets)."""
    headers = {"authorization": "Bearer " + token, "content-type": "application/json"}
    if key:
        headers["idempotency-key"] = key
    req = urllib.request.Request(api + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None, headers=headers)
    for attempt in range(5):
        try:
            with urllib.request.urlopen(req, timeout=60) as res:
                raw = res.read()
                return json.loads(raw) if raw else None
        except urllib.error.HTTPError as e:
            detail = e.read()[:500]
            if e.code in ok:
                return None
            if e.code != 503 or attempt == 4:
                raise SystemExit(f"{method} {path}: {e.code} {detail!r}")
            time.sleep(1 + attempt)
        except OSError:
            if attempt == 4:
                raise
            time.sleep(0.3 * (attempt + 1))


def retried(f, *args, **kwargs):
    """moto's IAM is not thread-safe: a rare 500 under concurrent writes."""
    for attempt in range(5):
        try:
            return f(*args, **kwargs)
        except Exception:
            if attempt == 4:
                raise
            time.sleep(0.2 * (attempt + 1))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--api", required=True)
    p.add_argument("--bin", required=True, help="account-connect, to mint tokens and run the fleet re-check")
    p.add_argument("--receiver-port", type=int, required=True)
    p.add_argument("--tenants", type=int, default=12)
    p.add_argument("--connections", type=int, default=6, help="per tenant")
    p.add_argument("--parallel", type=int, default=4, help="tenants at work at once")
    p.add_argument("--settle-secs", type=float, default=120, help="longest wait for pending deliveries")
    args = p.parse_args()

    rx = http.server.ThreadingHTTPServer(("127.0.0.1", args.receiver_port), Receiver)
    threading.Thread(target=rx.serve_forever, daemon=True).start()
    iam = boto3.client("iam", region_name="us-east-1")
    run = str(int(time.time()))
    orgs = [f"org-heat-{t:02d}" for t in range(args.tenants)]
    tokens = {o: subprocess.check_output([args.bin, "token", "--org", o, "--hours", "2"], text=True).strip()
              for o in orgs}
    policies = []
    policies_lock = threading.Lock()

    def role_for(c, name):
        # Every default connection renders the same documents: one set of
        # managed policies serves every role.
        with policies_lock:
            if not policies:
                for n, pol in enumerate(c["policies"]):
                    policies.append(iam.create_policy(PolicyName=f"heat-{run}-{n}",
                                                      PolicyDocument=json.dumps(pol["document"]))["Policy"]["Arn"])
        arn = retried(iam.create_role, RoleName=name, Path=f"/{name}/",
                      AssumeRolePolicyDocument=json.dumps(c["trustPolicy"]))["Role"]["Arn"]
        for pol in policies:
            retried(iam.attach_role_policy, RoleName=name, PolicyArn=pol)
        return arn

    def tenant(t):
        org, token = orgs[t], tokens[orgs[t]]
        api = lambda *a: call(args.api, token, *a)
        hooks = [api("POST", "/v1/webhooks", {"url": f"http://127.0.0.1:{args.receiver_port}/{org}/{n}",
                                              "description": f"heat {n}"})["id"] for n in range(2)]
        conns = []
        for i in range(args.connections):
            c = api("POST", "/v1/connections", {"accountId": f"act-heat{t:02d}{i:03d}", "partition": "aws",
                                                "permissions": {"mode": "default"}, "awsAccountId": ACCOUNT},
                    f"heat-{run}-{t}-{i}")
            name = f"Heat-{run}-{t:02d}-{i:03d}"
            arn = role_for(c, name)
            done = api("POST", f"/v1/connections/{c['id']}/role", {"roleArn": arn})
            if done.get("health") != "healthy":
                raise SystemExit(f"{c['id']} is {done.get('health')}: {json.dumps(done)[:500]}")
            conns.append((c["id"], name, arn))
        for _ in range(2):
            for cid, _, _ in conns:
                api("POST", f"/v1/connections/{cid}/checks")
        for cid, name, arn in conns[: args.connections // 2]:
            # 409 rotation_pending: an earlier try went through.
            rotated = api("POST", f"/v1/connections/{cid}/external-id", None, None, (409,)) \
                or api("GET", f"/v1/connections/{cid}")
            retried(iam.update_assume_role_policy, RoleName=name, PolicyDocument=json.dumps(rotated["trustPolicy"]))
            api("POST", f"/v1/connections/{cid}/role", {"roleArn": arn})
        api("POST", f"/v1/webhooks/{hooks[0]}/secret")
        for cid, _, _ in conns[: args.connections // 3]:
            api("DELETE", f"/v1/connections/{cid}", None, None, (409,))
        for _ in range(2):
            for h in hooks:
                api("POST", f"/v1/webhooks/{h}/test")
        return hooks

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(args.parallel) as pool:
        hooks = {orgs[t]: h for t, h in enumerate(pool.map(tenant, range(args.tenants)))}
    print(f"tenants done in {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)

    # Two at a time: moto answers slowly under the proxy; a check the store
    # timed out on is checked again by another run.
    for run_no in range(3):
        recheck = subprocess.run([args.bin, "recheck", "--concurrency", "2"], capture_output=True, text=True)
        summary = json.loads(recheck.stdout) if recheck.stdout.strip() else {}
        print(f"fleet re-check: checked {summary.get('checked')}, errors {summary.get('errors')}",
              file=sys.stderr, flush=True)
        if recheck.returncode == 0:
            break
    else:
        raise SystemExit(f"recheck failed: {recheck.stderr[-2000:]}")

    # Settled: no delivery pending, and the count unchanged, three polls in a row.
    deadline, quiet, last = time.monotonic() + args.settle_secs, 0, None
    while quiet < 3:
        if time.monotonic() > deadline:
            raise SystemExit(f"deliveries still pending after {args.settle_secs} s")
        states = {}
        for org, hs in hooks.items():
            for h in hs:
                cursor = None
                while True:
                    q = "?limit=100" + (f"&cursor={urllib.parse.quote(cursor)}" if cursor else "")
                    page = call(args.api, tokens[org], "GET", f"/v1/webhooks/{h}/deliveries{q}")
                    for d in page["items"]:
                        states[d["state"]] = states.get(d["state"], 0) + 1
                    cursor = page.get("nextCursor")
                    if not cursor:
                        break
        now = (states, RECEIVED["requests"])
        quiet = quiet + 1 if not states.get("pending") and now == last else 0
        last = now
        time.sleep(1)
    out = {"tenants": args.tenants, "connectionsPerTenant": args.connections,
           "deliveries": last[0], "received": RECEIVED["requests"], "refused503": RECEIVED["refused"],
           "seconds": round(time.monotonic() - started, 1)}
    print(json.dumps(out))
    rx.shutdown()


if __name__ == "__main__":
    main()
