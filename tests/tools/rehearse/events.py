"""Lambda events in the shapes AWS's services hand them to functions:
HTTP API (payload 2.0, with the JWT authorizer's claims), function URL,
SNS, EventBridge schedule, SQS batch and DynamoDB stream batch."""

import base64
import json
import uuid
from datetime import datetime, timezone


def _now():
    return datetime.now(timezone.utc)


def http_v2(route_key, method, path, params, body, headers, claims, account, domain, api_id="rehearsal"):
    now = _now()
    query = ""
    if "?" in path:
        path, query = path.split("?", 1)
    event = {
        "version": "2.0", "routeKey": route_key, "rawPath": path, "rawQueryString": query,
        "headers": {"content-type": "application/json", "user-agent": "rehearsal",
                    "x-forwarded-proto": "https", "host": domain, **headers},
        "requestContext": {
            "accountId": account, "apiId": api_id, "domainName": domain, "domainPrefix": domain.split(".")[0],
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "198.51.100.7",
                     "userAgent": "rehearsal"},
            "requestId": base64.b32encode(uuid.uuid4().bytes)[:16].decode(), "routeKey": route_key, "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"), "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": False,
    }
    if query:
        event["queryStringParameters"] = dict(p.split("=", 1) for p in query.split("&"))
    if params:
        event["pathParameters"] = params
    if claims is not None:
        event["requestContext"]["authorizer"] = {"jwt": {"claims": claims, "scopes": None}}
    if body is not None:
        event["body"] = body if isinstance(body, str) else json.dumps(body)
    return event


def sns(notification, subscription_arn):
    """The Lambda SNS event for one notification as SNS delivered it (to the
    rehearsal's SQS subscription: the same fields)."""
    n = notification
    return {"Records": [{
        "EventSource": "aws:sns", "EventVersion": "1.0", "EventSubscriptionArn": subscription_arn,
        "Sns": {"Type": n["Type"], "MessageId": n["MessageId"], "TopicArn": n["TopicArn"],
                "Subject": n.get("Subject"), "Message": n["Message"], "Timestamp": n["Timestamp"],
                "SignatureVersion": n.get("SignatureVersion", "1"), "Signature": n.get("Signature", ""),
                "SigningCertUrl": n.get("SigningCertURL", ""), "UnsubscribeUrl": n.get("UnsubscribeURL", ""),
                "MessageAttributes": n.get("MessageAttributes", {})},
    }]}


def schedule(rule_arn, account, region):
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
            "account": account, "time": _now().strftime("%Y-%m-%dT%H:%M:%SZ"), "region": region,
            "resources": [rule_arn], "detail": {}}


def sqs(messages, queue_arn, region):
    return {"Records": [{
        "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
        "attributes": m.get("Attributes", {}), "messageAttributes": m.get("MessageAttributes", {}),
        "md5OfBody": m["MD5OfBody"], "eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": region,
    } for m in messages]}


def stream(records, stream_arn, region):
    out = []
    for r in records:
        d = dict(r["dynamodb"])
        created = d.get("ApproximateCreationDateTime")
        if created is not None and hasattr(created, "timestamp"):
            d["ApproximateCreationDateTime"] = created.timestamp()
        out.append({"eventID": r["eventID"], "eventName": r["eventName"], "eventVersion": r.get("eventVersion", "1.1"),
                    "eventSource": "aws:dynamodb", "awsRegion": region, "dynamodb": d, "eventSourceARN": stream_arn})
    return {"Records": out}


def matches(pattern, record):
    """An event source mapping's filter (EventBridge pattern syntax: value
    lists, prefix) against a record."""
    for key, want in pattern.items():
        have = record.get(key) if isinstance(record, dict) else None
        if isinstance(want, dict):
            if not isinstance(have, dict) or not matches(want, have):
                return False
            continue
        ok = False
        for w in want:
            if isinstance(w, dict) and "prefix" in w:
                ok = ok or (isinstance(have, str) and have.startswith(w["prefix"]))
            else:
                ok = ok or have == w
        if not ok:
            return False
    return True
