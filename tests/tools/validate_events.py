"""Checks event payloads against the OpenAPI document's `webhooks` section.

stdin: {"document": <path of an OpenAPI 3.1 document>, "payloads": [<event>, ...]}
stdout: a JSON list, one entry per payload that is not as documented:
{"index", "type", "errors": [...]}; empty when every payload is.

Each payload is validated (JSON Schema 2020-12, formats checked) against
the request body schema of `webhooks[<its type>]`, its `$ref`s resolved in
the document. Schemas leave objects open (a receiver must accept fields
added later), so on top of that every field of every object must be
declared by a schema that applies there: a field renamed or added without
documenting it is reported. (For `oneOf`/`anyOf`, the branches the value
validates against apply, so a thin event is held to the thin schema and a
whole one to its own; when none does, every branch that is not
`{"type": "null"}` applies, and the validation errors say why.)
"""

import json
import sys

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

BASE = "urn:account-connect:openapi"


def applicable(instance, schema, resolver):
    """The schemas (with the resolver their own $refs resolve by) that apply."""
    if not isinstance(schema, dict):
        return
    yield schema, resolver
    if "$ref" in schema:
        resolved = resolver.lookup(schema["$ref"])
        yield from applicable(instance, resolved.contents, resolved.resolver)
    for s in schema.get("allOf", []):
        yield from applicable(instance, s, resolver)
    for key in ("oneOf", "anyOf"):
        branches = [s for s in schema.get(key, []) if instance is None or s != {"type": "null"}]
        valid = [s for s in branches if matches(instance, s, resolver)]
        for s in valid or branches:
            yield from applicable(instance, s, resolver)


REGISTRY = None


def matches(instance, schema, resolver):
    """Whether `instance` validates against a branch, its references read
    as where the branch stands (`resolver`)."""
    return Draft202012Validator(schema, registry=REGISTRY, _resolver=resolver).is_valid(instance)


def undocumented(instance, schema, resolver, path, errors):
    schemas = list(applicable(instance, schema, resolver))
    if isinstance(instance, dict):
        declared = {}
        closed = any("properties" in s for s, _ in schemas)
        for s, r in schemas:
            for name, sub in s.get("properties", {}).items():
                declared.setdefault(name, []).append((sub, r))
            if s.get("additionalProperties") not in (None, False):
                closed = False  # a map, or a free-form object
        for name, value in instance.items():
            if name not in declared:
                if closed:
                    errors.append(f"{path}/{name}: not a documented field")
                continue
            for sub, r in declared[name]:
                undocumented(value, sub, r, f"{path}/{name}", errors)
    elif isinstance(instance, list):
        for s, r in schemas:
            if isinstance(s.get("items"), dict):
                for i, item in enumerate(instance):
                    undocumented(item, s["items"], r, f"{path}/{i}", errors)


def main():
    request = json.load(sys.stdin)
    with open(request["document"]) as f:
        document = json.load(f)
    global REGISTRY
    registry = Registry().with_resource(BASE, Resource(contents=document, specification=DRAFT202012))
    REGISTRY = registry
    webhooks = document.get("webhooks", {})
    out = []
    for i, payload in enumerate(request["payloads"]):
        kind = payload.get("type") if isinstance(payload, dict) else None
        if kind not in webhooks:
            out.append({"index": i, "type": kind, "errors": [f"no webhooks entry for the type {kind!r}"]})
            continue
        pointer = f"#/webhooks/{kind.replace('~', '~0').replace('/', '~1')}/post/requestBody/content/application~1json/schema"
        root = {"$ref": BASE + pointer}
        validator = Draft202012Validator(
            root, registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER
        )
        # A oneOf that no branch takes says why each branch did not (its context).
        found = []
        for e in validator.iter_errors(payload):
            found.append(e)
            found.extend(e.context or [])
        errors = [f"/{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in found]
        undocumented(payload, root, registry.resolver(base_uri=BASE), "", errors)
        if errors:
            out.append({"index": i, "type": kind, "errors": errors})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
