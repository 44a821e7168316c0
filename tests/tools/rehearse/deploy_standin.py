"""Lambda's Invoke and CodeDeploy's PutLifecycleEventHookExecutionStatus
on loopback, for the pre-traffic hook (moto runs no function and has no
lifecycle hooks). The hook reaches it through AWS_ENDPOINT_URL, as every
function reaches moto. Each request's SigV4 signature is checked with the
caller's secret (botocore computes it), and its action is authorized
against the caller's role's policies as IAM holds them in moto (a Deny
wins); calls and decisions go to moto's record, so the report shows them
with the rest. An invocation of a version runs the function's binary."""

import fnmatch
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

AUTH = re.compile(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
                  r"SignedHeaders=([^,]+), Signature=([0-9a-f]{64})")
HOOK_STATUS = "CodeDeploy_20141006.PutLifecycleEventHookExecutionStatus"


class StandIn:
    def __init__(self, rehearsal, service):
        self.r, self.svc = rehearsal, service
        self.invocations = []  # (caller, version ARN, what came back)
        self.reports = []  # the statuses reported: deploymentId, lifecycleEventHookExecutionId, status
        self.deployments = {}  # deployment id -> (application, deployment group) as CodeDeploy names them
        self.lock = threading.Lock()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, headers, answer = stand_in.handle(self.command, self.path, dict(self.headers.items()), body)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def environment(self, fn, standins):
        """The hook reaches this stand-in; every other function, moto."""
        if "ACCOUNT_CONNECT_PRE_TRAFFIC_API_VERSION" in fn.environment:
            return dict(standins, AWS_ENDPOINT_URL=self.url)
        return standins

    def stop(self):
        self.server.shutdown()

    # --- the wire --------------------------------------------------------------

    def handle(self, method, path, headers, body):
        lower = {k.lower(): v for k, v in headers.items()}
        key, service, why = self.verify(method, path, lower, body)
        if why:
            return self.error(403, "InvalidSignatureException", why)
        caller = self.r.keys.get(key)
        if service == "lambda" and path.startswith("/2015-03-31/functions/"):
            return self.invoke(caller, key, unquote(path.split("/")[3]), body)
        if service == "codedeploy" and lower.get("x-amz-target") == HOOK_STATUS:
            return self.hook_status(caller, key, json.loads(body or b"{}"))
        return self.error(400, "UnknownOperationException", f"the stand-in answers no {method} {path} ({service})")

    def verify(self, method, path, headers, body):
        """(access key, service, why not) of a SigV4 Authorization header."""
        m = AUTH.fullmatch(headers.get("authorization", ""))
        if not m:
            return None, None, "no SigV4 Authorization header"
        key, _, region, service, signed, signature = m.groups()
        creds = self.r.secrets.get(key)
        if creds is None:
            return key, service, f"the security token included in the request is invalid (unknown key {key})"
        request = AWSRequest(method=method, url=f"http://{headers['host']}{path}", data=body,
                             headers={h: headers[h] for h in signed.split(";") if h in headers})
        request.context["timestamp"] = headers.get("x-amz-date", "")
        auth = SigV4Auth(Credentials(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"]),
                         service, region)
        want = auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request)
        if want != signature:
            return key, service, "the request signature we calculated does not match the signature you provided"
        return key, service, None

    def error(self, status, code, message, service="lambda"):
        if service == "codedeploy":
            return status, {"Content-Type": "application/x-amz-json-1.1"}, json.dumps(
                {"__type": code, "message": message}).encode()
        return status, {"Content-Type": "application/json", "x-amzn-ErrorType": code}, json.dumps(
            {"Type": "User", "Message": message}).encode()

    def record(self, entry):
        with self.lock, open(self.r.records, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")

    def authorized(self, caller, key, action, resource):
        """The caller's role's policies in moto's IAM allow `action` on `resource` (a Deny wins)."""
        allowed = False
        if caller is not None:
            iam = self.r.admin("iam")
            role = self.r.resolver.physical[self.r.functions[caller].role]["Ref"]
            for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
                for st in iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]["Statement"]:
                    actions = [st["Action"]] if isinstance(st["Action"], str) else st["Action"]
                    resources = [st["Resource"]] if isinstance(st["Resource"], str) else st["Resource"]
                    if any(fnmatch.fnmatch(action.lower(), a.lower()) for a in actions) and \
                            any(fnmatch.fnmatchcase(resource, r) for r in resources):
                        if st["Effect"] == "Deny":
                            allowed = False
                            break
                        allowed = True
                else:
                    continue
                break
        self.record({"kind": "decision", "key": key, "action": action, "resource": resource, "allowed": allowed})
        return allowed

    # --- Lambda: Invoke -----------------------------------------------------------

    def invoke(self, caller, key, target, body):
        def done(status, headers, answer, error=None):
            entry = {"kind": "call", "key": key, "call": "lambda:Invoke", "status": status}
            if error:
                entry.update(error=error, deniedByIdentity=error == "AccessDeniedException")
            self.record(entry)
            return status, headers, answer

        if not self.authorized(caller, key, "lambda:InvokeFunction", target):
            return done(*self.error(403, "AccessDeniedException",
                                    f"not authorized to perform: lambda:InvokeFunction on resource: {target}"),
                        error="AccessDeniedException")
        parts = target.split(":")
        name, qualifier = (parts[6], parts[7] if len(parts) > 7 else None) if target.startswith("arn:") else (target, None)
        fn = next((f for f in self.r.functions.values() if self.r.resolver.physical[f.logical]["Ref"] == name), None)
        published = fn and fn.version_logical and self.r.resolver.physical[fn.version_logical]["Version"]
        if fn is None or qualifier not in (published, fn.alias):
            return done(*self.error(404, "ResourceNotFoundException", f"Function not found: {target}"),
                        error="ResourceNotFoundException")
        outcome = self.svc.invoke(fn.logical, json.loads(body or b"null"))
        with self.lock:
            self.invocations.append((caller, target, outcome))
        if outcome.kind == "response":
            return done(200, {"Content-Type": "application/json", "X-Amz-Executed-Version": published},
                        outcome.body.encode())
        answer = json.dumps({"errorType": outcome.error_type or outcome.kind, "errorMessage": str(outcome.body)[:1000]})
        return done(200, {"Content-Type": "application/json", "X-Amz-Function-Error": "Unhandled",
                          "X-Amz-Executed-Version": published}, answer.encode())

    # --- CodeDeploy: PutLifecycleEventHookExecutionStatus ---------------------------

    def hook_status(self, caller, key, request):
        def done(status, headers, answer, error=None):
            entry = {"kind": "call", "key": key, "call": "codedeploy:PutLifecycleEventHookExecutionStatus",
                     "status": status}
            if error:
                entry.update(error=error, deniedByIdentity=error == "AccessDeniedException")
            self.record(entry)
            return status, headers, answer

        deployment = self.deployments.get(request.get("deploymentId"))
        if deployment is None:
            return done(*self.error(400, "DeploymentDoesNotExistException",
                                    f"no deployment {request.get('deploymentId')}", "codedeploy"),
                        error="DeploymentDoesNotExistException")
        app, group = deployment
        arn = f"arn:aws:codedeploy:{self.r.region}:{self.r.account}:deploymentgroup:{app}/{group}"
        if not self.authorized(caller, key, "codedeploy:PutLifecycleEventHookExecutionStatus", arn):
            return done(*self.error(400, "AccessDeniedException", f"not authorized on {arn}", "codedeploy"),
                        error="AccessDeniedException")
        if request.get("status") not in ("Succeeded", "Failed"):
            return done(*self.error(400, "InvalidLifecycleEventHookExecutionStatusException",
                                    f"status {request.get('status')}", "codedeploy"),
                        error="InvalidLifecycleEventHookExecutionStatusException")
        with self.lock:
            self.reports.append({k: request.get(k) for k in ("deploymentId", "lifecycleEventHookExecutionId", "status")})
        return done(200, {"Content-Type": "application/x-amz-json-1.1"},
                    json.dumps({"lifecycleEventHookExecutionId": request["lifecycleEventHookExecutionId"]}).encode())
