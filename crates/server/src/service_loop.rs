//! The loop of every service task that owns a core (dispatch, intercom, video): apply the inputs
//! from its bounded queue in order, and call its tick at a fixed interval, until shutdown.

use std::future::Future;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

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
