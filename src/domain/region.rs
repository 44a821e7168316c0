use super::{ParseError, Partition};
use std::str::FromStr;

/// The regions of each partition, as AWS publishes them: botocore's
/// `partitions.json` and `endpoints.json` (the regions matching the
/// partition's `regionRegex`, without pseudo-regions such as `aws-global`).
/// `tests/api/regions.rs` compares these tables with both files of the test
/// virtualenv's botocore, so a region AWS adds (or a stale entry here) fails
/// a test until the table follows. Anything derived from a region (the
/// ResponseURL's bucket, a console link) is derived only from these.
const AWS: &[&str] = &[
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "ca-central-1",
    "ca-west-1",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "me-west-1",
    "mx-central-1",
    "sa-east-1",
    "sa-west-1",
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
];
const AWS_US_GOV: &[&str] = &["us-gov-east-1", "us-gov-west-1"];
const AWS_CN: &[&str] = &["cn-north-1", "cn-northwest-1"];

impl Partition {
    /// Every region of the partition, sorted.
    pub fn regions(self) -> &'static [&'static str] {
        match self {
            Partition::Aws => AWS,
            Partition::AwsUsGov => AWS_US_GOV,
            Partition::AwsCn => AWS_CN,
        }
    }
}

/// A real region of a known partition (`us-east-1`, `us-gov-west-1`,
/// `cn-north-1`); it knows its partition, as each region is in exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Region {
    partition: Partition,
    name: &'static str,
}

impl Region {
    /// The region `s` if it is one of `partition`'s.
    pub fn in_partition(partition: Partition, s: &str) -> Result<Region, ParseError> {
        match partition.regions().binary_search(&s) {
            Ok(i) => Ok(Region {
                partition,
                name: partition.regions()[i],
            }),
            Err(_) => Err(ParseError::new(
                "region",
                format!("{s:.40?} is not a region of {}", partition.display_name()),
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        self.name
    }

    pub fn partition(self) -> Partition {
        self.partition
    }
}

impl FromStr for Region {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        Partition::ALL
            .into_iter()
            .find_map(|p| Region::in_partition(p, s).ok())
            .ok_or_else(|| ParseError::new("region", format!("{s:.40?} is not an AWS region")))
    }
}

impl std::fmt::Display for Region {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted_and_apart() {
        for p in Partition::ALL {
            let r = p.regions();
            assert!(r.windows(2).all(|w| w[0] < w[1]), "{p:?} is not sorted (binary search)");
            for other in Partition::ALL.into_iter().filter(|o| *o != p) {
                assert!(r.iter().all(|x| !other.regions().contains(x)), "{p:?} and {other:?}");
            }
        }
    }

    #[test]
    fn only_a_real_region_of_the_partition() {
        let r = Region::in_partition(Partition::Aws, "eu-west-1").unwrap();
        assert_eq!((r.as_str(), r.partition()), ("eu-west-1", Partition::Aws));
        assert_eq!(
            "us-gov-west-1".parse::<Region>().unwrap().partition(),
            Partition::AwsUsGov
        );
        assert_eq!("cn-north-1".parse::<Region>().unwrap().partition(), Partition::AwsCn);
        for (p, bad) in [
            (Partition::Aws, "us-east-9"),
            (Partition::Aws, "us-gov-west-1"),
            (Partition::Aws, "cn-north-1"),
            (Partition::Aws, "aws-global"),
            (Partition::Aws, "US-EAST-1"),
            (Partition::Aws, ""),
            (Partition::AwsUsGov, "us-east-1"),
            (Partition::AwsUsGov, "us-gov-west-9"),
            (Partition::AwsCn, "cn-south-1"),
        ] {
            assert!(Region::in_partition(p, bad).is_err(), "{p:?} {bad}");
        }
        assert!("us-east-9".parse::<Region>().is_err());
    }
}
