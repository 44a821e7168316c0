//! From a partition and a selection of bundles to IAM managed policy documents.

mod document;
mod render;
mod selection;
mod split;

pub use crate::domain::Permissions;
pub use document::{iam_size, PolicyDocument, Statement};
pub use render::{normalize_actions as normalize, render, RenderError, Rendered, RenderedPolicy};
pub use selection::{Selection, SelectionError};
pub use split::{MANAGED_POLICY_MAX_CHARS, MAX_MANAGED_POLICIES};

/// Renders, shared: a selection always renders the same, so views, templates
/// and the policies route render each selection once.
pub fn render_shared(selection: &Selection) -> Result<std::sync::Arc<Rendered>, RenderError> {
    /// Far more than the selections customers make; the least used go first.
    const MAX_RENDERS: usize = 512;
    static RENDERS: std::sync::LazyLock<quick_cache::sync::Cache<Selection, std::sync::Arc<Rendered>>> =
        std::sync::LazyLock::new(|| quick_cache::sync::Cache::new(MAX_RENDERS));
    RENDERS.get_or_insert_with(selection, || render(selection).map(std::sync::Arc::new))
}

/// Name the seeds tell the customer to give the policy; parts get `-1`, `-2`, ….
pub const POLICY_NAME: &str = "Spot-Policy";
