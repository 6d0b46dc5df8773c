//! Per-unit message rate limit: one flooding handset is throttled and flagged, the others flow.
//!
//! A token bucket per unit: `rate_per_s` messages a second sustained, `burst` at once (a handset
//! coming out of a tunnel sends its buffered fixes as one batch message, so bursts stay small).
//! The pipeline asks before decoding, from the topic alone, so a refused message costs a topic
//! parse and a bucket update, not a protobuf decode. No I/O and no clock: the caller passes the
//! time in.

use std::collections::HashMap;
use std::time::Duration;

use fieldlink_proto::UnitId;
use serde::Deserialize;

/// How many messages one unit may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ThrottleConfig {
    /// Sustained messages per second per unit. A handset sends about one fix a second plus
    /// heartbeats, receipts and floor requests. Default 20. 0 turns the limit off.
    pub rate_per_s: u32,
    /// Messages a unit may send at once above the rate. Default 100.
    pub burst: u32,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            rate_per_s: 20,
            burst: 100,
        }
    }
}

/// What to do with one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within the unit's rate.
    Pass,
    /// Over the rate: drop it. `flagged` is true for the first message dropped since the unit
    /// was last within its rate (log and flag it once per flood, not once per message).
    Drop {
        /// The first drop of this flood.
        flagged: bool,
    },
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Duration,
    flooding: bool,
}

/// The buckets of every unit that has spoken.
#[derive(Debug, Clone)]
pub struct Throttle {
    config: ThrottleConfig,
    buckets: HashMap<UnitId, Bucket>,
}

impl Throttle {
    /// A throttle with these limits.
    pub fn new(config: ThrottleConfig) -> Self {
        Throttle {
            config,
            buckets: HashMap::new(),
        }
    }

    /// Takes one message of `unit` at `now` (any monotonic time origin).
    pub fn check(&mut self, unit: &UnitId, now: Duration) -> Verdict {
        let ThrottleConfig { rate_per_s, burst } = self.config;
        if rate_per_s == 0 {
            return Verdict::Pass;
        }
        let rate_per_s = f64::from(rate_per_s);
        let capacity = f64::from(burst.max(1));
        let bucket = self.buckets.entry(unit.clone()).or_insert(Bucket {
            tokens: capacity,
            at: now,
            flooding: false,
        });
        let elapsed = now.saturating_sub(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate_per_s).min(capacity);
        bucket.at = now.max(bucket.at);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            bucket.flooding = false;
            Verdict::Pass
        } else {
            let flagged = !bucket.flooding;
            bucket.flooding = true;
            Verdict::Drop { flagged }
        }
    }

    /// Units currently over their rate.
    pub fn flooding(&self) -> usize {
        self.buckets.values().filter(|b| b.flooding).count()
    }

    /// Forgets units idle for longer than `idle`, so the map does not grow with every unit
    /// ever seen (a full bucket is what a new unit gets anyway).
    pub fn forget_idle(&mut self, now: Duration, idle: Duration) {
        self.buckets
            .retain(|_, b| now.saturating_sub(b.at) < idle || b.flooding);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(s: &str) -> UnitId {
        UnitId::new(s).expect("id")
    }

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn a_burst_passes_then_the_rate_holds_and_the_flood_is_flagged_once() {
        let mut t = Throttle::new(ThrottleConfig {
            rate_per_s: 10,
            burst: 5,
        });
        let a = unit("a");
        for _ in 0..5 {
            assert_eq!(t.check(&a, ms(0)), Verdict::Pass);
        }
        assert_eq!(t.check(&a, ms(0)), Verdict::Drop { flagged: true });
        assert_eq!(t.check(&a, ms(50)), Verdict::Drop { flagged: false });
        assert_eq!(t.flooding(), 1);
        // 100 ms at 10/s is one more message.
        assert_eq!(t.check(&a, ms(100)), Verdict::Pass);
        assert_eq!(t.flooding(), 0);
        // Over ten seconds a flood gets through at about the rate, no more.
        let passed = (0..10_000)
            .filter(|i| t.check(&a, ms(100 + i)) == Verdict::Pass)
            .count();
        assert!((99..=101).contains(&passed), "{passed}");
    }

    #[test]
    fn one_unit_flooding_leaves_another_untouched() {
        let mut t = Throttle::new(ThrottleConfig::default());
        let (flood, calm) = (unit("flood"), unit("calm"));
        for i in 0..10_000 {
            t.check(&flood, ms(i / 10));
        }
        for s in 0..60 {
            assert_eq!(t.check(&calm, Duration::from_secs(s)), Verdict::Pass);
        }
    }

    #[test]
    fn zero_rate_is_no_limit_and_idle_units_are_forgotten() {
        let mut t = Throttle::new(ThrottleConfig {
            rate_per_s: 0,
            burst: 0,
        });
        assert!((0..1000).all(|_| t.check(&unit("a"), ms(0)) == Verdict::Pass));
        let mut t = Throttle::new(ThrottleConfig::default());
        t.check(&unit("a"), ms(0));
        t.check(&unit("b"), Duration::from_secs(100));
        t.forget_idle(Duration::from_secs(100), Duration::from_secs(60));
        assert_eq!(t.buckets.len(), 1);
    }
}
