//! A small bounded map for answers that depend only on their key (the
//! catalog is fixed at build time). When full it is cleared: the key space
//! is small and refilling is cheap.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

pub struct BoundedCache<K, V> {
    map: Mutex<HashMap<K, V>>,
    max: usize,
}

impl<K: Hash + Eq + Clone, V: Clone> BoundedCache<K, V> {
    pub fn new(max: usize) -> Self {
        BoundedCache {
            map: Mutex::new(HashMap::new()),
            max,
        }
    }

    /// The cached value, or `make`'s, which is kept when it succeeds.
    pub fn get_or_try_insert<E>(&self, key: &K, make: impl FnOnce() -> Result<V, E>) -> Result<V, E> {
        if let Some(v) = self.map.lock().expect("cache lock").get(key) {
            return Ok(v.clone());
        }
        let v = make()?;
        let mut map = self.map.lock().expect("cache lock");
        if map.len() >= self.max {
            map.clear();
        }
        map.insert(key.clone(), v.clone());
        Ok(v)
    }
}
