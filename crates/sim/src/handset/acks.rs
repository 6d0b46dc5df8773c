//! Matching a handset's QoS 1/2 publishes to the broker's acknowledgements, without I/O.
//!
//! rumqttc 0.25 gives no per-publish acknowledgement: `AsyncClient::publish` returns once the
//! request is queued, and the event loop later reports `Outgoing::Publish(pkid)` and
//! `Incoming::PubAck(pkid)`. Requests leave the queue in the order they entered it, so a waiter
//! registered in send order (under the handset's send lock) takes the next packet id the event
//! loop reports, and is woken by that id's PUBACK (or PUBCOMP for QoS 2).
//!
//! Two things would break the order, and both are ruled out by the handset: republishing after a
//! reconnect (the handset never reconnects its event loop: a lost connection ends the handset, and
//! [`AckTracker::fail_all`] wakes every waiter with the reason), and QoS 0 publishes (they report
//! packet id 0 and are not registered). A collision (the broker acked out of order and the next
//! packet id is still in flight) parks the request, then publishes it under the same id; the
//! tracker follows that too.

use std::collections::{HashMap, VecDeque};

use rumqttc::{Event, Outgoing, Packet};
use tokio::sync::oneshot;

/// Why a waiter was woken without an acknowledgement.
pub(crate) type Outcome = Result<(), String>;

/// The waiters of one connection.
#[derive(Debug, Default)]
pub(crate) struct AckTracker {
    /// `Some(reason)` once the connection is gone: no new waiter is accepted.
    closed: Option<String>,
    /// Registered, not yet given a packet id, in send order.
    queued: VecDeque<oneshot::Sender<Outcome>>,
    /// Taken from `queued` by a collision; published later under the colliding id.
    collided: Option<oneshot::Sender<Outcome>>,
    /// On the wire, waiting for PUBACK / PUBCOMP.
    inflight: HashMap<u16, oneshot::Sender<Outcome>>,
}

impl AckTracker {
    /// Registers the next QoS 1/2 publish. Must be called in the order the requests are queued.
    /// Fails with the reason when the connection is gone.
    pub(crate) fn register(&mut self) -> Result<oneshot::Receiver<Outcome>, String> {
        if let Some(reason) = &self.closed {
            return Err(reason.clone());
        }
        let (tx, rx) = oneshot::channel();
        self.queued.push_back(tx);
        Ok(rx)
    }

    /// The reason the connection is gone, if it is.
    pub(crate) fn closed(&self) -> Option<&str> {
        self.closed.as_deref()
    }

    /// Follows one event of the connection's event loop.
    pub(crate) fn on_event(&mut self, event: &Event) {
        match event {
            Event::Outgoing(Outgoing::Publish(pkid)) if *pkid != 0 => {
                if let Some(tx) = self.collided.take().or_else(|| self.queued.pop_front()) {
                    self.inflight.insert(*pkid, tx);
                }
            }
            Event::Outgoing(Outgoing::AwaitAck(_)) => {
                self.collided = self.queued.pop_front();
            }
            Event::Incoming(Packet::PubAck(ack)) => self.acked(ack.pkid),
            Event::Incoming(Packet::PubComp(comp)) => self.acked(comp.pkid),
            _ => {}
        }
    }

    fn acked(&mut self, pkid: u16) {
        if let Some(tx) = self.inflight.remove(&pkid) {
            // The waiter may have timed out and gone; nothing to tell then.
            let _ = tx.send(Ok(()));
        }
    }

    /// The connection is gone: wake every waiter with `reason` and refuse new ones.
    pub(crate) fn fail_all(&mut self, reason: &str) {
        self.closed = Some(reason.to_owned());
        let waiters = self
            .queued
            .drain(..)
            .chain(self.collided.take())
            .chain(self.inflight.drain().map(|(_, tx)| tx));
        for tx in waiters {
            let _ = tx.send(Err(reason.to_owned()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rumqttc::{PubAck, PubComp};

    fn out(pkid: u16) -> Event {
        Event::Outgoing(Outgoing::Publish(pkid))
    }

    fn puback(pkid: u16) -> Event {
        Event::Incoming(Packet::PubAck(PubAck::new(pkid)))
    }

    #[test]
    fn each_waiter_is_woken_by_its_own_ack_even_out_of_order() {
        let mut t = AckTracker::default();
        let mut a = t.register().expect("open");
        let mut b = t.register().expect("open");
        t.on_event(&out(0)); // a QoS 0 publish in between is not ours
        t.on_event(&out(1));
        t.on_event(&out(2));
        t.on_event(&puback(2));
        assert_eq!(b.try_recv(), Ok(Ok(())));
        assert!(a.try_recv().is_err(), "a is still waiting");
        t.on_event(&puback(1));
        assert_eq!(a.try_recv(), Ok(Ok(())));
    }

    #[test]
    fn a_collided_publish_keeps_its_waiter() {
        let mut t = AckTracker::default();
        let mut first = t.register().expect("open");
        let mut second = t.register().expect("open");
        t.on_event(&out(1));
        t.on_event(&Event::Outgoing(Outgoing::AwaitAck(1)));
        t.on_event(&puback(1));
        assert_eq!(first.try_recv(), Ok(Ok(())));
        t.on_event(&out(1));
        t.on_event(&puback(1));
        assert_eq!(second.try_recv(), Ok(Ok(())));
    }

    #[test]
    fn qos2_completes_on_pubcomp() {
        let mut t = AckTracker::default();
        let mut w = t.register().expect("open");
        t.on_event(&out(7));
        t.on_event(&Event::Incoming(Packet::PubComp(PubComp::new(7))));
        assert_eq!(w.try_recv(), Ok(Ok(())));
    }

    #[test]
    fn a_lost_connection_wakes_everyone_with_the_reason_and_refuses_more() {
        let mut t = AckTracker::default();
        let mut on_wire = t.register().expect("open");
        let mut queued = t.register().expect("open");
        t.on_event(&out(1));
        t.fail_all("connection reset");
        assert_eq!(on_wire.try_recv(), Ok(Err("connection reset".into())));
        assert_eq!(queued.try_recv(), Ok(Err("connection reset".into())));
        assert_eq!(t.register().err().as_deref(), Some("connection reset"));
        assert_eq!(t.closed(), Some("connection reset"));
    }
}
