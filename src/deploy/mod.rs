//! Gradual deploys (template.yaml: `AutoPublishAlias`, `DeploymentPreference`;
//! infra/RUNBOOK.md, "How a deploy proceeds"): the pre-traffic hook
//! CodeDeploy runs before any traffic reaches a new version (`hook`), the
//! probe event the new versions of the event-driven functions answer
//! (`probe`); the hook's two AWS calls are signed by `sdk::signed`, without
//! an SDK client of their own.

pub mod hook;
pub mod probe;

pub use hook::{HookError, PreTrafficHook};
