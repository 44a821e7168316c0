#!/usr/bin/env python3
"""Prints a CloudFormation/SAM template (YAML with short-form tags such as
!Ref) as JSON, through cfn-lint's own decoder, so tests can read the
deployment template's properties.

usage: template_json.py TEMPLATE_FILE
"""
import json
import sys

from cfnlint.decode import decode


def main() -> int:
    template, problems = decode(sys.argv[1])
    if problems:
        for p in problems:
            print(p, file=sys.stderr)
        return 1
    print(json.dumps(template))
    return 0


if __name__ == "__main__":
    sys.exit(main())
