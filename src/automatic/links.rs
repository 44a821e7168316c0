//! Uploading a template to the bucket and the console's quick-create link.

use super::bucket::Bucket;
use super::template::{default_role_name, stack_name};
use crate::config::Config;
use crate::domain::Partition;
use crate::domain::{CloudFormationLinks, Connection};
use crate::sdk::signed::Signer;
use crate::sdk::AwsConfigs;
use crate::verify::Verifier;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use std::sync::Arc;
use tokio::sync::OnceCell;

/// RFC 3986 unreserved characters stay as they are.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// CloudFormation limits (aws-rules.md): templateURL ≤ 1,024 characters.
const MAX_TEMPLATE_URL: usize = 1024;

/// The bucket's lifecycle rules (template.yaml, TemplateBucket) delete
/// `templates/<N>d/` objects N days after upload; each template goes under
/// the shortest N that outlives its external ID.
pub const EXPIRY_DAYS: [i64; 9] = [1, 2, 3, 7, 14, 30, 90, 180, 365];

/// Where a template whose external ID expires at `expires_at` is uploaded.
pub fn expiry_prefix(expires_at: i64, now: i64) -> String {
    let days = (expires_at - now).max(1).div_euclid(86_400) + i64::from((expires_at - now).max(1) % 86_400 != 0);
    let n = EXPIRY_DAYS
        .iter()
        .copied()
        .find(|d| *d >= days)
        .unwrap_or(EXPIRY_DAYS[EXPIRY_DAYS.len() - 1]);
    format!("templates/{n}d/")
}

/// S3 did not take the template. The message is for the client; the bucket
/// and S3's answer are for the log.
#[derive(Debug, thiserror::Error)]
#[error(
    "could not store the CloudFormation template for the quick-create link; nothing was saved, try again in a moment"
)]
pub struct TemplateUploadError {
    pub bucket: String,
    pub detail: String,
}

pub struct Templates {
    aws: AwsConfigs,
    /// The GovCloud and China buckets are in the vendor's account of their
    /// partition: written with the partition's vendor identity.
    verifier: Arc<Verifier>,
    /// Per partition (`Partition::ALL`'s order), built on first upload.
    s3: [OnceCell<Bucket>; 3],
}

fn index(p: Partition) -> usize {
    match p {
        Partition::Aws => 0,
        Partition::AwsUsGov => 1,
        Partition::AwsCn => 2,
    }
}

/// S3's host suffix in the partition (China's is under `.amazonaws.com.cn`).
fn s3_domain(p: Partition) -> &'static str {
    match p {
        Partition::AwsCn => "amazonaws.com.cn",
        Partition::Aws | Partition::AwsUsGov => "amazonaws.com",
    }
}

impl Templates {
    /// The S3 clients are built on first upload: the commercial one from
    /// the service's own configuration, the others from their partition's
    /// vendor identity.
    pub fn new(aws: AwsConfigs, verifier: Arc<Verifier>) -> Self {
        Templates {
            aws,
            verifier,
            s3: Default::default(),
        }
    }

    async fn s3(&self, p: Partition) -> Result<&Bucket, String> {
        self.s3[index(p)]
            .get_or_try_init(|| async {
                let conf = match p {
                    Partition::Aws => self.aws.own().await.clone(),
                    other => self.verifier.vendor(other).await?.0,
                };
                // No region configured: the partition's home region.
                let conf = match conf.region() {
                    Some(_) => conf,
                    None => conf
                        .to_builder()
                        .region(aws_config::Region::new(p.sts_region()))
                        .build(),
                };
                Ok(Bucket::new(Signer::new(conf), s3_domain(p)))
            })
            .await
    }

    /// Uploads the template (a bucket configured for the connection's
    /// partition) and returns the links; otherwise says why there are none. A failed upload
    /// is an error: the connection is not created without its template.
    pub async fn links(
        &self,
        config: &Config,
        conn: &Connection,
        template: &serde_json::Value,
        now: i64,
    ) -> Result<CloudFormationLinks, TemplateUploadError> {
        let stack = stack_name(&config.stack_prefix, conn);
        let unavailable = |reason: String| CloudFormationLinks {
            stack_name: stack.clone(),
            template_url: None,
            quick_create_url: None,
            unavailable_reason: Some(reason),
        };
        // CloudFormation in GovCloud or China reads templates from its own
        // partition's S3 only: each partition has its bucket.
        let Some(bucket) = config.template_bucket_for(conn.partition) else {
            return Ok(unavailable(format!(
                "No template bucket is configured for {} ({}), so there is no quick-create link: download the template (GET /v1/connections/{}/template) and create the stack {stack} with it in the CloudFormation console.",
                conn.partition.display_name(),
                Config::template_bucket_setting(conn.partition),
                conn.id.as_str()
            )));
        };
        if !config.topics.contains_key(&conn.partition) || config.callback_key.is_none() {
            return Ok(unavailable(
                "No callback topic or key is configured, so a stack could not report back; connect manually."
                    .to_owned(),
            ));
        }
        let template_url = self.upload(bucket, conn, template, now).await?;
        Ok(CloudFormationLinks {
            quick_create_url: Some(quick_create_url(config, conn, &template_url, &stack)),
            template_url: (template_url.len() <= MAX_TEMPLATE_URL).then_some(template_url),
            stack_name: stack,
            unavailable_reason: None,
        })
    }

    /// Puts the template under the prefix that expires with the
    /// connection's external ID; answers its URL.
    pub async fn upload(
        &self,
        bucket: &str,
        conn: &Connection,
        template: &serde_json::Value,
        now: i64,
    ) -> Result<String, TemplateUploadError> {
        let key = format!(
            "{}{}-{}.json",
            expiry_prefix(conn.expires_at, now),
            conn.id.as_str(),
            crate::ids::random_token(8)
        );
        let body = serde_json::to_vec(template).expect("templates serialize");
        let p = conn.partition;
        let s3 = self.s3(p).await.map_err(|detail| TemplateUploadError {
            bucket: bucket.to_owned(),
            detail,
        })?;
        s3.put(bucket, &key, "application/json", body)
            .await
            .map_err(|detail| TemplateUploadError {
                bucket: bucket.to_owned(),
                detail,
            })?;
        Ok(format!("https://{bucket}.s3.{}.{}/{key}", s3.region(), s3_domain(p)))
    }

    /// Deletes a template `upload` put, for a request that was then refused:
    /// a refused request leaves nothing behind. A failure is logged only
    /// (the bucket's lifecycle removes the object in time).
    pub async fn discard(&self, p: Partition, bucket: &str, links: &CloudFormationLinks) {
        let Some(key) = links
            .template_url
            .as_deref()
            .and_then(|u| u.split_once(&format!(".{}/", s3_domain(p))))
            .map(|(_, k)| k)
            .filter(|k| k.starts_with("templates/"))
        else {
            return;
        };
        let Ok(s3) = self.s3(p).await else { return };
        if let Err(e) = s3.delete(bucket, key).await {
            tracing::warn!(bucket, key, error = %e, "could not delete the template of a refused request");
        }
    }
}

/// The console's quick-create page for the stack (aws-rules.md), on the
/// partition's console, in its region: the stack's ServiceToken (the
/// partition's relay topic) must be in the stack's region.
pub fn quick_create_url(config: &Config, conn: &Connection, template_url: &str, stack: &str) -> String {
    let region = match conn.partition {
        Partition::Aws => config.quick_create_region.as_str(),
        other => other.sts_region(),
    };
    let enc = |s: &str| utf8_percent_encode(s, QUERY_VALUE).to_string();
    format!(
        "https://{region}.{}/cloudformation/home?region={region}#/stacks/quickcreate?templateURL={}&stackName={}&param_RoleName={}",
        conn.partition.console_domain(),
        enc(template_url),
        enc(stack),
        enc(&default_role_name(conn)),
    )
}

#[cfg(test)]
mod tests {
    use super::{expiry_prefix, quick_create_url, EXPIRY_DAYS};

    #[test]
    fn quick_create_opens_the_partitions_console_in_its_region() {
        let config = crate::config::Config::default();
        for (p, start) in [
            (
                "aws",
                "https://us-east-1.console.aws.amazon.com/cloudformation/home?region=us-east-1#",
            ),
            (
                "aws-us-gov",
                "https://us-gov-west-1.console.amazonaws-us-gov.com/cloudformation/home?region=us-gov-west-1#",
            ),
            (
                "aws-cn",
                "https://cn-north-1.console.amazonaws.cn/cloudformation/home?region=cn-north-1#",
            ),
        ] {
            let conn: crate::domain::Connection = serde_json::from_value(serde_json::json!({
                "id": "con-000000000000000000000000", "org": "o", "accountId": "act-1", "partition": p, "method": "automatic",
                "permissions": {"mode": "default"}, "awsAccountId": "123456789012", "externalId": "ext-1", "pendingExternalId": null,
                "state": "pending", "health": null, "roleArn": null, "report": null, "createdAt": 0, "createdBy": "t",
                "updatedAt": 0, "expiresAt": 1, "verifiedAt": null, "version": 1
            }))
            .unwrap();
            let url = quick_create_url(&config, &conn, "https://b.s3.amazonaws.com/t.json", "s");
            assert!(url.starts_with(start), "{url}");
        }
    }

    #[test]
    fn templates_expire_with_their_external_id() {
        let day = 86_400;
        assert_eq!(expiry_prefix(3600, 0), "templates/1d/");
        assert_eq!(expiry_prefix(2 * day, 0), "templates/2d/");
        assert_eq!(expiry_prefix(2 * day + 1, 0), "templates/3d/");
        assert_eq!(expiry_prefix(5 * day, 0), "templates/7d/");
        assert_eq!(expiry_prefix(365 * day, 0), "templates/365d/");
        assert_eq!(expiry_prefix(-5, 0), "templates/1d/");
        // Each prefix has its lifecycle rule in the deployment template.
        let yaml = include_str!("../../template.yaml");
        for d in EXPIRY_DAYS {
            let rule = format!("Status: Enabled, Prefix: templates/{d}d/, ExpirationInDays: {d}}}");
            assert!(yaml.contains(&rule), "no lifecycle rule {rule:?} in template.yaml");
        }
    }
}
