//! A request's context keys. Keys compare without case, so they are stored
//! lower-cased; a key that is absent is simply not here.

use std::collections::HashMap;

#[derive(Debug, Clone, Default)]
pub struct Context {
    keys: HashMap<String, Vec<String>>,
}

impl Context {
    pub fn set(&mut self, key: &str, values: Vec<String>) {
        self.keys.insert(key.to_ascii_lowercase(), values);
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
}
