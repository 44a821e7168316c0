"""The organization flow, rehearsed for the relay's partition (GovCloud):
the management stack's Create, one member's enroll and link through the
relay intake's function URL, and a sync through the API, each read of
Organizations and CloudFormation made with the partition's own vendor
identity (a secret, as the template's parameter names it) and checked by
moto against the management role's grants.

The rehearsal's one moto stands for both partitions: the GovCloud side
lives in region us-gov-west-1 (moto names its ARNs aws-us-gov there) and
in accounts of its own; the service reaches it through the partition's
endpoint settings (ACCOUNT_CONNECT_*_ENDPOINT_AWS_US_GOV).

What moto cannot run is played here, as org_stand_in.py does for the
tests: the StackSet resource and the custom resources are taken out of
the management template, the StackSet is created through the API as the
management account, and the member role's trust gets the external ID
enroll answered (what Fn::GetAtt of the enroll resource does)."""

import hashlib
import hmac
import json
import time
import uuid

from aws import admin_user, client

PARTITION, REGION = "aws-us-gov", "us-gov-west-1"
VENDOR_ACCOUNT, MGMT_ACCOUNT = "444455556666", "222233334444"
GOV_TOPIC = f"arn:aws-us-gov:sns:{REGION}:{VENDOR_ACCOUNT}:spot-relay"
ASSUME_ONLY = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]})
# Grants of the management template's role that this flow cannot call,
# and why (the rest must each be used, or the flow fails).
NOT_REHEARSED = {
    "organizations:listroots": "read only for an organization targeted at its root (no OU given); this one targets an OU",
}


def prepare(r):
    """Before IAM is enforced: GovCloud's vendor user (AssumeRole only)
    and its key in a partition secret, the organization (one OU, one
    member account) with an administrator in the management account and
    in the member. The stack's parameters that turn GovCloud on."""
    gov = lambda service, account=None: client(r.endpoint, REGION, service, "testing", "testing",  # noqa: E731
                                                account=account)
    iam = gov("iam", VENDOR_ACCOUNT)
    iam.create_user(UserName="govcloud-vendor")
    iam.put_user_policy(UserName="govcloud-vendor", PolicyName="assume", PolicyDocument=ASSUME_ONLY)
    key = iam.create_access_key(UserName="govcloud-vendor")["AccessKey"]
    secret = r.setup_client("secretsmanager").create_secret(
        Name=f"account-connect/partitions/vendor-{PARTITION}",
        SecretString=json.dumps({"accessKeyId": key["AccessKeyId"], "secretAccessKey": key["SecretAccessKey"]}))
    org = gov("organizations", MGMT_ACCOUNT)
    org.create_organization(FeatureSet="ALL")
    root = org.list_roots()["Roots"][0]["Id"]
    ou = org.create_organizational_unit(ParentId=root, Name="Rehearsed")["OrganizationalUnit"]["Id"]
    member = org.create_account(Email="member@rehearsal.example", AccountName="member")["CreateAccountStatus"]["AccountId"]
    org.move_account(AccountId=member, SourceParentId=root, DestinationParentId=ou)
    r.org = {
        "ou": ou, "member": member, "vendor_key": key["AccessKeyId"],
        "mgmt_keys": admin_user(lambda s: gov(s, MGMT_ACCOUNT), "mgmt-admin"),
        "member_keys": admin_user(lambda s: gov(s, member), "member-admin"),
    }
    return {
        "VendorPrincipalAwsUsGov": f"arn:aws-us-gov:iam::{VENDOR_ACCOUNT}:root",
        "CredentialsSecretArnAwsUsGov": secret["ARN"],
        "CallbackTopicArnAwsUsGov": GOV_TOPIC,
    }


def standins(r):
    """The GovCloud endpoints, on the rehearsal's moto."""
    return {f"ACCOUNT_CONNECT_{s}_ENDPOINT_AWS_US_GOV": r.endpoint
            for s in ("STS", "IAM", "ORGANIZATIONS", "CLOUDFORMATION")}


def in_partition(template):
    """The body as CloudFormation in GovCloud reads it: moto resolves
    AWS::Partition to aws in every region."""
    return json.dumps(template).replace("${AWS::Partition}", PARTITION)


def strip_custom(template):
    return dict(template, Resources={k: v for k, v in template["Resources"].items()
                                     if not v["Type"].startswith("Custom::")})


class OrgFlow:
    def __init__(self, flows):
        self.f, self.r, self.svc = flows, flows.r, flows.svc
        self.as_mgmt = lambda s: client(self.r.endpoint, REGION, s, *self.r.org["mgmt_keys"])
        self.as_member = lambda s: client(self.r.endpoint, REGION, s, *self.r.org["member_keys"])

    def relayed(self, request, key):
        """One request as the partition's relay posts it; CloudFormation's answer."""
        fn = next(fn for fn in self.r.functions.values() if fn.url)
        body = json.dumps(request)
        ts = str(int(time.time()))
        sig = hmac.new(self.r.relay_key.encode(), f"{ts}.{body}".encode(), hashlib.sha256).hexdigest()
        _, status, answer, _ = self.svc.function_url(fn.logical, "POST", f"/v1/relay/{PARTITION}", body, {
            "x-spot-relay-timestamp": ts, "x-spot-relay-signature": sig})
        self.f.check(f"relayed {request['ResourceType']} {request['RequestType']} handled", status == 200,
                     f"status {status}: {answer}")
        return self.r.receiver.answer(key, wait_s=30) or {}

    def request(self, key, stack_id, logical, kind, props, request_type="Create"):
        return {"RequestType": request_type, "ServiceToken": GOV_TOPIC, "ResponseURL": self.r.receiver.url(key),
                "StackId": stack_id, "RequestId": str(uuid.uuid4()), "LogicalResourceId": logical,
                "ResourceType": kind, "ResourceProperties": dict(props, ServiceToken=GOV_TOPIC)}

    def run(self):
        began = time.monotonic()
        try:
            self.steps()
        finally:
            self.r.log(f"  organization flow (GovCloud, relayed): {time.monotonic() - began:.1f} s")

    def steps(self):
        start = self.r.record_mark()
        org = self.r.org
        status, o = self.f.api("POST", "/v1/organizations", {
            "accountId": "act-rehearsal1", "partition": PARTITION, "permissions": {"mode": "default"},
            "managementAccountId": MGMT_ACCOUNT, "organizationalUnitIds": [org["ou"]]})
        if not self.f.check("create organization (POST /v1/organizations, GovCloud)", status == 201,
                            f"status {status}: {json.dumps(o)[:400]}"):
            return
        oid, mgmt = o["id"], o["managementConnection"]
        template = o["template"]
        stack_set = template["Resources"]["SpotMemberStackSet"]["Properties"]
        body = strip_custom(dict(template, Resources={k: v for k, v in template["Resources"].items()
                                                      if k != "SpotMemberStackSet"}))
        body["Outputs"].pop("StackSetId", None)
        cfn = self.as_mgmt("cloudformation")
        name = mgmt["cloudFormation"]["stackName"]
        stack_id = cfn.create_stack(StackName=name, TemplateBody=in_partition(body),
                                    Parameters=[{"ParameterKey": "OrganizationalUnitIds", "ParameterValue": org["ou"]}],
                                    Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"])["StackId"]
        cfn.get_waiter("stack_create_complete").wait(StackName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
        stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
        outputs = {x["OutputKey"]: x["OutputValue"] for x in stack.get("Outputs", [])}
        member_role = next(p["ParameterValue"] for p in stack["Parameters"] if p["ParameterKey"] == "MemberRoleName")
        member_body = strip_custom(json.loads(stack_set["TemplateBody"]))
        for st in member_body["Resources"]["Role"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]:
            st["Condition"]["StringEquals"]["sts:ExternalId"] = "enroll-has-not-answered"
        cfn.create_stack_set(StackSetName=stack_set["StackSetName"], TemplateBody=in_partition(member_body),
                             PermissionModel=stack_set["PermissionModel"], AutoDeployment=stack_set["AutoDeployment"],
                             Capabilities=stack_set["Capabilities"],
                             Parameters=[{"ParameterKey": "RoleName", "ParameterValue": member_role}])
        cfn.create_stack_instances(StackSetName=stack_set["StackSetName"], Regions=[REGION],
                                   DeploymentTargets={"OrganizationalUnitIds": [org["ou"]]})
        instance = next(i for i in cfn.list_stack_instances(StackSetName=stack_set["StackSetName"])["Summaries"]
                        if i["Account"] == org["member"])

        # The management stack's custom resource, relayed.
        props = template["Resources"]["SpotConnection"]["Properties"]
        answer = self.relayed(self.request(mgmt["id"], stack_id, "SpotConnection", "Custom::SpotConnection",
                                           dict(props, RoleArn=outputs["RoleArn"])), mgmt["id"])
        self.f.check("management stack's Create answered SUCCESS (relayed)", answer.get("Status") == "SUCCESS",
                     f"{answer}")

        # The member's instance: enroll, its role trusting the answer, link.
        member_t = json.loads(stack_set["TemplateBody"])
        enroll_props = member_t["Resources"]["SpotEnroll"]["Properties"]
        key = f"enroll-{org['member']}"
        enroll = self.relayed(self.request(key, instance["StackId"], "SpotEnroll", "Custom::SpotOrganizationEnroll",
                                           enroll_props), key)
        if not self.f.check("member enroll answered SUCCESS (relayed)", enroll.get("Status") == "SUCCESS",
                            f"{enroll}"):
            return self.grants(start)
        ext = enroll["Data"]["ExternalId"]
        trust = {"Version": "2012-10-17", "Statement": [{
            "Sid": "SpotAssumeRoleWithExternalId", "Effect": "Allow", "Principal": {"AWS": mgmt["principal"]},
            "Action": "sts:AssumeRole", "Condition": {"StringEquals": {"sts:ExternalId": ext}}}]}
        self.as_member("iam").update_assume_role_policy(RoleName=member_role, PolicyDocument=json.dumps(trust))
        role_arn = f"arn:{PARTITION}:iam::{org['member']}:role/{member_role}"
        link_props = dict(member_t["Resources"]["SpotLink"]["Properties"], RoleArn=role_arn)
        key = f"link-{org['member']}"
        link = self.relayed(self.request(key, instance["StackId"], "SpotLink", "Custom::SpotOrganizationLink",
                                         link_props), key)
        self.f.check("member link answered SUCCESS (relayed)", link.get("Status") == "SUCCESS", f"{link}")

        # A sync, through the API, with the GovCloud identity.
        status, synced = self.f.api("POST", f"/v1/organizations/{oid}/sync")
        rec = (synced or {}).get("lastReconciliation") or {}
        row = next((m for m in (synced or {}).get("members", []) if m.get("awsAccountId") == org["member"]), {})
        self.f.check("sync (POST /v1/organizations/{id}/sync): the member connected, no error",
                     status == 200 and not rec.get("error") and row.get("state") == "connected",
                     f"status {status}: {json.dumps(synced)[:600]}")
        self.grants(start, template)

    def grants(self, start, template=None):
        """Every action the management role grants was called by it (or
        is listed in NOT_REHEARSED with why)."""
        if template is None:
            return
        doc = template["Resources"]["OrganizationsRead"]["Properties"]["PolicyDocument"]
        granted = set()
        for st in doc["Statement"]:
            acts = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            granted.update(a.lower() for a in acts)
        end = self.r.record_mark()
        with open(self.r.records, encoding="utf-8") as f:
            lines = [json.loads(x) for i, x in enumerate(f) if start <= i < end and x.strip()]
        # Made by the service (not the customer's administrators playing CloudFormation).
        customer = {self.r.org["mgmt_keys"][0], self.r.org["member_keys"][0]}
        called = {e["action"].lower() for e in lines if e["kind"] == "decision" and e["allowed"]
                  and e["key"] not in customer}
        # The service's calls: its functions', its GovCloud vendor key's,
        # the management role's (the customer's member role reading itself
        # is the verification's business).
        ours = set(self.r.keys) | {self.r.org["vendor_key"]}
        denied = sorted({e["action"] for e in lines if e["kind"] == "decision" and not e["allowed"]
                         and (e["key"] in ours or e["action"].lower() in granted)})
        self.f.check("no call of the organization flow denied", not denied, f"denied: {denied}")
        import fnmatch
        unused = sorted(g for g in granted if g not in NOT_REHEARSED
                        and not any(fnmatch.fnmatch(c, g) for c in called))
        for action, why in NOT_REHEARSED.items():
            self.r.log(f"  management role grant not rehearsed: {action}: {why}")
        self.f.check("every grant of the management role exercised (or listed with why not)", not unused,
                     f"granted, never called: {unused}")
