//! Gradual deploys (template.yaml: `AutoPublishAlias`, `DeploymentPreference`;
//! infra/RUNBOOK.md, "How a deploy proceeds"): the pre-traffic hook
//! CodeDeploy runs before any traffic reaches a new version (`hook`), the
//! probe event the new versions of the event-driven functions answer
//! (`probe`), and the signed AWS requests the hook makes without an SDK
//! client of their own (`signed`).

pub mod hook;
pub mod probe;
mod signed;

pub use hook::{HookError, PreTrafficHook};
