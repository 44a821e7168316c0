//! What the connection service needs from the organizations above it: the
//! drift fix of an organization's connection updates the organization's
//! own stacks, whose templates only `organizations` renders. The layers
//! point down, so the connection service is handed a renderer (`app` gives
//! it the organization service) instead of reaching up for one.

use crate::domain::{Connection, Organization};

/// A template that cannot be rendered, with the reason.
pub type TemplateError = Box<dyn std::error::Error + Send + Sync>;

/// The templates of an AWS Organization's stacks.
pub trait OrganizationTemplates: Send + Sync {
    /// The management stack's template: the management account's role, the
    /// Organizations read access and the StackSet deploying the members.
    fn management_template(
        &self,
        o: &Organization,
        management: &Connection,
    ) -> Result<serde_json::Value, TemplateError>;

    /// The template the organization's StackSet deploys to every member.
    fn member_template(&self, o: &Organization) -> Result<serde_json::Value, TemplateError>;

    /// The StackSet's name, in the management account.
    fn stack_set_name(&self, o: &Organization) -> String;
}
