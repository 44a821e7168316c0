"""A permission a flow needs, taken out of a copy of template.yaml, makes
the rehearsal fail naming the function and the action (scripts/test runs
this with pytest after scripts/rehearse itself has passed); a new version
that cannot read the table fails the pre-traffic hook, which rolls the
deploy back before any other flow; and the per-tenant share of the
callback off (CallbackTenantShare=0), or of the dispatcher
(WebhookTenantShare=0), makes the noisy neighbour's tenant B wait for
tenant A's flood.

Each case really rehearses the mutated copy (scripts/rehearse --template,
the product's flows only) or parameter (--parameter, the tenants' flows
only)."""

import copy
import json
import os
import re
import subprocess

import pytest
from cfnlint.decode import decode

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))

# (function, statement Sid, action): one grant each flow needs.
NEEDED = [
    ("RecheckFunction", "QueueJobs", "sqs:SendMessage"),
    ("DispatcherFunction", "PutEvents", "events:PutEvents"),
    ("CallbackFunction", "AssumeCustomerRoles", "sts:AssumeRole"),
    ("RecheckWorkerFunction", "UploadConnectionTemplates", "s3:PutObject"),
    ("SweeperFunction", "RequeueAttempts", "sqs:SendMessage"),
    # Only the organization flow's relayed member enroll deletes (its
    # transaction's claim), so it alone needs this.
    ("RelayIntakeFunction", "ConnectionsTable", "dynamodb:DeleteItem"),
]


def without(template, function, sid, action):
    """The template with `action` taken out of the function's statement `sid`
    (the statement goes when it held nothing else)."""
    t = copy.deepcopy(template)
    statements = t["Resources"][function]["Properties"]["Policies"][0]["Statement"]
    for st in list(statements):
        if st.get("Sid") != sid:
            continue
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        assert action in actions, f"{function}'s {sid} does not grant {action}"
        rest = [a for a in actions if a != action]
        if rest:
            st["Action"] = rest
        else:
            statements.remove(st)
        return t
    raise AssertionError(f"{function} has no statement {sid}")


@pytest.fixture(scope="module")
def template():
    decoded, problems = decode(os.path.join(ROOT, "template.yaml"))
    assert not problems, problems
    return json.loads(json.dumps(decoded))


@pytest.mark.parametrize("function,sid,action", NEEDED)
def test_a_needed_permission_removed_fails_the_rehearsal_naming_it(template, function, sid, action):
    work = os.path.join(ROOT, "target", "rehearse-mutations", function)
    os.makedirs(work, exist_ok=True)
    path = os.path.join(work, "template.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(without(template, function, sid, action), f)
    run = subprocess.run([os.path.join(ROOT, "scripts", "rehearse"), "--template", path, "--work", work,
                          "--flows", "core"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    out = run.stdout + run.stderr
    denied = [line for line in out.splitlines() if line.startswith("DENIED ")]
    print("\n".join(denied))
    assert run.returncode == 1, out[-3000:]
    assert any(re.match(rf"DENIED {function} \([^)]*\): {re.escape(action)} on ", line) for line in denied), out[-3000:]


def test_a_new_version_that_cannot_read_the_table_fails_the_hook_and_rolls_back(template):
    """The API function's role without dynamodb:GetItem: its new version's
    read fails, the hook reports Failed, CodeDeploy would roll back, and
    the rehearsal stops there (no traffic reaches the release) and fails."""
    work = os.path.join(ROOT, "target", "rehearse-mutations", "pre-traffic-hook")
    os.makedirs(work, exist_ok=True)
    path = os.path.join(work, "template.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(without(template, "ApiFunction", "ConnectionsTable", "dynamodb:GetItem"), f)
    run = subprocess.run([os.path.join(ROOT, "scripts", "rehearse"), "--template", path, "--work", work],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    out = run.stdout + run.stderr
    assert run.returncode == 1, out[-3000:]
    assert "FAILED flow pre-traffic hook reported Succeeded to CodeDeploy" in out, out[-3000:]
    assert "ROLLED BACK" in out, out[-3000:]
    # No traffic after the verdict: only the hook and the versions it checked ran.
    with open(os.path.join(work, "summary.json"), encoding="utf-8") as f:
        invoked = {fn: v["invocations"] for fn, v in json.load(f)["functions"].items()}
    assert invoked["PreTrafficHookFunction"] == 3, invoked
    assert all(n == 0 for fn, n in invoked.items()
               if fn not in ("PreTrafficHookFunction", "ApiFunction", "CallbackFunction", "DispatcherFunction")), invoked


def test_without_the_tenant_share_a_flood_of_creates_holds_up_another_tenant():
    work = os.path.join(ROOT, "target", "rehearse-mutations", "share-off")
    run = subprocess.run([os.path.join(ROOT, "scripts", "rehearse"), "--work", work, "--flows", "noisy",
                          "--parameter", "CallbackTenantShare=0"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    out = run.stdout + run.stderr
    print("\n".join(line for line in out.splitlines() if "under A's flood" in line))
    assert run.returncode == 1, out[-3000:]
    # The unmutated rehearsal passes this very check (scripts/rehearse runs it first).
    assert re.search(r"^FAILED flow B's connection \(SUCCESS at the ResponseURL\) under A's flood within \d+ s",
                     out, re.M), out[-3000:]



def test_without_the_webhook_share_hanging_endpoints_hold_up_another_tenants_webhook():
    """B's webhook waits for A's attempts to time out (10 s). The rehearsal's
    own check allows 10 s of slack, which an attempt timeout may just fit
    in; so this reads the figures: at least 5 s later than alone (with the
    share, about 1 s)."""
    work = os.path.join(ROOT, "target", "rehearse-mutations", "webhook-share-off")
    run = subprocess.run([os.path.join(ROOT, "scripts", "rehearse"), "--work", work, "--flows", "noisy",
                          "--parameter", "WebhookTenantShare=0"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    out = run.stdout + run.stderr
    print("\n".join(line for line in out.splitlines() if "under A's flood" in line))
    with open(os.path.join(work, "summary.json"), encoding="utf-8") as f:
        noisy = json.load(f)["noisyNeighbour"]
    alone, flooded = noisy["alone"][1], noisy["flooded"][1]
    assert flooded is None or flooded - alone >= 5, f"B's webhook alone {alone} s, under the flood {flooded} s"
