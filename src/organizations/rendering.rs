//! The organization's templates for its connections: the member template
//! on its own (a member's template route, its drift fix), and both
//! templates for the connection service's drift fixes, which it cannot
//! render itself (`OrganizationTemplates`).

use super::service::{OrganizationError, OrganizationService};
use super::template;
use crate::connections::{OrganizationTemplates, TemplateError};
use crate::domain::{Connection, Organization, OrganizationId};
use crate::tenancy::Tenant;

impl OrganizationService {
    /// The template the organization's StackSet deploys to every member
    /// (the one inline in the management template).
    pub fn member_template_for(&self, o: &Organization) -> Result<serde_json::Value, OrganizationError> {
        let principal = self.connections.principal(o.partition)?;
        let (topic, key) = self.callback(o.partition)?;
        let org_token = super::token::issue(key, o.id.as_str(), o.management_account_id.as_str());
        let member = template::member(o, principal, topic, &org_token);
        let size = serde_json::to_string(&member).map(|s| s.len()).unwrap_or(usize::MAX);
        if size > template::MAX_MEMBER_TEMPLATE {
            return Err(OrganizationError::MemberTemplateTooLarge(size));
        }
        Ok(member)
    }

    /// The member template of the tenant's organization.
    pub async fn member_template(
        &self,
        tenant: &Tenant,
        id: &OrganizationId,
    ) -> Result<serde_json::Value, OrganizationError> {
        let o = self.organization(tenant, id).await?;
        self.member_template_for(&o)
    }
}

impl OrganizationTemplates for OrganizationService {
    fn management_template(
        &self,
        o: &Organization,
        management: &Connection,
    ) -> Result<serde_json::Value, TemplateError> {
        Ok(self.template_for(o, management)?)
    }

    fn member_template(&self, o: &Organization) -> Result<serde_json::Value, TemplateError> {
        Ok(self.member_template_for(o)?)
    }

    fn stack_set_name(&self, o: &Organization) -> String {
        template::stack_set_name(o)
    }
}
