//! The metrics the alarms in template.yaml count, from the real binary
//! serving with EMF metrics on: `VerificationFailed` once per failed
//! verification, and `PartitionCredentialsRejected` with its partition when
//! a partition's STS refuses our own key.

use crate::common;

use common::server::Server;
use serde_json::{json, Value};
use std::time::Duration;

/// EMF lines on the server's output.
impl Server {
    /// The first EMF line counting `metric` (within 20 s) and every EMF
    /// line written until a moment after it, parsed.
    async fn emf_lines_from(&self, metric: &str) -> Vec<Value> {
        let key = format!("\"{metric}\"");
        let first = self
            .next_line(|l| l.contains(&key))
            .unwrap_or_else(|| panic!("no {metric} line is written"));
        // Give the process a moment to write anything else it would write.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut lines = vec![serde_json::from_str::<Value>(&first).unwrap()];
        lines.extend(self.emf_lines());
        lines
    }

    /// Every EMF line written so far, parsed.
    fn emf_lines(&self) -> Vec<Value> {
        self.lines
            .try_iter()
            .filter_map(|l| serde_json::from_str::<Value>(&l).ok())
            .filter(|v| v.get("_aws").is_some())
            .collect()
    }
}

/// The alarm's Namespace and MetricName, and whether it names dimensions.
fn alarm() -> (String, String, bool) {
    let block = alarm_block("VerificationFailedAlarm");
    let value = |key: &str| {
        block
            .iter()
            .find_map(|l| l.trim().strip_prefix(key))
            .map(|v| v.trim().to_owned())
            .unwrap_or_else(|| panic!("no {key} in the alarm"))
    };
    let dims = block.iter().any(|l| l.trim().starts_with("Dimensions:"));
    (value("Namespace:"), value("MetricName:"), dims)
}

/// The lines of template.yaml's resource `name`, below its name.
fn alarm_block(name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(common::repo_path("template.yaml")).unwrap();
    let start = text
        .find(&format!("\n  {name}:\n"))
        .unwrap_or_else(|| panic!("{name} is in template.yaml"));
    text[start + 1..]
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("    ") || l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

/// Lines counting `metric` with no dimensions, as the alarm sees them.
fn counted<'a>(lines: &'a [Value], namespace: &str, metric: &str) -> Vec<&'a Value> {
    lines
        .iter()
        .filter(|l| {
            let m = &l["_aws"]["CloudWatchMetrics"][0];
            m["Namespace"] == namespace
                && m["Metrics"][0]["Name"] == metric
                && m["Dimensions"] == json!([[]])
                && l[metric] == 1
        })
        .collect()
}

#[tokio::test]
async fn each_verification_writes_its_outcome_once_and_a_failure_the_line_the_alarm_counts() {
    let (namespace, metric, dims) = alarm();
    assert_eq!(
        (namespace.as_str(), metric.as_str(), dims),
        ("AccountConnect", "VerificationFailed", false)
    );

    let server = Server::start_with(&[("ACCOUNT_CONNECT_METRICS", "emf".into())]);
    let app = common::TestApp::at(&server.base);
    let token = common::token("org-m", None);
    let body = json!({"accountId": "act-m1", "partition": "aws", "permissions": {"mode": "default"}, "awsAccountId": "123456789012"});
    let (_, c) = app.create_connection(&token, &body).await;
    // A role whose trust has no external ID: the trust check fails.
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
    let iam = aws_sdk_iam::Client::new(&conf);
    let name = format!("Spot-Role-{}", account_connect::ids::random_token(4));
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::922761411349:root"}, "Action": "sts:AssumeRole"}]});
    let arn = common::create_role(&iam, &name, trust.to_string()).await;
    let (status, _) = app.connect_role(&token, c["id"].as_str().unwrap(), &arn).await;
    assert_eq!(status, 422);

    let lines = server.emf_lines_from("VerificationFailed").await;
    assert_eq!(counted(&lines, &namespace, &metric).len(), 1, "{lines:?}");
    assert!(counted(&lines, &namespace, "Connected").is_empty(), "{lines:?}");
    let failed: Vec<&Value> = lines.iter().filter(|l| l.get("FailedCheck").is_some()).collect();
    assert_eq!(failed.len(), 1, "{lines:?}");
    assert_eq!(failed[0]["Check"], "trust_policy");
    assert_eq!(
        failed[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        json!([["Check"]])
    );
}

#[tokio::test]
async fn a_partition_refusing_our_key_writes_the_line_its_alarm_counts() {
    use crate::partitions;
    use account_connect::domain::Partition;
    let p = Partition::AwsUsGov;
    // The alarm: this metric, with the partition as its one dimension.
    let block = alarm_block("PartitionCredentialsAlarmAwsUsGov").join("\n");
    for want in [
        "Namespace: AccountConnect",
        "MetricName: PartitionCredentialsRejected",
        "- Name: Partition",
        "Value: aws-us-gov",
    ] {
        assert!(block.contains(want), "{want} not in the alarm:\n{block}");
    }

    // GovCloud signed with the commercial identity (the default profile),
    // at the GovCloud server, which refuses that key as GovCloud STS does.
    let gov = partitions::test_env("ACCOUNT_CONNECT_TEST_MOTO_URL", p);
    let server = Server::start_with(&[
        ("ACCOUNT_CONNECT_METRICS", "emf".into()),
        ("ACCOUNT_CONNECT_PROFILE_AWS_US_GOV", "default".into()),
        ("ACCOUNT_CONNECT_PRINCIPAL_AWS_US_GOV", partitions::GOV_PRINCIPAL.into()),
        ("ACCOUNT_CONNECT_STS_ENDPOINT_AWS_US_GOV", gov.clone()),
        ("ACCOUNT_CONNECT_IAM_ENDPOINT_AWS_US_GOV", gov),
    ]);
    let app = common::TestApp::at(&server.base);
    let token = common::token("org-m2", None);
    let c = partitions::create(&app, &token, "act-m2", p).await;
    let arn = partitions::role_for(&partitions::iam_in(p).await, &c).await;
    let (status, err) = app.connect_role(&token, c["id"].as_str().unwrap(), &arn).await;
    assert_eq!(status, 422, "{err}");

    let lines = server.emf_lines_from("PartitionCredentialsRejected").await;
    let rejected: Vec<&Value> = lines
        .iter()
        .filter(|l| l.get("PartitionCredentialsRejected").is_some())
        .collect();
    // Refused, read again once, refused again: one line a refusal seen.
    assert!(!rejected.is_empty() && rejected.len() <= 2, "{lines:?}");
    for l in &rejected {
        assert_eq!(l["Partition"], "aws-us-gov", "{l}");
        let m = &l["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(
            (&m["Namespace"], &m["Metrics"][0]["Name"], &m["Dimensions"]),
            (
                &json!("AccountConnect"),
                &json!("PartitionCredentialsRejected"),
                &json!([["Partition"]])
            ),
            "{l}"
        );
        assert_eq!(l["PartitionCredentialsRejected"], 1);
    }
}
