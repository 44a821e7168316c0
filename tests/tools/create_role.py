#!/usr/bin/env python3
"""Creates an IAM role on the AWS stand-in (moto, at AWS_ENDPOINT_URL) the
way the manual steps of the wizard tell a customer to: the connection's
policies as managed policies, the trust policy, the role. Prints its ARN.

usage: create_role.py CONNECTION_JSON_FILE [ROLE_NAME]
"""
import json
import sys

import boto3


def main() -> int:
    with open(sys.argv[1], encoding="utf-8") as f:
        conn = json.load(f)
    name = sys.argv[2] if len(sys.argv) > 2 else "Spot-Role-" + conn["id"][4:12]
    iam = boto3.client("iam")
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(conn["trustPolicy"]))["Role"]
    for policy in conn["policies"]:
        created = iam.create_policy(PolicyName=f"{name}-{policy['name']}", PolicyDocument=json.dumps(policy["document"]))
        iam.attach_role_policy(RoleName=name, PolicyArn=created["Policy"]["Arn"])
    print(role["Arn"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
