"""The product's flows, driven through the events the template wires, each
checked against what the API documents (README.md, "API"). A flow that
ends otherwise is recorded as failed with what it got."""

import hashlib
import hmac
import json
import secrets
import time
import uuid

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

    def run(self):
        self.r.log("--- flows")
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
        self.guarded(self.dispatch)
        if hook:
            self.guarded(self.webhook_deliveries, hook)

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

    def recheck_fleet(self, expected):
        rules = [r for fn in self.r.functions.values() for r in fn.schedules]
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
