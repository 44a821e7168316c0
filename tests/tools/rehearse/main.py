"""The SAM stack rehearsed on one machine (scripts/rehearse runs this).

    python main.py --template template.yaml --bin-dir target/debug --work target/rehearse

Translates the template, creates its resources in a moto of its own, starts
every function's binary as Lambda would (its environment, its role's
credentials, a Runtime API), ends moto's unauthenticated window, drives
the flows through the events the template wires and prints, per function,
its init time, its calls, its role's unused grants and any AccessDenied.
Exit 0 only when every flow ends as documented and no call of a function
was denied; 1 otherwise; 2 when the rehearsal itself cannot start."""

import argparse
import json
import os
import secrets
import string
import subprocess
import sys
import time
import urllib.request

import cfn
import deploy_standin
import flows
import org_flow
import report
import wiring
from aws import Customer, Receiver, admin_user, client
from lambda_service import LambdaService
from stack import STOOD_IN, Stack

ACCOUNT, CUSTOMER_ACCOUNT, REGION, STACK_NAME = "123456789012", "111122223333", "us-east-1", "account-connect"
# The noisy neighbour's tenants' AWS accounts (flows_noisy.py).
TENANT_ACCOUNTS = {"a": "444455556666", "b": "777788889999"}
RELAY_PARTITION = "aws-us-gov"
SWEEP_AFTER_SECS = 2


def parameters(relay_secret_arn):
    """The stack's parameters for the rehearsal: the required ones, the
    vendor principal of this account (the customer's role trusts it), a
    relay key (so HasRelay turns the relay intake on), short IAM
    propagation waits, so a denied AssumeRole fails in seconds (the
    callback's 8 s: a Create for a missing role holds its slot that long in
    the noisy neighbour's flow), a short sweeper wait, so a lost message is
    overdue in seconds, and small concurrency bounds, so a flood of a few
    events reaches them: the callback's 3 slots, of which a tenant holds 1
    and the deferred Creates' queue drives 2, the
    dispatcher's 3, of which the attempt queue drives 2 (the least each
    parameter allows)."""
    return {
        "JwtIssuer": "https://issuer.rehearsal.example", "JwtAudience": "account-connect",
        "ConsoleOrigin": "https://console.rehearsal.example",
        "VendorPrincipalAws": f"arn:aws:iam::{ACCOUNT}:root",
        "RelayKeySecretArnAwsUsGov": relay_secret_arn,
        "PropagationBudgetSecs": "3", "CallbackPropagationSecs": "8",
        "SweepAfterSecs": str(SWEEP_AFTER_SECS),
        "CallbackReservedConcurrency": "3", "CallbackTenantShare": "1", "CallbackQueueMaxConcurrency": "2",
        "DispatcherReservedConcurrency": "3", "WebhookAttemptMaxConcurrency": "2",
        "WebhookTenantShare": "1",
    }


class Rehearsal:
    def __init__(self, args):
        self.args = args
        self.work = os.path.abspath(args.work)
        os.makedirs(self.work, exist_ok=True)
        self.account, self.region = ACCOUNT, REGION
        self.relay_partition = RELAY_PARTITION
        self.records = os.path.join(self.work, "moto-calls.jsonl")
        self.taps = {}
        self.keys = {}  # access key -> function logical id
        self.secrets = {}  # access key -> its credentials (the deploy stand-in checks signatures)
        self.rolled_back = False  # the pre-traffic hook reported Failed (deploy_flow.py)
        # Denials a flow stages (an outage it rehearses): (functions,
        # action, first and last line of the record), reported apart.
        self.staged = []
        self.sweep_after_secs = SWEEP_AFTER_SECS
        self.verbose = args.verbose

    def log(self, line):
        if self.verbose or not line.startswith("    "):
            print(line, flush=True)

    # --- moto -----------------------------------------------------------------

    def start_moto(self):
        for f in (self.records, os.path.join(self.work, "moto.port")):
            if os.path.exists(f):
                os.remove(f)
        port_file = os.path.join(self.work, "moto.port")
        env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="1000000")
        for k in [k for k in env if k.startswith("AWS_")]:
            del env[k]
        self.moto = subprocess.Popen([sys.executable, os.path.join(os.path.dirname(__file__), "moto_iam.py"),
                                      "--port-file", port_file, "--record", self.records],
                                     env=env, stdout=open(os.path.join(self.work, "moto.log"), "wb"),
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        end = time.monotonic() + 30
        while time.monotonic() < end:
            if os.path.exists(port_file):
                self.endpoint = f"http://127.0.0.1:{open(port_file).read().strip()}"
                try:
                    urllib.request.urlopen(self.endpoint + "/moto-api/", timeout=2)
                    return
                except OSError:
                    pass
            if self.moto.poll() is not None:
                break
            time.sleep(0.1)
        raise SystemExit(f"moto did not start (log: {self.work}/moto.log)")

    def setup_client(self, service, account=None):
        return client(self.endpoint, REGION, service, "testing", "testing", account=account)

    def admin(self, service):
        return client(self.endpoint, REGION, service, *self.admin_keys)

    def record_mark(self):
        """How many lines moto's record holds now (a flow marks a window)."""
        with open(self.records, encoding="utf-8") as f:
            return sum(1 for _ in f)

    def denied_in(self, start, end, function, action):
        """IAM denials of `action` for the function's role between two marks."""
        with open(self.records, encoding="utf-8") as f:
            lines = [json.loads(x) for i, x in enumerate(f) if start <= i < end and x.strip()]
        return [e for e in lines if e["kind"] == "decision" and not e["allowed"] and e["action"] == action
                and self.keys.get(e["key"]) == function]

    def enforce(self):
        urllib.request.urlopen(urllib.request.Request(self.endpoint + "/rehearsal/enforce", method="POST"), timeout=5)
        try:
            self.setup_client("iam").list_users()
        except Exception as e:  # noqa: BLE001 - any refusal will do; say which
            self.log(f"moto enforces IAM from here on: a request signed with an unknown key gets {type(e).__name__}: "
                     f"{getattr(e, 'response', {}).get('Error', {}).get('Code')}")
            return
        raise SystemExit("moto still answers an unknown key after the setup window: IAM is not enforced")

    # --- the stack --------------------------------------------------------------

    def deploy(self):
        self.admin_keys = admin_user(self.setup_client, "rehearsal-admin")
        customer_keys = admin_user(lambda s: self.setup_client(s, CUSTOMER_ACCOUNT), "customer-admin")
        self.customer = Customer(self.endpoint, REGION, CUSTOMER_ACCOUNT, customer_keys)
        self.tenants = {}
        for name, account in TENANT_ACCOUNTS.items():
            keys = admin_user(lambda s, a=account: self.setup_client(s, a), f"customer-admin-{name}")
            self.tenants[name] = Customer(self.endpoint, REGION, account, keys)
        # The operator's partition secret (a parameter, made before the stack).
        self.relay_key = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(48))
        relay_arn = self.setup_client("secretsmanager").create_secret(
            Name=f"account-connect/partitions/relay-{RELAY_PARTITION}", SecretString=self.relay_key)["ARN"]
        params = {**parameters(relay_arn), **org_flow.prepare(self)}
        params.update(dict(p.split("=", 1) for p in self.args.parameter))
        self.template = cfn.translate(self.args.template, params, REGION)
        self.resolver = cfn.Resolver(self.template, params, ACCOUNT, REGION, STACK_NAME)
        aws = {s: self.setup_client(s) for s in ("iam", "dynamodb", "sqs", "sns", "s3", "secretsmanager", "logs",
                                                   "cloudwatch", "kms")}
        stack = Stack(self.resolver, aws, ACCOUNT, REGION)
        stack.create()
        self.functions = wiring.functions(self.template, self.resolver)
        self.log(f"translated {self.args.template}: {len(self.template['Resources'])} resources")
        kinds = {}
        for logical, kind in stack.created.items():
            kinds.setdefault(kind, []).append(logical)
        self.log("created in moto: " + "; ".join(f"{k} x{len(v)}" for k, v in sorted(kinds.items())))
        stood = {}
        for logical, kind in stack.stood_in.items():
            stood.setdefault(kind, []).append(logical)
        self.log("moto cannot create (or run) these; what stands in:")
        for kind, logicals in sorted(stood.items()):
            self.log(f"  {kind} x{len(logicals)}: {STOOD_IN.get(kind, 'nothing (not rehearsed)')}")
        for what in stack.left_out:
            self.log(f"  left out: {what}")
        self.stack = stack
        self.subscribe_taps()
        self.observe_bus()

    def subscribe_taps(self):
        sqs, sns = self.setup_client("sqs"), self.setup_client("sns")
        for topic in {t for fn in self.functions.values() for t in fn.topics}:
            url = sqs.create_queue(QueueName=f"rehearsal-tap-{topic}")["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            sub = sns.subscribe(TopicArn=self.resolver.physical[topic]["Ref"], Protocol="sqs", Endpoint=arn)
            self.taps[topic] = {"url": url, "subscription": sub["SubscriptionArn"]}

    def observe_bus(self):
        """A queue that sees every event on the dispatcher's bus, to check
        that the events arrived."""
        sqs, ev = self.setup_client("sqs"), self.setup_client("events")
        self.bus_queue = sqs.create_queue(QueueName="rehearsal-bus-observer")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=self.bus_queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        for fn in self.functions.values():
            bus = self.resolver.value(fn.environment).get("ACCOUNT_CONNECT_EVENT_BUS")
            if bus:
                ev.put_rule(Name="rehearsal-observer", EventBusName=bus, EventPattern=json.dumps({"source": [{"prefix": ""}]}))
                ev.put_targets(Rule="rehearsal-observer", EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])

    def bus_events(self):
        sqs, got = self.admin("sqs"), []
        while True:
            batch = sqs.receive_message(QueueUrl=self.bus_queue, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
            if not batch:
                return got
            got += batch
            for m in batch:
                sqs.delete_message(QueueUrl=self.bus_queue, ReceiptHandle=m["ReceiptHandle"])

    def queue_urls(self):
        return {p["QueueUrl"] for p in self.resolver.physical.values() if "QueueUrl" in p}

    def queue_url(self, arn):
        for p in self.resolver.physical.values():
            if p.get("Arn") == arn and "QueueUrl" in p:
                return p["QueueUrl"]
        raise AssertionError(f"no queue {arn}")

    def function_env(self, fn):
        """The function's Environment as CloudFormation would hand it to
        Lambda: references resolved, dynamic references read from moto's
        Secrets Manager."""
        sm = self.setup_client("secretsmanager")
        return {k: cfn.resolve_dynamic(str(v), sm) for k, v in self.resolver.value(fn.environment).items()}

    def role_credentials(self, fn):
        arn = self.resolver.physical[fn.role]["Arn"]
        creds = self.setup_client("sts").assume_role(RoleArn=arn, RoleSessionName=fn.logical[:64])["Credentials"]
        self.keys[creds["AccessKeyId"]] = fn.logical
        self.secrets[creds["AccessKeyId"]] = creds
        return creds


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--template", default="template.yaml")
    p.add_argument("--bin-dir", default="target/debug")
    p.add_argument("--work", default="target/rehearse")
    p.add_argument("--verbose", action="store_true", help="print every invocation's outcome")
    p.add_argument("--parameter", action="append", default=[], metavar="NAME=VALUE",
                   help="a template parameter over the rehearsal's own (a mutation: CallbackTenantShare=0)")
    p.add_argument("--flows", choices=["all", "core", "noisy"], default="all",
                   help="core: the product's flows; noisy: the vendor account, the bounds and the noisy neighbour")
    args = p.parse_args()
    r = Rehearsal(args)
    r.start_moto()
    svc = LambdaService(r)
    # Lambda's Invoke and CodeDeploy's hook status, for the pre-traffic hook.
    r.deploy_standin = deploy_standin.StandIn(r, svc)
    try:
        r.deploy()
        r.receiver = Receiver()
        prepared = []
        for fn in r.functions.values():
            binary = os.path.abspath(os.path.join(args.bin_dir, fn.binary))
            if not os.access(binary, os.X_OK):
                raise SystemExit(f"{fn.logical}: {binary} is not built")
            prepared.append((fn, binary, r.function_env(fn), r.role_credentials(fn)))
        r.enforce()
        r.log("--- functions (each alone, in turn: exec to its first next-invocation request)")
        standins = {
            # The functions reach moto through the SDK's own endpoint setting.
            "AWS_ENDPOINT_URL": r.endpoint,
            # CloudFormation's response bucket is the rehearsal's receiver on loopback.
            "ACCOUNT_CONNECT_CALLBACK_RESPONSE_HOSTS": "127.0.0.1",
            # So is the partner's webhook endpoint (plain http, on loopback).
            "ACCOUNT_CONNECT_WEBHOOK_ALLOW_HOSTS": r.receiver.authority(),
            **org_flow.standins(r),
        }
        for fn, binary, env, creds in prepared:
            svc.start(fn, binary, env, creds, r.deploy_standin.environment(fn, standins))
            ms = svc.init_ms[fn.logical]
            init = f"init {ms:.1f} ms" if ms is not None else "never asked for an event"
            r.log(f"  {fn.logical} ({fn.binary}): {init}; events: {', '.join(fn.events()) or 'none'}")
        bare = os.path.abspath(os.path.join(args.bin_dir, "examples", "bare_lambda"))
        baseline = svc.baseline(bare) if os.access(bare, os.X_OK) else (None, None)
        if baseline[0] is not None:
            r.log(f"  bare lambda_runtime (examples/bare_lambda): init {baseline[0]:.1f} ms; one event: {baseline[1].kind}")
        run = flows.Flows(r, svc)
        run.run(args.flows)
    finally:
        svc.stop()
        r.deploy_standin.stop()
        r.moto.terminate()
        r.moto.wait()
    return report.print_report(r, svc, run, baseline)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except SystemExit as e:
        if isinstance(e.code, str):
            print(f"rehearse: {e.code}", file=sys.stderr)
            sys.exit(2)
        raise
