//! The automatic flow: a CloudFormation template per connection, its
//! quick-create link, and the stack's custom resource reporting back.

pub mod callback;
mod links;
mod template;
pub mod token;

pub use links::Templates;
pub use template::{render, stack_name, CUSTOM_RESOURCE_ID, ROLE_NAME_PARAMETER};
