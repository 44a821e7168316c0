"""Seeds N connected connections for the re-check benchmark (scripts/bench-recheck).

Through the product's own API (`account-connect serve`) and moto's IAM: for
each connection a role trusting its external ID, with the default
permissions as managed policies shared by every role, then POST .../role
(a real verification against moto). Prints one JSON line per connection
({"id", "role"}) to --out.

moto holds every role in one account; in AWS each connection is an account
of its own. So each role gets a path of its own: the ListRoles the verifier
pages (PathPrefix, the role's path: the default policy has no iam:GetRole)
then lists that "account's" role, not the whole fleet's.

    python seed_fleet.py --api http://127.0.0.1:3000 --token T --count 1000 --out fleet.jsonl
"""

import argparse
import concurrent.futures
import json
import sys
import urllib.request

import time

import boto3

ACCOUNT = "123456789012"  # moto's


def call(api, token, method, path, body=None, key=None):
    headers = {"authorization": "Bearer " + token, "content-type": "application/json"}
    if key:
        headers["idempotency-key"] = key
    req = urllib.request.Request(
        api + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers=headers,
    )
    with urllib.request.urlopen(req, timeout=60) as res:
        return json.load(res)


def retried(f, *args, **kwargs):
    """moto's IAM is not thread-safe: a rare 500 under concurrent writes; on
    a loaded machine a connection to the API is sometimes dropped."""
    for attempt in range(5):
        try:
            return f(*args, **kwargs)
        except Exception:
            if attempt == 4:
                raise
            time.sleep(0.2 * (attempt + 1))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--api", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--start", type=int, default=0, help="number of the first connection (names are numbered)")
    p.add_argument("--threads", type=int, default=8)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    iam = boto3.client("iam", region_name="us-east-1")

    def create(i):
        body = {"accountId": f"act-bench{i:05d}", "partition": "aws",
                "permissions": {"mode": "default"}, "awsAccountId": ACCOUNT}
        # Keyed, so a retry after a dropped connection gets the same one.
        return retried(call, args.api, args.token, "POST", "/v1/connections", body, key=f"bench-{i}")

    first = create(args.start)
    # Every default connection renders the same documents: one set of
    # managed policies serves every role.
    policies = []
    for n, pol in enumerate(first["policies"]):
        arn = iam.create_policy(PolicyName=f"bench-spot-{args.start}-{n}",
                                PolicyDocument=json.dumps(pol["document"]))["Policy"]["Arn"]
        policies.append(arn)

    def seed(i):
        c = first if i == args.start else create(i)
        name = f"Spot-Bench-{i:05d}"
        try:
            arn = retried(iam.create_role, RoleName=name, Path=f"/bench-{i:05d}/",
                          AssumeRolePolicyDocument=json.dumps(c["trustPolicy"]))["Role"]["Arn"]
        except iam.exceptions.EntityAlreadyExistsException:  # a retried create that had worked
            arn = iam.get_role(RoleName=name)["Role"]["Arn"]
        for pol in policies:
            retried(iam.attach_role_policy, RoleName=name, PolicyArn=pol)
        done = retried(call, args.api, args.token, "POST", f"/v1/connections/{c['id']}/role", {"roleArn": arn})
        if done.get("health") != "healthy":
            raise SystemExit(f"{c['id']} is {done.get('health')}: {json.dumps(done)[:500]}")
        return {"id": c["id"], "role": name}

    with concurrent.futures.ThreadPoolExecutor(args.threads) as pool, open(args.out, "w") as out:
        for n, row in enumerate(pool.map(seed, range(args.start, args.start + args.count)), 1):
            out.write(json.dumps(row) + "\n")
            if n % 100 == 0:
                print(f"seeded {n}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
