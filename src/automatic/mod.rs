//! The automatic flow: a CloudFormation template per connection, its
//! quick-create link, the answer to CloudFormation and the partition relay
//! (the custom resource's entry point is `crate::callback`).

mod bucket;
mod links;
pub mod relay;
pub mod relay_forward;
pub mod relay_intake;
pub mod responder;
pub mod response_url;
pub mod stack_arn;
mod template;
pub mod token;

pub use links::{TemplateUploadError, Templates};
pub use relay_intake::RelayIntake;
pub(crate) use template::{default_role_name, partition_agnostic};
pub use template::{policy_resources, render, role_resource, stack_name, CUSTOM_RESOURCE_ID, ROLE_NAME_PARAMETER};
