//! [`VideoConfig`]: how long a silent stream stays live, when it is given up, how long a
//! start/stop request may wait.
//!
//! One serde struct with documented defaults (every field may be omitted), whole seconds as a
//! config file writes them. [`VideoConfig::validate`] reports every problem at once.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The video core's timing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VideoConfig {
    /// A stream with no start or keepalive for this long is stale (default 15: three missed
    /// keepalives at the handsets' 5 s interval).
    pub stale_after_s: u64,
    /// A stream silent for this long is stopped with reason `silent` (default 120). Must be
    /// longer than `stale_after_s`.
    pub expire_after_s: u64,
    /// A start or stop request not answered within this is `request_timed_out` (default 30).
    pub request_timeout_s: u64,
}

impl Default for VideoConfig {
    fn default() -> Self {
        VideoConfig {
            stale_after_s: 15,
            expire_after_s: 120,
            request_timeout_s: 30,
        }
    }
}

impl VideoConfig {
    /// Every problem, one message each; empty when the config is usable.
    pub fn validate(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.stale_after_s == 0 {
            p.push("video.stale_after_s must be at least 1".to_owned());
        }
        if self.expire_after_s <= self.stale_after_s {
            p.push(format!(
                "video.expire_after_s ({}) must be longer than video.stale_after_s ({})",
                self.expire_after_s, self.stale_after_s
            ));
        }
        if self.request_timeout_s == 0 {
            p.push("video.request_timeout_s must be at least 1".to_owned());
        }
        p
    }

    /// `stale_after_s` as a duration.
    pub fn stale_after(&self) -> Duration {
        Duration::from_secs(self.stale_after_s)
    }

    /// `expire_after_s` as a duration.
    pub fn expire_after(&self) -> Duration {
        Duration::from_secs(self.expire_after_s)
    }

    /// `request_timeout_s` as a duration.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_s)
    }
}
