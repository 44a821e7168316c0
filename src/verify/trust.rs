//! The trust-policy audit: the vendor may assume the role only with this
//! connection's external ID (AWS's confused-deputy guidance). Read from the
//! role itself, so the customer's CloudTrail gets no failed AssumeRole probe.

use super::report::{Check, CheckId};
use serde_json::Value;

/// The IDs that belong to this connection.
pub struct OurIds<'a> {
    pub current: &'a str,
    pub pending: Option<&'a str>,
    /// Earlier IDs of this connection, replaced by a rotation.
    pub previous: &'a [String],
}

pub struct TrustAudit {
    pub check: Check,
    pub pending_found: bool,
}

fn list(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect(),
        _ => Vec::new(),
    }
}

/// IAM wildcard match, case-insensitive (actions compare without case).
pub fn glob(pattern: &str, value: &str) -> bool {
    fn m(p: &[u8], v: &[u8]) -> bool {
        match (p.first(), v.first()) {
            (None, None) => true,
            (Some(b'*'), _) => m(&p[1..], v) || (!v.is_empty() && m(p, &v[1..])),
            (Some(b'?'), Some(_)) => m(&p[1..], &v[1..]),
            (Some(a), Some(b)) if a.eq_ignore_ascii_case(b) => m(&p[1..], &v[1..]),
            _ => false,
        }
    }
    m(pattern.as_bytes(), value.as_bytes())
}

fn vendor_account(principal: &str) -> &str {
    principal.split(':').nth(4).unwrap_or(principal)
}

/// Whether one `Principal.AWS` entry names the vendor (or anyone).
fn names_vendor(entry: &str, vendor_account: &str) -> bool {
    entry == "*" || entry == vendor_account || entry.split(':').nth(4) == Some(vendor_account)
}

/// Decodes a policy as IAM returns it: URL-encoded, or (moto) plain.
pub fn decode_policy(raw: &str) -> Result<Value, String> {
    let text = if raw.trim_start().starts_with('{') {
        raw.to_owned()
    } else {
        percent_encoding::percent_decode_str(&raw.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    serde_json::from_str(&text).map_err(|e| format!("the policy document does not parse: {e}"))
}

fn statements(doc: &Value) -> Vec<&Value> {
    match &doc["Statement"] {
        Value::Array(a) => a.iter().collect(),
        v @ Value::Object(_) => vec![v],
        _ => Vec::new(),
    }
}

pub fn audit(doc: &Value, vendor_principal: &str, ids: &OurIds) -> TrustAudit {
    let fix = format!(
        "Edit the role's trust relationship so that its only statement for {vendor_principal} reads \
         \"Condition\": {{\"StringEquals\": {{\"sts:ExternalId\": \"{}\"}}}}.",
        ids.pending.unwrap_or(ids.current)
    );
    let fail = |msg: String| TrustAudit {
        check: Check::failed(CheckId::TrustPolicy, msg, fix.clone()),
        pending_found: false,
    };
    let vendor = vendor_account(vendor_principal);
    let mut trusted_elsewhere = Vec::new();
    let mut vendor_statements = 0;
    let mut pending_found = false;
    let mut warnings = Vec::new();

    for s in statements(doc) {
        if s["Effect"] != "Allow" || !list(&s["Action"]).iter().any(|a| glob(a, "sts:AssumeRole")) {
            continue;
        }
        let principals: Vec<String> = match &s["Principal"] {
            Value::String(p) => vec![p.clone()],
            Value::Object(o) => o.get("AWS").map(list).unwrap_or_default(),
            _ => Vec::new(),
        };
        if principals.iter().any(|p| p == "*") {
            return fail(format!(
                "A statement lets any AWS principal (\"*\") assume the role. The external ID is not a secret, so this lets others in; trust only {vendor_principal}."
            ));
        }
        if !principals.iter().any(|p| names_vendor(p, vendor)) {
            trusted_elsewhere.extend(principals);
            continue;
        }
        vendor_statements += 1;
        let Some(conditions) = s["Condition"].as_object() else {
            return fail(format!(
                "{vendor_principal} may assume the role without any external ID (confused deputy): anyone using the vendor's account could reach yours."
            ));
        };
        let mut values = Vec::new();
        for (op, block) in conditions {
            let Some(block) = block.as_object() else { continue };
            for (key, v) in block {
                if !key.eq_ignore_ascii_case("sts:ExternalId") {
                    continue;
                }
                let vals = list(v);
                match op.as_str() {
                    "StringEquals" | "StringEqualsIgnoreCase" => values.extend(vals),
                    "StringLike" => {
                        if vals.iter().any(|x| x.contains(['*', '?'])) {
                            return fail(format!(
                                "The external ID condition uses a wildcard (StringLike {:?}), so any external ID matching it works.",
                                vals.join(", ")
                            ));
                        }
                        warnings.push(
                            "the external ID is compared with StringLike; StringEquals is the exact comparison"
                                .to_owned(),
                        );
                        values.extend(vals);
                    }
                    other => {
                        return fail(format!(
                            "The external ID is checked with {other}, which does not require this exact ID."
                        ));
                    }
                }
            }
        }
        if values.is_empty() {
            return fail(format!(
                "{vendor_principal} may assume the role without the sts:ExternalId condition (confused deputy)."
            ));
        }
        for v in &values {
            let ours = v == ids.current || Some(v.as_str()) == ids.pending;
            if Some(v.as_str()) == ids.pending {
                pending_found = true;
            }
            if !ours {
                if ids.previous.contains(v) {
                    warnings.push(format!(
                        "the trust policy still accepts the retired external ID {v}; remove it"
                    ));
                } else {
                    return fail(format!(
                        "The trust policy requires the external ID {v:?}, which is not this connection's ({}).",
                        ids.pending.unwrap_or(ids.current)
                    ));
                }
            }
        }
        if !values
            .iter()
            .any(|v| v == ids.current || Some(v.as_str()) == ids.pending)
        {
            return fail("The trust policy does not hold this connection's external ID.".to_owned());
        }
    }
    if vendor_statements == 0 {
        let who = if trusted_elsewhere.is_empty() {
            "no AWS account".to_owned()
        } else {
            trusted_elsewhere.join(", ")
        };
        return fail(format!(
            "The role does not trust the vendor account {vendor} (it trusts {who}); in \"Another AWS account\" enter {vendor}."
        ));
    }
    let check = if warnings.is_empty() {
        Check::passed(
            CheckId::TrustPolicy,
            format!("Only {vendor_principal} may assume the role, and only with this connection's external ID."),
        )
    } else {
        Check::warning(
            CheckId::TrustPolicy,
            format!("The trust policy is safe, but {}.", warnings.join("; ")),
            fix.clone(),
        )
    };
    TrustAudit { check, pending_found }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::report::CheckStatus;
    use serde_json::json;

    const VENDOR: &str = "arn:aws:iam::922761411349:root";

    fn ids() -> OurIds<'static> {
        OurIds {
            current: "ext-1",
            pending: None,
            previous: &[],
        }
    }

    fn doc(principal: Value, condition: Option<Value>) -> Value {
        let mut s = json!({"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"});
        if let Some(c) = condition {
            s["Condition"] = c;
        }
        json!({"Version": "2012-10-17", "Statement": [s]})
    }

    fn status(d: &Value) -> CheckStatus {
        audit(d, VENDOR, &ids()).check.status
    }

    #[test]
    fn the_right_policy_passes() {
        let d = doc(
            json!({"AWS": VENDOR}),
            Some(json!({"StringEquals": {"sts:ExternalId": "ext-1"}})),
        );
        assert_eq!(status(&d), CheckStatus::Passed);
        let by_account = doc(
            json!({"AWS": "922761411349"}),
            Some(json!({"StringEquals": {"sts:ExternalId": "ext-1"}})),
        );
        assert_eq!(status(&by_account), CheckStatus::Passed);
    }

    #[test]
    fn every_unsafe_shape_fails() {
        let cases = [
            doc(json!({"AWS": VENDOR}), None),
            doc(
                json!({"AWS": VENDOR}),
                Some(json!({"StringEquals": {"sts:ExternalId": "other"}})),
            ),
            doc(
                json!({"AWS": VENDOR}),
                Some(json!({"StringLike": {"sts:ExternalId": "ext-*"}})),
            ),
            doc(
                json!({"AWS": VENDOR}),
                Some(json!({"StringEquals": {"aws:SourceAccount": "1"}})),
            ),
            doc(
                json!({"AWS": VENDOR}),
                Some(json!({"StringNotEquals": {"sts:ExternalId": "x"}})),
            ),
            doc(json!("*"), Some(json!({"StringEquals": {"sts:ExternalId": "ext-1"}}))),
            doc(
                json!({"AWS": "*"}),
                Some(json!({"StringEquals": {"sts:ExternalId": "ext-1"}})),
            ),
            doc(
                json!({"AWS": "arn:aws:iam::111111111111:root"}),
                Some(json!({"StringEquals": {"sts:ExternalId": "ext-1"}})),
            ),
            doc(
                json!({"AWS": VENDOR}),
                Some(json!({"StringEquals": {"sts:ExternalId": ["ext-1", "someone-else"]}})),
            ),
        ];
        for d in cases {
            let a = audit(&d, VENDOR, &ids());
            assert_eq!(a.check.status, CheckStatus::Failed, "{d}");
            assert!(a.check.remediation.as_deref().unwrap().contains("ext-1"));
        }
    }

    #[test]
    fn a_second_unconditioned_statement_fails_the_whole_policy() {
        let d = json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": VENDOR}, "Action": "sts:AssumeRole", "Condition": {"StringEquals": {"sts:ExternalId": "ext-1"}}},
            {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::922761411349:role/any"}, "Action": "sts:*"}
        ]});
        assert_eq!(status(&d), CheckStatus::Failed);
    }

    #[test]
    fn the_pending_id_is_found_and_retired_ids_warn() {
        let previous = vec!["ext-0".to_owned()];
        let ids = OurIds {
            current: "ext-1",
            pending: Some("ext-2"),
            previous: &previous,
        };
        let d = doc(
            json!({"AWS": VENDOR}),
            Some(json!({"StringEquals": {"sts:ExternalId": ["ext-1", "ext-2"]}})),
        );
        let a = audit(&d, VENDOR, &ids);
        assert!(a.pending_found);
        assert_eq!(a.check.status, CheckStatus::Passed);
        let d = doc(
            json!({"AWS": VENDOR}),
            Some(json!({"StringEquals": {"sts:ExternalId": ["ext-0", "ext-1"]}})),
        );
        let a = audit(&d, VENDOR, &ids);
        assert!(!a.pending_found);
        assert_eq!(a.check.status, CheckStatus::Warning);
    }

    #[test]
    fn url_encoded_documents_decode() {
        let raw = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%5D%7D";
        assert_eq!(decode_policy(raw).unwrap()["Version"], "2012-10-17");
        assert_eq!(decode_policy("{\"a\":1}").unwrap()["a"], 1);
    }

    #[test]
    fn glob_matches_like_iam() {
        assert!(glob("sts:*", "sts:AssumeRole"));
        assert!(glob("STS:assumerole", "sts:AssumeRole"));
        assert!(glob("*", "sts:AssumeRole"));
        assert!(glob("ec2:Describe?nstances", "ec2:DescribeInstances"));
        assert!(!glob("sts:AssumeRoleWith*", "sts:AssumeRole"));
    }
}
