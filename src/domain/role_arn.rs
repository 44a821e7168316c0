use super::{string_newtype_serde, AccountId, ParseError, Partition};
use std::str::FromStr;

/// IAM name and path limits (IAM quotas: role name 64, path 512).
const MAX_ROLE_NAME: usize = 64;
const MAX_PATH: usize = 512;

/// An IAM role ARN: `arn:<partition>:iam::<account>:role[/path/]<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RoleArn {
    raw: String,
    partition: Partition,
    account: AccountId,
    /// `/` or `/a/b/`, as IAM's `PathPrefix` wants it.
    path: String,
    name: String,
}

impl RoleArn {
    pub fn as_str(&self) -> &str {
        &self.raw
    }
    pub fn partition(&self) -> Partition {
        self.partition
    }
    pub fn account(&self) -> &AccountId {
        &self.account
    }
    pub fn path(&self) -> &str {
        &self.path
    }
    pub fn name(&self) -> &str {
        &self.name
    }
}

fn err(msg: impl Into<String>) -> ParseError {
    ParseError::new("roleArn", msg)
}

fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)
}

impl FromStr for RoleArn {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        let example = "arn:aws:iam::123456789012:role/Spot-Role";
        let s_trim = s.trim();
        if s_trim != s {
            return Err(err("remove the spaces around the role ARN"));
        }
        let parts: Vec<&str> = s.splitn(6, ':').collect();
        if parts.len() != 6 || parts[0] != "arn" {
            return Err(err(format!(
                "{s:?} is not an ARN; copy the role's ARN from its Summary page in the IAM console, e.g. {example}"
            )));
        }
        let partition: Partition = parts[1].parse().map_err(|_| {
            err(format!(
                "unknown partition {:?} in the role ARN; it must start with arn:aws:, arn:aws-us-gov: or arn:aws-cn:",
                parts[1]
            ))
        })?;
        if parts[2] != "iam" {
            return Err(err(format!(
                "this is an ARN of the {:?} service, not an IAM role; copy the role's ARN, e.g. {example}",
                parts[2]
            )));
        }
        if !parts[3].is_empty() {
            return Err(err(
                "an IAM role ARN has no region (arn:aws:iam::<account>:role/<name>)",
            ));
        }
        let account: AccountId = parts[4]
            .parse()
            .map_err(|_| err(format!("the account {:?} in the role ARN must be 12 digits", parts[4])))?;
        let Some(resource) = parts[5].strip_prefix("role/") else {
            return Err(err(format!(
                "{:?} is not a role; copy the ARN of the role (…:role/<name>), not of a user, policy or instance profile",
                parts[5]
            )));
        };
        let (path, name) = match resource.rfind('/') {
            Some(i) => (format!("/{}", &resource[..=i]), &resource[i + 1..]),
            None => ("/".to_owned(), resource),
        };
        if name.is_empty() || name.len() > MAX_ROLE_NAME || !name.chars().all(name_char) {
            return Err(err(format!(
                "the role name {name:?} is not valid: 1 to {MAX_ROLE_NAME} letters, digits and _+=,.@-"
            )));
        }
        if path.len() > MAX_PATH || path.contains("//") || !path.chars().all(|c| ('\u{21}'..='\u{7e}').contains(&c)) {
            return Err(err(format!("the role path {path:?} is not valid")));
        }
        Ok(RoleArn {
            raw: s.to_owned(),
            partition,
            account,
            path,
            name: name.to_owned(),
        })
    }
}

string_newtype_serde!(RoleArn);
// The path is `/` or `/segments/`; its own 512-character limit is left to
// the parser. Longest: "arn:aws-us-gov:iam::" + 12 + ":role" + path + name.
super::string_newtype_schema!(
    RoleArn,
    serde_json::json!({
        "type": "string",
        "pattern": format!("^arn:(aws|aws-us-gov|aws-cn):iam::[0-9]{{12}}:role/([!-.0-~]+/)*[A-Za-z0-9_+=,.@-]{{1,{MAX_ROLE_NAME}}}$"),
        "maxLength": 20 + 12 + 5 + MAX_PATH + MAX_ROLE_NAME,
        "examples": ["arn:aws:iam::123456789012:role/Spot-Role"]
    })
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_pathed_roles() {
        let a: RoleArn = "arn:aws:iam::123456789012:role/Spot-Role".parse().unwrap();
        assert_eq!(a.partition(), Partition::Aws);
        assert_eq!(a.account().as_str(), "123456789012");
        assert_eq!((a.path(), a.name()), ("/", "Spot-Role"));
        let b: RoleArn = "arn:aws-us-gov:iam::123456789012:role/team/ops/Spot".parse().unwrap();
        assert_eq!(b.partition(), Partition::AwsUsGov);
        assert_eq!((b.path(), b.name()), ("/team/ops/", "Spot"));
    }

    #[test]
    fn refuses_what_is_not_a_role() {
        for bad in [
            "",
            "Spot-Role",
            "arn:aws:iam::123456789012:user/bob",
            "arn:aws:iam::123456789012:policy/Spot-Policy",
            "arn:aws:s3:::bucket",
            "arn:aws:iam:us-east-1:123456789012:role/x",
            "arn:aws:iam::12345678901:role/x",
            "arn:aws-iso:iam::123456789012:role/x",
            "arn:aws:iam::123456789012:role/",
            "arn:aws:iam::123456789012:role/bad name",
            " arn:aws:iam::123456789012:role/x",
        ] {
            assert!(bad.parse::<RoleArn>().is_err(), "{bad:?}");
        }
        let long = format!("arn:aws:iam::123456789012:role/{}", "n".repeat(65));
        assert!(long.parse::<RoleArn>().is_err());
    }
}
