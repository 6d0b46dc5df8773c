//! What every service task that owns a core (dispatch, intercom, video) shares: the bounded
//! queue handset inputs reach it through ([`InputQueue`]), and the loop that applies them in order
//! and calls its tick at a fixed interval until shutdown ([`inputs_and_ticks`]).

use std::future::Future;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The sending side of a service's bounded input queue. The uplink path must never wait, so a
/// full queue drops the input: counted in `fieldlink_inputs_dropped_total{service}` and logged.
#[derive(Debug)]
pub struct InputQueue<T> {
    tx: mpsc::Sender<T>,
    service: &'static str,
    dropped: Counter,
}

impl<T: Send + 'static> InputQueue<T> {
    /// A queue of `capacity` for `service`; the receiving end goes to the service's task.
    pub fn new(
        capacity: usize,
        service: &'static str,
        dropped: Counter,
    ) -> (Self, mpsc::Receiver<T>) {
        let (tx, rx) = mpsc::channel(capacity);
        let queue = InputQueue {
            tx,
            service,
            dropped,
        };
        (queue, rx)
    }

    /// Queues `input` without waiting; drops it when the queue is full or the service stopped.
    pub fn offer(&self, input: T) {
        if let Err(e) = self.tx.try_send(input) {
            self.dropped.inc();
            tracing::warn!(service = self.service, error = %e, "input queue full or closed; input dropped");
        }
    }

    /// Queues an input that must not be lost (an SOS, a field report): when the queue is full it
    /// waits for room in a task of its own, so the caller still never blocks (its order relative
    /// to later inputs is then not kept).
    pub fn offer_must_arrive(&self, input: T) {
        match self.tx.try_send(input) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(input)) => {
                let service = self.service;
                tracing::warn!(
                    service,
                    "input queue full; an input that must arrive waits for room"
                );
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    if tx.send(input).await.is_err() {
                        tracing::error!(
                            service,
                            "the service stopped; an input that had to arrive was not applied"
                        );
                    }
                });
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.dropped.inc();
                tracing::error!(
                    service = self.service,
                    "the service stopped; an input that had to arrive was not applied"
                );
            }
        }
    }
}

/// Runs until `shutdown` or until every sender of `inputs` is gone. A tick that comes due while
/// an input is being applied is skipped, not queued (deadlines are absolute; the next tick
/// catches up).
pub async fn inputs_and_ticks<I, A, AF, T, TF>(
    mut inputs: mpsc::Receiver<I>,
    every: Duration,
    shutdown: CancellationToken,
    mut apply: A,
    mut tick: T,
) where
    A: FnMut(I) -> AF,
    AF: Future<Output = ()>,
    T: FnMut() -> TF,
    TF: Future<Output = ()>,
{
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            input = inputs.recv() => match input {
                Some(input) => apply(input).await,
                None => break,
            },
            _ = ticker.tick() => tick().await,
        }
    }
}
