"""What the translated template wires to each function: its binary, role,
environment and event sources (HTTP API routes, SNS subscriptions,
schedule rules, SQS and stream event source mappings, function URLs), and
for a function published behind an alias (AutoPublishAlias), the alias
and what still names the bare function (`bypass`).
Read from the CloudFormation the translator produced, so a new function
or event in template.yaml shows up here without code."""

import re
from dataclasses import dataclass, field


@dataclass
class Route:
    method: str  # GET, POST, ... or ANY
    path: str  # OpenAPI path: /v1/connections/{proxy+}
    authorized: bool

    @property
    def key(self):
        return f"{self.method} {self.path}"

    def match(self, method, path):
        """The path parameters when `method path` takes this route, else None."""
        if self.method not in ("ANY", method):
            return None
        pattern = re.sub(r"\\\{(\w+)\\\+\\\}", r"(?P<\1>.+)", re.escape(self.path))
        pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", pattern)
        m = re.fullmatch(pattern, path)
        if m is None:
            return None
        return m.groupdict()


@dataclass
class Function:
    logical: str
    binary: str
    role: str  # logical id of its role
    timeout: int
    memory: int
    environment: dict
    log_format: str = "Text"
    # ReservedConcurrentExecutions: its instances at once (None: the account's unreserved pool).
    reserved: int = None
    routes: list = field(default_factory=list)
    topics: list = field(default_factory=list)  # topic logical ids
    schedules: list = field(default_factory=list)  # rule logical ids
    queues: list = field(default_factory=list)  # (mapping logical id, properties)
    streams: list = field(default_factory=list)  # (mapping logical id, properties)
    url: bool = False
    alias: str = None  # the alias's name (AutoPublishAlias), if any
    alias_logical: str = None
    version_logical: str = None  # the Version resource the alias points at
    via: list = field(default_factory=list)  # (what, qualifier or None) of each invoker
    bypass: list = field(default_factory=list)  # invokers naming the bare function while it has an alias

    def events(self):
        kinds = [f"HTTP API ({len(self.routes)} routes)"] if self.routes else []
        kinds += ["SNS"] * bool(self.topics) + ["schedule"] * bool(self.schedules)
        kinds += ["SQS"] * bool(self.queues) + ["DynamoDB stream"] * bool(self.streams)
        return kinds + ["function URL"] * self.url


ALIASES = {}  # alias logical id -> (function logical id, alias name), set by functions()


def _ref(node):
    """The logical id of the function a Ref or GetAtt names, an alias's
    taken for its function (`_qualifier` tells them apart)."""
    logical = _named(node)
    return ALIASES[logical][0] if logical in ALIASES else logical


def _qualifier(node):
    """The alias's name when `node` names an alias, else None."""
    logical = _named(node)
    return ALIASES[logical][1] if logical in ALIASES else None


def _named(node):
    """The logical id a Ref, GetAtt or Sub names."""
    if isinstance(node, dict):
        if "Ref" in node:
            return node["Ref"]
        if "Fn::GetAtt" in node:
            v = node["Fn::GetAtt"]
            return v[0] if isinstance(v, list) else v.split(".")[0]
        if "Fn::Sub" in node:
            text = node["Fn::Sub"] if isinstance(node["Fn::Sub"], str) else node["Fn::Sub"][0]
            m = re.search(r"\$\{(\w+)\.Arn\}", text)
            if m:
                return m.group(1)
            # An alias is substituted by its Ref (its ARN): functions/${ApiFunctionAliaslive}/invocations.
            m = next((m for m in re.finditer(r"\$\{(\w+)\}", text) if m.group(1) in ALIASES), None)
            return m.group(1) if m else None
    return None


def functions(template, resolver):
    """The template's functions (those its conditions include), by logical id."""
    resources = {k: v for k, v in template["Resources"].items() if resolver.included(v)}
    ALIASES.clear()
    for logical, res in resources.items():
        if res["Type"] == "AWS::Lambda::Alias":
            ALIASES[logical] = (_named(res["Properties"]["FunctionName"]), res["Properties"]["Name"])
    out = {}
    for logical, res in resources.items():
        if res["Type"] != "AWS::Lambda::Function":
            continue
        p = res["Properties"]
        binary = res.get("Metadata", {}).get("BuildProperties", {}).get("Binary")
        if not binary:
            raise SystemExit(f"{logical} names no Metadata.BuildProperties.Binary: which binary is it?")
        out[logical] = Function(
            logical=logical, binary=binary, role=_ref(p["Role"]), timeout=int(resolver.value(p.get("Timeout", 3))),
            memory=int(resolver.value(p.get("MemorySize", 128))),
            environment=p.get("Environment", {}).get("Variables", {}),
            log_format=p.get("LoggingConfig", {}).get("LogFormat", "Text"),
            reserved=(int(resolver.value(p["ReservedConcurrentExecutions"]))
                      if "ReservedConcurrentExecutions" in p else None))
    for logical, res in resources.items():
        p, kind = res.get("Properties", {}), res["Type"]
        if kind == "AWS::ApiGatewayV2::Api":
            for path, methods in p.get("Body", {}).get("paths", {}).items():
                for method, op in methods.items():
                    fn = _ref(op.get("x-amazon-apigateway-integration", {}).get("uri"))
                    if fn in out:
                        out[fn].via.append((f"HTTP API {method} {path}", _qualifier(op["x-amazon-apigateway-integration"]["uri"])))
                        verb = "ANY" if method == "x-amazon-apigateway-any-method" else method.upper()
                        authorized = not any("NONE" in s for s in op.get("security", []))
                        out[fn].routes.append(Route(verb, path, authorized))
        elif kind == "AWS::SNS::Subscription" and p.get("Protocol") == "lambda" and _ref(p["Endpoint"]) in out:
            out[_ref(p["Endpoint"])].topics.append(_ref(p["TopicArn"]))
            out[_ref(p["Endpoint"])].via.append((f"SNS subscription {logical}", _qualifier(p["Endpoint"])))
        elif kind == "AWS::Events::Rule":
            for target in p.get("Targets", []):
                if _ref(target["Arn"]) in out and "ScheduleExpression" in p:
                    out[_ref(target["Arn"])].schedules.append(logical)
                    out[_ref(target["Arn"])].via.append((f"schedule {logical}", _qualifier(target["Arn"])))
        elif kind == "AWS::Lambda::EventSourceMapping" and _ref(p["FunctionName"]) in out:
            fn = out[_ref(p["FunctionName"])]
            source = p["EventSourceArn"]
            is_stream = isinstance(source, dict) and "StreamArn" in str(source)
            (fn.streams if is_stream else fn.queues).append((logical, p))
            fn.via.append((f"event source mapping {logical}", _qualifier(p["FunctionName"])))
        elif kind == "AWS::Lambda::Url" and _ref(p["TargetFunctionArn"]) in out:
            out[_ref(p["TargetFunctionArn"])].url = True
            out[_ref(p["TargetFunctionArn"])].via.append((f"function URL {logical}", _qualifier(p["TargetFunctionArn"])))
        elif kind == "AWS::Lambda::Permission" and _ref(p["FunctionName"]) in out:
            out[_ref(p["FunctionName"])].via.append((f"permission {logical}", _qualifier(p["FunctionName"])))
        elif kind == "AWS::Lambda::EventInvokeConfig" and _ref(p["FunctionName"]) in out:
            q = p.get("Qualifier")
            out[_ref(p["FunctionName"])].via.append((f"event invoke config {logical}", None if q == "$LATEST" else q))
    for logical, (fn, name) in ALIASES.items():
        if fn in out:
            out[fn].alias, out[fn].alias_logical = name, logical
            out[fn].version_logical = _named(resources[logical]["Properties"]["FunctionVersion"])
    for fn in out.values():
        fn.bypass = [what for what, q in fn.via if fn.alias and q != fn.alias]
    return out
