//! Drift: a connected role that lacks actions its bundles need, and the one
//! step that closes it. An automatic connection gets the CloudFormation
//! update link of the stack that connected it, with the current template;
//! a manual one gets the policy documents to paste (the seeds' "Edit Policy
//! Option").

use super::service::ConnectionService;
use crate::automatic::stack_arn::StackArn;
use crate::domain::{Connection, Drift, DriftFix, Method};
use crate::verify::{CheckId, Outcome, Report};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// RFC 3986 unreserved characters stay as they are.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

const EDIT_POLICY_STEPS: &str = "In the AWS console open IAM, then Policies; search for the policy attached to the role (the spotinst-iam-stack prefix finds the ones a stack created), choose Edit, paste the matching document from this connection's policies into the JSON editor, then Next and Save changes. The next check records the recovery.";

/// The console page that updates `stack_id` with the template at `template_url`.
pub fn update_stack_url(stack: &StackArn, stack_id: &str, template_url: &str) -> String {
    let enc = |s: &str| utf8_percent_encode(s, QUERY_VALUE).to_string();
    let region = &stack.region;
    format!(
        "https://{region}.{}/cloudformation/home?region={region}#/stacks/update/template?stackId={}&templateURL={}",
        stack.partition.console_domain(),
        enc(stack_id),
        enc(template_url),
    )
}

impl ConnectionService {
    /// What a conclusive check says is missing and how to close it; None
    /// when nothing is missing.
    pub(super) async fn drift_of(&self, c: &Connection, report: &Report) -> Option<Drift> {
        if report.outcome != Outcome::Degraded {
            return None;
        }
        let missing = report
            .checks
            .iter()
            .find(|k| k.id == CheckId::Permissions)
            .map(|k| k.missing.clone())
            .filter(|m| !m.is_empty())?;
        let fix = match (c.method, &c.stack) {
            (Method::Automatic, Some(stack)) => match self.update_stack_fix(c, &stack.stack_id).await {
                Ok(fix) => fix,
                Err(reason) => {
                    // The customer can still paste the documents.
                    tracing::warn!(connection = c.id.as_str(), %reason, "no stack update link");
                    edit_policy()
                }
            },
            _ => edit_policy(),
        };
        Some(Drift {
            missing,
            fix,
            found_at: self.now(),
        })
    }

    /// Uploads the current template (the connection's selection, external
    /// ID and callback token) and links the stack's update page to it.
    async fn update_stack_fix(&self, c: &Connection, stack_id: &str) -> Result<DriftFix, String> {
        let stack: StackArn = stack_id.parse().map_err(|e| format!("{e:?}"))?;
        let bucket = self
            .config
            .template_bucket
            .as_deref()
            .ok_or("no template bucket is configured")?;
        let template = self.template_for(c).map_err(|e| format!("{e:?}"))?;
        let template_url = self
            .templates
            .upload(bucket, c, &template, self.now())
            .await
            .map_err(|e| format!("cannot upload the template to s3://{}: {}", e.bucket, e.detail))?;
        Ok(DriftFix::UpdateStack {
            update_url: update_stack_url(&stack, stack_id, &template_url),
            stack_id: stack_id.to_owned(),
            template_url,
        })
    }
}

fn edit_policy() -> DriftFix {
    DriftFix::EditPolicy {
        steps: EDIT_POLICY_STEPS.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_update_link_names_the_stack_and_the_template() {
        let id = "arn:aws:cloudformation:eu-west-1:123456789012:stack/spotinst-iam-stack-abc/0f1e2d3c";
        let url = super::update_stack_url(
            &id.parse().unwrap(),
            id,
            "https://b.s3.us-east-1.amazonaws.com/t/x.json",
        );
        assert!(url.starts_with("https://eu-west-1.console.aws.amazon.com/cloudformation/home?region=eu-west-1#/stacks/update/template?stackId=arn%3Aaws%3Acloudformation%3Aeu-west-1"), "{url}");
        assert!(
            url.ends_with("&templateURL=https%3A%2F%2Fb.s3.us-east-1.amazonaws.com%2Ft%2Fx.json"),
            "{url}"
        );
    }
}
