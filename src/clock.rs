//! Time as the service records it: unix seconds, shown as RFC 3339.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// The system clock, for code that holds no `Clock`.
pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

pub fn iso(ts: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ts)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

pub fn iso_now() -> String {
    iso(now())
}

/// The clock that decides expiry: held in the app state so a test can move
/// it forward instead of sleeping. The system clock in production.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// Seconds added to the system time; None for the system clock itself.
    offset: Option<Arc<AtomicI64>>,
}

impl Clock {
    pub fn system() -> Self {
        Clock { offset: None }
    }

    /// The system time plus an offset that `advance` moves: time still
    /// passes (so orderings by time hold), and can jump ahead.
    pub fn adjustable() -> Self {
        Clock {
            offset: Some(Arc::new(AtomicI64::new(0))),
        }
    }

    pub fn now(&self) -> i64 {
        now() + self.offset.as_ref().map_or(0, |o| o.load(Ordering::SeqCst))
    }

    /// Moves an adjustable clock `secs` forward, for everyone holding it.
    ///
    /// # Panics
    /// On the system clock, which nobody may move.
    pub fn advance(&self, secs: i64) {
        assert!(secs >= 0, "a clock only moves forward");
        self.offset
            .as_ref()
            .expect("the system clock cannot be moved; build the state with Clock::adjustable()")
            .fetch_add(secs, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::Clock;

    #[test]
    fn an_adjustable_clock_moves_for_every_clone_and_the_system_one_follows_the_system() {
        let c = Clock::adjustable();
        let other = c.clone();
        let before = c.now();
        c.advance(3600);
        assert!(other.now() >= before + 3600 && other.now() < before + 3660);
        let sys = Clock::system();
        assert!((sys.now() - super::now()).abs() <= 1);
    }

    #[test]
    #[should_panic(expected = "cannot be moved")]
    fn the_system_clock_cannot_be_moved() {
        Clock::system().advance(1);
    }
}
