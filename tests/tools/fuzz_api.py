#!/usr/bin/env python3
"""Runs the schemathesis command line with one guard.

Describing a lambda, hypothesis parses the module that holds it with
ast.parse; on CPython 3.11.7 that raises SystemError ("AST constructor
recursion depth mismatch", CPython gh-106905) for schemathesis' largest
module. Only the description is lost: it becomes "lambda: <unknown>".

usage: fuzz_api.py <schemathesis arguments>
"""
import sys

import hypothesis.internal.lambda_sources as lambda_sources

_describe = lambda_sources._lambda_description


def _guarded(f, *args, **kwargs):
    try:
        return _describe(f, *args, **kwargs)
    except SystemError:
        return "lambda: <unknown>"


lambda_sources._lambda_description = _guarded

from schemathesis.cli import schemathesis  # noqa: E402  (after the guard)

if __name__ == "__main__":
    sys.exit(schemathesis(prog_name="schemathesis"))
