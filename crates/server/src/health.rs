//! Whether each service's commits go through: what `/readyz` reports, and a log that says a
//! failing store once in a while instead of twice a second.
//!
//! A service (dispatch, intercom, video) reports every commit's outcome. While its last commit
//! failed, and failed recently ([`FRESH`]), the service is not ready: a tick loop that cannot
//! commit its due timers keeps failing every tick, so it stays unready until a commit goes
//! through; a single refused command on a healthy store stops counting after [`FRESH`].
//!
//! Time here is the process's own monotonic time, not the domain clock: this is about the
//! machine, and the log must be rate-limited in real seconds even under a manual test clock.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long one failed commit keeps a service unready when nothing else is committed.
pub const FRESH: Duration = Duration::from_secs(10);
/// At most one "still failing" log line per service per this interval.
pub const LOG_EVERY: Duration = Duration::from_secs(30);

/// The commit health of every service. Cheap to share (`Arc` it, or hold it in the state).
#[derive(Debug, Default)]
pub struct CommitHealth {
    failing: Mutex<HashMap<&'static str, Failing>>,
}

#[derive(Debug, Clone)]
struct Failing {
    since: Instant,
    last: Instant,
    count: u64,
    error: String,
    logged: Instant,
    unlogged: u64,
}

/// A service whose commits fail, as `/readyz` says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// `dispatch`, `intercom` or `video`.
    pub service: &'static str,
    /// Failed commits in a row.
    pub failures: u64,
    /// Seconds since the first of them.
    pub failing_for_s: u64,
    /// The last store error, in words.
    pub error: String,
}

/// "dispatch cannot commit (3 failures in a row over 1 s): <error>"
impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} cannot commit ({} failures in a row over {} s): {}",
            self.service, self.failures, self.failing_for_s, self.error
        )
    }
}

impl CommitHealth {
    /// Records a failed commit of `service` and logs it: the first failure at once, then at
    /// most one line per [`LOG_EVERY`] with the count in between.
    pub fn failed(&self, service: &'static str, error: &dyn fmt::Display) {
        let now = Instant::now();
        let mut failing = self.lock();
        let error = error.to_string();
        match failing.get_mut(service) {
            None => {
                tracing::error!(service, %error, "a commit failed; nothing changed, and the service tries again");
                failing.insert(
                    service,
                    Failing {
                        since: now,
                        last: now,
                        count: 1,
                        error,
                        logged: now,
                        unlogged: 0,
                    },
                );
            }
            Some(f) => {
                f.count += 1;
                f.last = now;
                f.error = error;
                f.unlogged += 1;
                if now.duration_since(f.logged) >= LOG_EVERY {
                    tracing::error!(
                        service,
                        error = %f.error,
                        failures = f.count,
                        since_last_line = f.unlogged,
                        failing_for_s = now.duration_since(f.since).as_secs(),
                        "commits still fail; nothing changed"
                    );
                    f.logged = now;
                    f.unlogged = 0;
                }
            }
        }
    }

    /// Records a commit of `service` that went through; says so when it had been failing.
    pub fn succeeded(&self, service: &'static str) {
        let mut failing = self.lock();
        if let Some(f) = failing.remove(service) {
            tracing::info!(
                service,
                failures = f.count,
                failing_for_s = f.since.elapsed().as_secs(),
                "commits go through again"
            );
        }
    }

    /// The services whose last commit failed within [`FRESH`], by name.
    pub fn problems(&self) -> Vec<Problem> {
        let now = Instant::now();
        let mut problems: Vec<Problem> = (self.lock().iter())
            .filter(|(_, f)| now.duration_since(f.last) < FRESH)
            .map(|(service, f)| Problem {
                service,
                failures: f.count,
                failing_for_s: now.duration_since(f.since).as_secs(),
                error: f.error.clone(),
            })
            .collect();
        problems.sort_by_key(|p| p.service);
        problems
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<&'static str, Failing>> {
        self.failing.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_service_is_a_problem_until_a_commit_goes_through() {
        let health = CommitHealth::default();
        assert!(health.problems().is_empty());
        health.failed("dispatch", &"outbox entry exists");
        health.failed("dispatch", &"outbox entry exists");
        let problems = health.problems();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].service, "dispatch");
        assert_eq!(problems[0].failures, 2);
        assert!(
            problems[0]
                .to_string()
                .starts_with("dispatch cannot commit (2 failures in a row"),
            "{}",
            problems[0]
        );
        health.succeeded("dispatch");
        assert!(health.problems().is_empty());
    }
}
