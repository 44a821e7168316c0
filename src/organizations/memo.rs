//! A memo for one reconciliation's reads made side by side: each key is
//! read once, by the first caller; callers asking for it meanwhile wait for
//! that answer instead of reading it again.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;

/// One answer per key, made once however many ask for it at once: the
/// first caller reads, the others wait for its answer (a failed read is
/// not kept, and fails the reconciliation anyway).
pub(super) struct Memo<T>(Mutex<BTreeMap<String, Arc<OnceCell<T>>>>);

impl<T: Clone> Default for Memo<T> {
    fn default() -> Self {
        Memo::new()
    }
}

impl<T: Clone> Memo<T> {
    pub(super) fn new() -> Self {
        Memo(Mutex::default())
    }

    pub(super) async fn get_or_read<F, Fut>(&self, key: &str, read: F) -> Result<T, String>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<T, String>>,
    {
        let cell = self
            .0
            .lock()
            .expect("not poisoned")
            .entry(key.to_owned())
            .or_default()
            .clone();
        cell.get_or_try_init(read).await.cloned()
    }
}
