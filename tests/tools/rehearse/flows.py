"""The product's flows, driven through the events the template wires, each
checked against what the API documents (docs/api.md). A flow that
ends otherwise is recorded as failed with what it got."""

import hashlib
import hmac
import json
import secrets
import time
import uuid

import deploy_flow
from flows_noisy import NoisyNeighbour

CLAIMS = {"sub": "rehearsal-user", "org": "org-rehearsal", "accounts": "[act-rehearsal1 act-rehearsal2]"}
# Webhooks are the tenant's as a whole: managed with a token for every account.
EVERY_ACCOUNT = {**CLAIMS, "accounts": "*"}


class Flows:
    def __init__(self, rehearsal, service):
        self.r, self.svc = rehearsal, service
        self.failed = []  # (flow, what)
        self.passed = []

    def check(self, flow, ok, what):
        if ok:
            self.passed.append(flow)
        else:
            self.failed.append((flow, what))
            self.r.log(f"  FAILED {flow}: {what}")
        return ok

    def api(self, method, path, body=None, headers=None, claims=CLAIMS):
        fn, status, answer, _ = self.svc.http(method, path, body, claims, headers)
        return status, answer

    def run(self, which="all"):
        if which in ("all", "core"):
            self.core()
        # A release the pre-traffic hook failed gets no traffic (deploy_flow.py).
        if which in ("all", "noisy") and not self.r.rolled_back:
            tenants = NoisyNeighbour(self, self.r.tenants)
            self.guarded(tenants.vendor_account)
            self.guarded(tenants.run)

    def core(self):
        self.r.log("--- flows")
        # CodeDeploy's pre-traffic hook runs before any traffic reaches the release.
        if not deploy_flow.pre_traffic(self):
            return
        status, _ = self.api("GET", "/health")
        self.check("GET /health", status == 200, f"status {status}")
        hook = self.guarded(self.webhook)
        manual = self.guarded(self.manual_connect)
        automatic = self.guarded(self.automatic_connect)
        self.guarded(self.listing, [c for c in (manual, automatic) if c])
        if automatic:
            # The customer takes an action off the stack's policy: the
            # scheduled re-check finds the role degraded.
            self.r.customer.drop_an_action(automatic["role"])
        self.guarded(self.recheck_fleet, len([c for c in (manual, automatic) if c]))
        if automatic:
            self.guarded(self.degraded, automatic)
        if manual:
            self.guarded(self.rotate, manual)
            self.guarded(self.disconnect, manual)
        if automatic:
            self.guarded(self.stack_deleted, automatic)
        self.guarded(self.relay)
        self.guarded(self.organization)
        self.guarded(self.dispatch)
        if hook:
            self.guarded(self.webhook_deliveries, hook)
            self.guarded(self.sweeper_requeues_a_lost_message, hook)
            outage = self.guarded(self.webhooks_while_put_events_denied, hook)
            if outage:
                self.guarded(self.replayed_batch, hook, outage)
        else:
            # The sweeper's schedule still fires (each function must run).
            self.guarded(self.sweep)

    def guarded(self, flow, *args):
        """A flow that raises (an answer not shaped as documented) fails; the rest still run."""
        try:
            return flow(*args)
        except Exception as e:  # noqa: BLE001 - reported as the flow's failure
            self.check(flow.__name__, False, f"{type(e).__name__}: {e}")
            return None

    # --- manual: create, the customer's role, connect, re-check --------------

    def manual_connect(self):
        status, conn = self.api("POST", "/v1/connections", {"accountId": "act-rehearsal1", "partition": "aws",
                                                             "permissions": {"mode": "default"}})
        if not self.check("create (POST /v1/connections)", status == 201, f"status {status}: {conn}"):
            return None
        cid = conn["id"]
        role_arn = self.r.customer.create_role(conn, "SpotRole-manual")
        status, body = self.api("POST", f"/v1/connections/{cid}/role", {"roleArn": role_arn})
        ok = status == 200 and isinstance(body, dict) and body.get("status") == "connected"
        if not self.check("manual connect (POST .../role)", ok, f"status {status}: {json.dumps(body)[:600]}"):
            return None
        status, body = self.api("POST", f"/v1/connections/{cid}/checks")
        ok = status == 200 and isinstance(body, dict) and body.get("health") == "healthy"
        self.check("re-check (POST .../checks)", ok, f"status {status}: {json.dumps(body)[:600]}")
        return cid

    # --- automatic: the stack's custom resource through SNS ------------------

    def automatic_connect(self):
        topics = [t for fn in self.r.functions.values() for t in fn.topics]
        if not topics:
            return None
        status, conn = self.api("POST", "/v1/connections", {
            "accountId": "act-rehearsal2", "partition": "aws", "permissions": {"mode": "default"},
            "method": "automatic", "awsAccountId": self.r.customer.account})
        if not self.check("create automatic (POST /v1/connections)", status == 201, f"status {status}: {conn}"):
            return None
        cid = conn["id"]
        status, template = self.api("GET", f"/v1/connections/{cid}/template")
        if not self.check("template (GET .../template)", status == 200 and "Resources" in (template or {}),
                          f"status {status}"):
            return None
        link = json.dumps(conn.get("cloudFormation", {}))
        self.check("template uploaded for quick-create", "templateURL" in link or "templateUrl" in link,
                   f"cloudFormation: {link[:400]}")
        # As the customer's CloudFormation resolves them (its partition: aws).
        custom = json.loads(json.dumps(template["Resources"]["SpotConnection"]["Properties"]))
        if isinstance(custom["ServiceToken"], dict):
            custom["ServiceToken"] = custom["ServiceToken"]["Fn::Sub"].replace("${AWS::Partition}", "aws")
        stack_id, role_arn = self.r.customer.create_stack(template, conn["cloudFormation"]["stackName"])
        url = self.r.receiver.url(cid)
        request = {
            "RequestType": "Create", "ServiceToken": custom["ServiceToken"], "ResponseURL": url, "StackId": stack_id,
            "RequestId": str(uuid.uuid4()), "LogicalResourceId": "SpotConnection",
            "ResourceType": "Custom::SpotConnection",
            "ResourceProperties": {**custom, "RoleArn": role_arn},
        }
        # CloudFormation publishes to the ServiceToken, from the customer's account.
        self.r.customer.publish(custom["ServiceToken"], request)
        topic = next(t for t in topics if self.r.resolver.physical[t]["Ref"] == custom["ServiceToken"])
        outcomes = self.svc.deliver_topic(topic)
        self.check("callback invoked by the topic", outcomes and all(o.kind == "response" for _, o in outcomes),
                   f"{outcomes}")
        answer = self.r.receiver.answer(cid)
        self.check("callback answered CloudFormation SUCCESS", answer and answer.get("Status") == "SUCCESS", f"{answer}")
        status, body = self.api("GET", f"/v1/connections/{cid}")
        if not self.check("automatic connect (connected)", status == 200 and body.get("status") == "connected",
                          f"status {status}: {json.dumps(body)[:400]}"):
            return None
        return {"id": cid, "role": role_arn, "request": request, "topic": topic, "physical": answer["PhysicalResourceId"]}

    def listing(self, connected):
        status, body = self.api("GET", "/v1/connections?limit=10")
        ids = {c["id"] for c in (body or {}).get("items", [])} if status == 200 else set()
        want = {c if isinstance(c, str) else c["id"] for c in connected}
        self.check("list (GET /v1/connections)", status == 200 and want <= ids, f"status {status}: {str(body)[:300]}")

    def degraded(self, automatic):
        status, body = self.api("GET", f"/v1/connections/{automatic['id']}")
        fix = ((body or {}).get("drift") or {}).get("fix") or {}
        self.check("re-check found the edited role degraded, with the stack's update link",
                   status == 200 and body.get("health") == "degraded" and fix.get("kind") == "updateStack",
                   f"status {status}: health {body.get('health')}, fix {json.dumps(fix)[:300]}")

    def stack_deleted(self, automatic):
        """The customer deletes the stack: CloudFormation's Delete through the topic disconnects."""
        cid = automatic["id"]
        self.r.receiver.answers.pop(cid, None)
        request = dict(automatic["request"], RequestType="Delete", RequestId=str(uuid.uuid4()),
                       PhysicalResourceId=automatic["physical"])
        self.r.customer.publish(request["ServiceToken"], request)
        outcomes = self.svc.deliver_topic(automatic["topic"])
        self.check("callback invoked by the topic (Delete)", outcomes and all(o.kind == "response" for _, o in outcomes),
                   f"{outcomes}")
        answer = self.r.receiver.answer(cid)
        self.check("callback answered the Delete SUCCESS", answer and answer.get("Status") == "SUCCESS", f"{answer}")
        status, body = self.api("GET", f"/v1/connections/{cid}")
        self.check("stack deleted -> disconnected", status == 200 and body.get("status") == "disconnected",
                   f"status {status}: {str(body)[:300]}")

    # --- the schedule, its queue, its workers ---------------------------------

    def env(self, fn):
        return self.r.resolver.value(fn.environment)

    def recheck_fleet(self, expected):
        rules = [r for fn in self.r.functions.values() for r in fn.schedules
                 if "ACCOUNT_CONNECT_RECHECK_QUEUE_URL" in self.env(fn)]
        poison = set()
        for rule in rules:
            fn, outcome = self.svc.fire_schedule(rule)
            self.check(f"schedule {rule} -> {fn}", outcome.kind == "response", f"{outcome}")
            # Beside the jobs it queued, one message no enumerator wrote: the
            # worker must hand it back (batchItemFailures) and only it.
            for url in self.r.resolver.value(self.r.functions[fn].environment).values():
                if url in self.r.queue_urls():
                    sent = self.r.admin("sqs").send_message(QueueUrl=url, MessageBody='{"rehearsal": "not a job"}')
                    poison.add(sent["MessageId"])
        handed = self.svc.drain_queues()
        jobs = sum(n for _, n, _, _ in handed) - len(poison)
        failed = set().union(*[f for _, _, f, _ in handed]) if handed else set()
        self.check("queue batches -> workers, batchItemFailures exactly the unreadable message",
                   handed and failed == poison and all(o.kind == "response" for *_, o in handed),
                   f"batches {[(fn, n, sorted(f), o.kind) for fn, n, f, o in handed]}, unreadable {sorted(poison)}")
        self.check("every connected connection re-checked from the queue", jobs >= expected,
                   f"{jobs} jobs for {expected} connected connections")

    def rotate(self, cid):
        status, body = self.api("POST", f"/v1/connections/{cid}/external-id")
        ok = status in (200, 201) and isinstance(body, dict) and "pendingExternalId" in json.dumps(body)
        self.check("rotate (POST .../external-id)", ok, f"status {status}: {json.dumps(body)[:400]}")

    def disconnect(self, cid):
        status, body = self.api("DELETE", f"/v1/connections/{cid}")
        self.check("disconnect (DELETE /v1/connections/{id})", status in (200, 204), f"status {status}: {body}")
        status, body = self.api("GET", f"/v1/connections/{cid}")
        self.check("disconnected", status == 200 and body.get("status") == "disconnected", f"status {status}: {body}")

    # --- the relay intake's function URL --------------------------------------

    def relay(self):
        urls = [fn for fn in self.r.functions.values() if fn.url]
        for fn in urls:
            partition = self.r.relay_partition
            key = self.r.relay_key.encode()
            # A well-formed connection id no connection has: read, found missing, answered.
            cid = "con-" + secrets.token_hex(12)
            request = {
                "RequestType": "Delete", "ResponseURL": self.r.receiver.url(cid),
                "StackId": f"arn:aws-us-gov:cloudformation:us-gov-west-1:{self.r.customer.account}:stack/spotinst-iam-stack-gone/{uuid.uuid4()}",
                "RequestId": str(uuid.uuid4()), "LogicalResourceId": "SpotConnection",
                "ResourceType": "Custom::SpotConnection", "PhysicalResourceId": "account-connect-failed-x",
                "ResourceProperties": {"ConnectionId": cid},
            }
            body = json.dumps(request)
            ts = str(int(time.time()))
            sig = hmac.new(key, f"{ts}.{body}".encode(), hashlib.sha256).hexdigest()
            _, status, answer, _ = self.svc.function_url(fn.logical, "POST", f"/v1/relay/{partition}", body, {
                "x-spot-relay-timestamp": ts, "x-spot-relay-signature": sig})
            self.check(f"relay intake (function URL, POST /v1/relay/{partition})",
                       status == 200 and answer == {"status": "handled"}, f"status {status}: {answer}")
            self.check("relayed request answered at its ResponseURL", self.r.receiver.answer(cid) is not None,
                       "no answer")
            _, status, answer, _ = self.svc.function_url(fn.logical, "POST", f"/v1/relay/{partition}", body, {
                "x-spot-relay-timestamp": ts, "x-spot-relay-signature": "0" * 64})
            self.check("relay intake refuses a bad signature (401)", status == 401, f"status {status}: {answer}")

    def organization(self):
        """The organization flow through the relay intake (org_flow.py)."""
        import org_flow

        org_flow.OrgFlow(self).run()

    # --- a partner's webhook ----------------------------------------------------

    def webhook(self):
        """Registered before anything changes, so every event is fanned out to it."""
        status, hook = self.api("POST", "/v1/webhooks", {"url": self.r.receiver.webhook_url()}, claims=EVERY_ACCOUNT)
        ok = status == 201 and str(hook.get("secret", "")).startswith("whsec_")
        if not self.check("register a webhook (POST /v1/webhooks)", ok, f"status {status}: {hook}"):
            return None
        return hook

    def webhook_deliveries(self, hook):
        """The dispatcher's fan-out wrote deliveries; the stream hands them to
        it again and it queues their attempts; the attempt queue's batches
        send them (the receiver refuses each first attempt, so each goes
        round the queue again, delayed)."""
        for round_ in range(3):
            self.svc.drain_streams()
            self.svc.drain_queues()
            if round_ == 0:
                time.sleep(7)  # the first retry's delay: 5 s, drawn 4 to 6
        from standardwebhooks import Webhook  # the spec's own package, as partners verify

        posts = self.r.receiver.posts
        ids = {h.get("webhook-id") for h, _ in posts}
        verified = 0
        for headers, body in posts:
            try:
                Webhook(hook["secret"]).verify(body, headers)
                verified += 1
            except Exception as e:  # noqa: BLE001 - reported as the check's failure
                self.check("webhook signature verifies", False, f"{type(e).__name__}: {e}")
        self.check("webhook deliveries signed as Standard Webhooks", posts and verified == len(posts),
                   f"{verified} of {len(posts)} verified")
        types = {json.loads(b).get("type") for _, b in posts}
        self.check("webhook got the connect and the disconnect", {"connection.connected",
                   "connection.disconnected"} <= types, f"types {sorted(types)}")
        status, page = self.api("GET", f"/v1/webhooks/{hook['id']}/deliveries", claims=EVERY_ACCOUNT)
        items = page.get("items", []) if isinstance(page, dict) else []
        done = [d for d in items if d.get("state") == "succeeded" and d.get("attempts") == 2]
        self.check("each delivery succeeded on its second attempt (GET .../deliveries)",
                   status == 200 and items and len(done) == len(items) == len(ids),
                   f"status {status}: {json.dumps(items)[:600]}")

    # --- the table's stream to the dispatcher ---------------------------------

    def dispatch(self):
        handed = self.svc.drain_streams()
        if not any(fn.streams for fn in self.r.functions.values()):
            return
        delivered = 0
        for fn, n, outcome in handed:
            got = (outcome.json() or {}).get("delivered") if outcome.kind == "response" else None
            # Every record of these batches is an outbox item: the webhook
            # deliveries the dispatcher writes come with the next drain.
            self.check(f"stream batch of {n} -> {fn}", got == n, f"{outcome}")
            delivered += got or 0
        self.check("outbox records reached the dispatcher", delivered > 0, f"{handed}")
        seen = self.r.bus_events()
        self.check("events on the bus", len(seen) >= delivered and delivered > 0,
                   f"{len(seen)} on the bus for {delivered} delivered")

    # --- the sweeper, a bus outage, a replayed batch ----------------------------

    def sweeper(self):
        """The sweeper's function and schedule rule (a scheduled function
        with the sweeper's setting)."""
        for fn in self.r.functions.values():
            if fn.schedules and "ACCOUNT_CONNECT_SWEEP_AFTER_SECS" in self.env(fn):
                return fn, fn.schedules[0]
        raise AssertionError("no scheduled function carries ACCOUNT_CONNECT_SWEEP_AFTER_SECS: no sweeper")

    def dispatcher(self):
        return next(fn for fn in self.r.functions.values() if fn.streams)

    def sweep(self):
        """The schedule's event to the sweeper: what it answered."""
        fn, rule = self.sweeper()
        _, outcome = self.svc.fire_schedule(rule)
        self.check(f"schedule {rule} -> {fn.logical} (sweep)", outcome.kind == "response", f"{outcome}")
        return (outcome.json() or {}) if outcome.kind == "response" else {}

    def posts_of(self, message_id):
        return [(h, b) for h, b in self.r.receiver.posts if h.get("webhook-id") == message_id]

    def deliveries_of(self, hook, message_id):
        status, page = self.api("GET", f"/v1/webhooks/{hook['id']}/deliveries?limit=100", claims=EVERY_ACCOUNT)
        items = page.get("items", []) if status == 200 and isinstance(page, dict) else []
        return [d for d in items if d.get("messageId") == message_id]

    def retry_round(self):
        """The receiver refuses each first attempt: the retry's delay (5 s,
        drawn 4 to 6), then the queue again."""
        time.sleep(7)
        self.svc.drain_streams()
        self.svc.drain_queues()

    def sweeper_requeues_a_lost_message(self, hook):
        """A delivery's first queue message is lost (taken off the attempt
        queue before any attempt): the sweeper, on its schedule, queues it
        again once it is overdue, and it arrives."""
        status, d = self.api("POST", f"/v1/webhooks/{hook['id']}/test", claims=EVERY_ACCOUNT)
        if not self.check("test event queued (POST .../test)", status == 202, f"status {status}: {d}"):
            return
        message = d["messageId"]
        self.svc.drain_streams()  # its insert: the dispatcher queues the first attempt
        queue = self.env(self.dispatcher())["ACCOUNT_CONNECT_WEBHOOK_QUEUE_URL"]
        sqs, lost = self.r.admin("sqs"), []
        end = time.monotonic() + 5
        while not lost and time.monotonic() < end:
            lost = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        for m in lost:
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
        self.check("the delivery's first queue message taken away (lost)", len(lost) == 1, f"{len(lost)} messages")
        self.svc.drain_queues()
        self.check("nothing sent without its message", not self.posts_of(message), f"{self.posts_of(message)}")
        time.sleep(self.r.sweep_after_secs + 1)
        swept = self.sweep()
        self.check("the sweeper queued the overdue delivery again", swept.get("requeued") == 1, f"answered {swept}")
        self.svc.drain_queues()
        self.check("the delivery arrived after the sweep", len(self.posts_of(message)) == 1,
                   f"{len(self.posts_of(message))} requests with webhook-id {message}")
        self.retry_round()
        done = self.deliveries_of(hook, message)
        self.check("and succeeded on its retry (GET .../deliveries)",
                   len(done) == 1 and done[0].get("state") == "succeeded", f"{done}")

    def webhooks_while_put_events_denied(self, hook):
        """The dispatcher's role loses events:PutEvents (an explicit deny):
        a connection connects, its webhook gets the event, the bus does
        not; the deny lifted, the sweeper puts the event on the bus."""
        iam, dispatcher = self.r.admin("iam"), self.dispatcher()
        role = self.r.resolver.physical[dispatcher.role]["Ref"]
        deny = {"Version": "2012-10-17", "Statement": [
            {"Sid": "RehearsedBusOutage", "Effect": "Deny", "Action": "events:PutEvents", "Resource": "*"}]}
        start = self.r.record_mark()
        iam.put_role_policy(RoleName=role, PolicyName="rehearsal-bus-outage", PolicyDocument=json.dumps(deny))
        try:
            status, conn = self.api("POST", "/v1/connections", {"accountId": "act-rehearsal3", "partition": "aws",
                                                                 "permissions": {"mode": "default"}},
                                    claims=EVERY_ACCOUNT)
            if not self.check("create (bus outage)", status == 201, f"status {status}: {conn}"):
                return None
            cid = conn["id"]
            role_arn = self.r.customer.create_role(conn, "SpotRole-outage")
            status, body = self.api("POST", f"/v1/connections/{cid}/role", {"roleArn": role_arn}, claims=EVERY_ACCOUNT)
            if not self.check("connect (bus outage)", status == 200 and body.get("status") == "connected",
                              f"status {status}: {json.dumps(body)[:400]}"):
                return None
            handed = self.svc.drain_streams()
            answers = [o.json() or {} for _, _, o in handed if o.kind == "response"]
            self.check("stream batch with PutEvents denied: fanned out, held for the bus, the batch not failed",
                       handed and len(answers) == len(handed) and sum(a.get("heldForBus", 0) for a in answers) == 1,
                       f"{[(fn, n, o.kind, o.body) for fn, n, o in handed]}")
            for _ in range(2):
                self.svc.drain_streams()  # the deliveries' inserts: queued
                self.svc.drain_queues()
            got = [json.loads(b) for _, b in self.r.receiver.posts]
            self.check("webhook got the event while PutEvents was denied",
                       any(e.get("type") == "connection.connected" and e.get("data", {}).get("id") == cid for e in got),
                       f"types {[(e.get('type'), e.get('data', {}).get('id')) for e in got]}")
            on_bus = [json.loads(m["Body"]) for m in self.r.bus_events()]
            self.check("the bus got nothing meanwhile", not any(e.get("detail", {}).get("data", {}).get("id") == cid
                                                                 for e in on_bus), f"{len(on_bus)} events")
        finally:
            iam.delete_role_policy(RoleName=role, PolicyName="rehearsal-bus-outage")
            end = self.r.record_mark()
            self.r.staged.append(({dispatcher.logical}, "events:PutEvents", start, end))
        denied = self.r.denied_in(start, end, dispatcher.logical, "events:PutEvents")
        self.check("PutEvents was denied to the dispatcher during the outage", denied, "no denial recorded")
        time.sleep(self.r.sweep_after_secs + 1)
        swept = self.sweep()
        self.check("the sweeper put the held event on the bus once PutEvents was allowed again",
                   swept.get("delivered", 0) >= 1 and swept.get("heldForBus") == 0, f"answered {swept}")
        on_bus = [json.loads(m["Body"]) for m in self.r.bus_events()]
        self.check("the bus got the event after the outage",
                   any(e.get("detail-type") == "connection.connected" and e["detail"]["data"]["id"] == cid
                       for e in on_bus), f"{[(e.get('detail-type'), e['detail']['data'].get('id')) for e in on_bus]}")
        self.retry_round()
        return {"id": cid}

    def replayed_batch(self, hook, conn):
        """Lambda retries a stream batch (it re-runs every item of it): the
        batch with a disconnection's outbox item handed over twice, a
        second apart. One delivery per webhook, sent once."""
        cid = conn["id"]
        status, body = self.api("DELETE", f"/v1/connections/{cid}", claims=EVERY_ACCOUNT)
        if not self.check("disconnect (replayed batch)", status in (200, 204), f"status {status}: {body}"):
            return
        status, body = self.api("GET", f"/v1/connections/{cid}", claims=EVERY_ACCOUNT)
        message = f"msg_{cid}_{body['version']}"
        before = len(self.svc.stream_batches)
        self.svc.drain_streams()
        batches = [(fn, e) for fn, e in self.svc.stream_batches[before:]
                   if any(r["dynamodb"]["Keys"]["sk"]["S"].startswith("OUTBOX#") for r in e["Records"])]
        if not self.check("the disconnection's outbox item in a stream batch", len(batches) == 1, f"{batches}"):
            return
        time.sleep(1.1)
        fn, event = batches[0]
        outcome = self.svc.invoke(fn, event)
        self.check("the same batch handed over again (Lambda's retry)", outcome.kind == "response", f"{outcome}")
        self.svc.drain_streams()
        self.svc.drain_queues()
        self.retry_round()
        deliveries = self.deliveries_of(hook, message)
        self.check("a replayed batch gives one delivery per webhook (GET .../deliveries)", len(deliveries) == 1,
                   f"{len(deliveries)} deliveries of {message}: {deliveries}")
        posts = self.posts_of(message)
        # The first attempt is refused (500), the retry succeeds: two requests of one delivery.
        self.check("and the receiver got it as one delivery (refused once, then taken)", len(posts) == 2,
                   f"{len(posts)} requests with webhook-id {message}")
