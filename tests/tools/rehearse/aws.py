"""boto3 clients on the rehearsal's moto, the customer's side of the flows,
and CloudFormation's response bucket (a receiver on loopback)."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
from botocore.config import Config

ADMIN_POLICY = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})


# boto3 makes clients from one default session, which is not thread-safe:
# flows that run threads (the noisy neighbour) make theirs one at a time.
CLIENTS = threading.Lock()


def client(endpoint, region, service, key, secret, token=None, account=None):
    with CLIENTS:
        c = boto3.client(service, endpoint_url=endpoint, region_name=region, aws_access_key_id=key,
                         aws_secret_access_key=secret, aws_session_token=token,
                         config=Config(retries={"max_attempts": 2, "mode": "standard"}))
    if account:
        # moto's way to act in another account (during the setup window only).
        c.meta.events.register("before-sign.*.*", lambda request, **_: request.headers.add_header("x-moto-account-id", account))
    return c


def admin_user(make, name):
    """An IAM user allowed everything, and its key: the identity a side of
    the rehearsal signs with once moto enforces IAM."""
    iam = make("iam")
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="everything", PolicyDocument=ADMIN_POLICY)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


class Customer:
    """The customer's AWS account: its own administrator creates the role
    or the stack and publishes what CloudFormation would."""

    def __init__(self, endpoint, region, account, keys):
        self.account = account
        self.make = lambda service: client(endpoint, region, service, *keys)

    def create_role(self, conn, name):
        iam = self.make("iam")
        role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(conn["trustPolicy"]))["Role"]
        for policy in conn["policies"]:
            created = iam.create_policy(PolicyName=f"{name}-{policy['name']}", PolicyDocument=json.dumps(policy["document"]))
            iam.attach_role_policy(RoleName=name, PolicyArn=created["Policy"]["Arn"])
        return role["Arn"]

    def create_stack(self, template, name):
        """The stack without its custom resource (moto cannot call one): the
        rehearsal publishes the custom resource's request itself."""
        body = dict(template, Resources={k: v for k, v in template["Resources"].items()
                                         if not v["Type"].startswith("Custom::")})
        cfn = self.make("cloudformation")
        stack_id = cfn.create_stack(StackName=name, TemplateBody=json.dumps(body),
                                    Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"])["StackId"]
        cfn.get_waiter("stack_create_complete").wait(StackName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
        outputs = {o["OutputKey"]: o["OutputValue"] for o in cfn.describe_stacks(StackName=name)["Stacks"][0].get("Outputs", [])}
        return stack_id, outputs["RoleArn"]

    def drop_an_action(self, role_arn):
        """A new default version of the role's first managed policy without
        the last action of its first statement: the role lacks one action."""
        iam = self.make("iam")
        name = role_arn.rsplit("/", 1)[-1]
        arn = iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"][0]["PolicyArn"]
        version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
        doc = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
        doc = json.loads(doc) if isinstance(doc, str) else doc
        first = doc["Statement"][0]
        actions = first["Action"] if isinstance(first["Action"], list) else [first["Action"]]
        if len(actions) > 1:
            first["Action"] = actions[:-1]
        else:
            doc["Statement"] = doc["Statement"][1:]
        iam.create_policy_version(PolicyArn=arn, PolicyDocument=json.dumps(doc), SetAsDefault=True)

    def publish(self, topic_arn, request):
        self.make("sns").publish(TopicArn=topic_arn, Message=json.dumps(request),
                                 Subject="AWS CloudFormation custom resource request")


class Receiver:
    """Stands for CloudFormation's response bucket: takes the PUT of each
    custom resource's answer (one path per connection). And for a partner's
    webhook endpoint: records each POST (headers and body) and answers the
    first attempt of each message 500, the next ones 204, so a retry goes
    through the attempt queue. Under /fast/ it answers every POST 204 at
    once; under /hang/ it holds each POST HANG_SECS before its 204 (a slow
    partner: the dispatcher gives up at its 10 s timeout); both recorded
    with the time they came."""

    HANG_SECS = 10
    # A ResponseURL under /slow-response/ takes this long to accept its answer.
    SLOW_RESPONSE_SECS = 2

    def __init__(self):
        self.answers = {}
        self.answered_at = {}  # connection id -> monotonic time of the answer
        self.posts = []  # (headers, body)
        self.timed = []  # (monotonic time, path, body) of /fast/ and /hang/ POSTs
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_PUT(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path.startswith("/slow-response/"):
                    time.sleep(receiver.SLOW_RESPONSE_SECS)
                try:
                    receiver.answers[self.path.rsplit("/", 1)[-1]] = json.loads(body)
                except ValueError:
                    receiver.answers[self.path.rsplit("/", 1)[-1]] = {"unparsable": body.decode("utf-8", "replace")}
                receiver.answered_at[self.path.rsplit("/", 1)[-1]] = time.monotonic()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                if self.path.startswith(("/fast/", "/hang/")):
                    receiver.timed.append((time.monotonic(), self.path, body))
                    if self.path.startswith("/hang/"):
                        time.sleep(receiver.HANG_SECS)
                    try:
                        self.send_response(204)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                    except OSError:
                        pass  # the sender gave up first
                    return
                headers = {k.lower(): v for k, v in self.headers.items()}
                first = not any(h.get("webhook-id") == headers.get("webhook-id") for h, _ in receiver.posts)
                receiver.posts.append((headers, body))
                self.send_response(500 if first else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, cid, slow=False):
        where = "slow-response" if slow else "cloudformation-response"
        return f"http://127.0.0.1:{self.server.server_address[1]}/{where}/{cid}"

    def authority(self):
        return f"127.0.0.1:{self.server.server_address[1]}"

    def webhook_url(self, kind="webhook"):
        """The endpoint: "webhook" (refuses each first attempt), "fast/<name>" or "hang/<name>"."""
        return f"http://{self.authority()}/{kind}"

    def answer(self, cid, wait_s=5):
        end = time.monotonic() + wait_s
        while cid not in self.answers and time.monotonic() < end:
            time.sleep(0.05)
        return self.answers.get(cid)
