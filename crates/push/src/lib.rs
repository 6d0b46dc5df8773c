//! The WebSocket hub of fieldlink: the command room on `/ws`, the handsets on `/ws/handset`.
//!
//! The hub owns sessions, authentication (bearer token, single-use ticket or a first `auth`
//! message), subscriptions with a per-session filter, a snapshot or a resume by journal sequence,
//! the coalescing of positions and back-pressure. It knows nothing of dispatch or the store: the
//! server implements [`Backend`] and feeds the hub with [`Hub::journal`] and [`Hub::position`].
//! The protocol, limits and close codes are in this crate's `README.md`.
//!
//! Modules: `config` (limits), `principal` (roles, tickets), `filter` (channels, bbox),
//! `backend` (the trait the server implements), `protocol` (JSON messages), `wire` (protobuf and
//! negotiation), `hub` (fan-out and the positions ticker), `positions` (shared position batches),
//! `snapshot` (splitting large snapshots), `session` (reader and writer of one socket), `upgrade`
//! (HTTP), `close` (close codes), `stats` (counters).

mod backend;
mod close;
mod config;
mod filter;
mod hub;
mod positions;
mod principal;
mod protocol;
mod session;
mod snapshot;
mod stats;
mod upgrade;
pub mod wire;

pub use backend::{
    Backend, BackendError, BoxFuture, Command, CommandError, HandsetMessage, JournalEvent, Snapshot,
};
pub use close::CloseReason;
pub use config::PushConfig;
pub use filter::{Channel, Coords, Filter};
pub use hub::Hub;
pub use principal::{Principal, Role, Tickets};
pub use protocol::{ClientMessage, EventMessage, Limits, PositionUpdate, ServerMessage};
pub use stats::PushStats;
pub use upgrade::{Endpoint, upgrade};
pub use wire::Protocol;
