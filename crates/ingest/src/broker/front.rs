//! fieldlink's own MQTT listeners, plain and TLS, in front of rumqttd.
//!
//! rumqttd 0.20 cannot be trusted with a public socket:
//! - it does the TLS handshake inside its accept loop, one connection at a time and with no
//!   timeout (`server/broker.rs`, `tls_accept`): one client that opens a TCP connection and
//!   sends nothing stops every later handset from connecting over TLS (seen here with
//!   `mosquitto_pub` and one idle socket);
//! - it has no limit on connections per address;
//! - its auth hook is not told the peer's address, and a refused login is closed without a
//!   CONNACK, so the handset only sees "connection lost".
//!
//! So every public MQTT connection, plain or TLS, is accepted here, and each gets its own task:
//!
//! 1. at most `max_per_address` connections from one IP address at a time (but for `uncapped`
//!    ones: this host itself, by default); one more is closed at once
//!    (`fieldlink_mqtt_connect_refused_total{reason="too_many_connections"}`);
//! 2. TLS, when configured: the handshake (`reason="tls_handshake"` when it fails);
//! 3. the client's CONNECT is read and checked ([`super::check_login`]: identity, then
//!    credentials). A refusal is answered with the MQTT 3.1.1 CONNACK code that says why
//!    (2: identifier rejected, 5: not authorised, 1: another protocol version), counted, and
//!    logged with the peer's address. No CONNECT within `connect_timeout` from the accept
//!    (TLS included), or a malformed or oversized one, is `reason="bad_connect"`;
//! 4. the vetted connection itself, its CONNECT still unread as far as rumqttd can tell
//!    ([`Replayed`]), goes to rumqttd through `rumqttd::Acceptor` (a patch of ours,
//!    `vendor/rumqttd/PATCH.md`): no second socket, no copy. rumqttd checks the login again
//!    (cheap: a cached salted hash). Its links run on a thread of their own; a plain
//!    connection moves there right after accept, a TLS one after its handshake on
//!    fieldlink's threads (see `Front::run`).
//!
//! Every refusal log line is rate-limited per reason (see `metrics`). `benches/hop.rs` measures
//! the listener against a client connecting to rumqttd's own (loopback) listener.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use rumqttc::mqttbytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::{Authenticator, Refusal, check_login};
use crate::IngestMetrics;

/// One public listener and what its connections need.
pub(crate) struct Front {
    /// The bound public listener.
    pub listener: std::net::TcpListener,
    /// The server's certificate and key, for the TLS listener; `None` for the plain one.
    pub tls: Option<TlsAcceptor>,
    pub shared: Arc<Shared>,
}

/// What both listeners share: one table of connections per address, one broker.
pub(crate) struct Shared {
    /// Where vetted connections go.
    pub broker: rumqttd::Acceptor,
    /// Pause after each accepted connection (`accept_delay_ms`).
    pub accept_delay: Duration,
    /// Longest time from accept to a complete CONNECT, TLS handshake included.
    pub connect_timeout: Duration,
    /// Most connections from one IP address at once, over both listeners.
    pub max_per_address: usize,
    /// Addresses the cap does not apply to.
    pub uncapped: Vec<IpAddr>,
    /// Largest CONNECT (its last will included), in bytes after the fixed header.
    pub max_connect_bytes: usize,
    pub auth: Arc<dyn Authenticator>,
    /// Where refusals are counted and logged.
    pub metrics: IngestMetrics,
    pub open: Arc<PerAddress>,
}

/// Connections open per address; a [`Slot`] gives its place back when dropped.
#[derive(Default)]
pub(crate) struct PerAddress(Mutex<HashMap<IpAddr, usize>>);

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

/// MQTT 3.1.1 CONNACK return codes the front answers with (section 3.2.2.3).
mod connack {
    pub const UNACCEPTABLE_PROTOCOL_VERSION: u8 = 1;
    pub const IDENTIFIER_REJECTED: u8 = 2;
    pub const NOT_AUTHORISED: u8 = 5;
}

/// Why a connection's first packet is not a CONNECT fieldlink can take.
#[derive(Debug, PartialEq, Eq)]
enum BadConnect {
    /// The peer closed before a whole CONNECT arrived.
    Incomplete,
    /// No whole CONNECT within the connection timeout.
    TimedOut,
    /// A CONNECT for another MQTT version (3.1 or 5): answered with CONNACK code 1.
    Version(u8),
    /// Not a CONNECT, malformed, or larger than allowed.
    Malformed,
}

impl Front {
    /// Accepts until `shutdown`; each connection runs in its own task.
    pub(crate) async fn run(self, shutdown: CancellationToken) {
        let name = if self.tls.is_some() { "TLS" } else { "plain" };
        let listener = match self
            .listener
            .set_nonblocking(true)
            .and_then(|()| TcpListener::from_std(self.listener))
        {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "the MQTT {name} listener cannot start");
                return;
            }
        };
        loop {
            let (tcp, peer) = tokio::select! {
                () = shutdown.cancelled() => return,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of descriptors, mostly: wait a moment rather than spin.
                        tracing::warn!(error = %e, "MQTT {name} listener: accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let shared = Arc::clone(&self.shared);
            let slot = if shared.uncapped.contains(&peer.ip()) {
                None
            } else if let Some(slot) = shared.open.take(peer.ip(), shared.max_per_address) {
                Some(slot)
            } else {
                shared
                    .metrics
                    .connect_refused(Refusal::TooManyConnections, Some(peer), None);
                continue;
            };
            // MQTT packets are small and latency matters (a fix, a receipt).
            let _ = tcp.set_nodelay(true);
            let deadline = Instant::now() + shared.connect_timeout;
            match self.tls.clone() {
                None => {
                    // A plain connection moves to the runtime rumqttd's links run on and is
                    // read and checked there: served by the reactor of the thread that polls
                    // it, it costs no cross-thread wake-up per read (3.9 µs of CPU a message
                    // otherwise, measured in benches/hop.rs). A TLS connection cannot move once
                    // its handshake is done, and the handshakes are better spread over
                    // fieldlink's threads.
                    // Moving a socket fails only on an OS error (out of memory, say); the
                    // handset then sees its connection close and reconnects.
                    match tcp.into_std() {
                        Ok(std) => {
                            let links = shared.broker.runtime().clone();
                            links.spawn(async move {
                                match tokio::net::TcpStream::from_std(std) {
                                    Ok(tcp) => shared.serve(tcp, peer, deadline, slot).await,
                                    Err(e) => tracing::warn!(%peer, error = %e, "MQTT plain listener: could not hand a connection to the broker"),
                                }
                            });
                        }
                        Err(e) => {
                            tracing::warn!(%peer, error = %e, "MQTT plain listener: could not hand a connection to the broker")
                        }
                    }
                }
                Some(acceptor) => {
                    tokio::spawn(async move {
                        match tokio::time::timeout_at(deadline, acceptor.accept(tcp)).await {
                            Ok(Ok(tls)) => shared.serve(tls, peer, deadline, slot).await,
                            Ok(Err(_)) | Err(_) => {
                                shared.metrics.connect_refused(
                                    Refusal::TlsHandshake,
                                    Some(peer),
                                    None,
                                );
                            }
                        }
                    });
                }
            }
            if !self.shared.accept_delay.is_zero() {
                tokio::time::sleep(self.shared.accept_delay).await;
            }
        }
    }
}

impl Shared {
    /// Reads and checks the CONNECT, then hands the connection (and its address slot, which
    /// is given back when rumqttd drops it) to rumqttd.
    async fn serve<S>(&self, mut client: S, peer: SocketAddr, deadline: Instant, slot: Option<Slot>)
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let mut buf = BytesMut::with_capacity(512);
        let connect = match tokio::time::timeout_at(
            deadline,
            read_connect(&mut client, &mut buf, self.max_connect_bytes),
        )
        .await
        .unwrap_or(Err(BadConnect::TimedOut))
        {
            Ok(connect) => connect,
            Err(bad) => {
                if bad == BadConnect::Incomplete && buf.is_empty() {
                    // Opened and closed without a byte: a port probe or a load balancer's
                    // health check is not a login, and not worth a line. (Held open and
                    // silent, it is counted: that is how sockets are hoarded.)
                    tracing::debug!(%peer, "MQTT connection closed before CONNECT");
                    return;
                }
                if let BadConnect::Version(level) = bad {
                    tracing::debug!(%peer, level, "MQTT CONNECT for another protocol version");
                    refuse(&mut client, connack::UNACCEPTABLE_PROTOCOL_VERSION).await;
                }
                self.metrics
                    .connect_refused(Refusal::BadConnect, Some(peer), None);
                return;
            }
        };
        let (username, password) = connect
            .login
            .as_ref()
            .map_or(("", ""), |l| (l.username.as_str(), l.password.as_str()));
        if let Err(refusal) =
            check_login(self.auth.as_ref(), &connect.client_id, username, password)
        {
            let code = match refusal {
                Refusal::BadIdentity => connack::IDENTIFIER_REJECTED,
                _ => connack::NOT_AUTHORISED,
            };
            refuse(&mut client, code).await;
            self.metrics
                .connect_refused(refusal, Some(peer), Some((&connect.client_id, username)));
            return;
        }

        // The login (a secret in clear) is not kept for the connection's life.
        drop(connect);
        self.broker.spawn(Replayed {
            first: buf,
            stream: client,
            _slot: slot,
        });
    }
}

/// A connection whose first bytes were already read (the CONNECT, and anything right behind
/// it): reads give those bytes again first, then the stream's. rumqttd reads the CONNECT itself.
struct Replayed<S> {
    first: BytesMut,
    stream: S,
    /// The connection's place in the per-address table, held as long as rumqttd holds it.
    _slot: Option<Slot>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Replayed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.first.is_empty() {
            return Pin::new(&mut self.stream).poll_read(cx, out);
        }
        let n = self.first.len().min(out.remaining());
        out.put_slice(&self.first.split_to(n));
        if self.first.is_empty() {
            // The buffer's memory goes back now, not when the connection ends.
            self.first = BytesMut::new();
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Replayed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Reads until `buf` holds the first whole packet and returns it as a CONNECT. The packet's
/// bytes (and any that followed) stay in `buf`, to be passed on unchanged.
async fn read_connect<S>(
    client: &mut S,
    buf: &mut BytesMut,
    max_bytes: usize,
) -> Result<mqttbytes::v4::Connect, BadConnect>
where
    S: AsyncRead + Unpin,
{
    loop {
        if let Some(connect) = first_packet(buf, max_bytes)? {
            return Ok(connect);
        }
        match client.read_buf(buf).await {
            Ok(0) | Err(_) => return Err(BadConnect::Incomplete),
            Ok(_) => {}
        }
    }
}

/// What the bytes a client sent so far make of its first packet: an MQTT 3.1.1 CONNECT, `None`
/// while it is not whole yet, or why it will never be one.
fn first_packet(
    bytes: &[u8],
    max_bytes: usize,
) -> Result<Option<mqttbytes::v4::Connect>, BadConnect> {
    // A CONNECT's first byte is exactly 0x10; anything else (a PUBLISH before logging in, an
    // HTTP request on the wrong port) is refused at once, not after the timeout.
    if bytes.first().is_some_and(|&b| b != 0x10) {
        return Err(BadConnect::Malformed);
    }
    let not_v4 = || requested_version(bytes).map_or(BadConnect::Malformed, BadConnect::Version);
    match mqttbytes::v4::Packet::read(&mut BytesMut::from(bytes), max_bytes) {
        Ok(mqttbytes::v4::Packet::Connect(c)) if c.protocol == mqttbytes::Protocol::V4 => {
            Ok(Some(c))
        }
        Err(mqttbytes::Error::InsufficientBytes(_)) => Ok(None),
        Ok(_) | Err(_) => Err(not_v4()),
    }
}

/// [`first_packet`] for the fuzzer and the corpus test (`fuzz/`): the CONNECT's client id,
/// `None` while more bytes are needed, or why the connection is refused.
#[doc(hidden)]
pub fn read_first_packet(bytes: &[u8]) -> Result<Option<String>, String> {
    first_packet(bytes, 64 * 1024)
        .map(|c| c.map(|c| c.client_id))
        .map_err(|bad| format!("{bad:?}"))
}

/// The protocol level a CONNECT asks for, when `frame` starts with a CONNECT for a level other
/// than MQTT 3.1.1's 4 (3.1's "MQIsdp" 3, or 5).
fn requested_version(frame: &[u8]) -> Option<u8> {
    if frame.first()? >> 4 != 1 {
        return None;
    }
    // The remaining length: 1 to 4 bytes, 7 bits each, high bit "more".
    let mut at = 1;
    while *frame.get(at)? & 0x80 != 0 {
        at += 1;
        if at > 4 {
            return None;
        }
    }
    at += 1;
    let name_len = usize::from(u16::from_be_bytes([*frame.get(at)?, *frame.get(at + 1)?]));
    let level = *frame.get(at + 2 + name_len)?;
    (level != 4).then_some(level)
}

/// Answers a refused CONNECT with `code` and closes. The client may already be gone.
async fn refuse<S: AsyncWrite + Unpin>(client: &mut S, code: u8) {
    let _ = client.write_all(&[0x20, 0x02, 0x00, code]).await;
    let _ = client.shutdown().await;
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

    fn connect_frame(name: &str, level: u8) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&u16::try_from(name.len()).unwrap().to_be_bytes());
        body.extend_from_slice(name.as_bytes());
        body.extend_from_slice(&[level, 0x02, 0x00, 0x3c, 0x00, 0x01, b'a']);
        let mut frame = vec![0x10, u8::try_from(body.len()).unwrap()];
        frame.extend(body);
        frame
    }

    #[test]
    fn the_requested_version_is_read_from_a_connect_only() {
        assert_eq!(requested_version(&connect_frame("MQIsdp", 3)), Some(3));
        assert_eq!(requested_version(&connect_frame("MQTT", 5)), Some(5));
        assert_eq!(requested_version(&connect_frame("MQTT", 4)), None);
        assert_eq!(
            requested_version(&[0x30, 0x02, 0x00, 0x00]),
            None,
            "a PUBLISH"
        );
        assert_eq!(requested_version(&[0x10]), None, "cut short");
        assert_eq!(
            requested_version(&[0x10, 0xff, 0xff, 0xff, 0xff, 0x7f]),
            None
        );
    }

    #[tokio::test]
    async fn a_connect_arriving_in_pieces_is_read_whole_and_kept_for_the_broker() {
        let frame = connect_frame("MQTT", 4);
        let (mut near, mut far) = tokio::io::duplex(64);
        let sent = frame.clone();
        let writer = tokio::spawn(async move {
            for byte in &sent {
                far.write_all(&[*byte]).await.unwrap();
                tokio::task::yield_now().await;
            }
            far.write_all(&[0xc0, 0x00]).await.unwrap(); // a PINGREQ right behind it
            far
        });
        let mut buf = BytesMut::new();
        let connect = read_connect(&mut near, &mut buf, 1024)
            .await
            .expect("a CONNECT");
        assert_eq!(connect.client_id, "a");
        let _far = writer.await.unwrap();
        assert!(
            buf.starts_with(&frame),
            "the CONNECT's own bytes are passed on"
        );
    }

    #[tokio::test]
    async fn a_replayed_stream_gives_its_first_bytes_again_then_the_rest_and_frees_its_slot() {
        let table = Arc::new(PerAddress::default());
        let ip: IpAddr = [10, 0, 0, 9].into();
        let (near, mut far) = tokio::io::duplex(64);
        let mut replayed = Replayed {
            first: BytesMut::from(&b"CONNECT"[..]),
            stream: near,
            _slot: table.take(ip, 1),
        };
        assert!(table.take(ip, 1).is_none(), "the slot is held");
        far.write_all(b" then more").await.unwrap();
        let mut small = [0u8; 4];
        replayed.read_exact(&mut small).await.unwrap();
        assert_eq!(
            &small, b"CONN",
            "a small read takes part of the first bytes"
        );
        let mut rest = [0u8; 13];
        replayed.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b"ECT then more");
        replayed.write_all(b"CONNACK").await.unwrap();
        let mut answer = [0u8; 7];
        far.read_exact(&mut answer).await.unwrap();
        assert_eq!(&answer, b"CONNACK", "writes go straight through");
        drop(replayed);
        assert!(
            table.take(ip, 1).is_some(),
            "the slot comes back with the connection"
        );
    }

    #[tokio::test]
    async fn other_versions_garbage_and_oversize_are_told_apart() {
        for (bytes, want) in [
            (connect_frame("MQIsdp", 3), BadConnect::Version(3)),
            (connect_frame("MQTT", 5), BadConnect::Version(5)),
            (b"GET / HTTP/1.1\r\n\r\n".to_vec(), BadConnect::Malformed),
            (vec![0x10, 0xff, 0xff, 0x03], BadConnect::Malformed),
        ] {
            let mut buf = BytesMut::new();
            let got = read_connect(&mut bytes.as_slice(), &mut buf, 1024).await;
            assert_eq!(got.map(|c| c.client_id), Err(want), "{bytes:?}");
        }
        let mut buf = BytesMut::new();
        let got = read_connect(&mut [0x10u8, 0x20].as_slice(), &mut buf, 1024).await;
        assert_eq!(got.map(|c| c.client_id), Err(BadConnect::Incomplete));
    }
}
