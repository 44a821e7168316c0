#!/usr/bin/env python3
"""Drives account-connect through Spot's own Python SDK (spotinst-sdk2), as an
existing client would, and prints what the SDK returned as JSON.

usage: spot_sdk_client.py BASE_URL TOKEN ACCOUNT_ID create_external_id
       spot_sdk_client.py BASE_URL TOKEN ACCOUNT_ID set_credentials ROLE_ARN
"""
import json
import sys

from spotinst_sdk2 import SpotinstSession


def main() -> int:
    base_url, token, account_id, command = sys.argv[1:5]
    session = SpotinstSession(auth_token=token, account_id=account_id, base_url=base_url)
    client = session.client("setup_aws", print_output=False)
    try:
        if command == "create_external_id":
            result = client.create_external_id()
        elif command == "set_credentials":
            result = client.set_credentials(iam_role=sys.argv[5])
        else:
            print(f"unknown command {command}", file=sys.stderr)
            return 2
    except Exception as exc:  # The SDK raises on any non-200 answer.
        # The SDK keeps the response (with our errors) in .message, not str().
        print(json.dumps({"error": getattr(exc, "message", str(exc))}))
        return 1
    print(json.dumps({"result": result}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
