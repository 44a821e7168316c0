use super::ExternalId;
use serde_json::{json, Value};

/// The role's trust policy: only the vendor principal, only with this
/// connection's external ID(s). During a rotation both IDs are listed, so the
/// role keeps working until the new one is verified.
pub fn trust_policy(principal: &str, current: &ExternalId, pending: Option<&ExternalId>) -> Value {
    let external_id = match pending {
        Some(p) => json!([current.as_str(), p.as_str()]),
        None => json!(current.as_str()),
    };
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "SpotAssumeRoleWithExternalId",
            "Effect": "Allow",
            "Principal": {"AWS": principal},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:ExternalId": external_id}}
        }]
    })
}
