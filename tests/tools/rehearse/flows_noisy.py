"""Tenants sharing the stack (docs/rehearsal.md): a role
in the vendor's own account refused with no AWS call, the functions'
concurrency bounds shown real, and a noisy neighbour: tenant A floods
Creates for roles that do not exist, test events to endpoints that hang
and verifications, while tenant B connects an account automatically and
receives its webhook, with the event sources running on their own
(sources.py). B's figures are taken alone, then under A's flood."""

import json
import threading
import time
import uuid

import events
from sources import EventSources

ORG_A, ORG_B = "org-noisy-a", "org-noisy-b"
# Each tenant's token; webhooks are managed with a token for every account.
TENANT_A = {"sub": "noisy-a", "org": ORG_A, "accounts": "*"}
TENANT_B = {"sub": "noisy-b", "org": ORG_B, "accounts": "*"}
# B's connection and webhook may take this much longer under the flood (the "within 10 s").
SLACK_SECS = 10
FLOOD_CREATES = 9  # A's Creates for missing roles: three waves of the callback's 3 slots without the share
FLOOD_HOOKS = 2  # A's endpoints that hang
FLOOD_VERIFIERS = 2  # A's connections verified in a loop
LIMITED_WAIT_SECS = 30  # how long A's flood may go on after B is done, to reach its rate limits
VERIFIER_THREADS = 3  # each by this many requests at once (one verifies, the others find it running: 409)
MOST_VERIFICATIONS = 130  # two minutes' worth at the default limit: one minute's end is crossed at most once


class NoisyNeighbour:
    def __init__(self, flows, customers):
        self.f, self.r, self.svc = flows, flows.r, flows.svc
        self.customers = customers  # "a", "b" -> Customer
        self.figures = {}
        self.r.noisy = self.figures  # printed by report.py, however far the flow got

    def check(self, *args):
        return self.f.check(*args)

    def api(self, method, path, body=None, claims=None):
        return self.f.api(method, path, body, claims=claims)

    def callback(self):
        return next(fn for fn in self.r.functions.values() if fn.topics)

    # --- the vendor's own account ------------------------------------------------

    def vendor_account(self):
        """A role in the account the stack runs in (ACCOUNT_CONNECT_DEPLOYMENT_ACCOUNT,
        AWS::AccountId): one of the stack's own roles, which trusts Lambda.
        Refused 422, and moto's record shows no call to STS or IAM."""
        status, conn = self.api("POST", "/v1/connections", {"accountId": "act-noisya", "partition": "aws",
                                                             "permissions": {"mode": "default"}}, TENANT_A)
        if not self.check("create (vendor account)", status == 201, f"status {status}: {conn}"):
            return
        own = self.r.resolver.physical[self.callback().role]["Arn"]
        start = self.r.record_mark()
        status, body = self.api("POST", f"/v1/connections/{conn['id']}/role", {"roleArn": own}, TENANT_A)
        end = self.r.record_mark()
        code = (body or {}).get("error", {}).get("code") if isinstance(body, dict) else None
        self.check("a role in the vendor's own account refused (422 vendor_account_refused)",
                   status == 422 and code == "vendor_account_refused", f"status {status}: {json.dumps(body)[:300]}")
        with open(self.r.records, encoding="utf-8") as f:
            window = [json.loads(x) for i, x in enumerate(f) if start <= i < end and x.strip()]
        reached = [e["call"] for e in window if e["kind"] == "call" and e["call"].split(":")[0] in ("sts", "iam")]
        self.check("and no AWS call reached STS or IAM for it (moto's record)", not reached, f"calls: {reached}")

    # --- the tenants ---------------------------------------------------------------

    def automatic(self, claims, account):
        """An automatic connection, its custom resource's properties as the
        customer's CloudFormation resolves them, and its stack's name."""
        status, conn = self.api("POST", "/v1/connections", {
            "accountId": f"act-{uuid.uuid4().hex[:10]}", "partition": "aws", "permissions": {"mode": "default"},
            "method": "automatic", "awsAccountId": account}, claims)
        assert status == 201, f"create automatic: status {status}: {conn}"
        status, template = self.api("GET", f"/v1/connections/{conn['id']}/template", None, claims)
        assert status == 200, f"template: status {status}"
        custom = json.loads(json.dumps(template["Resources"]["SpotConnection"]["Properties"]))
        if isinstance(custom["ServiceToken"], dict):
            custom["ServiceToken"] = custom["ServiceToken"]["Fn::Sub"].replace("${AWS::Partition}", "aws")
        return conn, template, custom

    def create_request(self, conn, custom, stack_id, role_arn):
        return {"RequestType": "Create", "ServiceToken": custom["ServiceToken"],
                "ResponseURL": self.r.receiver.url(conn["id"]), "StackId": stack_id,
                "RequestId": str(uuid.uuid4()), "LogicalResourceId": "SpotConnection",
                "ResourceType": "Custom::SpotConnection", "ResourceProperties": {**custom, "RoleArn": role_arn}}

    def webhook(self, claims, kind):
        status, hook = self.api("POST", "/v1/webhooks", {"url": self.r.receiver.webhook_url(kind)}, claims)
        assert status == 201, f"register {kind}: status {status}: {hook}"
        return hook

    def prepare(self):
        b, a = self.customers["b"], self.customers["a"]
        self.webhook(TENANT_B, "fast/b")
        # B's two connections (alone, then under the flood), each with its stack made.
        self.b = []
        for _ in range(2):
            conn, template, custom = self.automatic(TENANT_B, b.account)
            stack_id, role = b.create_stack(template, conn["cloudFormation"]["stackName"])
            self.b.append(self.create_request(conn, custom, stack_id, role))
        # A's Creates: stacks whose role was never made.
        self.a_creates = []
        for i in range(FLOOD_CREATES):
            conn, _, custom = self.automatic(TENANT_A, a.account)
            stack = f"arn:aws:cloudformation:{self.r.region}:{a.account}:stack/{conn['cloudFormation']['stackName']}/{uuid.uuid4()}"
            self.a_creates.append(self.create_request(conn, custom, stack, f"arn:aws:iam::{a.account}:role/missing-{i}"))
        self.a_hooks = [self.webhook(TENANT_A, f"hang/a{i}")["id"] for i in range(FLOOD_HOOKS)]
        self.a_verified = []
        for i in range(FLOOD_VERIFIERS):
            status, conn = self.api("POST", "/v1/connections", {"accountId": f"act-noisyv{i}", "partition": "aws",
                                                                 "permissions": {"mode": "default"}}, TENANT_A)
            assert status == 201, f"create: status {status}: {conn}"
            self.a_verified.append(conn["id"])

    # --- the flow ----------------------------------------------------------------------

    def run(self):
        self.r.log("--- noisy neighbour (the event sources run on their own)")
        self.prepare()
        self.sources = EventSources(self.svc)
        self.sources.start()
        try:
            self.bound()
            alone = self.b_connects(self.b[0], "alone")
            stop = threading.Event()
            flood = self.flood(stop)
            try:
                # Waited for no longer than its time alone and the slack (and 2 s):
                # later is a failure whatever the time.
                flooded = self.b_connects(self.b[1], "under A's flood",
                                          max((t or 58) for t in alone) + SLACK_SECS + 2)
                # B may be done before A's flood reached its rate limits: A
                # keeps on until both answered 429 (or LIMITED_WAIT_SECS).
                end = time.monotonic() + LIMITED_WAIT_SECS
                while time.monotonic() < end and not all(
                        any(k.startswith("429") for k in self.a_status[kind]) for kind in ("tests", "verifications")):
                    time.sleep(0.2)
            finally:
                stop.set()
                for t in flood:
                    t.join()
            self.judge(alone, flooded)
        finally:
            self.sources.stop()
            self.leave()

    def bound(self):
        """The callback's reserved concurrency (N) holds: N+1 Deletes at
        once, each answered at a ResponseURL that takes 2 s to take it:
        N in flight, one waits for a slot (asynchronous, as SNS invokes);
        a synchronous invocation meanwhile is refused 429
        TooManyRequestsException."""
        fn = self.callback()
        pool = self.svc.runtimes[fn.logical]
        n = fn.reserved
        if not self.check("the callback has a reserved concurrency", n, f"ReservedConcurrentExecutions {n}"):
            return
        customer, ids = self.customers["b"], []
        token = self.b[0]["ServiceToken"]

        def delete(cid, slow=True):
            return {"RequestType": "Delete", "ServiceToken": token, "ResponseURL": self.r.receiver.url(cid, slow),
                    "StackId": f"arn:aws:cloudformation:{self.r.region}:{customer.account}:stack/gone/{uuid.uuid4()}",
                    "RequestId": str(uuid.uuid4()), "LogicalResourceId": "SpotConnection",
                    "ResourceType": "Custom::SpotConnection", "PhysicalResourceId": cid,
                    "ResourceProperties": {"ConnectionId": cid}}
        waited = pool.waited
        for _ in range(n + 1):
            ids.append("con-" + uuid.uuid4().hex[:24])
            customer.publish(token, delete(ids[-1]))
        end = time.monotonic() + 10
        while pool.busy < n and time.monotonic() < end:
            time.sleep(0.02)
        notification = {"Type": "Notification", "MessageId": str(uuid.uuid4()), "TopicArn": token,
                        "Message": json.dumps(delete("con-" + uuid.uuid4().hex[:24], slow=False)),
                        "Timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())}
        sync = self.svc.invoke(fn.logical, events.sns(notification, self.r.taps[fn.topics[0]]["subscription"]),
                               sync=True)
        answered = [self.r.receiver.answer(cid, wait_s=15) for cid in ids]
        self.figures["bound"] = (n, pool.gauge.most, pool.waited - waited)
        self.check(f"callback: {n + 1} events at once, at most {n} (its ReservedConcurrentExecutions) in flight",
                   pool.gauge.most == n, f"most in flight {pool.gauge.most}")
        self.check("the one over the bound waited for a slot (asynchronous) and was answered",
                   pool.waited - waited >= 1 and all(answered), f"waited {pool.waited - waited}; answers {[a and a.get('Status') for a in answered]}")
        self.check("a synchronous invocation over the bound refused (429 TooManyRequestsException)",
                   sync.kind == "throttled" and sync.error_type == "TooManyRequestsException", f"{sync}")

    def b_connects(self, request, when, wait_s=60):
        """B's Create published; the seconds to its SUCCESS at the ResponseURL
        and to its connection.connected webhook (None: not within wait_s)."""
        cid = request["ResourceProperties"]["ConnectionId"]
        start = self.b_start = time.monotonic()
        self.customers["b"].publish(request["ServiceToken"], request)
        answer = self.r.receiver.answer(cid, wait_s=wait_s)
        done = self.r.receiver.answered_at.get(cid)
        hook = None
        while time.monotonic() < start + wait_s and hook is None:
            for at, path, body in list(self.r.receiver.timed):
                event = json.loads(body)
                if path == "/fast/b" and event.get("type") == "connection.connected" and event["data"]["id"] == cid:
                    hook = at
                    break
            time.sleep(0.05)
        status, body = self.api("GET", f"/v1/connections/{cid}", None, TENANT_B)
        self.check(f"B's automatic connection {when}: SUCCESS, connected",
                   (answer or {}).get("Status") == "SUCCESS" and status == 200 and body.get("status") == "connected",
                   f"answer {answer}; status {status}: {json.dumps(body)[:300]}")
        self.check(f"B's webhook {when}: connection.connected arrived", hook is not None,
                   f"no webhook within {wait_s:.0f} s")
        return (done - start if done else None, hook - start if hook else None)

    def flood(self, stop):
        """A's flood, in threads until `stop`: its Creates published at once,
        test events to its hanging endpoints in a loop, verifications of
        its roles that do not exist in a loop; their answers counted."""
        self.a_status = {"tests": {}, "verifications": {}}
        self.a_mark = self.r.record_mark()
        for request in self.a_creates:
            self.customers["a"].publish(request["ServiceToken"], request)

        def count(kind, status, body):
            code = body.get("error", {}).get("code") if isinstance(body, dict) and "error" in body else None
            key = f"{status} {code}" if code else str(status)
            self.a_status[kind][key] = self.a_status[kind].get(key, 0) + 1

        def tests():
            while not stop.is_set():
                for hook in self.a_hooks:
                    status, body = self.api("POST", f"/v1/webhooks/{hook}/test", None, TENANT_A)
                    count("tests", status, body)
                stop.wait(0.5)

        def verify(cid, i):
            n = 0
            while not stop.is_set() and n < MOST_VERIFICATIONS:
                role = f"arn:aws:iam::{self.customers['a'].account}:role/missing-v{i}-{n}"
                status, body = self.api("POST", f"/v1/connections/{cid}/role", {"roleArn": role}, TENANT_A)
                count("verifications", status, body)
                n += 1
                if status == 429:
                    return  # throttled: this one gives up for the minute
        threads = [threading.Thread(target=tests, daemon=True)]
        threads += [threading.Thread(target=verify, args=(c, f"{i}-{j}"), daemon=True)
                    for i, c in enumerate(self.a_verified) for j in range(VERIFIER_THREADS)]
        for t in threads:
            t.start()
        # B comes once A's flood has reached the callback and the API.
        time.sleep(1.5)
        return threads

    def judge(self, alone, flooded):
        self.figures["alone"], self.figures["flooded"] = alone, flooded
        # When A's attempts reached its hanging endpoints, from B's Create under the flood.
        self.figures["hangs"] = [round(at - self.b_start, 1) for at, path, _ in self.r.receiver.timed
                                 if path.startswith("/hang/")]
        for i, what in enumerate(("connection (SUCCESS at the ResponseURL)", "webhook (connection.connected)")):
            a, b = alone[i], flooded[i]
            self.check(f"B's {what} under A's flood within {SLACK_SECS} s of its time alone",
                       a is not None and b is not None and b <= a + SLACK_SECS,
                       f"alone {a if a is None else round(a, 1)} s, under the flood {b if b is None else round(b, 1)} s")
        with open(self.r.records, encoding="utf-8") as f:
            window = [json.loads(x) for i, x in enumerate(f) if i >= self.a_mark and x.strip()]
        callback = self.callback().logical
        deferred = sum(1 for e in window if e["kind"] == "call" and e["call"] == "sqs:SendMessage"
                       and self.r.keys.get(e["key"]) == callback and e["status"] == 200)
        missing = sum(1 for e in window if e.get("missingRole"))
        self.figures["a"] = {"creates": len(self.a_creates), "deferred": deferred, "refusedAssumeRole": missing,
                             **self.a_status}
        share = int(self.r.resolver.params.get("CallbackTenantShare", 0))
        self.check(f"A's Creates over its share ({share}) deferred to the callback queue",
                   share and deferred >= len(self.a_creates) - share,
                   f"{deferred} deferrals of {len(self.a_creates)} Creates")
        verifications = self.a_status["verifications"]
        self.check("A's verifications over its minute's limit refused (429 rate_limited)",
                   verifications.get("429 rate_limited", 0) >= 1, f"{verifications}")
        tests = self.a_status["tests"]
        self.check("A's test events over the limit refused (429 test_rate_limited)",
                   tests.get("429 test_rate_limited", 0) >= 1 and tests.get("202", 0) >= 1, f"{tests}")
        for mapping, (bound, gauge) in self.sources.mappings.items():
            self.figures.setdefault("mappings", {})[mapping] = (bound, gauge.most)
            self.check(f"{mapping}: at most its MaximumConcurrency ({bound}) batches in flight",
                       bound is None or gauge.most <= bound, f"most {gauge.most}")
        for fn in self.r.functions.values():
            pool = self.svc.runtimes[fn.logical]
            self.check(f"{fn.logical}: at most its reserved concurrency ({fn.reserved}) in flight",
                       fn.reserved is None or pool.gauge.most <= fn.reserved, f"most {pool.gauge.most}")

    def leave(self):
        """What is left of A's flood is dropped: its deferred Creates and
        the attempts to its hanging endpoints (the rehearsal ends here)."""
        sqs = self.r.admin("sqs")
        for fn in self.r.functions.values():
            for _, p in fn.queues:
                sqs.purge_queue(QueueUrl=self.r.queue_url(self.r.resolver.value(p)["EventSourceArn"]))
