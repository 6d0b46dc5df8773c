//! fieldlink's own TLS listener in front of rumqttd.
//!
//! rumqttd 0.20 does the TLS handshake inside its accept loop, one connection at a time and with
//! no timeout (`server/broker.rs`, `tls_accept`): one client that opens a TCP connection and
//! sends nothing stops every later handset from connecting over TLS, for as long as it likes
//! (seen here with `mosquitto_pub` and one idle socket). So fieldlink terminates TLS itself:
//!
//! - each connection gets its own task, and its handshake at most `handshake_timeout`
//!   (the broker's `connection_timeout`): a silent client costs one task, not the listener;
//! - at most `max_per_address` connections from one IP address at a time; one more is closed at
//!   once, counted (`fieldlink_mqtt_connect_refused_total{reason="too_many_connections"}`) and
//!   logged with the address (rate-limited);
//! - a failed or timed-out handshake is counted (`reason="tls_handshake"`) and logged with the
//!   address (rate-limited), which rumqttd's auth hook could not do;
//! - the plaintext goes to rumqttd's own plain listener on a loopback port, byte for byte.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::IngestMetrics;

/// What the front needs.
pub(crate) struct TlsFront {
    /// The bound public listener.
    pub listener: std::net::TcpListener,
    /// The server's certificate and key.
    pub acceptor: TlsAcceptor,
    /// rumqttd's loopback plain listener.
    pub upstream: SocketAddr,
    /// Longest TLS handshake.
    pub handshake_timeout: Duration,
    /// Most connections from one IP address at once.
    pub max_per_address: usize,
    /// Where refusals are counted and logged.
    pub metrics: IngestMetrics,
}

/// Connections open per address; a [`Slot`] gives its place back when dropped.
#[derive(Default)]
struct PerAddress(Mutex<HashMap<IpAddr, usize>>);

struct Slot {
    table: Arc<PerAddress>,
    ip: IpAddr,
}

impl PerAddress {
    /// A slot for `ip`, unless it already holds `max`.
    fn take(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<Slot> {
        let mut open = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(ip).or_default();
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Slot {
            table: Arc::clone(self),
            ip,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.table.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

impl TlsFront {
    /// Accepts until `shutdown`; each connection runs in its own task.
    pub(crate) async fn run(self, shutdown: CancellationToken) {
        let listener = match self
            .listener
            .set_nonblocking(true)
            .and_then(|()| TcpListener::from_std(self.listener))
        {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "the MQTT TLS listener cannot start");
                return;
            }
        };
        let table = Arc::new(PerAddress::default());
        loop {
            let (tcp, peer) = tokio::select! {
                () = shutdown.cancelled() => return,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of descriptors, mostly: wait a moment rather than spin.
                        tracing::warn!(error = %e, "MQTT TLS listener: accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let Some(slot) = table.take(peer.ip(), self.max_per_address) else {
                self.metrics
                    .connection_refused("too_many_connections", peer);
                continue;
            };
            let acceptor = self.acceptor.clone();
            let metrics = self.metrics.clone();
            let (upstream, timeout) = (self.upstream, self.handshake_timeout);
            tokio::spawn(async move {
                let _slot = slot;
                let tls = match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(_)) | Err(_) => {
                        metrics.connection_refused("tls_handshake", peer);
                        return;
                    }
                };
                let Ok(plain) = TcpStream::connect(upstream).await else {
                    tracing::warn!(%peer, %upstream, "MQTT TLS listener: the broker's loopback listener does not answer");
                    return;
                };
                // MQTT packets are small and latency matters (a fix, a receipt).
                let _ = plain.set_nodelay(true);
                let _ = tls.get_ref().0.set_nodelay(true);
                let (mut tls, mut plain) = (tls, plain);
                // Ends when either side closes; errors are ordinary disconnects.
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_gets_at_most_max_slots_and_gets_them_back_when_they_close() {
        let table = Arc::new(PerAddress::default());
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let first = table.take(a, 2).expect("first");
        let _second = table.take(a, 2).expect("second");
        assert!(table.take(a, 2).is_none(), "a third from the same address");
        assert!(
            table.take(b, 2).is_some(),
            "another address is not affected"
        );
        drop(first);
        assert!(
            table.take(a, 2).is_some(),
            "a closed connection frees its slot"
        );
    }
}
