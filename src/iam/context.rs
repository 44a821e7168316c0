//! A request's context keys. Keys compare without case, so they are stored
//! lower-cased; a key that is absent is simply not here. A context may be
//! open (a request Spot has not made yet): then a key neither set nor
//! known to be absent has a value Spot cannot know, and a condition on it
//! evaluates to `Tri::Unknown`.

use std::collections::{HashMap, HashSet};

#[derive(Debug, Clone, Default)]
pub struct Context {
    keys: HashMap<String, Vec<String>>,
    /// Open: keys not set are unknown, except those in `absent`.
    open: bool,
    absent: HashSet<String>,
}

impl Context {
    pub fn set(&mut self, key: &str, values: Vec<String>) {
        let k = key.to_ascii_lowercase();
        self.absent.remove(&k);
        self.keys.insert(k, values);
    }
    pub fn remove(&mut self, key: &str) {
        self.keys.remove(&key.to_ascii_lowercase());
    }
    pub fn get(&self, key: &str) -> Option<&[String]> {
        self.keys.get(&key.to_ascii_lowercase()).map(Vec::as_slice)
    }
    /// For a key already lower-cased (condition clauses keep one).
    pub fn get_lower(&self, key: &str) -> Option<&[String]> {
        self.keys.get(key).map(Vec::as_slice)
    }
    pub fn has(&self, key: &str) -> bool {
        self.keys.contains_key(&key.to_ascii_lowercase())
    }
    /// A context where every key not set (nor named by `absent`) is unknown.
    pub fn open() -> Context {
        Context {
            open: true,
            ..Context::default()
        }
    }
    /// In an open context: the request surely lacks `key`.
    pub fn set_absent(&mut self, key: &str) {
        let k = key.to_ascii_lowercase();
        self.keys.remove(&k);
        self.absent.insert(k);
    }
    /// Whether the value of a key (lower-cased) cannot be known.
    pub fn unknown_lower(&self, key: &str) -> bool {
        self.open && !self.keys.contains_key(key) && !self.absent.contains(key)
    }
}
