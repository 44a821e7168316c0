#!/usr/bin/env python3
"""An AWS Organization on the AWS stand-in (moto, at AWS_ENDPOINT_URL), as
its management account sees it: the organization and its OUs, the
management stack, the StackSet and its instances, accounts joining,
leaving, moving and closing. Every call acts as ACCOUNT through moto's
x-moto-account-id header. Prints JSON.

usage:
  org_stand_in.py org MGMT                      two OUs with two accounts each
  org_stand_in.py deploy MGMT TEMPLATE NAME OUS  the management stack, and its StackSet through the API
  org_stand_in.py instances MGMT STACKSET OUS REGION
  org_stand_in.py instance MGMT STACKSET ACCOUNT REGION [fresh|no-role]
                                                 the account's instance (made if none; fresh: made
                                                 again), its StackId; no-role: its role then deleted
  org_stand_in.py add-account MGMT OU NAME
  org_stand_in.py remove-account MGMT ACCOUNT
  org_stand_in.py close-account MGMT ACCOUNT
  org_stand_in.py move-account MGMT ACCOUNT FROM TO
  org_stand_in.py trust ACCOUNT ROLE_NAME PRINCIPAL EXTERNAL_ID
  org_stand_in.py role ACCOUNT ROLE_NAME          whether the role exists
  org_stand_in.py detach ACCOUNT ROLE_NAME        detaches the role's managed policies (drift)
  org_stand_in.py stack-set MGMT STACKSET         the StackSet as CloudFormation describes it
  org_stand_in.py guardrails MGMT DENY_EC2_OU REGION_LOCK_OU ALLOW_LIST_ACCOUNT
                                                 SCPs: ec2:* denied at one OU, every region but
                                                 eu-west-1 denied at another (global services
                                                 aside), the account's FullAWSAccess replaced by an
                                                 allow-list of ec2:* and s3:*; an RCP at the root
                                                 denying sts:AssumeRole to principals outside the
                                                 organization. Their ids by name, and the org's id

moto's CloudFormation knows neither `AWS::CloudFormation::StackSet` nor SNS
custom resources: `deploy` drops both from the template and creates the
StackSet with the resource's own properties; the caller plays the custom
resources' requests. The members' role trusts `Fn::GetAtt` of the enroll
resource, which only a real custom resource answers: the instance gets a
placeholder, and `trust` puts in the external ID enroll answered, as
CloudFormation would.
"""
import json
import sys

import boto3


def client(service: str, account: str):
    c = boto3.client(service)
    c.meta.events.register("before-sign.*.*", lambda request, **_: request.headers.__setitem__("x-moto-account-id", account))
    return c


def create_account(org, root: str, ou: str, name: str) -> str:
    status = org.create_account(Email=f"{name}@example.com", AccountName=name)["CreateAccountStatus"]
    account = status["AccountId"]
    org.move_account(AccountId=account, SourceParentId=root, DestinationParentId=ou)
    return account


def root_of(org) -> str:
    return org.list_roots()["Roots"][0]["Id"]


def strip_custom(template: dict) -> dict:
    template["Resources"] = {k: v for k, v in template["Resources"].items() if not v["Type"].startswith("Custom::")}
    return template


def member_body(body: str) -> str:
    t = strip_custom(json.loads(body))
    trust = t["Resources"]["Role"]["Properties"]["AssumeRolePolicyDocument"]
    for st in trust["Statement"]:
        st["Condition"]["StringEquals"]["sts:ExternalId"] = "enroll-has-not-answered"
    return json.dumps(t)


def delete_role(account: str, role: str) -> None:
    iam = client("iam", account)
    try:
        for p in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]:
            iam.detach_role_policy(RoleName=role, PolicyArn=p["PolicyArn"])
        iam.delete_role(RoleName=role)
    except iam.exceptions.NoSuchEntityException:
        pass


def instance_of(cfn, stack_set: str, account: str, region: str):
    for i in cfn.list_stack_instances(StackSetName=stack_set, StackInstanceAccount=account)["Summaries"]:
        if i["Account"] == account and i["Region"] == region:
            return i
    return None


def main() -> int:
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "org":
        (mgmt,) = args
        org = client("organizations", mgmt)
        org.create_organization(FeatureSet="ALL")
        root = root_of(org)
        ous, accounts = [], {}
        for name in ("Engineering", "Finance"):
            ou = org.create_organizational_unit(ParentId=root, Name=name)["OrganizationalUnit"]["Id"]
            ous.append(ou)
            accounts[ou] = [create_account(org, root, ou, f"{name.lower()}-{i}-{mgmt}") for i in range(2)]
        print(json.dumps({"root": root, "ous": ous, "accounts": accounts}))
    elif cmd == "deploy":
        mgmt, template_file, name, ous = args
        with open(template_file, encoding="utf-8") as f:
            template = json.load(f)
        stack_set = template["Resources"].pop("SpotMemberStackSet")["Properties"]
        template["Outputs"].pop("StackSetId", None)
        cfn = client("cloudformation", mgmt)
        params = [{"ParameterKey": "OrganizationalUnitIds", "ParameterValue": ous}]
        cfn.create_stack(StackName=name, TemplateBody=json.dumps(strip_custom(template)), Parameters=params,
                         Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"])
        cfn.get_waiter("stack_create_complete").wait(StackName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
        stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        member_role = next(p for p in stack["Parameters"] if p["ParameterKey"] == "MemberRoleName")["ParameterValue"]
        cfn.create_stack_set(
            StackSetName=stack_set["StackSetName"],
            Description=stack_set["Description"],
            TemplateBody=member_body(stack_set["TemplateBody"]),
            PermissionModel=stack_set["PermissionModel"],
            AutoDeployment=stack_set["AutoDeployment"],
            Capabilities=stack_set["Capabilities"],
            Parameters=[{"ParameterKey": "RoleName", "ParameterValue": member_role}],
        )
        cfn.create_stack_instances(
            StackSetName=stack_set["StackSetName"],
            DeploymentTargets={"OrganizationalUnitIds": ous.split(",")},
            Regions=[boto3.session.Session().region_name],
            OperationPreferences=stack_set["OperationPreferences"],
        )
        instances = cfn.list_stack_instances(StackSetName=stack_set["StackSetName"])["Summaries"]
        print(json.dumps({"status": stack["StackStatus"], "stackId": stack["StackId"], "roleArn": outputs["RoleArn"],
                          "stackSetName": stack_set["StackSetName"], "memberRoleName": member_role,
                          "instances": sorted({i["Account"] for i in instances})}))
    elif cmd == "instances":
        mgmt, stack_set, ous, region = args
        cfn = client("cloudformation", mgmt)
        cfn.create_stack_instances(StackSetName=stack_set, DeploymentTargets={"OrganizationalUnitIds": ous.split(",")},
                                   Regions=[region])
        instances = cfn.list_stack_instances(StackSetName=stack_set)["Summaries"]
        print(json.dumps({"instances": sorted({(i["Account"], i["Region"]) for i in instances})}))
    elif cmd == "instance":
        mgmt, stack_set, account, region = args[:4]
        mode = args[4] if len(args) > 4 else ""
        cfn = client("cloudformation", mgmt)
        role = next(p["ParameterValue"] for p in cfn.describe_stack_set(StackSetName=stack_set)["StackSet"]["Parameters"]
                    if p["ParameterKey"] == "RoleName")
        if mode == "fresh" and instance_of(cfn, stack_set, account, region):
            # moto deletes the instance's stack, role included: it must be there.
            iam = client("iam", account)
            try:
                iam.get_role(RoleName=role)
                # and bare: moto deletes no role with policies attached.
                for p in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]:
                    iam.detach_role_policy(RoleName=role, PolicyArn=p["PolicyArn"])
            except iam.exceptions.NoSuchEntityException:
                iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}))
            cfn.delete_stack_instances(StackSetName=stack_set, Accounts=[account], Regions=[region], RetainStacks=False)
        if not instance_of(cfn, stack_set, account, region):
            # The role is named, so global: moto's instance would collide with another region's.
            delete_role(account, role)
            parent = client("organizations", mgmt).list_parents(ChildId=account)["Parents"][0]["Id"]
            cfn.create_stack_instances(StackSetName=stack_set, Regions=[region], DeploymentTargets={
                "OrganizationalUnitIds": [parent], "Accounts": [account], "AccountFilterType": "INTERSECTION"})
        if mode == "no-role":
            delete_role(account, role)
        print(json.dumps({"stackId": instance_of(cfn, stack_set, account, region)["StackId"]}))
    elif cmd == "add-account":
        mgmt, ou, name = args
        org = client("organizations", mgmt)
        print(json.dumps({"account": create_account(org, root_of(org), ou, f"{name}-{mgmt}")}))
    elif cmd == "remove-account":
        mgmt, account = args
        client("organizations", mgmt).remove_account_from_organization(AccountId=account)
        print(json.dumps({"removed": account}))
    elif cmd == "close-account":
        mgmt, account = args
        org = client("organizations", mgmt)
        org.close_account(AccountId=account)
        print(json.dumps({"status": org.describe_account(AccountId=account)["Account"]["Status"]}))
    elif cmd == "move-account":
        mgmt, account, source, dest = args
        client("organizations", mgmt).move_account(AccountId=account, SourceParentId=source, DestinationParentId=dest)
        print(json.dumps({"moved": account}))
    elif cmd == "trust":
        account, role, principal, external_id = args
        doc = {"Version": "2012-10-17", "Statement": [{
            "Sid": "SpotAssumeRoleWithExternalId", "Effect": "Allow", "Principal": {"AWS": principal},
            "Action": "sts:AssumeRole", "Condition": {"StringEquals": {"sts:ExternalId": external_id}}}]}
        client("iam", account).update_assume_role_policy(RoleName=role, PolicyDocument=json.dumps(doc))
        print(json.dumps({"trusted": external_id}))
    elif cmd == "role":
        account, role = args
        arn = client("iam", account).get_role(RoleName=role)["Role"]["Arn"]
        print(json.dumps({"arn": arn}))
    elif cmd == "detach":
        account, role = args
        iam = client("iam", account)
        detached = []
        for p in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]:
            iam.detach_role_policy(RoleName=role, PolicyArn=p["PolicyArn"])
            detached.append(p["PolicyArn"])
        print(json.dumps({"detached": detached}))
    elif cmd == "stack-set":
        mgmt, stack_set = args
        s = client("cloudformation", mgmt).describe_stack_set(StackSetName=stack_set)["StackSet"]
        print(json.dumps({"status": s["Status"], "permissionModel": s.get("PermissionModel"),
                          "templateBody": s["TemplateBody"]}))
    elif cmd == "guardrails":
        mgmt, deny_ou, lock_ou, narrowed = args
        org = client("organizations", mgmt)
        org_id = org.describe_organization()["Organization"]["Id"]
        root = root_of(org)
        ids = {}

        def policy(name: str, kind: str, statements: list, target: str) -> None:
            doc = json.dumps({"Version": "2012-10-17", "Statement": statements})
            pid = org.create_policy(Name=name, Description=name, Type=kind, Content=doc)["Policy"]["PolicySummary"]["Id"]
            org.attach_policy(PolicyId=pid, TargetId=target)
            ids[name] = pid

        scp, rcp = "SERVICE_CONTROL_POLICY", "RESOURCE_CONTROL_POLICY"
        policy("DenyEC2", scp, [{"Effect": "Deny", "Action": "ec2:*", "Resource": "*"}], deny_ou)
        global_services = ["iam:*", "organizations:*", "route53:*", "cloudfront:*", "budgets:*", "ce:*", "cur:*",
                           "support:*", "sts:*"]
        policy("RegionLock", scp, [{"Sid": "OnlyIreland", "Effect": "Deny", "NotAction": global_services, "Resource": "*",
                                    "Condition": {"StringNotEquals": {"aws:RequestedRegion": ["eu-west-1"]}}}], lock_ou)
        policy("SpotAllowList", scp, [{"Effect": "Allow", "Action": ["ec2:*", "s3:*"], "Resource": "*"}], narrowed)
        full = next(p["Id"] for p in org.list_policies_for_target(TargetId=narrowed, Filter=scp)["Policies"]
                    if p["Name"] == "FullAWSAccess")
        org.detach_policy(PolicyId=full, TargetId=narrowed)
        policy("OrgOnlyAssumeRole", rcp, [{"Sid": "OrgPrincipalsOnly", "Effect": "Deny", "Principal": "*",
                                           "Action": "sts:AssumeRole", "Resource": "*",
                                           "Condition": {"StringNotEqualsIfExists": {"aws:PrincipalOrgID": org_id},
                                                         "BoolIfExists": {"aws:PrincipalIsAWSService": "false"}}}], root)
        print(json.dumps({"organizationId": org_id, "policies": ids}))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
