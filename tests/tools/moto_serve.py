"""moto_server, with DynamoDB requests taken one at a time.

Real DynamoDB transactions are serializable; moto's threaded server checks a
TransactWriteItems' conditions and writes its items without a lock, so two
concurrent transactions on one key can both succeed (the idempotency and
account-hold tests then see two winners). Every other service stays
concurrent. Arguments as moto_server's: -H HOST -p PORT.

With --access-key KEY, the server stands for a partition with its own IAM
(GovCloud, China): like real STS and IAM there, it refuses a request signed
with any other access key (a commercial one) with InvalidClientTokenId, and
accepts only KEY and the keys its own AssumeRole handed out.

Two CloudFormation StackSet behaviours moto lacks are put in (see
`stack_set_instances`): a stack instance keeps one StackId, and a
deployment's `AccountFilterType: INTERSECTION` targets only its accounts.
"""

import argparse
import os
import re
import threading
import uuid

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple


def serialize_dynamodb(app):
    lock = threading.Lock()

    def wrapped(environ, start_response):
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            with lock:
                # Consume the whole response inside the lock.
                chunks = list(app(environ, start_response))
            return chunks
        return app(environ, start_response)

    return wrapped


CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")
ISSUED = re.compile(rb"<AccessKeyId>([^<]+)</AccessKeyId>")


def refusal(start_response):
    body = (
        '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
        "<Error><Type>Sender</Type><Code>InvalidClientTokenId</Code>"
        "<Message>The security token included in the request is invalid.</Message>"
        f"</Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
    ).encode()
    start_response(
        "403 Forbidden",
        [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))],
    )
    return [body]


def partition_keys(app, key):
    allowed = {key}
    lock = threading.Lock()

    def wrapped(environ, start_response):
        if environ.get("PATH_INFO", "").startswith("/moto-api"):
            return app(environ, start_response)
        auth = environ.get("HTTP_AUTHORIZATION", "")
        query = environ.get("QUERY_STRING", "")
        m = CREDENTIAL.search(auth) or re.search(r"X-Amz-Credential=([^%/&]+)", query)
        with lock:
            known = m is not None and m.group(1) in allowed
        if not known:
            return refusal(start_response)
        chunks = list(app(environ, start_response))
        body = b"".join(chunks)
        if b"<AssumeRoleResponse" in body:
            with lock:
                allowed.update(k.decode() for k in ISSUED.findall(body))
        return chunks

    return wrapped


def stack_set_instances():
    """moto names a stack instance's stack anew on every read (a random
    StackId per ListStackInstances); CloudFormation names it once, and the
    instance's custom resources send that StackId. And moto deploys to every
    account of the OUs, ignoring `AccountFilterType: INTERSECTION`, which
    limits a deployment to the accounts it names within them."""
    from moto.cloudformation import models

    to_dict = models.StackInstance.to_dict

    def stable(self):
        d = to_dict(self)
        if not hasattr(self, "stable_stack_id"):
            partition = d["StackId"].split(":")[1]
            self.stable_stack_id = (
                f"arn:{partition}:cloudformation:{self.region_name}:{self.account_id}:"
                f"stack/StackSet-{self.name}-{uuid.uuid4()}/{uuid.uuid4()}"
            )
        d["StackId"] = self.stable_stack_id
        return d

    models.StackInstance.to_dict = stable
    create = models.StackInstances.create_instances

    def intersect(self, accounts, regions, parameters, deployment_targets, permission_model):
        targets = deployment_targets or {}
        if targets.get("AccountFilterType") != "INTERSECTION":
            return create(self, accounts, regions, parameters, deployment_targets, permission_model)
        ous = set(targets.get("OrganizationalUnitIds", []))
        named = set(targets.get("Accounts", []))
        within = [a.id for a in self.org_backend.accounts if a.parent_id in ous and a.id in named]
        return create(self, within, regions, parameters, {"OrganizationalUnitIds": []}, permission_model)

    models.StackInstances.create_instances = intersect


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    parser.add_argument("--access-key", help="refuse requests signed with any other key")
    args = parser.parse_args()
    # moto builds some URLs (SQS queues, presigned links) from it.
    os.environ.setdefault("MOTO_PORT", str(args.port))
    stack_set_instances()
    app = serialize_dynamodb(DomainDispatcherApplication(create_backend_app))
    if args.access_key:
        app = partition_keys(app, args.access_key)
    run_simple(
        args.host,
        args.port,
        app,
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
