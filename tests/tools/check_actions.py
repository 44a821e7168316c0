#!/usr/bin/env python3
"""Check that every IAM action in the permission catalog really exists.

Why: a misspelt or retired action in catalog/catalog.json is silently
ignored by IAM, so the customer's role would lack a permission Spot needs
(or the policy would carry dead text). This compares every action, and every
wildcard action, against policy_sentry's bundled IAM database (offline, no
network): an exact action must exist (case-insensitively), a wildcard such as
`ec2:Describe*` must match at least one real action, and `svc:*` needs the
service prefix to exist.

Usage: python tests/tools/check_actions.py catalog/catalog.json
Exit status 0 when every action is known, 1 otherwise.
"""
import fnmatch
import json
import sys

from policy_sentry.querying.all import get_all_actions, get_all_service_prefixes


def bundles(catalog):
    """Yield (bundle id, statement) for every statement in the catalog."""
    groups = [catalog["core"]] + list(catalog.get("shared", []))
    for product in catalog.get("products", []):
        groups.append(product)
        groups.extend(product.get("integrations", []))
    for bundle in groups:
        for statement in bundle.get("statements", []):
            yield bundle["id"], statement


def main(argv):
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        print("usage: check_actions.py CATALOG_JSON", file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as handle:
        catalog = json.load(handle)

    known = {action.lower() for action in get_all_actions(lowercase=False)}
    prefixes = {prefix.lower() for prefix in get_all_service_prefixes()}
    by_service = {}
    for action in known:
        by_service.setdefault(action.split(":", 1)[0], []).append(action)

    checked = 0
    unknown = []
    for bundle_id, statement in bundles(catalog):
        for action in statement.get("actions", []):
            checked += 1
            lowered = action.lower()
            service, sep, name = lowered.partition(":")
            if not sep or not name or service not in prefixes:
                ok = False
            elif name == "*":
                ok = True
            elif "*" in name or "?" in name:
                ok = any(fnmatch.fnmatchcase(real, lowered) for real in by_service.get(service, []))
            else:
                ok = lowered in known
            if not ok:
                unknown.append((bundle_id, statement.get("sid", "?"), action))

    for bundle_id, sid, action in unknown:
        print(f"unknown action {action!r} in bundle {bundle_id!r} (statement {sid})")
    print(f"{checked} actions checked, {len(unknown)} unknown")
    return 1 if unknown else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
