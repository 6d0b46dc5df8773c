//! The hub's limits and timings, with safe defaults.
//!
//! Every limit is small on purpose: a command-room message is a few KiB at most, and a handset
//! message less than that. tungstenite's own defaults (64 MiB messages, 16 MiB frames, unbounded
//! write buffers) would let one client pin a lot of memory.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Configuration of the WebSocket hub (`[push]` in the server's config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PushConfig {
    /// How often the hub's ticker sends the coalesced positions to the sessions, in ms (default
    /// 250).
    pub position_tick_ms: u64,
    /// Journal events, results and orders queued per client before it is declared too slow and
    /// closed with 4008 (default 1024). The client resumes by sequence, so nothing is lost.
    pub outbound_queue: usize,
    /// Largest incoming message, in bytes (default 64 KiB); a larger one closes with 1009.
    pub max_message_bytes: usize,
    /// Largest incoming frame, in bytes (default 16 KiB); a larger one closes with 1009.
    pub max_frame_bytes: usize,
    /// Bytes read from the socket at a time (default 8 KiB). tungstenite allocates this per
    /// connection up front (its default, 128 KiB, would be 640 MiB for 5000 connections).
    pub read_buffer_bytes: usize,
    /// Bytes tungstenite collects before writing to the socket (default 16 KiB).
    pub write_buffer_bytes: usize,
    /// Most bytes tungstenite may hold unwritten for one client (default 1 MiB). It must exceed
    /// `write_buffer_bytes` plus the largest outgoing message.
    pub max_write_buffer_bytes: usize,
    /// A ping is sent this often, in ms (default 15 000).
    pub ping_interval_ms: u64,
    /// A client that sends no frame at all (not even a pong) for this long, in ms, is closed with
    /// 4000 (default 45 000).
    pub idle_timeout_ms: u64,
    /// Most WebSocket connections at once; beyond, upgrades answer 503 (default 5000).
    pub max_connections: usize,
    /// Origins (`scheme://host[:port]`, compared exactly) allowed to open a WebSocket. A browser
    /// always sends `Origin`, so this is the defence against cross-site WebSocket hijacking. A
    /// request without `Origin` (a handset, a tool, a test) is allowed: it is not a browser acting
    /// on a user's behalf, and it must still present a credential. Empty (the default) allows no
    /// browser at all.
    pub allowed_origins: Vec<String>,
    /// How long a ticket from [`crate::Tickets::issue`] may wait to be redeemed, in ms (default 30 000).
    pub ticket_ttl_ms: u64,
    /// Most journal events replayed on a resume (default 10 000); beyond, the client is told
    /// `snapshot_needed` and given a snapshot.
    pub resume_limit: u32,
    /// Journal events asked from the backend per page while replaying (default 500).
    pub resume_page: u32,
    /// A connection without a credential must send `auth` within this many ms (default 5000).
    pub auth_timeout_ms: u64,
    /// Malformed messages in a row before the session is closed with 1008 (default 5).
    pub max_malformed: u32,
    /// How long the closing handshake may wait for a stalled socket, in ms (default 5000).
    pub close_grace_ms: u64,
}

impl Default for PushConfig {
    fn default() -> Self {
        PushConfig {
            position_tick_ms: 250,
            outbound_queue: 1024,
            max_message_bytes: 64 * 1024,
            max_frame_bytes: 16 * 1024,
            read_buffer_bytes: 8 * 1024,
            write_buffer_bytes: 16 * 1024,
            max_write_buffer_bytes: 1024 * 1024,
            ping_interval_ms: 15_000,
            idle_timeout_ms: 45_000,
            max_connections: 5000,
            allowed_origins: Vec::new(),
            ticket_ttl_ms: 30_000,
            resume_limit: 10_000,
            resume_page: 500,
            auth_timeout_ms: 5000,
            max_malformed: 5,
            close_grace_ms: 5000,
        }
    }
}

impl PushConfig {
    pub(crate) fn position_tick(&self) -> Duration {
        Duration::from_millis(self.position_tick_ms.max(10))
    }
    pub(crate) fn ping_interval(&self) -> Duration {
        Duration::from_millis(self.ping_interval_ms.max(10))
    }
    pub(crate) fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms.max(10))
    }
    pub(crate) fn auth_timeout(&self) -> Duration {
        Duration::from_millis(self.auth_timeout_ms.max(10))
    }
    /// Largest serialised `snapshot` message before it is split into parts: a quarter of
    /// `max_write_buffer_bytes`, at most 256 KiB.
    pub(crate) fn snapshot_part_bytes(&self) -> usize {
        (self.max_write_buffer_bytes / 4).clamp(1024, 256 * 1024)
    }
    pub(crate) fn close_grace(&self) -> Duration {
        Duration::from_millis(self.close_grace_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_keys_take_the_defaults_and_unknown_keys_are_refused() {
        let config: PushConfig =
            serde_json::from_str(r#"{"position_tick_ms": 100}"#).expect("parse");
        assert_eq!(config.position_tick_ms, 100);
        assert_eq!(
            config.max_message_bytes,
            PushConfig::default().max_message_bytes
        );
        assert!(serde_json::from_str::<PushConfig>(r#"{"nope": 1}"#).is_err());
    }

    #[test]
    fn defaults_are_small() {
        let c = PushConfig::default();
        assert!(c.max_frame_bytes <= c.max_message_bytes);
        assert!(c.max_write_buffer_bytes > c.write_buffer_bytes + c.max_message_bytes);
        assert!(c.idle_timeout_ms > 2 * c.ping_interval_ms);
    }
}
