//! The policy-evaluation core at its worst: the hostile wildcard that made
//! the old matcher backtrack, a trust audit (rendered and hostile), and the
//! permission check of Spot's default policy against itself.

use account_connect::domain::Partition;
use account_connect::iam::wildcard::{matches, overlaps, Case};
use account_connect::policy::{render, Permissions, Selection};
use account_connect::verify::evaluate::Evaluator;
use account_connect::verify::trust::{audit, OurIds};
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::{json, Value};
use std::hint::black_box;

const VENDOR: &str = "arn:aws:iam::922761411349:root";
const ID: &str = "spot-0123456789abcdef0123456789abcdef01234567";

fn trust(extra: Vec<Value>) -> Value {
    let mut sts = vec![
        json!({"Effect": "Allow", "Principal": {"AWS": VENDOR}, "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"sts:ExternalId": ID}}}),
    ];
    sts.extend(extra);
    json!({"Version": "2012-10-17", "Statement": sts})
}

fn bench(c: &mut Criterion) {
    let hostile = format!("ec2:{}Z", "*".repeat(40));
    let text = format!("ec2:{}", "Describe".repeat(16));
    c.bench_function("wildcard_worst_case_match", |b| {
        b.iter(|| matches(black_box(&hostile), black_box(&text), Case::Insensitive))
    });
    c.bench_function("wildcard_worst_case_overlap", |b| {
        b.iter(|| overlaps(black_box(&hostile), black_box("ec2:Describe*"), Case::Insensitive))
    });

    let ids = OurIds {
        current: ID,
        pending: None,
        previous: &[],
    };
    let rendered = trust(Vec::new());
    c.bench_function("trust_audit_rendered", |b| {
        b.iter(|| audit(black_box(&rendered), VENDOR, "123456789012", &ids))
    });
    // Two statements trusting others under conditions on caller-chosen keys,
    // a guarding Deny and a hostile action pattern: the enumeration at work.
    let busy = trust(vec![
        json!({"Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::111111111111:root", "arn:aws:iam::222222222222:role/x"]},
            "Action": ["sts:AssumeRole", hostile.clone()],
            "Condition": {"StringLike": {"sts:ExternalId": ["a*", "b?c*"]}, "IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.0.2.0/24"]},
                          "StringEquals": {"sts:RoleSessionName": ["ops", "ci"]}}}),
        json!({"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "sts:*",
            "Condition": {"StringNotEquals": {"sts:ExternalId": ID}, "Bool": {"aws:MultiFactorAuthPresent": "false"}}}),
    ]);
    c.bench_function("trust_audit_busy", |b| {
        b.iter(|| audit(black_box(&busy), VENDOR, "123456789012", &ids))
    });

    // Every (action, resource) of the default policy against the policy itself.
    let sel = Selection::resolve(Partition::Aws, &Permissions::Default).unwrap();
    let docs: Vec<Value> = render(&sel)
        .unwrap()
        .policies
        .iter()
        .map(|p| serde_json::to_value(&p.document).unwrap())
        .collect();
    let pairs: Vec<(String, String)> = docs
        .iter()
        .flat_map(|d| d["Statement"].as_array().unwrap().iter())
        .flat_map(|s| {
            let res: Vec<String> = s["Resource"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap().to_owned())
                .collect();
            s["Action"].as_array().unwrap().iter().flat_map(move |a| {
                let a = a.as_str().unwrap().to_owned();
                res.clone().into_iter().map(move |r| (a.clone(), r))
            })
        })
        .collect();
    c.bench_function(&format!("permissions_default_policy_{}_pairs", pairs.len()), |b| {
        b.iter(|| {
            let e = Evaluator::new(black_box(&docs));
            pairs
                .iter()
                .filter(|(a, r)| e.verdict(a, r) != account_connect::verify::evaluate::Verdict::Allowed)
                .count()
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
