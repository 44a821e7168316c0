"""A Lambda Runtime API emulator (the 2018-06-01 interface a custom
runtime polls), one per function process:

    GET  /2018-06-01/runtime/invocation/next             the next event, held open until there is one
    POST /2018-06-01/runtime/invocation/{id}/response    the invocation's result
    POST /2018-06-01/runtime/invocation/{id}/error       the invocation's error
    POST /2018-06-01/runtime/init/error                  the function could not start

Each event carries Lambda's headers: Lambda-Runtime-Aws-Request-Id,
Lambda-Runtime-Deadline-Ms (now plus the function's Timeout),
Lambda-Runtime-Invoked-Function-Arn and Lambda-Runtime-Trace-Id. The
process is started with exactly the environment it is given; its init time
is from exec to its first next-invocation request. A Gauge shared by a
function's instances counts its invocations in flight as the processes see
them (from the event handed over to its response or error)."""

import json
import os
import queue
import re
import secrets
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = "/2018-06-01/runtime"


class Outcome:
    def __init__(self, kind, body, error_type=None):
        self.kind = kind  # "response", "error", "init-error", "exited", "timeout"
        self.body = body
        self.error_type = error_type

    def json(self):
        try:
            return json.loads(self.body)
        except (ValueError, TypeError):
            return None

    def __repr__(self):
        return f"{self.kind}: {self.error_type or ''} {str(self.body)[:400]}"


class Gauge:
    """Invocations of one function in flight across its instances, and the
    most there ever were at once."""

    def __init__(self):
        self.lock = threading.Lock()
        self.now = 0
        self.most = 0

    def add(self, n):
        with self.lock:
            self.now += n
            self.most = max(self.most, self.now)


class Runtime:
    def __init__(self, name, arn, timeout_s, gauge=None):
        self.name, self.arn, self.timeout_s = name, arn, timeout_s
        self.gauge = gauge or Gauge()
        self.handed = set()  # request ids handed to the process, not yet answered
        self.events = queue.Queue()
        self.results = {}  # request id -> queue of one Outcome
        self.init_error = None
        self.first_next = None
        self.started = None
        self.process = None
        runtime = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _answer(self, status, body=b"", headers=()):
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except OSError:
                    pass  # the process was stopped meanwhile

            def do_GET(self):
                if self.path != PREFIX + "/invocation/next":
                    return self._answer(404)
                if runtime.first_next is None:
                    runtime.first_next = time.monotonic()
                request_id, event = runtime.events.get()
                runtime.handed.add(request_id)
                runtime.gauge.add(1)
                deadline = int((time.time() + runtime.timeout_s) * 1000)
                trace = f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)};Parent={secrets.token_hex(8)};Sampled=1"
                self._answer(200, event, [
                    ("Content-Type", "application/json"),
                    ("Lambda-Runtime-Aws-Request-Id", request_id),
                    ("Lambda-Runtime-Deadline-Ms", str(deadline)),
                    ("Lambda-Runtime-Invoked-Function-Arn", runtime.arn),
                    ("Lambda-Runtime-Trace-Id", trace),
                ])

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                error_type = self.headers.get("Lambda-Runtime-Function-Error-Type")
                if self.path == PREFIX + "/init/error":
                    runtime.init_error = Outcome("init-error", body.decode("utf-8", "replace"), error_type)
                    for q in list(runtime.results.values()):
                        q.put(runtime.init_error)
                    return self._answer(202, b'{"status":"OK"}')
                m = re.fullmatch(PREFIX + r"/invocation/([^/]+)/(response|error)", self.path)
                if not m or m.group(1) not in runtime.results:
                    return self._answer(400, b'{"errorType":"InvalidRequestID"}')
                kind = m.group(2)
                if m.group(1) in runtime.handed:
                    runtime.handed.discard(m.group(1))
                    runtime.gauge.add(-1)
                runtime.results[m.group(1)].put(Outcome(kind, body.decode("utf-8", "replace"), error_type))
                self._answer(202, b'{"status":"OK"}')

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.address = f"127.0.0.1:{self.server.server_address[1]}"

    def start(self, binary, env, log_path):
        self.log = open(log_path, "wb")
        env = dict(env, AWS_LAMBDA_RUNTIME_API=self.address)
        self.started = time.monotonic()
        self.process = subprocess.Popen([binary], env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, cwd=os.path.dirname(binary))

    def init_ms(self, wait_s=30):
        """Exec to the first next-invocation request, waiting for it."""
        end = time.monotonic() + wait_s
        while self.first_next is None and self.init_error is None and self.process.poll() is None:
            if time.monotonic() > end:
                return None
            time.sleep(0.005)
        return None if self.first_next is None else (self.first_next - self.started) * 1000

    def invoke(self, event, wait_s=None):
        """Hands `event` to the function; its Outcome."""
        request_id = str(uuid.uuid4())
        result = queue.Queue()
        self.results[request_id] = result
        if self.init_error:
            return self.init_error
        self.events.put((request_id, json.dumps(event).encode()))
        end = time.monotonic() + (wait_s or self.timeout_s)
        while True:
            try:
                return result.get(timeout=0.1)
            except queue.Empty:
                if self.process.poll() is not None:
                    return self.init_error or Outcome("exited", f"the process exited with {self.process.returncode}")
                if time.monotonic() > end:
                    return Outcome("timeout", f"no answer within {wait_s or self.timeout_s} s")

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.server.shutdown()
        if self.process:
            self.log.close()
