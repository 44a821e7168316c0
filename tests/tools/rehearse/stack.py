"""The translated stack's resources created in moto, as CloudFormation would
create them; what moto cannot create is listed with what stands in for it."""

import json
import secrets
import string

from cfn import Unresolved

# Types moto cannot create or run, and what stands in for them here.
STOOD_IN = {
    "AWS::Lambda::Function": "the function's binary under the rehearsal's Runtime API emulator",
    "AWS::Lambda::Permission": "nothing needed: the rehearsal invokes the functions itself",
    "AWS::Lambda::EventInvokeConfig": "not rehearsed: asynchronous retries and on-failure destinations",
    "AWS::Lambda::EventSourceMapping": "the rehearsal polls the queue or the table's stream and invokes the function",
    "AWS::Lambda::Url": "the rehearsal sends function URL events",
    "AWS::Events::Rule": "the rehearsal sends the schedule's event (moto fires no schedule)",
    "AWS::SNS::Subscription": "an SQS queue of the rehearsal's subscribed to the topic; its notifications go to the function",
    "AWS::ApiGatewayV2::Api": "the rehearsal sends HTTP API v2 events for the API's routes (JWT already checked)",
    "AWS::ApiGatewayV2::Stage": "(the HTTP API's stage: throttling and access logs not rehearsed)",
}


def name_for(stack_name, logical, lower=False, limit=80):
    """A name as CloudFormation generates one: stack-logical-SUFFIX."""
    suffix = "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(12))
    name = f"{stack_name}-{logical}"[: limit - 13] + "-" + suffix
    return name.lower() if lower else name


class Stack:
    def __init__(self, resolver, aws, account, region):
        self.r = resolver
        self.aws = aws  # name -> boto3 client (admin)
        self.account = account
        self.region = region
        self.created = {}  # logical id -> type
        self.stood_in = {}  # logical id -> type
        self.left_out = []  # what of a created resource moto does not get, and why

    def create(self):
        resources = {k: v for k, v in self.r.template["Resources"].items() if self.r.included(v)}
        pending = dict(resources)
        while pending:
            progress = False
            for logical, res in list(pending.items()):
                try:
                    props = self.r.value(res.get("Properties", {}))
                except Unresolved:
                    continue
                make = getattr(self, "_" + res["Type"].replace("::", "_"), None)
                if make is None:
                    self.stood_in[logical] = res["Type"]
                    self._placeholder(logical, res["Type"], props)
                else:
                    make(logical, props)
                    self.created[logical] = res["Type"]
                del pending[logical]
                progress = True
            if not progress:
                raise SystemExit(f"cannot resolve the references of {sorted(pending)}")

    def _placeholder(self, logical, kind, props):
        """Names and ARNs the rest of the template may refer to."""
        if kind == "AWS::Lambda::Function":
            name = name_for(self.r.pseudo["AWS::StackName"], logical, limit=64)
            arn = f"arn:aws:lambda:{self.region}:{self.account}:function:{name}"
            self.r.physical[logical] = {"Ref": name, "Arn": arn}
        elif kind == "AWS::ApiGatewayV2::Api":
            self.r.physical[logical] = {"Ref": "rehearsal", "ApiEndpoint": "https://rehearsal.execute-api"}
        elif kind == "AWS::Lambda::Url":
            self.r.physical[logical] = {"Ref": logical, "FunctionUrl": "https://rehearsal.lambda-url.on.aws/"}
        else:
            self.r.physical[logical] = {"Ref": logical, "Arn": f"arn:aws:rehearsal:::{logical}"}

    # --- types moto creates ----------------------------------------------

    def _AWS_SecretsManager_Secret(self, logical, p):
        gen = p.get("GenerateSecretString", {})
        if "SecretString" in p:
            value = p["SecretString"]
        else:
            alphabet = string.ascii_letters + string.digits + ("" if gen.get("ExcludePunctuation") else "!#$%&()*+,-.:;<=>?@[]^_{|}~")
            value = "".join(secrets.choice(alphabet) for _ in range(int(gen.get("PasswordLength", 32))))
        name = p.get("Name") or name_for(self.r.pseudo["AWS::StackName"], logical)
        arn = self.aws["secretsmanager"].create_secret(Name=name, SecretString=value,
                                                       Description=p.get("Description", ""))["ARN"]
        self.r.physical[logical] = {"Ref": arn, "Id": arn}

    def _AWS_DynamoDB_Table(self, logical, p):
        name = p.get("TableName") or name_for(self.r.pseudo["AWS::StackName"], logical)
        kw = {k: p[k] for k in ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes", "BillingMode") if k in p}
        if "StreamSpecification" in p:
            kw["StreamSpecification"] = {"StreamEnabled": True, **p["StreamSpecification"]}
        if "SSESpecification" in p:
            kw["SSESpecification"] = {"Enabled": p["SSESpecification"].get("SSEEnabled", False)}
        desc = self.aws["dynamodb"].create_table(TableName=name, **kw)["TableDescription"]
        ttl = p.get("TimeToLiveSpecification")
        if ttl:
            self.aws["dynamodb"].update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
        self.r.physical[logical] = {"Ref": name, "Arn": desc["TableArn"], "StreamArn": desc.get("LatestStreamArn")}

    def _AWS_SQS_Queue(self, logical, p):
        name = p.get("QueueName") or name_for(self.r.pseudo["AWS::StackName"], logical)
        attrs = {k: (json.dumps(v) if isinstance(v, dict) else str(v).lower() if isinstance(v, bool) else str(v))
                 for k, v in p.items() if k not in ("QueueName", "Tags")}
        url = self.aws["sqs"].create_queue(QueueName=name, Attributes=attrs)["QueueUrl"]
        arn = self.aws["sqs"].get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.r.physical[logical] = {"Ref": url, "Arn": arn, "QueueName": name, "QueueUrl": url}

    def _AWS_KMS_Key(self, logical, p):
        kw = {"Description": p["Description"]} if "Description" in p else {}
        if "KeyPolicy" in p:
            kw["Policy"] = json.dumps(p["KeyPolicy"])
        meta = self.aws["kms"].create_key(**kw)["KeyMetadata"]
        self.r.physical[logical] = {"Ref": meta["KeyId"], "Arn": meta["Arn"], "KeyId": meta["KeyId"]}

    def _AWS_SNS_Topic(self, logical, p):
        name = p.get("TopicName") or name_for(self.r.pseudo["AWS::StackName"], logical)
        attrs = {"DisplayName": p["DisplayName"]} if "DisplayName" in p else {}
        arn = self.aws["sns"].create_topic(Name=name, Attributes=attrs)["TopicArn"]
        self.r.physical[logical] = {"Ref": arn, "TopicArn": arn, "TopicName": name}

    def _AWS_SNS_TopicPolicy(self, logical, p):
        for topic in p["Topics"]:
            self.aws["sns"].set_topic_attributes(TopicArn=topic, AttributeName="Policy",
                                                 AttributeValue=json.dumps(p["PolicyDocument"]))
        self.r.physical[logical] = {"Ref": logical}

    def _AWS_S3_Bucket(self, logical, p):
        name = p.get("BucketName") or name_for(self.r.pseudo["AWS::StackName"], logical, lower=True, limit=63)
        s3 = self.aws["s3"]
        s3.create_bucket(Bucket=name)
        if "BucketEncryption" in p:
            rules = [{"ApplyServerSideEncryptionByDefault": r["ServerSideEncryptionByDefault"],
                      **{k: v for k, v in r.items() if k == "BucketKeyEnabled"}}
                     for r in p["BucketEncryption"]["ServerSideEncryptionConfiguration"]]
            s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
        if "PublicAccessBlockConfiguration" in p:
            s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=p["PublicAccessBlockConfiguration"])
        if "LifecycleConfiguration" in p:
            rules = []
            for rule in p["LifecycleConfiguration"]["Rules"]:
                r = {"ID": rule["Id"], "Status": rule["Status"], "Filter": {"Prefix": rule.get("Prefix", "")}}
                if "ExpirationInDays" in rule:
                    r["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
                if "AbortIncompleteMultipartUpload" in rule:
                    r["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])}
                rules.append(r)
            s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": rules})
        self.r.physical[logical] = {"Ref": name, "Arn": f"arn:aws:s3:::{name}",
                                    "DomainName": f"{name}.s3.amazonaws.com"}

    def _AWS_S3_BucketPolicy(self, logical, p):
        # moto's S3 applies a bucket policy's statements without their
        # conditions (a conditioned statement counts as a denial), so the
        # statement denying insecure transport would refuse every object
        # call; in AWS every call is https and it refuses none. Left out, and said so.
        statements = [st for st in p["PolicyDocument"]["Statement"]
                      if "aws:SecureTransport" not in json.dumps(st.get("Condition", {}))]
        for st in p["PolicyDocument"]["Statement"]:
            if st not in statements:
                self.left_out.append(f"{logical}: statement {st.get('Sid', '?')} (aws:SecureTransport false: "
                                     "moto would apply it unconditionally; every call in AWS is https)")
        policy = dict(p["PolicyDocument"], Statement=statements)
        self.aws["s3"].put_bucket_policy(Bucket=p["Bucket"], Policy=json.dumps(policy))
        self.r.physical[logical] = {"Ref": logical}

    def _AWS_IAM_Role(self, logical, p):
        name = p.get("RoleName") or name_for(self.r.pseudo["AWS::StackName"], logical, limit=64)
        iam = self.aws["iam"]
        role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(p["AssumeRolePolicyDocument"]),
                               Path=p.get("Path", "/"))["Role"]
        for policy in p.get("Policies", []):
            # moto applies a conditioned Deny unconditionally, so the
            # statement that keeps the functions off their own account's
            # roles (aws:ResourceAccount) would refuse every AssumeRole; the
            # service refuses such an ARN before any call (tested in Rust).
            kept = [st for st in policy["PolicyDocument"]["Statement"]
                    if not (st.get("Effect") == "Deny" and "aws:ResourceAccount" in json.dumps(st.get("Condition", {})))]
            for st in policy["PolicyDocument"]["Statement"]:
                if st not in kept:
                    self.left_out.append(f"{logical}: statement {st.get('Sid', '?')} (Deny on aws:ResourceAccount: "
                                         "moto would apply it unconditionally)")
            policy = dict(policy, PolicyDocument=dict(policy["PolicyDocument"], Statement=kept))
            # SAM writes the destinations' policies without a Version (IAM
            # reads that as 2008-10-17, which moto refuses); they use no
            # policy variables, so the two versions mean the same.
            document = {"Version": "2012-10-17", **policy["PolicyDocument"]}
            iam.put_role_policy(RoleName=name, PolicyName=policy["PolicyName"], PolicyDocument=json.dumps(document))
        for arn in p.get("ManagedPolicyArns", []):
            iam.attach_role_policy(RoleName=name, PolicyArn=arn)
        self.r.physical[logical] = {"Ref": name, "Arn": role["Arn"], "RoleId": role["RoleId"]}

    def _AWS_Logs_LogGroup(self, logical, p):
        name = p.get("LogGroupName") or name_for(self.r.pseudo["AWS::StackName"], logical)
        self.aws["logs"].create_log_group(logGroupName=name)
        if "RetentionInDays" in p:
            self.aws["logs"].put_retention_policy(logGroupName=name, retentionInDays=int(p["RetentionInDays"]))
        self.r.physical[logical] = {"Ref": name, "Arn": f"arn:aws:logs:{self.region}:{self.account}:log-group:{name}:*"}

    def _AWS_CloudWatch_Alarm(self, logical, p):
        kw = {k: p[k] for k in ("AlarmDescription", "Namespace", "MetricName", "Dimensions", "Statistic",
                                "ComparisonOperator", "TreatMissingData", "AlarmActions", "OKActions") if k in p}
        for k in ("Period", "EvaluationPeriods"):
            kw[k] = int(p[k])
        kw["Threshold"] = float(p["Threshold"])
        name = p.get("AlarmName") or name_for(self.r.pseudo["AWS::StackName"], logical)
        self.aws["cloudwatch"].put_metric_alarm(AlarmName=name, **kw)
        self.r.physical[logical] = {"Ref": name, "Arn": f"arn:aws:cloudwatch:{self.region}:{self.account}:alarm:{name}"}
