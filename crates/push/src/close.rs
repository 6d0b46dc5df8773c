//! Why a session ends, and the close code each reason is sent with.

use std::fmt;

/// Why a session was closed. Each reason has a WebSocket close code (see `README.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// The client closed, or the connection dropped (1000).
    Client,
    /// The server shuts down (1001).
    Shutdown,
    /// Too many malformed messages in a row (1008).
    Malformed,
    /// An incoming message or frame over the limits (1009).
    TooBig,
    /// A socket error or protocol violation (1002).
    ProtocolError,
    /// No frame within `idle_timeout_ms` (4000).
    Idle,
    /// No valid credential in time (4001).
    AuthRequired,
    /// The principal may not use this endpoint (4003).
    Forbidden,
    /// The client did not read fast enough: its queue overflowed (4008). It resumes by seq.
    TooSlow,
    /// A newer handset session for the same unit replaced this one (4009).
    Replaced,
}

impl CloseReason {
    /// Every reason (the order of the per-reason counters).
    pub const ALL: [CloseReason; 10] = [
        CloseReason::Client,
        CloseReason::Shutdown,
        CloseReason::Malformed,
        CloseReason::TooBig,
        CloseReason::ProtocolError,
        CloseReason::Idle,
        CloseReason::AuthRequired,
        CloseReason::Forbidden,
        CloseReason::TooSlow,
        CloseReason::Replaced,
    ];

    /// The WebSocket close code.
    pub fn code(self) -> u16 {
        match self {
            CloseReason::Client => 1000,
            CloseReason::Shutdown => 1001,
            CloseReason::ProtocolError => 1002,
            CloseReason::Malformed => 1008,
            CloseReason::TooBig => 1009,
            CloseReason::Idle => 4000,
            CloseReason::AuthRequired => 4001,
            CloseReason::Forbidden => 4003,
            CloseReason::TooSlow => 4008,
            CloseReason::Replaced => 4009,
        }
    }

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            CloseReason::Client => "client",
            CloseReason::Shutdown => "shutdown",
            CloseReason::Malformed => "malformed",
            CloseReason::TooBig => "too_big",
            CloseReason::ProtocolError => "protocol_error",
            CloseReason::Idle => "idle",
            CloseReason::AuthRequired => "auth_required",
            CloseReason::Forbidden => "forbidden",
            CloseReason::TooSlow => "too_slow",
            CloseReason::Replaced => "replaced",
        }
    }

    pub(crate) fn index(self) -> usize {
        CloseReason::ALL
            .iter()
            .position(|r| *r == self)
            .unwrap_or(0)
    }

    /// The close frame's reason text; `written_seq` is the last journal seq written to the
    /// client (for 4008, so that it knows where to resume).
    pub fn text(self, written_seq: Option<i64>) -> String {
        match self {
            CloseReason::Client => "bye".into(),
            CloseReason::Shutdown => "server shutting down".into(),
            CloseReason::Malformed => "too many malformed messages".into(),
            CloseReason::TooBig => "message too big".into(),
            CloseReason::ProtocolError => "protocol error".into(),
            CloseReason::Idle => "idle timeout".into(),
            CloseReason::AuthRequired => "authentication required".into(),
            CloseReason::Forbidden => "forbidden on this endpoint".into(),
            CloseReason::TooSlow => match written_seq {
                Some(seq) => format!("too slow, resume from seq {seq}"),
                None => "too slow, resume from your last seq".into(),
            },
            CloseReason::Replaced => "replaced by a newer session of this unit".into(),
        }
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.label(), self.code())
    }
}
