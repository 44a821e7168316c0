//! A CloudFormation StackId, as a custom-resource request carries it:
//! `arn:<partition>:cloudformation:<region>:<account>:stack/<name>/<uuid>`.
//! Its region is a real region of its partition (`Region`), so nothing is
//! ever derived from a region AWS does not have.

use crate::domain::{AccountId, Partition, Region};
use std::str::FromStr;

/// Longest StackId read: real ones are well under 300 characters.
const MAX_LEN: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackArn {
    pub partition: Partition,
    pub region: Region,
    pub account: AccountId,
    pub name: String,
}

/// `us-east-1`, `us-gov-west-1`, `cn-north-1`, `ap-southeast-5`: letters,
/// dash-separated words, a number.
fn is_region(r: &str) -> bool {
    let parts: Vec<&str> = r.split('-').collect();
    parts.len() >= 3
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 12 && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].len() <= 2
        && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit())
}

/// The value is not a CloudFormation StackId.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotAStackId {
    /// Not the shape of a StackId at all.
    #[error(
        "{0:.80?} is not a CloudFormation StackId (arn:<partition>:cloudformation:<region>:<account>:stack/<name>/<id>)"
    )]
    Malformed(String),
    /// A StackId's shape, but its region is not one of its partition's
    /// (`us-east-9`, or `us-gov-west-1` in a commercial StackId).
    #[error("the StackId's region {region:.40?} is not a region of {}", partition.display_name())]
    UnknownRegion { partition: Partition, region: String },
}

impl FromStr for StackArn {
    type Err = NotAStackId;
    fn from_str(s: &str) -> Result<Self, NotAStackId> {
        let bad = || NotAStackId::Malformed(s.to_owned());
        if s.len() > MAX_LEN {
            return Err(bad());
        }
        let parts: Vec<&str> = s.splitn(6, ':').collect();
        let [arn, partition, service, region, account, resource] = parts[..] else {
            return Err(bad());
        };
        let partition: Partition = partition.parse().map_err(|_| bad())?;
        if arn != "arn" || service != "cloudformation" || !is_region(region) {
            return Err(bad());
        }
        let account: AccountId = account.parse().map_err(|_| bad())?;
        let mut res = resource.split('/');
        let (Some("stack"), Some(name), Some(id), None) = (res.next(), res.next(), res.next(), res.next()) else {
            return Err(bad());
        };
        let name_ok = name.starts_with(|c: char| c.is_ascii_alphabetic())
            && name.len() <= 128
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        let id_ok = !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
        if !name_ok || !id_ok {
            return Err(bad());
        }
        let region = Region::in_partition(partition, region).map_err(|_| NotAStackId::UnknownRegion {
            partition,
            region: region.to_owned(),
        })?;
        Ok(StackArn {
            partition,
            region,
            account,
            name: name.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_partition_and_refuses_the_rest() {
        let s: StackArn = "arn:aws:cloudformation:us-east-1:123456789012:stack/spotinst-iam-stack-0123/3f1c6a20-c3a4-11f0-9d2e-0affd41e6b35"
            .parse()
            .unwrap();
        assert_eq!(
            (s.partition, s.region.as_str(), s.account.as_str(), s.name.as_str()),
            (Partition::Aws, "us-east-1", "123456789012", "spotinst-iam-stack-0123")
        );
        let gov: StackArn = "arn:aws-us-gov:cloudformation:us-gov-west-1:123456789012:stack/s/1-2"
            .parse()
            .unwrap();
        assert_eq!(gov.partition, Partition::AwsUsGov);
        let cn: StackArn = "arn:aws-cn:cloudformation:cn-north-1:123456789012:stack/s/1-2"
            .parse()
            .unwrap();
        assert_eq!(cn.partition, Partition::AwsCn);
        for bad in [
            "",
            "arn:aws:cloudformation:us-east-1:123456789012:stack/s",
            "arn:aws:cloudformation:us-east-1:123456789012:stack/s/1/2",
            "arn:aws:sns:us-east-1:123456789012:stack/s/1",
            "arn:aws:cloudformation:cn-north-1:123456789012:stack/s/1",
            "arn:aws-cn:cloudformation:us-east-1:123456789012:stack/s/1",
            "arn:aws:cloudformation:evil.example.com:123456789012:stack/s/1",
            "arn:aws:cloudformation:us-east-1:12345:stack/s/1",
            "arn:aws:cloudformation:us-east-1:123456789012:stack/s.x/1",
            "arn:aws:cloudformation:us-east-1:123456789012:stack/s/x",
        ] {
            assert!(bad.parse::<StackArn>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_region_its_partition_does_not_have_is_told_apart() {
        for (partition, region) in [
            (Partition::Aws, "us-east-9"),
            (Partition::Aws, "us-gov-west-1"),
            (Partition::Aws, "cn-north-1"),
            (Partition::AwsUsGov, "us-east-1"),
            (Partition::AwsUsGov, "us-gov-north-1"),
            (Partition::AwsCn, "us-east-1"),
        ] {
            let bad = format!("arn:{partition}:cloudformation:{region}:123456789012:stack/s/1-2");
            match bad.parse::<StackArn>() {
                Err(NotAStackId::UnknownRegion { partition: p, .. }) => assert_eq!(p, partition, "{bad}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
        // Not a region's shape at all: not a StackId.
        let evil = "arn:aws:cloudformation:evil.example.com:123456789012:stack/s/1";
        assert!(matches!(evil.parse::<StackArn>(), Err(NotAStackId::Malformed(_))));
    }
}
