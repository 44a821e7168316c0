"""The SAM template translated offline into plain CloudFormation, and
CloudFormation's intrinsic functions resolved against what the rehearsal
created (as CloudFormation would at deploy time)."""

import json
import os
import re

from cfnlint.decode import decode
from samtranslator.translator.transform import transform


class NoManagedPolicies:
    """samtranslator asks for AWS managed policies' ARNs only when a template
    names one by its short name; ours give none."""

    def load(self):
        return {}


def translate(path, parameters, region):
    """The SAM template at `path` as plain CloudFormation (samtranslator,
    as `sam deploy` has CloudFormation do it)."""
    template, problems = decode(path)
    if problems:
        raise SystemExit("\n".join(str(p) for p in problems))
    for resource in template["Resources"].values():
        if resource.get("Type") == "AWS::Serverless::Function":
            # As `sam package` leaves it: the code in S3.
            resource["Properties"]["CodeUri"] = "s3://rehearsal-code/bootstrap.zip"
    os.environ.setdefault("AWS_DEFAULT_REGION", region)
    return transform(template, parameters, NoManagedPolicies())


class Unresolved(Exception):
    """A reference to a resource not created (yet)."""


class Resolver:
    def __init__(self, template, parameters, account, region, stack_name):
        self.template = template
        self.pseudo = {
            "AWS::AccountId": account, "AWS::Region": region, "AWS::Partition": "aws",
            "AWS::StackName": stack_name, "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackId": f"arn:aws:cloudformation:{region}:{account}:stack/{stack_name}/rehearsal",
        }
        self.params = {}
        for name, spec in template.get("Parameters", {}).items():
            value = parameters.get(name, spec.get("Default"))
            if value is None:
                raise SystemExit(f"parameter {name} has no default: give it in the rehearsal's parameters")
            value = str(value)
            self.params[name] = value.split(",") if spec.get("Type") == "CommaDelimitedList" else value
        # logical id -> {"Ref": ..., attribute: ...}, filled as resources are created.
        self.physical = {}
        self._conditions = {}

    def condition(self, name):
        if name not in self._conditions:
            self._conditions[name] = bool(self.value(self.template["Conditions"][name]))
        return self._conditions[name]

    def included(self, resource):
        return "Condition" not in resource or self.condition(resource["Condition"])

    def ref(self, name):
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.params:
            return self.params[name]
        if name in self.physical:
            return self.physical[name]["Ref"]
        raise Unresolved(name)

    def attr(self, name, attribute):
        try:
            return self.physical[name][attribute]
        except KeyError:
            raise Unresolved(f"{name}.{attribute}") from None

    def sub(self, text, extra):
        def one(m):
            key = m.group(1)
            if key.startswith("!"):
                return "${" + key[1:] + "}"
            if key in extra:
                return str(extra[key])
            if "." in key and key.split(".")[0] not in self.params:
                return str(self.attr(*key.split(".", 1)))
            v = self.ref(key)
            return ",".join(v) if isinstance(v, list) else str(v)
        return re.sub(r"\$\{([^}]+)\}", one, text)

    def value(self, node):
        """`node` with every intrinsic function resolved; AWS::NoValue drops out."""
        if isinstance(node, list):
            out = [self.value(v) for v in node]
            return [v for v in out if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (fn, arg), = node.items()
            if fn == "Ref":
                return NO_VALUE if arg == "AWS::NoValue" else self.ref(arg)
            if fn == "Fn::GetAtt":
                name, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.attr(name, attribute)
            if fn == "Fn::Sub":
                text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], self.value(arg[1]))
                return self.sub(text, extra)
            if fn == "Fn::If":
                return self.value(arg[1] if self.condition(arg[0]) else arg[2])
            if fn == "Fn::Select":
                return self.value(arg[1])[int(self.value(arg[0]))]
            if fn == "Fn::Split":
                return str(self.value(arg[1])).split(arg[0])
            if fn == "Fn::Join":
                return arg[0].join(str(v) for v in self.value(arg[1]))
            if fn == "Fn::Equals":
                return self.value(arg[0]) == self.value(arg[1])
            if fn == "Fn::Not":
                return not self.value(arg[0])
            if fn == "Fn::Or":
                return any(self.value(a) for a in arg)
            if fn == "Fn::And":
                return all(self.value(a) for a in arg)
            if fn == "Condition":
                return self.condition(arg)
        out = {k: self.value(v) for k, v in node.items()}
        return {k: v for k, v in out.items() if v is not NO_VALUE}


NO_VALUE = object()

# {{resolve:secretsmanager:secret-id:SecretString:json-key:version-stage:version-id}}
DYNAMIC = re.compile(r"\{\{resolve:secretsmanager:(arn:[^:]+:secretsmanager:[^:]+:\d+:secret:[^:}]+|[^:}]+)"
                     r"(?::SecretString)?(?::([^:}]*))?(?::([^:}]*))?(?::([^:}]*))?\}\}")


def resolve_dynamic(text, secrets):
    """CloudFormation's dynamic references to Secrets Manager, read from
    `secrets` (a boto3 client) as CloudFormation reads them at deploy time."""

    def one(m):
        secret_id, json_key, stage, version = m.groups()
        kwargs = {"SecretId": secret_id}
        if version:
            kwargs["VersionId"] = version
        elif stage:
            kwargs["VersionStage"] = stage
        value = secrets.get_secret_value(**kwargs)["SecretString"]
        return str(json.loads(value)[json_key]) if json_key else value
    return DYNAMIC.sub(one, text)
