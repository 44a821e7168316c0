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
    type Renders = quick_cache::sync::Cache<Selection, std::sync::Arc<Rendered>, BySize>;
    /// Bounded by the documents' size, not their number: the default policy
    /// is 5.5 KB, every bundle about 60 KB, so a caller sending many distinct
    /// selections cannot grow the process past a few MB; the least used go first.
    const MAX_RENDERED_CHARS: u64 = 2 << 20;
    static RENDERS: std::sync::LazyLock<Renders> =
        std::sync::LazyLock::new(|| Renders::with_weighter(256, MAX_RENDERED_CHARS, BySize));
    RENDERS.get_or_insert_with(selection, || render(selection).map(std::sync::Arc::new))
}

#[derive(Clone)]
struct BySize;

impl quick_cache::Weighter<Selection, std::sync::Arc<Rendered>> for BySize {
    fn weight(&self, _: &Selection, rendered: &std::sync::Arc<Rendered>) -> u64 {
        rendered.total_size as u64
    }
}

/// Name the seeds tell the customer to give the policy; parts get `-1`, `-2`, ….
pub const POLICY_NAME: &str = "Spot-Policy";
