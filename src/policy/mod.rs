//! From a partition and a selection of bundles to IAM managed policy documents.

mod document;
mod render;
mod selection;
mod split;

pub use document::{iam_size, PolicyDocument, Statement};
pub use render::{
    covered, normalize_actions as normalize, render, wildcard_prefix, RenderError, Rendered, RenderedPolicy,
};
pub use selection::{Permissions, Selection, SelectionError};
pub use split::{MANAGED_POLICY_MAX_CHARS, MAX_MANAGED_POLICIES};

/// Name the seeds tell the customer to give the policy; parts get `-1`, `-2`, ….
pub const POLICY_NAME: &str = "Spot-Policy";
