"""What Lambda, API Gateway and the event source mappings do for the stack,
done by the rehearsal: start each function's binary with its environment
and its role's credentials, and hand it the events the template wires."""

import collections
import itertools
import json
import os
import threading
import time

import events
from runtime_api import Gauge, Outcome, Runtime

# Lambda's own variables for a provided.al2023 function (the reserved ones
# a custom runtime sees), beside the template's.
LAMBDA_ENV = {
    "_HANDLER": "bootstrap", "LAMBDA_TASK_ROOT": "/var/task", "LAMBDA_RUNTIME_DIR": "/var/runtime",
    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST", "AWS_EXECUTION_ENV": "AWS_Lambda_provided.al2023",
    "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand", "TZ": ":UTC", "LANG": "en_US.UTF-8",
    "PATH": "/usr/local/bin:/usr/bin/:/bin:/opt/bin",
}


class LambdaService:
    def __init__(self, rehearsal):
        self.r = rehearsal
        self.runtimes = {}  # logical id -> Runtime
        self.init_ms = {}
        self.failures = []  # (function, what)
        self.stream_positions = {}  # (mapping, shard) -> the last record's SequenceNumber handed over
        self.stream_batches = []  # (function, event) of every stream batch handed over, to replay one

    def lambda_env(self, fn, name, creds):
        env = dict(LAMBDA_ENV)
        env.update({
            "AWS_REGION": self.r.region, "AWS_DEFAULT_REGION": self.r.region,
            "AWS_LAMBDA_FUNCTION_NAME": name, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory if fn else 128),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}", "AWS_LAMBDA_LOG_STREAM_NAME": "rehearsal",
        })
        if fn is not None and fn.log_format == "JSON":
            env["AWS_LAMBDA_LOG_FORMAT"] = "JSON"
        if creds:
            env.update({"AWS_ACCESS_KEY_ID": creds["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
                        "AWS_SESSION_TOKEN": creds["SessionToken"]})
        return env

    def start(self, fn, binary, template_env, creds, standins):
        """The function's first instance, started and waited for to its
        first next-invocation request; the pool that starts the rest."""
        name = self.r.resolver.physical[fn.logical]["Ref"]
        arn = self.r.resolver.physical[fn.logical]["Arn"]
        env = self.lambda_env(fn, name, creds)
        if fn.alias:
            # Its invokers all name the alias on version 1 (deploy_flow.py checks they do).
            arn = self.r.resolver.physical[fn.alias_logical]["Ref"]
            env["AWS_LAMBDA_FUNCTION_VERSION"] = self.r.resolver.physical[fn.version_logical]["Version"]
        env.update(standins)
        env.update(template_env)  # the template's own variables win over everything
        pool = Pool(self, fn, arn, binary, env)
        self.runtimes[fn.logical] = pool
        runtime = pool.spawn()
        pool.idle.append(runtime)
        ms = runtime.init_ms()
        self.init_ms[fn.logical] = ms
        return runtime

    def baseline(self, binary):
        """A bare lambda_runtime binary answering one event: init time."""
        runtime = Runtime("bare_lambda", "arn:aws:lambda:us-east-1:123456789012:function:bare", 10)
        runtime.start(binary, self.lambda_env(None, "bare", None), os.path.join(self.r.work, "bare_lambda.log"))
        ms = runtime.init_ms()
        outcome = runtime.invoke({"hello": "rehearsal"}, 10)
        runtime.stop()
        return ms, outcome

    def invoke(self, logical, event, wait_s=None, sync=False):
        """One invocation on a free instance of the function (a new one
        while under its bound). Over the bound a synchronous invocation is
        refused as Lambda refuses it; an asynchronous one waits for a slot
        (Lambda retries a throttled event for hours; a queue's poller
        leaves the message where it is)."""
        outcome = self.runtimes[logical].invoke(event, wait_s, sync)
        self.r.log(f"    {logical}: {outcome.kind} {str(outcome.body)[:3000 if self.r.verbose else 300]}")
        return outcome

    # --- HTTP API and function URLs -----------------------------------------

    def route(self, method, path):
        """The function and route API Gateway picks: the most specific path,
        a method before ANY."""
        plain = path.split("?", 1)[0]
        found = []
        for fn in self.r.functions.values():
            for route in fn.routes:
                params = route.match(method, plain)
                if params is not None:
                    found.append(("+}" in route.path, route.method == "ANY", -len(route.path), fn, route, params))
        if not found:
            raise AssertionError(f"no route of the HTTP API takes {method} {plain}")
        found.sort(key=lambda f: f[:3])
        return found[0][3:]

    def http(self, method, path, body=None, claims=None, headers=None):
        fn, route, params = self.route(method, path)
        event = events.http_v2(route.key, method, path, params, body, headers or {},
                               claims if route.authorized else None, self.r.account,
                               "rehearsal.execute-api.us-east-1.amazonaws.com")
        return self._http_answer(fn.logical, event, f"{method} {path}")

    def function_url(self, logical, method, path, body, headers):
        event = events.http_v2("$default", method, path, None, body, headers, None, self.r.account,
                               "rehearsal.lambda-url.us-east-1.on.aws")
        return self._http_answer(logical, event, f"{method} {path} (function URL)")

    def _http_answer(self, logical, event, what):
        outcome = self.invoke(logical, event, sync=True)
        if outcome.kind == "throttled":
            return logical, 429, outcome.json(), {}
        if outcome.kind != "response":
            return logical, 502, outcome.body, {}
        answer = outcome.json() or {}
        body = answer.get("body") or ""
        if answer.get("isBase64Encoded"):
            import base64
            body = base64.b64decode(body).decode("utf-8", "replace")
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = body
        return logical, answer.get("statusCode"), parsed, answer.get("headers", {})

    # --- SNS, schedules, queues, streams ------------------------------------

    def deliver_topic(self, topic_logical, wait_s=10):
        """Notifications on the topic (through the rehearsal's subscription)
        handed to each function subscribed to it; their outcomes."""
        tap = self.r.taps[topic_logical]
        sqs = self.r.admin("sqs")
        end, got = time.monotonic() + wait_s, []
        while not got and time.monotonic() < end:
            got = sqs.receive_message(QueueUrl=tap["url"], MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        outcomes = []
        for m in got:
            sqs.delete_message(QueueUrl=tap["url"], ReceiptHandle=m["ReceiptHandle"])
            notification = json.loads(m["Body"])
            for fn in self.r.functions.values():
                if topic_logical in fn.topics:
                    outcomes.append((fn.logical, self.invoke(fn.logical, events.sns(notification, tap["subscription"]))))
        return outcomes

    def fire_schedule(self, rule_logical):
        rule_arn = f"arn:aws:events:{self.r.region}:{self.r.account}:rule/{self.r.resolver.physical[rule_logical]['Ref']}"
        for fn in self.r.functions.values():
            if rule_logical in fn.schedules:
                return fn.logical, self.invoke(fn.logical, events.schedule(rule_arn, self.r.account, self.r.region))
        raise AssertionError(f"no function on {rule_logical}")

    def drain_queues(self, rounds=20):
        """Each SQS event source mapping: batches of BatchSize until the queue
        is empty; with ReportBatchItemFailures, the failed items stay, the
        rest are deleted (as Lambda does). Answers the batches handed over."""
        sqs, handed = self.r.admin("sqs"), []
        for fn in self.r.functions.values():
            for mapping, p in fn.queues:
                props = self.r.resolver.value(p)
                url = self.r.queue_url(props["EventSourceArn"])
                size = int(props.get("BatchSize", 10))
                partial = "ReportBatchItemFailures" in props.get("FunctionResponseTypes", [])
                for _ in range(rounds):
                    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=min(size, 10), WaitTimeSeconds=0,
                                              AttributeNames=["All"]).get("Messages", [])
                    if not got:
                        break
                    outcome = self.invoke(fn.logical, events.sqs(got, props["EventSourceArn"], self.r.region))
                    failed = set()
                    if outcome.kind == "response" and partial:
                        failed = {f["itemIdentifier"] for f in (outcome.json() or {}).get("batchItemFailures", [])}
                    if outcome.kind != "response":
                        failed = {m["MessageId"] for m in got}
                    for m in got:
                        if m["MessageId"] not in failed:
                            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
                    # The failed ones come back after the visibility timeout,
                    # past the rehearsal's end: reported, not received again.
                    handed.append((fn.logical, len(got), failed, outcome))
        return handed

    def drain_streams(self):
        """Each stream event source mapping: the new records (from
        TRIM_HORIZON the first time), filtered by its FilterCriteria, in
        batches of BatchSize."""
        streams, handed = self.r.admin("dynamodbstreams"), []
        for fn in self.r.functions.values():
            for mapping, p in fn.streams:
                props = self.r.resolver.value(p)
                arn = props["EventSourceArn"]
                patterns = [json.loads(f["Pattern"]) for f in props.get("FilterCriteria", {}).get("Filters", [])]
                records = []
                for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
                    key = (mapping, shard["ShardId"])
                    # A fresh iterator after the last record handed over, each
                    # drain: moto puts a table back from a copy when a
                    # transaction's condition fails, stream included, and an
                    # iterator kept from before reads the old copy forever.
                    after = self.stream_positions.get(key)
                    where = ({"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": after} if after
                             else {"ShardIteratorType": props.get("StartingPosition", "TRIM_HORIZON")})
                    it = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"], **where)["ShardIterator"]
                    while it:
                        out = streams.get_records(ShardIterator=it)
                        records += out["Records"]
                        if out["Records"]:
                            self.stream_positions[key] = out["Records"][-1]["dynamodb"]["SequenceNumber"]
                        else:
                            break
                        it = out.get("NextShardIterator")
                shaped = events.stream(records, arn, self.r.region)["Records"]
                kept = [r for r in shaped if not patterns or any(events.matches(pt, r) for pt in patterns)]
                size = int(props.get("BatchSize", 100))
                for i in range(0, len(kept), size):
                    batch = kept[i:i + size]
                    self.stream_batches.append((fn.logical, {"Records": batch}))
                    outcome = self.invoke(fn.logical, {"Records": batch})
                    handed.append((fn.logical, len(batch), outcome))
        return handed

    def stop(self):
        for pool in self.runtimes.values():
            pool.stop()


class Pool:
    """A function's instances, as Lambda keeps them: one invocation each at
    a time, a new one started (a cold start) when every instance is busy,
    at most ReservedConcurrentExecutions of them at once; a function
    without a reservation draws on the account's unreserved pool, which
    the rehearsal never exhausts. The Gauge counts what is in flight as
    the processes see it, apart from this bookkeeping."""

    def __init__(self, service, fn, arn, binary, env):
        self.service, self.fn, self.arn, self.binary, self.env = service, fn, arn, binary, env
        self.limit = fn.reserved
        self.gauge = Gauge()
        self.instances = []
        self.numbers = itertools.count()
        self.idle = []
        self.busy = 0
        self.throttled = 0  # synchronous invocations refused (TooManyRequestsException)
        self.waited = 0  # asynchronous ones that waited for a slot
        self.waiting = collections.deque()  # their tickets, in order
        self.cond = threading.Condition()

    @property
    def results(self):
        """Every invocation handed to any instance (the report counts them)."""
        return {k: v for r in self.instances for k, v in r.results.items()}

    def spawn(self):
        n = next(self.numbers)  # cold starts may run at once: each its own log
        runtime = Runtime(self.fn.logical, self.arn, self.fn.timeout, self.gauge)
        log = os.path.join(self.service.r.work, f"{self.fn.logical}{'' if n == 0 else f'-{n}'}.log")
        runtime.start(self.binary, self.env, log)
        self.instances.append(runtime)
        if runtime.init_ms() is None:
            with open(log, "rb") as f:
                last = (f.read().decode("utf-8", "replace").strip().splitlines() or [""])[-1]
            why = runtime.init_error or f"exit status {runtime.process.poll()}"
            self.service.failures.append((self.fn.logical, f"instance {n} did not reach its first "
                                          f"next-invocation request ({why}): {last[:500]}"))
        return runtime

    def acquire(self, sync):
        with self.cond:
            if self.limit is not None and (self.busy >= self.limit or self.waiting):
                if sync:
                    self.throttled += 1
                    return None
                # First come, first served among the events waiting.
                self.waited += 1
                ticket = object()
                self.waiting.append(ticket)
                while self.busy >= self.limit or self.waiting[0] is not ticket:
                    self.cond.wait()
                self.waiting.popleft()
            self.busy += 1
            runtime = self.idle.pop() if self.idle else None
        return runtime or self.spawn()

    def release(self, runtime):
        with self.cond:
            self.busy -= 1
            self.idle.append(runtime)
            self.cond.notify_all()

    def invoke(self, event, wait_s=None, sync=False):
        runtime = self.acquire(sync)
        if runtime is None:
            return Outcome("throttled", json.dumps({"Type": "User", "message": "Rate Exceeded."}),
                           "TooManyRequestsException")
        try:
            return runtime.invoke(event, wait_s)
        finally:
            self.release(runtime)

    def stop(self):
        for runtime in self.instances:
            runtime.stop()
