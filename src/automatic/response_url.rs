//! Which ResponseURLs the callback answers: by default only CloudFormation's
//! custom-resource response bucket of the stack's own region, over https.
//! Anyone can publish to the topic, so any other URL would make the callback
//! a PUT relay (loopback, instance metadata, someone else's server).

use super::stack_arn::StackArn;
use crate::domain::Partition;
use url::Url;

/// Pre-signed S3 URLs are under 2 KB; anything much longer is not one.
const MAX_URL: usize = 4096;

/// Why a ResponseURL is refused (for the log and the metric, never sent).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlRefused {
    #[error("the message has no ResponseURL")]
    Missing,
    #[error("the ResponseURL is over {MAX_URL} characters")]
    TooLong,
    #[error("the ResponseURL does not parse: {0}")]
    Unparsable(url::ParseError),
    #[error("the ResponseURL carries credentials")]
    Credentials,
    #[error("the ResponseURL has no host")]
    NoHost,
    #[error("the ResponseURL is {0}, not https")]
    NotHttps(String),
    #[error("the ResponseURL names a port")]
    Port,
    #[error("the message has no valid StackId to tell the region's response bucket")]
    NoStack,
    #[error("{host:.100} is not CloudFormation's response bucket for {region}")]
    NotCloudFormation { host: String, region: String },
    #[error("the ResponseURL is {0}, not https or http")]
    NotHttpOrHttps(String),
    #[error("{0:.100} is not in ACCOUNT_CONNECT_CALLBACK_RESPONSE_HOSTS")]
    NotListed(String),
}

/// Where answers may go.
#[derive(Debug, Clone)]
pub enum ResponseHosts {
    /// CloudFormation's response buckets, https, default port.
    CloudFormation,
    /// `ACCOUNT_CONNECT_CALLBACK_RESPONSE_HOSTS`: exact hosts or `*.suffix`,
    /// any port, http allowed (local runs and tests have no TLS).
    Listed(Vec<String>),
}

impl ResponseHosts {
    pub fn from_setting(hosts: Option<&[String]>) -> Self {
        match hosts {
            Some(h) => ResponseHosts::Listed(h.iter().map(|s| s.to_ascii_lowercase()).collect()),
            None => ResponseHosts::CloudFormation,
        }
    }

    /// The URL to PUT to, or why it is refused (for the log, never sent).
    pub fn check(&self, raw: Option<&str>, stack: Option<&StackArn>) -> Result<Url, UrlRefused> {
        let raw = raw.ok_or(UrlRefused::Missing)?;
        if raw.len() > MAX_URL {
            return Err(UrlRefused::TooLong);
        }
        let url = Url::parse(raw).map_err(UrlRefused::Unparsable)?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(UrlRefused::Credentials);
        }
        let host = url.host_str().ok_or(UrlRefused::NoHost)?.to_owned();
        match self {
            ResponseHosts::CloudFormation => {
                if url.scheme() != "https" {
                    return Err(UrlRefused::NotHttps(url.scheme().to_owned()));
                }
                if url.port().is_some() {
                    return Err(UrlRefused::Port);
                }
                let stack = stack.ok_or(UrlRefused::NoStack)?;
                if !cloudformation_hosts(stack).contains(&host) {
                    return Err(UrlRefused::NotCloudFormation {
                        host,
                        region: stack.region.to_string(),
                    });
                }
            }
            ResponseHosts::Listed(patterns) => {
                if !matches!(url.scheme(), "https" | "http") {
                    return Err(UrlRefused::NotHttpOrHttps(url.scheme().to_owned()));
                }
                if !patterns.iter().any(|p| host_matches(p, &host)) {
                    return Err(UrlRefused::NotListed(host));
                }
            }
        }
        Ok(url)
    }
}

/// `*.example.com` matches any subdomain of example.com (not itself);
/// anything else matches exactly.
fn host_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(suffix) => {
            host.len() > suffix.len() + 1 && host.ends_with(suffix) && host[..host.len() - suffix.len()].ends_with('.')
        }
        None => host == pattern,
    }
}

/// The response bucket of the stack's region (a real region of its
/// partition: `StackArn` holds no other), in the forms CloudFormation
/// uses: `<bucket>.s3.amazonaws.com` (commercial only),
/// `<bucket>.s3.<region>.amazonaws.com`, `<bucket>.s3-<region>.amazonaws.com`,
/// and `.amazonaws.com.cn` in China. The bucket is
/// `cloudformation-custom-resource-response-<region without dashes>`.
pub fn cloudformation_hosts(stack: &StackArn) -> Vec<String> {
    let bucket = format!(
        "cloudformation-custom-resource-response-{}",
        stack.region.as_str().replace('-', "")
    );
    let region = stack.region.as_str();
    let suffix = match stack.partition {
        Partition::AwsCn => "amazonaws.com.cn",
        Partition::Aws | Partition::AwsUsGov => "amazonaws.com",
    };
    let mut hosts = vec![
        format!("{bucket}.s3.{region}.{suffix}"),
        format!("{bucket}.s3-{region}.{suffix}"),
    ];
    if stack.partition == Partition::Aws {
        hosts.push(format!("{bucket}.s3.amazonaws.com"));
    }
    hosts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack(partition: &str, region: &str) -> StackArn {
        format!("arn:{partition}:cloudformation:{region}:123456789012:stack/s/1-2")
            .parse()
            .unwrap()
    }

    const Q: &str = "/arn%3Aaws%3Acloudformation/abc?X-Amz-Signature=00";

    #[test]
    fn cloudformation_buckets_of_the_stack_region_only() {
        let cf = ResponseHosts::CloudFormation;
        let use1 = stack("aws", "us-east-1");
        for ok in [
            "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com",
            "https://cloudformation-custom-resource-response-useast1.s3.us-east-1.amazonaws.com",
            "https://cloudformation-custom-resource-response-useast1.s3-us-east-1.amazonaws.com",
            "https://CloudFormation-Custom-Resource-Response-useast1.s3.amazonaws.com",
            "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com:443",
        ] {
            assert!(cf.check(Some(&format!("{ok}{Q}")), Some(&use1)).is_ok(), "{ok}");
        }
        let gov = stack("aws-us-gov", "us-gov-west-1");
        let url =
            format!("https://cloudformation-custom-resource-response-usgovwest1.s3-us-gov-west-1.amazonaws.com{Q}");
        assert!(cf.check(Some(&url), Some(&gov)).is_ok());
        let cn = stack("aws-cn", "cn-north-1");
        let url = format!("https://cloudformation-custom-resource-response-cnnorth1.s3.cn-north-1.amazonaws.com.cn{Q}");
        assert!(cf.check(Some(&url), Some(&cn)).is_ok());
        let url = format!("https://cloudformation-custom-resource-response-cnnorth1.s3.amazonaws.com{Q}");
        assert!(cf.check(Some(&url), Some(&cn)).is_err(), "no global endpoint in China");

        for bad in [
            "http://cloudformation-custom-resource-response-useast1.s3.amazonaws.com",
            "https://cloudformation-custom-resource-response-uswest2.s3.amazonaws.com",
            "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com.evil.example",
            "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com:8443",
            "https://user:pw@cloudformation-custom-resource-response-useast1.s3.amazonaws.com",
            "https://evil-cloudformation-custom-resource-response-useast1.s3.amazonaws.com",
            "https://127.0.0.1",
            "https://169.254.169.254",
            "https://localhost",
            "https://example.com",
            "ftp://cloudformation-custom-resource-response-useast1.s3.amazonaws.com",
            "not a url",
        ] {
            assert!(cf.check(Some(&format!("{bad}{Q}")), Some(&use1)).is_err(), "{bad}");
        }
        let good = format!("https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com{Q}");
        assert!(cf.check(Some(&good), None).is_err(), "no StackId, no region");
        assert!(cf.check(None, Some(&use1)).is_err());
        assert!(cf
            .check(Some(&format!("{good}{}", "a".repeat(MAX_URL))), Some(&use1))
            .is_err());
    }

    #[test]
    fn the_setting_replaces_the_list() {
        let listed = ResponseHosts::from_setting(Some(&["127.0.0.1".to_owned(), "*.Example.com".to_owned()]));
        for ok in [
            "http://127.0.0.1:8080/response",
            "https://a.example.com/r",
            "https://a.b.example.com/r",
        ] {
            assert!(listed.check(Some(ok), None).is_ok(), "{ok}");
        }
        for bad in [
            "http://localhost:8080/response",
            "https://example.com/r",
            "https://badexample.com/r",
            "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/r",
            "file:///etc/passwd",
        ] {
            assert!(listed.check(Some(bad), None).is_err(), "{bad}");
        }
    }
}
