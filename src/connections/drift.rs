//! Drift: a connected role that lacks actions its bundles need, and the one
//! step that closes it. An automatic connection gets the CloudFormation
//! update link of the stack that connected it, with the current template;
//! a manual one gets the policy documents to paste (the seeds' "Edit Policy
//! Option"). An organization's connections get the organization's stacks:
//! the management connection the management stack's update link with the
//! management template, a member the StackSet's console page with the
//! member template (`OrganizationTemplates` renders both).

use super::service::ConnectionService;
use crate::automatic::stack_arn::StackArn;
use crate::domain::{AccountId, Connection, Drift, DriftFix, Membership, Method, Partition};
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
        let fix = match (&c.organization, c.method, &c.stack) {
            // Never the single-account template: on the management stack it
            // would delete the StackSet, and with it every member's role.
            (Some(m), _, _) => match self.organization_fix(c, m).await {
                Ok(fix) => fix,
                Err(reason) => {
                    tracing::warn!(connection = c.id.as_str(), %reason, "no organization stack update link");
                    edit_policy()
                }
            },
            (None, Method::Automatic, Some(stack)) => match self.update_stack_fix(c, &stack.stack_id).await {
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
            .template_bucket_for(c.partition)
            .ok_or("no template bucket is configured for the connection's partition")?;
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

impl ConnectionService {
    /// An organization connection's fix, with the organization's templates:
    /// the management connection updates the management stack with the
    /// management template (role, Organizations read access, StackSet); a
    /// member updates the StackSet with the member template.
    async fn organization_fix(&self, c: &Connection, m: &Membership) -> Result<DriftFix, String> {
        let templates = self
            .organization_templates
            .as_deref()
            .ok_or("the organization's templates are not at hand")?;
        let bucket = self
            .config
            .template_bucket_for(c.partition)
            .ok_or("no template bucket is configured for the connection's partition")?;
        let o = self
            .store
            .get_organization(&m.organization_id)
            .await
            .map_err(|e| format!("cannot read the organization: {e}"))?
            .ok_or("the organization is gone")?;
        let upload = |template: serde_json::Value| async move {
            self.templates
                .upload(bucket, c, &template, self.now())
                .await
                .map_err(|e| format!("cannot upload the template to s3://{}: {}", e.bucket, e.detail))
        };
        if m.management {
            let stack_id = &c
                .stack
                .as_ref()
                .ok_or("the management stack has not reported")?
                .stack_id;
            let stack: StackArn = stack_id.parse().map_err(|e| format!("{e}"))?;
            let template = templates.management_template(&o, c).map_err(|e| e.to_string())?;
            let template_url = upload(template).await?;
            return Ok(DriftFix::UpdateStack {
                update_url: update_stack_url(&stack, stack_id, &template_url),
                stack_id: stack_id.clone(),
                template_url,
            });
        }
        // The StackSet is beside the management stack: its region, else the
        // one the StackSet deployed this member's instance in.
        let management = self
            .store
            .get(&o.org, &o.management_connection_id)
            .await
            .map_err(|e| format!("cannot read the management connection: {e}"))?;
        let region = [management.as_ref(), Some(c)]
            .into_iter()
            .flatten()
            .find_map(|k| k.stack.as_ref()?.stack_id.parse::<StackArn>().ok())
            .map(|s| s.region.as_str().to_owned())
            .ok_or("neither the management stack nor this member's stack instance has reported")?;
        let stack_set_name = templates.stack_set_name(&o);
        let template = templates.member_template(&o).map_err(|e| e.to_string())?;
        let template_url = upload(template).await?;
        Ok(DriftFix::UpdateStackSet {
            console_url: stack_set_url(o.partition, &region, &stack_set_name),
            steps: stack_set_steps(&o.management_account_id, &stack_set_name, &region),
            stack_set_name,
            management_account_id: o.management_account_id.clone(),
            region,
            template_url,
        })
    }
}

/// The console page of a service-managed StackSet, in its region.
pub fn stack_set_url(partition: Partition, region: &str, stack_set_name: &str) -> String {
    format!(
        "https://{region}.{}/cloudformation/home?region={region}#/stacksets/{}/info?permissions=service",
        partition.console_domain(),
        utf8_percent_encode(stack_set_name, QUERY_VALUE),
    )
}

fn stack_set_steps(management: &AccountId, stack_set_name: &str, region: &str) -> String {
    format!(
        "Sign in to the organization's management account {management} and open the StackSet {stack_set_name} in {region} (consoleUrl). Choose Actions, Edit StackSet details, Replace current template, Amazon S3 URL, and enter templateUrl (or download it and upload the file); keep the parameters, deploy to the same organizational units and the region {region}, and submit. Every member's stack instance is updated; updating the management stack with its current template (the management connection's fix) does the same. The next check records the recovery."
    )
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

    #[test]
    fn the_stack_set_link_opens_the_partitions_console_in_the_stack_sets_region() {
        use crate::domain::Partition;
        assert_eq!(
            super::stack_set_url(Partition::Aws, "eu-west-1", "Spot-Organization-0123456789ab"),
            "https://eu-west-1.console.aws.amazon.com/cloudformation/home?region=eu-west-1#/stacksets/Spot-Organization-0123456789ab/info?permissions=service"
        );
        assert!(
            super::stack_set_url(Partition::AwsUsGov, "us-gov-west-1", "s").starts_with(
                "https://us-gov-west-1.console.amazonaws-us-gov.com/cloudformation/home?region=us-gov-west-1#/stacksets/s/"
            )
        );
        assert!(super::stack_set_url(Partition::AwsCn, "cn-north-1", "s")
            .starts_with("https://cn-north-1.console.amazonaws.cn/cloudformation/home?region=cn-north-1#"));
    }
}
