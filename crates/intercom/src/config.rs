//! [`IntercomConfig`]: talk time, SOS duration, dispatcher precedence, queue size, busy policy.
//!
//! One serde struct with documented defaults (every field may be omitted). Durations are whole
//! seconds, as a config file writes them. [`IntercomConfig::validate`] reports every problem at
//! once. Per-group overrides live on [`Talkgroup`](crate::Talkgroup).

use serde::{Deserialize, Serialize};

use crate::model::BusyPolicy;

/// Everything the intercom core can be told.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IntercomConfig {
    /// Maximum talk time before the floor is revoked, seconds, unless a group says otherwise
    /// (default 60).
    pub max_talk_s: u64,
    /// How long an SOS raises a unit to emergency priority, seconds; 0 = until cleared
    /// (default 600).
    pub sos_emergency_s: u64,
    /// Whether a dispatcher console outranks a responder of the same floor priority, and so can
    /// cut in (default true). Priority levels always come first.
    pub dispatcher_precedence: bool,
    /// Busy policy for groups that do not set one (default `queue`).
    pub busy: BusyPolicy,
    /// Longest floor queue per group; requests beyond it are denied (default 8).
    pub max_queue: usize,
    /// How many request ids are remembered to make retries harmless (default 10,000; the
    /// oldest are forgotten first).
    pub request_memory: usize,
}

impl Default for IntercomConfig {
    fn default() -> Self {
        IntercomConfig {
            max_talk_s: 60,
            sos_emergency_s: 600,
            dispatcher_precedence: true,
            busy: BusyPolicy::Queue,
            max_queue: 8,
            request_memory: 10_000,
        }
    }
}

impl IntercomConfig {
    /// Every problem with this config, empty when it is usable.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.max_talk_s == 0 {
            problems.push("intercom.max_talk_s must be at least 1".to_owned());
        }
        if self.request_memory == 0 {
            problems.push("intercom.request_memory must be at least 1".to_owned());
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_an_empty_file_means_defaults() {
        assert!(IntercomConfig::default().validate().is_empty());
        let c: IntercomConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(c, IntercomConfig::default());
        let bad = IntercomConfig {
            max_talk_s: 0,
            request_memory: 0,
            ..IntercomConfig::default()
        };
        assert_eq!(bad.validate().len(), 2);
    }
}
