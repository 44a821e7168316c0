use super::{string_newtype_serde, ParseError};
use std::str::FromStr;

/// An AWS partition. Each has its own IAM, its own vendor principal and its
/// own console; GovCloud and China accept only the default policy
/// (aws-rules.md, "Partitions").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Partition {
    Aws,
    AwsUsGov,
    AwsCn,
}

impl Partition {
    pub const ALL: [Partition; 3] = [Partition::Aws, Partition::AwsUsGov, Partition::AwsCn];

    pub fn as_str(self) -> &'static str {
        match self {
            Partition::Aws => "aws",
            Partition::AwsUsGov => "aws-us-gov",
            Partition::AwsCn => "aws-cn",
        }
    }

    /// Spot's console does not let GovCloud or China accounts customize.
    pub fn allows_custom(self) -> bool {
        matches!(self, Partition::Aws)
    }

    pub fn display_name(self) -> &'static str {
        match self {
            Partition::Aws => "AWS (commercial)",
            Partition::AwsUsGov => "AWS GovCloud (US)",
            Partition::AwsCn => "AWS China",
        }
    }

    /// The region whose STS endpoint serves this partition.
    pub fn sts_region(self) -> &'static str {
        match self {
            Partition::Aws => "us-east-1",
            Partition::AwsUsGov => "us-gov-west-1",
            Partition::AwsCn => "cn-north-1",
        }
    }

    pub fn console_domain(self) -> &'static str {
        match self {
            Partition::Aws => "console.aws.amazon.com",
            Partition::AwsUsGov => "console.amazonaws-us-gov.com",
            Partition::AwsCn => "console.amazonaws.cn",
        }
    }

    /// Suffix used in environment variable names, e.g. `AWS_US_GOV`.
    pub fn env_suffix(self) -> &'static str {
        match self {
            Partition::Aws => "AWS",
            Partition::AwsUsGov => "AWS_US_GOV",
            Partition::AwsCn => "AWS_CN",
        }
    }
}

impl FromStr for Partition {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        Partition::ALL.into_iter().find(|p| p.as_str() == s).ok_or_else(|| {
            ParseError::new(
                "partition",
                format!("unknown partition {s:?}; use one of \"aws\", \"aws-us-gov\", \"aws-cn\""),
            )
        })
    }
}

string_newtype_serde!(Partition);
super::string_newtype_schema!(
    Partition,
    serde_json::json!({"type": "string", "enum": Partition::ALL.map(Partition::as_str)})
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_partition_and_refuses_others() {
        for p in Partition::ALL {
            assert_eq!(p.as_str().parse::<Partition>().unwrap(), p);
        }
        assert!("AWS".parse::<Partition>().is_err());
        assert!("aws-iso".parse::<Partition>().is_err());
        assert!("".parse::<Partition>().is_err());
    }

    #[test]
    fn only_commercial_allows_custom() {
        assert!(Partition::Aws.allows_custom());
        assert!(!Partition::AwsUsGov.allows_custom());
        assert!(!Partition::AwsCn.allows_custom());
    }
}
