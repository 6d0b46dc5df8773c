//! Who is on the other end of a session, and the single-use tickets a browser uses to say so.
//!
//! A browser cannot set `Authorization` on a WebSocket; it fetches a ticket over HTTP (with its
//! bearer token) and opens `/ws?ticket=...`. A ticket is random, short-lived, single-use and held
//! only in memory, so a leaked URL (logs, history) is worthless after a few seconds.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use fieldlink_clock::Timestamp;
use rand::RngCore;
use serde::{Deserialize, Serialize};

/// An authenticated user or handset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// User name, or the unit id of a handset.
    pub name: String,
    /// What it may do; flattened, so a principal is `{"name", "role", "unit"?}` in JSON.
    #[serde(flatten)]
    pub role: Role,
}

/// The role of a principal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Role {
    /// Everything.
    Admin,
    /// Reads and commands.
    Dispatcher,
    /// Reads only.
    Viewer,
    /// A handset, speaking for its unit only; uses `/ws/handset`.
    Responder {
        /// The unit the handset is.
        unit: String,
    },
}

impl Role {
    /// True for roles that may send `command` messages.
    pub fn may_command(&self) -> bool {
        matches!(self, Role::Admin | Role::Dispatcher)
    }

    /// The role's name on the wire (`admin`, `dispatcher`, `viewer`, `responder`).
    pub fn name(&self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Dispatcher => "dispatcher",
            Role::Viewer => "viewer",
            Role::Responder { .. } => "responder",
        }
    }

    /// The unit of a responder.
    pub fn unit(&self) -> Option<&str> {
        match self {
            Role::Responder { unit } => Some(unit),
            _ => None,
        }
    }
}

/// Single-use, short-lived tickets, in memory only.
#[derive(Debug)]
pub struct Tickets {
    ttl: Duration,
    live: Mutex<HashMap<String, (Principal, Timestamp)>>,
}

impl Tickets {
    /// Tickets that expire `ttl` after they are issued.
    pub fn new(ttl: Duration) -> Self {
        Tickets {
            ttl,
            live: Mutex::new(HashMap::new()),
        }
    }

    /// A new ticket for `principal`: 256 random bits as 64 hex digits.
    pub fn issue(&self, principal: Principal, now: Timestamp) -> String {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let ticket = hex::encode(bytes);
        let mut live = self.lock();
        live.retain(|_, (_, expires)| *expires > now);
        live.insert(ticket.clone(), (principal, now.plus(self.ttl)));
        ticket
    }

    /// The principal of `ticket`, once: the ticket is gone afterwards. `None` when unknown,
    /// already used or expired.
    pub fn redeem(&self, ticket: &str, now: Timestamp) -> Option<Principal> {
        let mut live = self.lock();
        live.retain(|_, (_, expires)| *expires > now);
        live.remove(ticket).map(|(principal, _)| principal)
    }

    /// Tickets issued and neither redeemed nor pruned yet.
    pub fn outstanding(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Principal, Timestamp)>> {
        // A panic while holding this lock leaves a plain map behind: still consistent.
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn viewer() -> Principal {
        Principal {
            name: "v".into(),
            role: Role::Viewer,
        }
    }

    #[test]
    fn ticket_is_single_use() {
        let t = Tickets::new(Duration::from_secs(30));
        let now = Timestamp::from_millis(1_000);
        let ticket = t.issue(viewer(), now);
        assert_eq!(ticket.len(), 64);
        assert_eq!(t.redeem(&ticket, now), Some(viewer()));
        assert_eq!(t.redeem(&ticket, now), None);
    }

    #[test]
    fn ticket_expires_and_is_pruned() {
        let t = Tickets::new(Duration::from_secs(30));
        let now = Timestamp::from_millis(1_000);
        let ticket = t.issue(viewer(), now);
        let later = now.plus(Duration::from_secs(30));
        assert_eq!(t.redeem(&ticket, later), None);
        assert_eq!(t.outstanding(), 0);
    }

    #[test]
    fn principal_json_is_flat() {
        let p = Principal {
            name: "u1".into(),
            role: Role::Responder { unit: "u1".into() },
        };
        let json = serde_json::to_value(&p).unwrap_or_default();
        assert_eq!(
            json,
            serde_json::json!({"name": "u1", "role": "responder", "unit": "u1"})
        );
        let back: Result<Principal, _> = serde_json::from_value(json);
        assert_eq!(back.ok(), Some(p));
    }

    #[test]
    fn roles() {
        assert!(Role::Admin.may_command());
        assert!(Role::Dispatcher.may_command());
        assert!(!Role::Viewer.may_command());
        assert!(!Role::Responder { unit: "u1".into() }.may_command());
    }
}
