//! Records of every released shape, kept as fixtures: each release writes
//! its set under tests/fixtures/<version>-<commit>/ with the real code
//! (`generate`), and keeps the sets before it. `replay` loads every set into
//! its store and serves the API on it.
//!
//! A set: `release.json` (which release wrote it), `sqlite/store.db` (the
//! database file) and `dynamodb/items.json` (the table's items, as the SDK
//! sends them), each store's with a `manifest.json` naming its records;
//! since webhook secrets are sealed, also the keys that open them
//! (`sqlite/secrets-key`, `dynamodb/data-keys.json`: see `sealed`).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub(crate) mod attr_json;
mod every_route;
mod generate;
pub(crate) mod replay;
mod sealed;

/// Names the set `generate` writes.
const SET_ENV: &str = "ACCOUNT_CONNECT_FIXTURE_SET";

/// What a set holds, by what each record is: the test's way in.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Manifest {
    /// The writer's clock (unix seconds) when the set was dumped: a replay
    /// runs its clock from there, so what was expired then is now.
    pub now: i64,
    /// The tenant every record belongs to.
    pub tenant: String,
    /// Connections by state or health (`healthy`, `rotation_pending`, …).
    pub connections: BTreeMap<String, String>,
    /// Webhooks by what is particular about them (`old_secret`, …).
    pub webhooks: BTreeMap<String, String>,
    /// The AWS Organization.
    pub organization: String,
    /// Its members' AWS accounts, by the state the organization view gives.
    pub members: BTreeMap<String, String>,
}
