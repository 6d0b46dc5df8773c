//! The writer task: the only user of the socket's sending half. It takes the queue, the
//! positions the hub's ticker offers and the pings in turn, and ends with the close frame when a
//! close is requested.

use std::sync::Arc;

use futures_util::{Sink, SinkExt};
use tokio::sync::mpsc;
use tokio::time::{Instant, interval_at, timeout};
use tokio_tungstenite::tungstenite::{self, Message};

use super::{Outbound, SessionShared, close_frame, event_message};
use crate::close::CloseReason;
use crate::hub::Hub;
use crate::stats::bump;
use crate::wire::Protocol;

/// The writer task: the queue, the offered positions and the pings, until a close is requested.
pub(super) async fn write_loop<W>(
    hub: Arc<Hub>,
    shared: Arc<SessionShared>,
    mut sink: W,
    mut rx: mpsc::Receiver<Outbound>,
    protocol: Protocol,
) where
    W: Sink<Message, Error = tungstenite::Error> + Unpin,
{
    let config = &hub.config;
    let mut close_rx = shared.close.subscribe();
    let mut ping = interval_at(
        Instant::now() + config.ping_interval(),
        config.ping_interval(),
    );
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut written_seq: Option<i64> = None;
    let mut socket_gone = false;

    while close_rx.borrow_and_update().is_none() {
        let (frames, seq, batch) = tokio::select! {
            biased;
            _ = close_rx.changed() => break,
            item = rx.recv() => match item {
                Some(Outbound::Event(event, coords)) => {
                    (vec![protocol.encode(&event_message(&event, coords))], Some(event.seq), false)
                }
                Some(Outbound::Message(msg)) => (vec![protocol.encode(&msg)], None, false),
                None => break,
            },
            _ = shared.positions_ready.notified() => {
                let frames = shared.take_positions(protocol, config.snapshot_part_bytes());
                if frames.is_empty() {
                    continue;
                }
                (frames, None, true)
            }
            _ = ping.tick() => (vec![Message::Ping(Default::default())], None, false),
        };
        // `Some(gone)` once the loop must end: the socket failed (`true`) or a close was asked.
        let mut stop = None;
        for frame in frames {
            let sent = tokio::select! {
                biased;
                _ = close_rx.changed() => {
                    stop = Some(false);
                    break;
                }
                sent = sink.send(frame) => sent,
            };
            if sent.is_err() {
                stop = Some(true);
                break;
            }
            bump(&hub.counters.messages_sent);
        }
        match stop {
            Some(true) => {
                socket_gone = true;
                shared.request_close(CloseReason::ProtocolError, &hub.counters);
                break;
            }
            Some(false) => break,
            None => {}
        }
        if let Some(seq) = seq {
            written_seq = Some(seq);
            bump(&hub.counters.events_sent);
        }
        if batch {
            bump(&hub.counters.batches_sent);
        }
    }
    let reason = (*close_rx.borrow()).unwrap_or(CloseReason::Client);
    if !socket_gone {
        let frame = close_frame(reason, written_seq);
        let grace = config.close_grace();
        let _ = timeout(grace, async {
            let _ = sink.send(frame).await;
            let _ = sink.close().await;
        })
        .await;
    }
}
