//! Time for fieldlink's domain cores.
//!
//! The cores (location, dispatch, intercom, video) never read the wall clock: every method that
//! needs the time takes a [`Timestamp`] from the caller, and the adapters get it from a [`Clock`].
//! Production uses [`SystemClock`]; tests and the end-to-end suite use [`ManualClock`] so that the
//! 1/3/5-minute rules run in milliseconds (DESIGN.md, "Delivery and durability").
//!
//! This crate owns no policy: only the representation of an instant and the two clocks.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};

mod serde_form;

/// An instant in UTC, in milliseconds since the Unix epoch.
///
/// Milliseconds are what the radio wire carries (`time_ms` fields) and what GPS fixes resolve to;
/// a plain integer keeps the cores cheap to copy, compare and store.
///
/// With serde it is an RFC 3339 string with milliseconds and `Z`
/// (`"2026-11-29T20:00:00.000Z"`), the one time format of the HTTP API and the WebSocket
/// protocol; it also reads the integer milliseconds that stores written before that still hold
/// (see `serde_form.rs`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Timestamp = Timestamp(0);

    /// From milliseconds since the Unix epoch.
    pub const fn from_millis(ms: i64) -> Self {
        Timestamp(ms)
    }

    /// From whole seconds since the Unix epoch (OwnTracks `tst`).
    pub const fn from_secs(s: i64) -> Self {
        Timestamp(s.saturating_mul(1000))
    }

    /// Milliseconds since the Unix epoch.
    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// This instant moved forward by `d` (saturating).
    pub fn plus(self, d: Duration) -> Self {
        Timestamp(self.0.saturating_add(duration_millis(d)))
    }

    /// This instant moved back by `d` (saturating).
    pub fn minus(self, d: Duration) -> Self {
        Timestamp(self.0.saturating_sub(duration_millis(d)))
    }

    /// Signed milliseconds from `earlier` to `self` (negative when `self` is before `earlier`).
    pub fn millis_since(self, earlier: Timestamp) -> i64 {
        self.0.saturating_sub(earlier.0)
    }

    /// The time elapsed since `earlier`, or zero when `earlier` is in the future.
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.millis_since(earlier).max(0) as u64)
    }

    /// As a chrono date-time, when it is representable.
    pub fn to_datetime(self) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp_millis(self.0)
    }

    /// RFC 3339 with millisecond precision and a `Z` suffix, as the HTTP API prints times.
    pub fn to_rfc3339(self) -> String {
        match self.to_datetime() {
            Some(dt) => dt.to_rfc3339_opts(SecondsFormat::Millis, true),
            None => format!("@{}ms", self.0),
        }
    }

    /// Parses RFC 3339 (`2026-11-29T20:00:00Z`), and the `@{ms}ms` form [`Self::to_rfc3339`]
    /// falls back to for an instant outside chrono's range.
    pub fn parse_rfc3339(s: &str) -> Option<Self> {
        if let Some(ms) = s.strip_prefix('@').and_then(|r| r.strip_suffix("ms")) {
            return ms.parse().ok().map(Timestamp);
        }
        DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|dt| Timestamp(dt.timestamp_millis()))
    }
}

fn duration_millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_rfc3339())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(dt: DateTime<Utc>) -> Self {
        Timestamp(dt.timestamp_millis())
    }
}

/// Where the current time comes from.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current instant.
    fn now(&self) -> Timestamp;
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::from(Utc::now())
    }
}

/// A clock that moves only when told to. Clones share the same instant.
#[derive(Debug, Clone)]
pub struct ManualClock {
    millis: Arc<AtomicI64>,
}

impl ManualClock {
    /// A manual clock standing at `start`.
    pub fn new(start: Timestamp) -> Self {
        ManualClock {
            millis: Arc::new(AtomicI64::new(start.as_millis())),
        }
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        self.millis.fetch_add(duration_millis(d), Ordering::SeqCst);
    }

    /// Sets the clock to `t` (which may be earlier: tests of clock skew need that).
    pub fn set(&self, t: Timestamp) {
        self.millis.store(t.as_millis(), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.millis.load(Ordering::SeqCst))
    }
}

/// A shared, type-erased clock, as the server hands it to its tasks.
pub type SharedClock = Arc<dyn Clock>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told_and_clones_share_it() {
        let clock = ManualClock::new(Timestamp::from_secs(1_700_000_000));
        let other = clock.clone();
        assert_eq!(clock.now(), Timestamp::from_secs(1_700_000_000));
        other.advance(Duration::from_secs(60));
        assert_eq!(clock.now(), Timestamp::from_secs(1_700_000_060));
    }

    #[test]
    fn rfc3339_round_trip_keeps_milliseconds() {
        let t = Timestamp::from_millis(1_764_446_400_123);
        let s = t.to_rfc3339();
        assert_eq!(s, "2025-11-29T20:00:00.123Z");
        assert_eq!(Timestamp::parse_rfc3339(&s), Some(t));
    }

    #[test]
    fn since_is_never_negative() {
        let a = Timestamp::from_secs(10);
        let b = Timestamp::from_secs(20);
        assert_eq!(b.since(a), Duration::from_secs(10));
        assert_eq!(a.since(b), Duration::ZERO);
        assert_eq!(a.millis_since(b), -10_000);
    }
}
