"""moto_server for the rehearsal: IAM enforced, every call recorded.

    python moto_iam.py --port-file FILE --record FILE

moto enforces IAM once its first INITIAL_NO_AUTH_ACTION_COUNT requests are
spent (set here to a large number, before moto is imported); the
rehearsal creates the stack in that window, then POSTs /rehearsal/enforce,
which spends the rest of it, so every later request is checked against
the policies of the identity that signed it.

What this adds to moto's own check (moto_serve.py's DynamoDB lock aside):
- the resource of DynamoDB, Secrets Manager, EventBridge and KMS calls, which
  moto checks against "*" only (so a statement scoped to a table would
  never match): the table or index, the secret, the bus, the key;
- SQS's batch operations are authorized by the single message's action
  (sqs:SendMessage for SendMessageBatch), as in AWS;
- the StackSet of CloudFormation's StackSet operations (ListStackInstances);
- TransactWriteItems is authorized as AWS does, per item (PutItem,
  UpdateItem, DeleteItem, ConditionCheckItem on its table): IAM has no
  dynamodb:TransactWriteItems action;
- iam:SimulatePrincipalPolicy, which moto lacks, answered in IAM's wire
  format by iam_simulate.py (every action allowed);
- sts:AssumeRole of a role that does not exist is refused (AccessDenied,
  as AWS answers it), where moto hands out credentials for any ARN: a
  Create for a role the customer never made waits out its propagation
  budget as in AWS. Recorded with "missingRole": the customer's side, not
  a grant the function lacks.
Each request is written to --record as one JSON line: the access key
that signed it, service:operation, status and error code; each IAM
decision as another: key, action, resource, allowed or denied.
"""

import argparse
import io
import json
import os
import re
import sys
import threading

os.environ.setdefault("INITIAL_NO_AUTH_ACTION_COUNT", "1000000")
# AWS managed policies (the functions' roles attach Lambda's) exist in moto only when loaded.
os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import iam_simulate  # noqa: E402
import moto_serve  # noqa: E402
from moto import settings  # noqa: E402
from moto.core.authorization import ActionAuthenticatorMixin  # noqa: E402
from moto.iam import access_control  # noqa: E402
from moto.iam.models import iam_backends  # noqa: E402
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app  # noqa: E402
from urllib.parse import parse_qs, urlparse  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

LOCK = threading.Lock()
# Per request thread: whether an identity policy denied the request.
REQUEST = threading.local()
RECORD = None
CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/[^/]+/([^/]+)/([^/]+)/")
ITEM_ACTIONS = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "ConditionCheck": "ConditionCheckItem"}


def record(entry):
    with LOCK:
        RECORD.write(json.dumps(entry) + "\n")
        RECORD.flush()


# --- every IAM decision moto makes, recorded -------------------------------

_check = access_control.IAMRequestBase.check_action_permitted


def check_recorded(self, resource):
    key = self._get_string_between("Credential=", "/", self._headers.get("Authorization", ""))
    try:
        _check(self, resource)
    except Exception:
        record({"kind": "decision", "key": key, "action": self._action, "resource": resource, "allowed": False})
        REQUEST.denied = True
        raise
    record({"kind": "decision", "key": key, "action": self._action, "resource": resource, "allowed": True})


access_control.IAMRequestBase.check_action_permitted = check_recorded


# --- the resources moto leaves at "*" --------------------------------------

def _arn(self, service, rest):
    return f"arn:aws:{service}:{self.region}:{self.current_account}:{rest}"


def dynamodb_checks(self, body, _resource):
    target = self.headers.get("X-Amz-Target", "").split(".")[-1]
    table = lambda name: name if name.startswith("arn:") else _arn(self, "dynamodb", f"table/{name}")  # noqa: E731
    if target == "TransactWriteItems":
        out = []
        for item in body.get("TransactItems", []):
            for kind, op in item.items():
                out.append((ITEM_ACTIONS.get(kind, kind), table(op["TableName"])))
        return out
    if target == "TransactGetItems":
        return [("GetItem", table(i["Get"]["TableName"])) for i in body.get("TransactItems", [])]
    if target in ("BatchGetItem", "BatchWriteItem"):
        return [(target, table(name)) for name in body.get("RequestItems", {})]
    name = body.get("TableName")
    if not name:
        return [(target, "*")]
    arn = table(name)
    if body.get("IndexName"):
        arn += "/index/" + body["IndexName"]
    return [(target, arn)]


def secretsmanager_checks(self, body, _resource):
    from moto.secretsmanager.models import secretsmanager_backends
    target = self.headers.get("X-Amz-Target", "").split(".")[-1]
    sid = body.get("SecretId")
    if not sid:
        return [(target, "*")]
    if sid.startswith("arn:"):
        return [(target, sid)]
    secrets = secretsmanager_backends[self.current_account][self.region].secrets
    found = [s.arn for s in list(secrets.values()) if s.name == sid]
    return [(target, found[0] if found else "*")]


def events_checks(self, body, _resource):
    target = self.headers.get("X-Amz-Target", "").split(".")[-1]
    if target == "PutEvents":
        buses = {e.get("EventBusName") or "default" for e in body.get("Entries", [])} or {"default"}
        return [(target, b if b.startswith("arn:") else _arn(self, "events", f"event-bus/{b}")) for b in sorted(buses)]
    return [(target, "*")]


def kms_checks(self, body, _resource):
    """The key a data key is made with (its KeyId, resolved) or opened with
    (the one moto's ciphertext blob names)."""
    import base64
    from moto.kms.models import kms_backends
    from moto.kms.utils import _deserialize_ciphertext_blob
    target = self.headers.get("X-Amz-Target", "").split(".")[-1]
    key_id = body.get("KeyId")
    if not key_id and body.get("CiphertextBlob"):
        try:
            key_id = _deserialize_ciphertext_blob(base64.b64decode(body["CiphertextBlob"])).key_id
        except Exception:  # noqa: BLE001 - not moto's blob: checked against "*"
            key_id = None
    if not key_id:
        return [(target, "*")]
    backend = kms_backends[self.current_account][self.region]
    try:
        return [(target, backend.describe_key(key_id).arn)]
    except Exception:  # noqa: BLE001 - an unknown key: moto answers NotFound itself
        return [(target, "*")]


# SQS's batch operations are authorized by the single message's action
# (IAM has no sqs:SendMessageBatch); moto checks the operation's name.
SQS_BATCHES = {"SendMessageBatch": "SendMessage", "DeleteMessageBatch": "DeleteMessage",
               "ChangeMessageVisibilityBatch": "ChangeMessageVisibility"}


def sqs_checks(self, body, resource):
    action = self._get_action()
    return [(SQS_BATCHES.get(action, action), resource)]


def cloudformation_checks(self, _body, resource):
    """A StackSet's operations on the StackSet's ARN (moto checks "*")."""
    from moto.cloudformation.models import cloudformation_backends
    action = self._get_action()
    name = self._get_param("StackSetName")
    if not name:
        return [(action, resource)]
    sets = cloudformation_backends[self.current_account][self.region].stacksets.values()
    found = [s.arn for s in list(sets) if s.name == name or s.id == name]
    return [(action, found[0] if found else resource)]


CHECKS = {"dynamodb": dynamodb_checks, "secretsmanager": secretsmanager_checks, "events": events_checks,
          "sqs": sqs_checks, "kms": kms_checks, "cloudformation": cloudformation_checks}
_authorize = ActionAuthenticatorMixin._authenticate_and_authorize_normal_action


def authorize(self, resource="*"):
    m = CREDENTIAL.search(self.headers.get("Authorization", ""))
    checks = CHECKS.get(m.group(3)) if m else None
    enforced = ActionAuthenticatorMixin.request_count >= settings.INITIAL_NO_AUTH_ACTION_COUNT
    if checks is None or not enforced:
        return _authorize(self, resource)
    try:
        body = json.loads(self.raw_body or b"{}")
    except ValueError:
        body = {}  # SQS's query protocol
    path = self.raw_path + ("?" + urlparse(self.uri).query if urlparse(self.uri).query else "")
    for action, arn in checks(self, body, resource):
        request = access_control.IAMRequest(
            account_id=self.current_account, method=self.method, path=path, data=self.data,
            body=self.raw_body, headers=self.headers, action=action)
        request.check_signature()
        request.check_action_permitted(arn)


ActionAuthenticatorMixin._authenticate_and_authorize_normal_action = authorize


# --- the requests ----------------------------------------------------------

S3_SUBRESOURCES = {"policy": "BucketPolicy", "encryption": "BucketEncryption", "lifecycle": "BucketLifecycleConfiguration",
                    "publicAccessBlock": "PublicAccessBlock", "tagging": "BucketTagging"}


def s3_operation(environ):
    """The S3 action of a REST request: the SDKs' x-id when they send it,
    else from the method, the path and the subresource."""
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    if query.get("x-id"):
        return query["x-id"][0]
    method, parts = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "/").strip("/").split("/", 1)
    verb = {"PUT": "Put", "GET": "Get", "DELETE": "Delete", "HEAD": "Head"}.get(method, method)
    if len(parts) == 2 and parts[1]:
        return verb + "Object"
    sub = next((S3_SUBRESOURCES[k] for k in query if k in S3_SUBRESOURCES), None)
    if sub:
        return verb + sub
    return {"PUT": "CreateBucket", "GET": "ListObjects", "DELETE": "DeleteBucket", "HEAD": "HeadBucket"}.get(method, method)


def operation(environ, body, service):
    if service == "s3":
        return s3_operation(environ)
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return target.split(".")[-1]
    form = parse_qs(environ.get("QUERY_STRING", "")) or parse_qs(body.decode("utf-8", "replace"))
    if form.get("Action"):
        return form["Action"][0]
    return environ.get("REQUEST_METHOD", "") + " " + environ.get("PATH_INFO", "")


def error_code(chunks):
    text = b"".join(chunks)[:4096].decode("utf-8", "replace")
    m = re.search(r"<Code>([^<]+)</Code>", text) or re.search(r'"__type"\s*:\s*"(?:[^"#]*#)?([^"]+)"', text)
    return m.group(1) if m else None


def access_denied(environ, chunks, service):
    """moto's AccessDenied in the wire format of the service's protocol
    (moto answers every service with one XML shape the SDKs cannot read):
    JSON for the JSON protocols, IAM's and STS's query error otherwise."""
    text = b"".join(chunks).decode("utf-8", "replace")
    if "<Code>AccessDenied</Code>" not in text:
        return None
    m = re.search(r"<Message>([^<]*)</Message>", text)
    message = m.group(1) if m else "Access denied"
    if environ.get("HTTP_X_AMZ_TARGET"):
        kind = "AccessDenied" if service == "sqs" else "AccessDeniedException"
        body = json.dumps({"__type": kind, "message": message}).encode()
        headers = [("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-query-error", "AccessDenied;Sender")]
    elif service in ("s3",):
        return None
    else:
        body = (f'<ErrorResponse xmlns="https://{service}.amazonaws.com/doc/"><Error><Type>Sender</Type>'
                f"<Code>AccessDenied</Code><Message>{message}</Message></Error>"
                "<RequestId>00000000-0000-4000-8000-000000000000</RequestId></ErrorResponse>").encode()
        headers = [("Content-Type", "text/xml")]
    return headers + [("Content-Length", str(len(body)))], body


def missing_role(body):
    """The RoleArn of an AssumeRole (commercial partition) when no such role exists."""
    arn = parse_qs(body.decode("utf-8", "replace")).get("RoleArn", [""])[0]
    parts = arn.split(":", 5)
    if len(parts) < 6 or parts[1] != "aws" or not parts[5].startswith("role/"):
        return None
    try:
        iam_backends[parts[4]]["global"].get_role_by_arn(arn)
    except Exception:  # noqa: BLE001 - moto's not-found error
        return arn
    return None


def recording(app):
    def wrapped(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == "/rehearsal/enforce":
            # The setup window ends: moto checks every request from now on.
            ActionAuthenticatorMixin.request_count = settings.INITIAL_NO_AUTH_ACTION_COUNT
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"enforced\n"]
        if path.startswith("/moto-api"):
            return app(environ, start_response)
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        m = CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
        key, service = (m.group(1), m.group(3)) if m else ("unsigned", "unknown")
        action = operation(environ, body, service)
        status = {}
        REQUEST.denied = False

        def start(s, headers, exc_info=None):
            # Held until the body is known: an AccessDenied is rewritten.
            status["code"], status["line"], status["headers"] = int(s.split()[0]), s, headers
            return lambda data: None

        if service == "iam" and iam_simulate.is_simulate(body):
            code, xml = iam_simulate.answer(body)
            start(f"{code} {'OK' if code == 200 else 'Bad Request'}", [("Content-Type", "text/xml")])
            chunks = [xml]
        else:
            chunks = list(app(environ, start))
        missing = None
        if service == "sts" and action == "AssumeRole" and status["code"] == 200:
            missing = missing_role(body)
        if missing:
            xml = ('<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
                   f"<Code>AccessDenied</Code><Message>User: {key} is not authorized to perform: sts:AssumeRole "
                   f"on resource: {missing}</Message></Error>"
                   "<RequestId>00000000-0000-4000-8000-000000000000</RequestId></ErrorResponse>").encode()
            status["code"], status["line"] = 403, "403 Forbidden"
            status["headers"], chunks = [("Content-Type", "text/xml"), ("Content-Length", str(len(xml)))], [xml]
        rewritten = access_denied(environ, chunks, service) if status["code"] == 403 and not missing else None
        if rewritten:
            status["headers"], chunks = rewritten[0], [rewritten[1]]
        start_response(status["line"], status["headers"])
        entry = {"kind": "call", "key": key, "call": f"{service}:{action}", "status": status.get("code")}
        if status.get("code", 200) >= 400:
            entry["error"] = error_code(chunks)
            entry["deniedByIdentity"] = REQUEST.denied
        if missing:
            entry["missingRole"] = missing
        if action == "AssumeRole" and status.get("code") == 200:
            issued = re.search(rb"<AccessKeyId>([^<]+)</AccessKeyId>", b"".join(chunks))
            form = parse_qs(body.decode())
            entry["issued"] = issued.group(1).decode() if issued else None
            entry["roleArn"] = form.get("RoleArn", [""])[0]
        record(entry)
        return chunks

    return wrapped


def main():
    global RECORD
    p = argparse.ArgumentParser()
    p.add_argument("--port-file", required=True)
    p.add_argument("--record", required=True)
    args = p.parse_args()
    RECORD = open(args.record, "a", encoding="utf-8")
    # StackSet instances as CloudFormation names them (the organization flow).
    moto_serve.stack_set_instances()
    app = recording(moto_serve.serialize_dynamodb(DomainDispatcherApplication(create_backend_app)))
    # Port 0: the OS picks a free one, no race with another process.
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler)
    # moto builds some URLs (SQS queues, presigned links) from it.
    os.environ["MOTO_PORT"] = str(server.server_port)
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(server.server_port))
    os.replace(args.port_file + ".tmp", args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
