//! Condition blocks and their operators, by IAM's rules: blocks and keys AND,
//! the values of one key OR; keys compare without case, values as the
//! operator says; an absent key fails a positive operator and satisfies a
//! negated one; `…IfExists`, `ForAnyValue:` and `ForAllValues:` as IAM
//! defines them. An operator or a policy variable the core does not know
//! evaluates to `Tri::Unknown`, never to a silent pass.

use super::context::Context;
use super::tri::Tri;
use super::values::{strings, ParseError};
use super::wildcard::{self, Case};
use serde_json::Value;
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    NumericEquals,
    NumericNotEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateNotEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    Bool,
    BinaryEquals,
    IpAddress,
    NotIpAddress,
    ArnEquals,
    ArnLike,
    ArnNotEquals,
    ArnNotLike,
    Null,
}

const BASES: &[(&str, Base)] = &[
    ("StringEquals", Base::StringEquals),
    ("StringNotEquals", Base::StringNotEquals),
    ("StringEqualsIgnoreCase", Base::StringEqualsIgnoreCase),
    ("StringNotEqualsIgnoreCase", Base::StringNotEqualsIgnoreCase),
    ("StringLike", Base::StringLike),
    ("StringNotLike", Base::StringNotLike),
    ("NumericEquals", Base::NumericEquals),
    ("NumericNotEquals", Base::NumericNotEquals),
    ("NumericLessThan", Base::NumericLessThan),
    ("NumericLessThanEquals", Base::NumericLessThanEquals),
    ("NumericGreaterThan", Base::NumericGreaterThan),
    ("NumericGreaterThanEquals", Base::NumericGreaterThanEquals),
    ("DateEquals", Base::DateEquals),
    ("DateNotEquals", Base::DateNotEquals),
    ("DateLessThan", Base::DateLessThan),
    ("DateLessThanEquals", Base::DateLessThanEquals),
    ("DateGreaterThan", Base::DateGreaterThan),
    ("DateGreaterThanEquals", Base::DateGreaterThanEquals),
    ("Bool", Base::Bool),
    ("BinaryEquals", Base::BinaryEquals),
    ("IpAddress", Base::IpAddress),
    ("NotIpAddress", Base::NotIpAddress),
    ("ArnEquals", Base::ArnEquals),
    ("ArnLike", Base::ArnLike),
    ("ArnNotEquals", Base::ArnNotEquals),
    ("ArnNotLike", Base::ArnNotLike),
    ("Null", Base::Null),
];

impl Base {
    /// The positive operator a negated one inverts.
    fn positive(self) -> Option<Base> {
        Some(match self {
            Base::StringNotEquals => Base::StringEquals,
            Base::StringNotEqualsIgnoreCase => Base::StringEqualsIgnoreCase,
            Base::StringNotLike => Base::StringLike,
            Base::NumericNotEquals => Base::NumericEquals,
            Base::DateNotEquals => Base::DateEquals,
            Base::NotIpAddress => Base::IpAddress,
            Base::ArnNotEquals => Base::ArnEquals,
            Base::ArnNotLike => Base::ArnLike,
            _ => return None,
        })
    }
    pub fn is_like(self) -> bool {
        matches!(
            self,
            Base::StringLike | Base::StringNotLike | Base::ArnLike | Base::ArnNotLike
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetQualifier {
    None,
    ForAnyValue,
    ForAllValues,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operator {
    Known {
        base: Base,
        set: SetQualifier,
        if_exists: bool,
    },
    Unsupported(String),
}

impl Operator {
    pub fn parse(name: &str) -> Operator {
        let (set, rest) = if let Some(r) = name.strip_prefix("ForAnyValue:") {
            (SetQualifier::ForAnyValue, r)
        } else if let Some(r) = name.strip_prefix("ForAllValues:") {
            (SetQualifier::ForAllValues, r)
        } else {
            (SetQualifier::None, name)
        };
        let (rest, if_exists) = match rest.strip_suffix("IfExists") {
            Some(r) => (r, true),
            None => (rest, false),
        };
        match BASES.iter().find(|(n, _)| *n == rest) {
            // IAM refuses Null…IfExists.
            Some((_, Base::Null)) if if_exists => Operator::Unsupported(name.to_owned()),
            Some((_, base)) => Operator::Known {
                base: *base,
                set,
                if_exists,
            },
            None => Operator::Unsupported(name.to_owned()),
        }
    }
}

/// One key of one operator block, with its alternative values.
#[derive(Debug, Clone)]
pub struct Clause {
    pub operator: Operator,
    pub operator_name: String,
    pub key: String,
    /// `key` lower-cased once: keys compare without case.
    pub key_lower: String,
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Condition {
    pub clauses: Vec<Clause>,
}

impl Condition {
    pub fn parse(v: &Value, unsupported: &mut Vec<String>) -> Result<Condition, ParseError> {
        let blocks = v
            .as_object()
            .ok_or_else(|| ParseError("Condition must be an object of operator blocks".into()))?;
        let mut clauses = Vec::new();
        for (op_name, block) in blocks {
            let keys = block
                .as_object()
                .ok_or_else(|| ParseError(format!("the {op_name} condition block must be an object of keys")))?;
            let operator = Operator::parse(op_name);
            for (key, vals) in keys {
                let values = strings(vals, &format!("{op_name} {key}"))?;
                if let Operator::Unsupported(name) = &operator {
                    unsupported.push(format!("the condition operator {name}"));
                } else if let Some(bad) = values.iter().find(|v| unparseable(&operator, v)) {
                    unsupported.push(format!("the value {bad:?} of {op_name} {key}"));
                }
                if let Some(v) = values.iter().find(|v| v.contains("${")) {
                    unsupported.push(format!("the policy variable in {op_name} {key} {v:?}"));
                }
                clauses.push(Clause {
                    operator: operator.clone(),
                    operator_name: op_name.clone(),
                    key: key.clone(),
                    key_lower: key.to_ascii_lowercase(),
                    values,
                });
            }
        }
        Ok(Condition { clauses })
    }

    /// All clauses AND.
    pub fn eval(&self, ctx: &Context) -> Tri {
        self.clauses.iter().fold(Tri::True, |acc, c| acc.and(c.eval(ctx)))
    }
}

fn unparseable(op: &Operator, v: &str) -> bool {
    let Operator::Known { base, .. } = op else { return false };
    match base {
        Base::NumericEquals
        | Base::NumericNotEquals
        | Base::NumericLessThan
        | Base::NumericLessThanEquals
        | Base::NumericGreaterThan
        | Base::NumericGreaterThanEquals => v.parse::<f64>().is_err(),
        Base::DateEquals
        | Base::DateNotEquals
        | Base::DateLessThan
        | Base::DateLessThanEquals
        | Base::DateGreaterThan
        | Base::DateGreaterThanEquals => date(v).is_none(),
        Base::IpAddress | Base::NotIpAddress => Cidr::parse(v).is_none(),
        Base::Bool | Base::Null => !v.eq_ignore_ascii_case("true") && !v.eq_ignore_ascii_case("false"),
        _ => false,
    }
}

impl Clause {
    pub fn eval(&self, ctx: &Context) -> Tri {
        let Operator::Known { base, set, if_exists } = self.operator else {
            return Tri::Unknown;
        };
        if self.values.iter().any(|v| v.contains("${")) {
            return Tri::Unknown;
        }
        if ctx.unknown_lower(&self.key_lower) {
            return Tri::Unknown;
        }
        let present = ctx.get_lower(&self.key_lower);
        if base == Base::Null {
            let absent = present.is_none_or(|v| v.is_empty());
            return Tri::from(self.values.iter().any(|v| v.eq_ignore_ascii_case("true") == absent));
        }
        let (positive, negated) = match base.positive() {
            Some(p) => (p, true),
            None => (base, false),
        };
        let Some(request) = present.filter(|v| !v.is_empty()) else {
            return Tri::from(match set {
                SetQualifier::ForAllValues => true,
                SetQualifier::ForAnyValue => if_exists,
                SetQualifier::None => if_exists || negated,
            });
        };
        // One request value against the policy's alternatives.
        let one = |r: &str| -> Tri {
            let mut any = Tri::False;
            for p in &self.values {
                any = any.or(compare(positive, p, r));
            }
            if negated {
                any.not()
            } else {
                any
            }
        };
        match set {
            SetQualifier::ForAllValues => request.iter().fold(Tri::True, |acc, r| acc.and(one(r))),
            SetQualifier::ForAnyValue => request.iter().fold(Tri::False, |acc, r| acc.or(one(r))),
            SetQualifier::None if negated => {
                // Negated: no request value matches any policy value.
                request.iter().fold(Tri::True, |acc, r| acc.and(one(r)))
            }
            SetQualifier::None => request.iter().fold(Tri::False, |acc, r| acc.or(one(r))),
        }
    }
}

/// Whether request value `r` satisfies positive operator `op` with policy value `p`.
fn compare(op: Base, p: &str, r: &str) -> Tri {
    let cmp_num = |f: fn(f64, f64) -> bool| match (r.parse::<f64>(), p.parse::<f64>()) {
        (Ok(a), Ok(b)) => Tri::from(f(a, b)),
        (Err(_), Ok(_)) => Tri::False,
        _ => Tri::Unknown,
    };
    let cmp_date = |f: fn(i128, i128) -> bool| match (date(r), date(p)) {
        (Some(a), Some(b)) => Tri::from(f(a, b)),
        (None, Some(_)) => Tri::False,
        _ => Tri::Unknown,
    };
    match op {
        Base::StringEquals | Base::BinaryEquals => Tri::from(p == r),
        Base::StringEqualsIgnoreCase => Tri::from(p.to_lowercase() == r.to_lowercase()),
        Base::StringLike => Tri::from(wildcard::matches(p, r, Case::Sensitive)),
        Base::NumericEquals => cmp_num(|a, b| a == b),
        Base::NumericLessThan => cmp_num(|a, b| a < b),
        Base::NumericLessThanEquals => cmp_num(|a, b| a <= b),
        Base::NumericGreaterThan => cmp_num(|a, b| a > b),
        Base::NumericGreaterThanEquals => cmp_num(|a, b| a >= b),
        Base::DateEquals => cmp_date(|a, b| a == b),
        Base::DateLessThan => cmp_date(|a, b| a < b),
        Base::DateLessThanEquals => cmp_date(|a, b| a <= b),
        Base::DateGreaterThan => cmp_date(|a, b| a > b),
        Base::DateGreaterThanEquals => cmp_date(|a, b| a >= b),
        Base::Bool => Tri::from(p.eq_ignore_ascii_case(r)),
        Base::IpAddress => match (Cidr::parse(p), r.parse::<IpAddr>()) {
            (Some(c), Ok(ip)) => Tri::from(c.contains(ip)),
            (Some(_), Err(_)) => Tri::False,
            _ => Tri::Unknown,
        },
        Base::ArnEquals | Base::ArnLike => Tri::from(arn_like(p, r)),
        // Negated operators never reach here (see `Base::positive`).
        _ => Tri::Unknown,
    }
}

/// ARNs compare component by component (six, split at `:`), each with wildcards.
pub fn arn_like(pattern: &str, arn: &str) -> bool {
    let p: Vec<&str> = pattern.splitn(6, ':').collect();
    let a: Vec<&str> = arn.splitn(6, ':').collect();
    p.len() == a.len() && p.iter().zip(&a).all(|(p, a)| wildcard::matches(p, a, Case::Sensitive))
}

/// Seconds since the epoch (as i128 nanoseconds), from an epoch number or ISO 8601.
pub(crate) fn date(v: &str) -> Option<i128> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(secs) = v.parse::<i64>() {
        return Some(i128::from(secs) * 1_000_000_000);
    }
    if let Ok(t) = time::OffsetDateTime::parse(v, &Rfc3339) {
        return Some(t.unix_timestamp_nanos());
    }
    let d = time::Date::parse(v, &time::macros::format_description!("[year]-[month]-[day]")).ok()?;
    Some(d.midnight().assume_utc().unix_timestamp_nanos())
}

/// An address or a CIDR block.
pub(crate) struct Cidr {
    net: IpAddr,
    bits: u8,
}

impl Cidr {
    pub(crate) fn parse(s: &str) -> Option<Cidr> {
        let (addr, bits) = match s.split_once('/') {
            Some((a, b)) => (a.parse::<IpAddr>().ok()?, Some(b.parse::<u8>().ok()?)),
            None => (s.parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let bits = bits.unwrap_or(max);
        (bits <= max).then_some(Cidr { net: addr, bits })
    }
    fn contains(&self, ip: IpAddr) -> bool {
        let mask = |bits: u8, width: u32| -> u128 {
            if bits == 0 {
                0
            } else {
                (!0u128 << (width - u32::from(bits))) & (!0u128 >> (128 - width))
            }
        };
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(i)) => {
                let m = mask(self.bits, 32);
                (u128::from(u32::from(n)) & m) == (u128::from(u32::from(i)) & m)
            }
            (IpAddr::V6(n), IpAddr::V6(i)) => {
                let m = mask(self.bits, 128);
                (u128::from(n) & m) == (u128::from(i) & m)
            }
            _ => false,
        }
    }
    /// An address inside the block and one outside it (for probing).
    pub(crate) fn probes(&self) -> [String; 2] {
        let outside = match self.net {
            IpAddr::V4(n) => std::net::Ipv4Addr::from(u32::from(n) ^ 0x8000_0000).to_string(),
            IpAddr::V6(n) => std::net::Ipv6Addr::from(u128::from(n) ^ (1u128 << 127)).to_string(),
        };
        [self.net.to_string(), outside]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cond(v: Value) -> Condition {
        let mut notes = Vec::new();
        Condition::parse(&v, &mut notes).unwrap()
    }

    fn ctx(pairs: &[(&str, &[&str])]) -> Context {
        let mut c = Context::default();
        for (k, v) in pairs {
            c.set(k, v.iter().map(|s| s.to_string()).collect());
        }
        c
    }

    #[test]
    fn absent_keys_follow_the_operator() {
        let none = Context::default();
        let t = |v: Value| cond(v).eval(&none);
        assert_eq!(t(json!({"StringEquals": {"sts:ExternalId": "x"}})), Tri::False);
        assert_eq!(t(json!({"StringNotEquals": {"sts:ExternalId": "x"}})), Tri::True);
        assert_eq!(t(json!({"StringEqualsIfExists": {"sts:ExternalId": "x"}})), Tri::True);
        assert_eq!(
            t(json!({"ForAllValues:StringEquals": {"sts:ExternalId": "x"}})),
            Tri::True
        );
        assert_eq!(
            t(json!({"ForAnyValue:StringEquals": {"sts:ExternalId": "x"}})),
            Tri::False
        );
        assert_eq!(t(json!({"Null": {"sts:ExternalId": "true"}})), Tri::True);
        assert_eq!(t(json!({"Null": {"sts:ExternalId": "false"}})), Tri::False);
        assert_eq!(t(json!({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}})), Tri::True);
        assert_eq!(
            t(json!({"NumericLessThan": {"aws:MultiFactorAuthAge": "3600"}})),
            Tri::False
        );
    }

    #[test]
    fn present_keys_compare_by_the_operator() {
        let c = ctx(&[
            ("sts:externalid", &["Ext-1"]),
            ("aws:SourceIp", &["10.1.2.3"]),
            ("aws:CurrentTime", &["2026-01-02T00:00:00Z"]),
        ]);
        let t = |v: Value| cond(v).eval(&c);
        assert_eq!(
            t(json!({"StringEquals": {"STS:EXTERNALID": ["a", "Ext-1"]}})),
            Tri::True
        );
        assert_eq!(t(json!({"StringEquals": {"sts:ExternalId": "ext-1"}})), Tri::False);
        assert_eq!(
            t(json!({"StringEqualsIgnoreCase": {"sts:ExternalId": "EXT-1"}})),
            Tri::True
        );
        assert_eq!(t(json!({"StringLike": {"sts:ExternalId": "Ext-*"}})), Tri::True);
        assert_eq!(t(json!({"StringNotLike": {"sts:ExternalId": "Ext-*"}})), Tri::False);
        assert_eq!(
            t(json!({"StringEquals": {"sts:ExternalId": "Ext-1"}, "StringLike": {"sts:ExternalId": "E*"}})),
            Tri::True
        );
        assert_eq!(t(json!({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}})), Tri::True);
        assert_eq!(t(json!({"IpAddress": {"aws:SourceIp": "11.0.0.0/8"}})), Tri::False);
        assert_eq!(t(json!({"DateLessThan": {"aws:CurrentTime": "2027-01-01"}})), Tri::True);
        assert_eq!(
            t(json!({"DateGreaterThan": {"aws:CurrentTime": "1767225600"}})),
            Tri::True
        );
        assert_eq!(t(json!({"ArnLike": {"sts:ExternalId": "arn:*"}})), Tri::False);
    }

    #[test]
    fn unknown_operators_and_variables_are_unknown() {
        let mut notes = Vec::new();
        let c = Condition::parse(&json!({"StringSortOf": {"a": "b"}}), &mut notes).unwrap();
        assert_eq!(c.eval(&Context::default()), Tri::Unknown);
        assert_eq!(notes, ["the condition operator StringSortOf"]);
        let c = cond(json!({"StringEquals": {"sts:ExternalId": "${aws:username}"}}));
        assert_eq!(c.eval(&ctx(&[("sts:ExternalId", &["x"])])), Tri::Unknown);
        assert!(matches!(Operator::parse("NullIfExists"), Operator::Unsupported(_)));
    }

    #[test]
    fn sets_of_values() {
        let c = ctx(&[("aws:TagKeys", &["a", "b"])]);
        assert_eq!(
            cond(json!({"ForAllValues:StringEquals": {"aws:TagKeys": ["a", "b", "c"]}})).eval(&c),
            Tri::True
        );
        assert_eq!(
            cond(json!({"ForAllValues:StringEquals": {"aws:TagKeys": ["a"]}})).eval(&c),
            Tri::False
        );
        assert_eq!(
            cond(json!({"ForAnyValue:StringEquals": {"aws:TagKeys": ["b"]}})).eval(&c),
            Tri::True
        );
    }
}
