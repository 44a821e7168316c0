"""Verifies webhook deliveries with the `standardwebhooks` package (PyPI),
an implementation of the spec independent of ours.

stdin: {"secret": "whsec_...", "deliveries": [{"body": "...", "headers": {...}}]}
stdout: a JSON list, per delivery, of true (verified) or the error's text.
"""

import json
import sys

from standardwebhooks import Webhook


def main() -> None:
    request = json.load(sys.stdin)
    hook = Webhook(request["secret"])
    out = []
    for d in request["deliveries"]:
        try:
            hook.verify(d["body"], d["headers"])
            out.append(True)
        except Exception as e:  # noqa: BLE001 - the verdict is the output
            out.append(f"{type(e).__name__}: {e}")
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
