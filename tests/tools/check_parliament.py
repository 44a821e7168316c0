#!/usr/bin/env python3
"""Lint rendered IAM policies with parliament, allowing only what Spot's own
default policy already triggers.

Why: every policy document the service hands to a customer should be as clean
as Spot's published default policy, and no cleaner claim is possible without
changing that policy. Spot's policy uses Resource "*" throughout and grants
`s3:*` on the Elastic Beanstalk buckets, so parliament reports RESOURCE_STAR
(LOW) and one RESOURCE_MISMATCH for that statement. Those two are accepted
("inherited"); any other finding (unknown action or prefix, malformed
statement, bad condition, resource that cannot match the action, ...) fails.

Input: a JSON array of IAM policy documents on standard input. Each document
is analysed with parliament's Python API (`analyze_policy_string`); its CLI
refuses `--file` when stdin is not a terminal. Works offline.

Exit status 0 when there is no new finding, 1 otherwise, 2 on bad input.
"""
import json
import re
import sys

import parliament

# The one statement shape whose RESOURCE_MISMATCH is inherited from Spot's
# default policy: s3:* on the Elastic Beanstalk buckets, in any partition.
BEANSTALK_BUCKETS = re.compile(r"^arn:(aws|aws-us-gov|aws-cn):s3:::elasticbeanstalk\*$")


def as_list(value):
    return value if isinstance(value, list) else [value]


def plain(node):
    """Turn a jsoncfg node (as stored by parliament) back into Python data."""
    return node() if callable(node) else node


def inherited(finding, statement):
    """True when the finding is one Spot's own default policy already has."""
    if finding.issue == "RESOURCE_STAR":
        return finding.severity == "LOW"
    if finding.issue != "RESOURCE_MISMATCH" or statement is None:
        return False
    stmt = plain(statement.stmt)
    if not isinstance(stmt, dict) or "Action" not in stmt or "Resource" not in stmt:
        return False
    actions = [a.lower() for a in as_list(stmt["Action"]) if isinstance(a, str)]
    resources = as_list(stmt["Resource"])
    if actions != ["s3:*"] or not resources:
        return False
    return all(isinstance(r, str) and BEANSTALK_BUCKETS.match(r) for r in resources)


def short(detail, limit=10):
    """Keep long action lists readable."""
    if isinstance(detail, list) and len(detail) > limit:
        return f"{detail[:limit]} ... ({len(detail) - limit} more)"
    return str(detail)


def sid_of(statement):
    stmt = plain(statement.stmt) if statement is not None else None
    return stmt.get("Sid", "-") if isinstance(stmt, dict) else "-"


def analyse(index, doc):
    """Return (inherited findings, new findings) for one policy document."""
    policy = parliament.analyze_policy_string(json.dumps(doc))
    owner = {}
    for statement in policy.statements or []:
        for finding in statement.findings:
            owner[id(finding)] = statement
    old, new = [], []
    for finding in policy.findings:
        parliament.enhance_finding(finding)
        if inherited(finding, owner.get(id(finding))):
            old.append(finding)
        else:
            new.append((index, sid_of(owner.get(id(finding))), finding))
    return old, new


def main():
    try:
        docs = json.load(sys.stdin)
    except json.JSONDecodeError as err:
        print(f"stdin is not JSON: {err}", file=sys.stderr)
        return 2
    if not isinstance(docs, list) or not all(isinstance(d, dict) for d in docs):
        print("stdin must be a JSON array of policy documents (objects)", file=sys.stderr)
        return 2

    inherited_count = 0
    new_findings = []
    for index, doc in enumerate(docs):
        old, new = analyse(index, doc)
        inherited_count += len(old)
        new_findings.extend(new)

    for index, sid, finding in new_findings:
        print(f"document {index}, statement {sid}: {finding.issue} ({finding.severity}): {short(finding.detail)}")
    print(f"{len(docs)} documents checked, {inherited_count} inherited findings, {len(new_findings)} new")
    return 1 if new_findings else 0


if __name__ == "__main__":
    sys.exit(main())
