"""The event sources left running on their own, as AWS runs them, for a
flow that needs time to pass under load (the noisy neighbour): each
topic's notifications handed to its functions as they come (asynchronous
invocations: one over the function's bound waits for a slot), each SQS
event source mapping polled by at most its ScalingConfig.MaximumConcurrency
batches at once (the rest of the messages wait in the queue), and the
table's stream drained every quarter second. The sequential flows drive
the same sources by hand (LambdaService.deliver_topic, drain_queues,
drain_streams)."""

import json
import threading
import time

import events
from runtime_api import Gauge

POLL_SECS = 0.25


class EventSources:
    def __init__(self, service):
        self.svc, self.r = service, service.r
        self.stopping = threading.Event()
        self.threads = []
        self.mappings = {}  # mapping logical id -> (bound or None, Gauge of its batches in flight)
        self.outcomes = []  # (function, source, event, outcome), as they end

    def start(self):
        for topic in self.r.taps:
            self._thread(self._topic, topic)
        for fn in self.r.functions.values():
            for mapping, p in fn.queues:
                props = self.r.resolver.value(p)
                bound = props.get("ScalingConfig", {}).get("MaximumConcurrency")
                self.mappings[mapping] = (int(bound) if bound is not None else None, Gauge())
                self._thread(self._queue, fn, mapping, props)
        self._thread(self._streams)

    def stop(self):
        """No new invocation from here on; those running go on to their end."""
        self.stopping.set()
        for t in self.threads:
            t.join()

    def _thread(self, target, *args):
        t = threading.Thread(target=target, args=args, daemon=True)
        t.start()
        self.threads.append(t)

    def _invoke(self, logical, source, event, then=None):
        def run():
            outcome = self.svc.invoke(logical, event)
            self.outcomes.append((logical, source, event, outcome))
            if then:
                then(outcome)
        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t

    def _topic(self, topic):
        tap, sqs = self.r.taps[topic], self.r.admin("sqs")
        while not self.stopping.is_set():
            got = sqs.receive_message(QueueUrl=tap["url"], MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
            for m in got:
                sqs.delete_message(QueueUrl=tap["url"], ReceiptHandle=m["ReceiptHandle"])
                notification = json.loads(m["Body"])
                for fn in self.r.functions.values():
                    if topic in fn.topics:
                        self._invoke(fn.logical, topic, events.sns(notification, tap["subscription"]))
            if not got:
                time.sleep(POLL_SECS)

    def _queue(self, fn, mapping, props):
        """One mapping's pollers: a batch is taken only while fewer than the
        bound are in flight; with ReportBatchItemFailures the failed
        messages stay, the rest are deleted (as Lambda does)."""
        sqs = self.r.admin("sqs")
        url = self.r.queue_url(props["EventSourceArn"])
        size = min(int(props.get("BatchSize", 10)), 10)
        partial = "ReportBatchItemFailures" in props.get("FunctionResponseTypes", [])
        bound, gauge = self.mappings[mapping]
        slots = threading.Semaphore(bound or 1000)
        while not self.stopping.is_set():
            if not slots.acquire(timeout=POLL_SECS):
                continue
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=size, WaitTimeSeconds=0,
                                      AttributeNames=["All"]).get("Messages", [])
            if not got:
                slots.release()
                time.sleep(POLL_SECS)
                continue
            gauge.add(1)

            def done(outcome, got=got):
                failed = set()
                if outcome.kind == "response" and partial:
                    failed = {f["itemIdentifier"] for f in (outcome.json() or {}).get("batchItemFailures", [])}
                if outcome.kind != "response":
                    failed = {m["MessageId"] for m in got}
                try:
                    for m in got:
                        if m["MessageId"] not in failed:
                            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
                except Exception as e:  # noqa: BLE001 - the flow purged the queue meanwhile
                    self.r.log(f"    {mapping}: a handled batch not deleted: {e}")
                finally:
                    gauge.add(-1)
                    slots.release()
            self._invoke(fn.logical, mapping, events.sqs(got, props["EventSourceArn"], self.r.region), done)

    def _streams(self):
        # One batch per shard at a time, as Lambda reads a stream.
        while not self.stopping.is_set():
            self.svc.drain_streams()
            time.sleep(POLL_SECS)
