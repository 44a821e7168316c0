"""Reads every record of a DynamoDB stream (at ENDPOINT, moto) and
prints them as one Lambda event, the shape a stream event source mapping
hands its function: {"Records": [{"eventName", "eventSource", "dynamodb":
{"Keys", "NewImage", ...}, "eventSourceARN", ...}]}. Usage: stream_event.py
STREAM_ARN ENDPOINT. The event is the last line of the output."""

import json
import sys

import boto3

arn = sys.argv[1]
client = boto3.client("dynamodbstreams", endpoint_url=sys.argv[2])
records = []
for shard in client.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
    it = client.get_shard_iterator(
        StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    while it:
        out = client.get_records(ShardIterator=it)
        for r in out["Records"]:
            d = r["dynamodb"]
            created = d.get("ApproximateCreationDateTime")
            if created is not None and hasattr(created, "timestamp"):
                d["ApproximateCreationDateTime"] = created.timestamp()
            r["eventSourceARN"] = arn
            records.append(r)
        if not out["Records"]:
            break
        it = out.get("NextShardIterator")
print(json.dumps({"Records": records}, default=str))
