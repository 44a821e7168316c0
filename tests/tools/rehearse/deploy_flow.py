"""A deploy rehearsed, before any other flow (CodeDeploy runs the
pre-traffic hook before any traffic shifts): the aliased functions'
invokers all name the alias, the hook checks exactly their new versions,
and the hook, invoked as CodeDeploy invokes it (one deployment per
aliased function), reports Succeeded, having invoked each new version.
Then its check is made to fail (the new API version's table read denied):
it must report Failed. When the first verdict is Failed, CodeDeploy would
stop the deployment and leave the aliases on the old versions: no traffic
reaches these, and the rehearsal ends there, failed."""

import json
import secrets
import time

HOOK_ENV = "ACCOUNT_CONNECT_PRE_TRAFFIC_API_VERSION"
EVENTS_ENV = "ACCOUNT_CONNECT_PRE_TRAFFIC_EVENT_VERSIONS"


def pre_traffic(flows):
    """False when CodeDeploy would roll back (no traffic to this release)."""
    return Deploy(flows).run()


class Deploy:
    def __init__(self, flows):
        self.f, self.r, self.svc = flows, flows.r, flows.svc
        self.standin = self.r.deploy_standin

    def run(self):
        start = time.monotonic()
        try:
            return self.deploy()
        finally:
            self.r.log(f"  pre-traffic hook rehearsed in {time.monotonic() - start:.1f} s")

    def deploy(self):
        aliased = [fn for fn in self.r.functions.values() if fn.alias]
        if not aliased:
            return True
        for fn in aliased:
            self.f.check(f"{fn.logical}: every invoker names alias {fn.alias} ({len(fn.via)}: routes, subscriptions, "
                         "mappings, permissions, invoke config)", fn.via and not fn.bypass,
                         f"the bare function is named by {fn.bypass}")
        hooks = {self.update_policy(fn).get("BeforeAllowTrafficHook", {}).get("Ref") for fn in aliased}
        hook = self.r.functions.get(next(iter(hooks))) if len(hooks) == 1 else None
        if not self.f.check("one pre-traffic hook for every aliased function", hook is not None and HOOK_ENV in hook.environment,
                            f"hooks {hooks}"):
            return False
        env = self.f.env(hook)
        targets = [env[HOOK_ENV]] + [v for v in env.get(EVENTS_ENV, "").split(",") if v]
        versions = {self.r.resolver.physical[fn.version_logical]["Ref"]: fn for fn in aliased}
        self.f.check("the hook checks exactly the aliased functions' new versions", sorted(targets) == sorted(versions),
                     f"targets {targets}, versions {sorted(versions)}")
        verdicts = [self.deployment(hook, fn) for fn in aliased]
        ok = all(v == "Succeeded" for v, _ in verdicts)
        invoked = [t for _, calls in verdicts for t in calls]
        self.f.check("pre-traffic hook reported Succeeded to CodeDeploy, for each deployment",
                     ok, f"{[(fn.logical, v) for fn, (v, _) in zip(aliased, verdicts)]}")
        self.f.check("the hook invoked each new version (the API's twice: /health, one read) and nothing else",
                     all(sorted(calls) == sorted([env[HOOK_ENV]] + targets) for _, calls in verdicts),
                     f"invoked {invoked}")
        if not ok:
            self.r.rolled_back = True
            self.r.log("  CodeDeploy stops the deployment: the aliases stay on the old versions; no traffic reaches these")
            return False
        self.table_read_denied(hook, aliased)
        return True

    def update_policy(self, fn):
        return self.r.template["Resources"][fn.alias_logical].get("UpdatePolicy", {}).get("CodeDeployLambdaAliasUpdate", {})

    def deployment(self, hook, fn, staged=False):
        """CodeDeploy's deployment of `fn`'s alias reaches its BeforeAllowTraffic
        hook: (the status the hook reported, the versions it invoked)."""
        policy = self.update_policy(fn)
        app = self.r.resolver.value(policy["ApplicationName"])
        group = self.r.resolver.value(policy["DeploymentGroupName"])
        deployment = "d-" + secrets.token_hex(5).upper()
        execution = secrets.token_urlsafe(48)
        self.standin.deployments[deployment] = (app, group)
        before = len(self.standin.invocations)
        outcome = self.svc.invoke(hook.logical, {"DeploymentId": deployment, "LifecycleEventHookExecutionId": execution},
                                  wait_s=90)
        reports = [x for x in self.standin.reports if x["deploymentId"] == deployment]
        for c in (outcome.json() or {}).get("checks", []):
            if not c.get("passed"):
                # What the hook's log says, shown when it was not staged.
                self.r.log(f"{'    ' if staged else '  '}{group}: hook check failed: {c.get('what')} of "
                           f"{c.get('version')}: {str(c.get('detail'))[:300]}")
        calls = [t for _, t, _ in self.standin.invocations[before:]]
        self.r.log(f"    deployment {deployment} ({group}): hook {outcome.kind}, reported {[x['status'] for x in reports]}")
        if len(reports) != 1 or reports[0]["lifecycleEventHookExecutionId"] != execution:
            return f"no single report for its execution id ({reports}; the hook answered {outcome})", calls
        return reports[0]["status"], calls

    def table_read_denied(self, hook, aliased):
        """The new API version cannot read the table (its role loses
        dynamodb:GetItem): the hook must report Failed."""
        api = next((fn for fn in aliased if fn.routes), None)
        if api is None:
            return
        iam = self.r.admin("iam")
        role = self.r.resolver.physical[api.role]["Ref"]
        deny = {"Version": "2012-10-17", "Statement": [
            {"Sid": "RehearsedLostRead", "Effect": "Deny", "Action": "dynamodb:GetItem", "Resource": "*"}]}
        start = self.r.record_mark()
        iam.put_role_policy(RoleName=role, PolicyName="rehearsal-lost-read", PolicyDocument=json.dumps(deny))
        try:
            verdict, _ = self.deployment(hook, api, staged=True)
        finally:
            iam.delete_role_policy(RoleName=role, PolicyName="rehearsal-lost-read")
            self.r.staged.append(({api.logical}, "dynamodb:GetItem", start, self.r.record_mark()))
        self.f.check("the hook reports Failed when the new API version cannot read the table (CodeDeploy rolls back)",
                     verdict == "Failed", f"reported {verdict}")
