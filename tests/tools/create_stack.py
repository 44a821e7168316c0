#!/usr/bin/env python3
"""Creates a CloudFormation stack on the AWS stand-in (moto, at
AWS_ENDPOINT_URL) from a template file, waits for it, and prints its status
and outputs as JSON: how a customer's account runs our template.

usage: create_stack.py TEMPLATE_FILE STACK_NAME [--drop-custom-resources]

moto cannot run an SNS-backed custom resource; --drop-custom-resources
removes them, and the caller delivers their request itself.
"""
import json
import sys

import boto3


def main() -> int:
    template_file, stack_name = sys.argv[1:3]
    cfn = boto3.client("cloudformation")
    with open(template_file, encoding="utf-8") as f:
        body = f.read()
    if "--drop-custom-resources" in sys.argv[3:]:
        template = json.loads(body)
        template["Resources"] = {k: v for k, v in template["Resources"].items() if not v["Type"].startswith("Custom::")}
        body = json.dumps(template)
    cfn.create_stack(StackName=stack_name, TemplateBody=body, Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"])
    cfn.get_waiter("stack_create_complete").wait(StackName=stack_name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    print(json.dumps({"status": stack["StackStatus"], "stackId": stack["StackId"], "outputs": outputs}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
