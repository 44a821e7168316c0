"""The rehearsal's printout, per function, from moto's record of every call
and every IAM decision (moto_iam.py): the calls it made with its role, the
calls it made as the customer's role it assumed, its role's grants no call
used, and every AccessDenied."""

import fnmatch
import json
import os
import re
from collections import Counter


def load(path):
    """Every recorded entry, with its line (flows mark windows by line)."""
    with open(path, encoding="utf-8") as f:
        return [dict(json.loads(line), line=i) for i, line in enumerate(f) if line.strip()]


def staged(r, function, e):
    """Whether a flow staged this denial (an outage it rehearses)."""
    return any(function in fns and e.get("action") == action and start <= e.get("line", -1) < end
               for fns, action, start, end in r.staged)


def grants(resolver, fn, template):
    """(action, Sid) the template's own policies grant the function's role
    (SAM names them <Role>Policy<N>); the policies SAM adds for Lambda's own
    use (destinations, by name) and the AWS managed policies it attaches
    (logs, X-Ray, event source polling): Lambda calls with those, not the code."""
    role = resolver.value(template["Resources"][fn.role]["Properties"])
    out, sams = [], []
    for policy in role.get("Policies", []):
        if not re.fullmatch(re.escape(fn.role) + r"Policy\d+", policy["PolicyName"]):
            sams.append(policy["PolicyName"])
            continue
        for st in policy["PolicyDocument"]["Statement"]:
            if st.get("Effect") != "Allow":
                continue
            actions = st.get("Action", [])
            for a in [actions] if isinstance(actions, str) else actions:
                out.append((a, st.get("Sid", "")))
    return out, sams + [a.rsplit("/", 1)[-1] for a in role.get("ManagedPolicyArns", [])]


def print_report(r, svc, run, baseline):
    records = load(r.records)
    owner = dict(r.keys)  # access key -> function
    assumed = {}  # access key issued by a function's AssumeRole -> function
    for e in records:
        if e["kind"] == "call" and e["call"] == "sts:AssumeRole" and e["key"] in owner and e.get("issued"):
            assumed[e["issued"]] = owner[e["key"]]
    denied_lines, summary = [], {"functions": {}, "baselineInitMs": baseline[0]}
    print("\n=== per function")
    for fn in r.functions.values():
        mine = [e for e in records if owner.get(e["key"]) == fn.logical]
        calls = Counter(e["call"] for e in mine if e["kind"] == "call")
        authorized = {e["action"] for e in mine if e["kind"] == "decision" and e["allowed"]}
        allowed = {a.lower() for a in authorized}
        denied = [e for e in mine if e["kind"] == "decision" and not e["allowed"]]
        # Refused by a resource's own policy (a bucket policy): no identity decision was denied.
        denied += [{"action": e["call"], "resource": "(its resource's policy)"} for e in mine
                   if e["kind"] == "call" and e["status"] == 403 and not e.get("deniedByIdentity") and not e.get("missingRole")
                   and e.get("error") in (None, "AccessDenied", "AccessDeniedException")]
        outage = [e for e in denied if staged(r, fn.logical, e)]
        denied = [e for e in denied if not staged(r, fn.logical, e)]
        theirs = [e for e in records if assumed.get(e["key"]) == fn.logical and e["kind"] == "call"]
        as_customer = Counter(e["call"] + (f" ({e['error']})" if e.get("error") else "") for e in theirs)
        granted, managed = grants(r.resolver, fn, r.template)
        unused = [(a, sid) for a, sid in granted if not any(fnmatch.fnmatch(x, a.lower()) for x in allowed)]
        ms = svc.init_ms.get(fn.logical)
        print(f"\n{fn.logical} ({fn.binary}; events: {', '.join(fn.events()) or 'none'})")
        runtime = svc.runtimes.get(fn.logical)
        invoked = len(runtime.results) if runtime else 0
        print(f"  init: {'%.1f ms' % ms if ms is not None else 'never asked for an event'}; invocations: {invoked}")
        if runtime:
            bound = runtime.limit if runtime.limit is not None else "unreserved"
            print(f"  instances: {len(runtime.instances)} (reserved concurrency: {bound}); most in flight at once: "
                  f"{runtime.gauge.most}; refused over the bound (sync): {runtime.throttled}; "
                  f"waited for a slot (async): {runtime.waited}")
        if not invoked and not getattr(r, "rolled_back", False):
            # A function no flow drives is a function the rehearsal does not show: add its flow (flows.py).
            svc.failures.append((fn.logical, "no flow invoked it"))
        print("  calls with its role: " + (", ".join(f"{c} x{n}" for c, n in sorted(calls.items())) or "none"))
        print("  IAM actions moto authorized for them: " + (", ".join(sorted(authorized)) or "none"))
        if as_customer:
            print("  calls as the customer's role it assumed: " + ", ".join(f"{c} x{n}" for c, n in sorted(as_customer.items())))
        print("  granted, never used: " + (", ".join(f"{a} ({sid})" for a, sid in unused) or "none"))
        if managed:
            print("  Lambda's own (SAM's destination policies, AWS managed policies; not the code's, not judged): "
                  + ", ".join(managed))
        if outage:
            print("  denied as the rehearsal staged it (an outage it rehearses, not a missing grant): "
                  + ", ".join(f"{a} x{n}" for a, n in sorted(Counter(e["action"] for e in outage).items())))
        for e in denied:
            line = f"DENIED {fn.logical} ({fn.binary}): {e['action']} on {e['resource']}"
            denied_lines.append(line)
            print("  " + line)
        summary["functions"][fn.logical] = {
            "binary": fn.binary, "initMs": ms, "invocations": invoked,
            "reserved": fn.reserved, "mostInFlight": runtime.gauge.most if runtime else 0, "calls": dict(calls), "asCustomer": dict(as_customer),
            "unused": [a for a, _ in unused], "denied": [e["action"] for e in denied],
            "staged": [e["action"] for e in outage]}
    noisy = getattr(r, "noisy", None)
    if noisy:
        summary["noisyNeighbour"] = noisy
        print_noisy(noisy)
    with open(os.path.join(r.work, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print("\n=== outcome")
    for fn, what in svc.failures:
        print(f"FAILED {fn}: {what}")
    for flow, what in run.failed:
        print(f"FAILED flow {flow}: {what}")
    for line in denied_lines:
        print(line)
    if getattr(r, "rolled_back", False):
        print("ROLLED BACK: the pre-traffic hook reported Failed; CodeDeploy would keep the aliases on the old versions")
    ok = not (svc.failures or run.failed or denied_lines)
    print(f"rehearsal {'passed' if ok else 'FAILED'}: {len(run.passed)} checks passed, {len(run.failed)} failed, "
          f"{len(denied_lines)} denied calls (logs: {r.work})")
    return 0 if ok else 1


def print_noisy(n):
    """The noisy neighbour's figures (flows_noisy.py)."""
    secs = lambda v: "none" if v is None else f"{v:.1f} s"  # noqa: E731
    print("\n=== noisy neighbour (B: seconds from its Create published)")
    if "bound" in n:
        reserved, most, waited = n["bound"]
        print(f"  callback bound: {reserved + 1} events at once, {most} in flight at most (reserved {reserved}), "
              f"{waited} waited for a slot")
    if "alone" in n and "flooded" in n:
        for i, what in enumerate(("connected (SUCCESS at the ResponseURL)", "webhook connection.connected")):
            print(f"  B {what}: alone {secs(n['alone'][i])}, under A's flood {secs(n['flooded'][i])}")
    if n.get("hangs"):
        print(f"  A's attempts reached its hanging endpoints at (s from B's Create under the flood): {n['hangs']}")
    a = n.get("a")
    if a:
        print(f"  A: {a['creates']} Creates for missing roles, {a['deferred']} deferrals to the callback queue, "
              f"{a['refusedAssumeRole']} AssumeRole refusals (roles that do not exist)")
        print(f"  A's test events: {a['tests']}; A's verifications: {a['verifications']}")
    for mapping, (bound, most) in n.get("mappings", {}).items():
        print(f"  {mapping}: MaximumConcurrency {bound}, most batches in flight {most}")
