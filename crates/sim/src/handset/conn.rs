//! The connection of one handset: the handshake's helpers and the event-loop task.
//!
//! The task feeds every event to the handset's ack tracker, hands decoded downlinks to the handset,
//! and ends on the first connection error or on DISCONNECT, waking every waiter with the reason.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use fieldlink_proto::{UnitId, v1};
use prost::Message as _;
use rumqttc::{ConnectReturnCode, ConnectionError, Event, EventLoop, Packet};
use tokio::sync::mpsc;

use super::seal::Sealer;
use super::{HandsetConfig, Shared};
use crate::SimError;

/// Splits `host:port`.
pub(super) fn parse_broker(broker: &str) -> Result<(String, u16), SimError> {
    let bad = || SimError::BadBroker(broker.to_owned());
    let (host, port) = broker.rsplit_once(':').ok_or_else(bad)?;
    let port = port.parse().map_err(|_| bad())?;
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host.to_owned(), port))
}

/// Polls until an incoming packet matches (CONNACK, SUBACK) and returns it.
pub(super) async fn wait_for(
    eventloop: &mut EventLoop,
    want: impl Fn(&Packet) -> bool,
) -> Result<Packet, ConnectionError> {
    loop {
        if let Event::Incoming(p) = eventloop.poll().await?
            && want(&p)
        {
            return Ok(p);
        }
    }
}

pub(super) fn connect_error(cfg: &HandsetConfig, e: ConnectionError) -> SimError {
    let reason = match &e {
        ConnectionError::ConnectionRefused(code) => match code {
            ConnectReturnCode::BadUserNamePassword => {
                "bad user name or password (check the unit id and its secret)"
            }
            ConnectReturnCode::NotAuthorized => "not authorized",
            ConnectReturnCode::BadClientId => "the client id (the unit id) was rejected",
            ConnectReturnCode::ServiceUnavailable => "the service is unavailable",
            ConnectReturnCode::RefusedProtocolVersion => "it does not speak MQTT 3.1.1",
            ConnectReturnCode::Success => "an unexpected refusal with return code success",
        },
        _ => {
            return SimError::Connect {
                broker: cfg.broker.clone(),
                unit: cfg.unit.clone(),
                source: Box::new(e),
            };
        }
    };
    SimError::Refused {
        broker: cfg.broker.clone(),
        unit: cfg.unit.clone(),
        reason,
    }
}

/// Drives the connection until it ends: follows acknowledgements and hands downlinks over.
pub(super) async fn run_eventloop(
    mut eventloop: EventLoop,
    unit: UnitId,
    down: String,
    shared: Arc<Shared>,
    sealer: Option<Arc<Sealer>>,
    downlinks: mpsc::Sender<v1::Downlink>,
) {
    let mut guard = fieldlink_seal::CounterGuard::default();
    let reason = loop {
        let event = match eventloop.poll().await {
            Ok(event) => event,
            Err(e) => break format!("connection lost: {e}"),
        };
        shared
            .acks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .on_event(&event);
        match event {
            Event::Incoming(Packet::Publish(p)) if p.topic == down => {
                let plain = match &sealer {
                    None => Ok(p.payload.to_vec()),
                    Some(sealer) => sealer.open_downlink(&mut guard, &p.payload),
                };
                let plain = match plain {
                    Ok(plain) => plain,
                    Err(why) => {
                        shared.downlinks_bad.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(%unit, %why, "downlink refused: not sealed by fieldlink for this unit");
                        continue;
                    }
                };
                match v1::Downlink::decode(plain.as_slice()) {
                    Ok(d) => {
                        if downlinks.try_send(d).is_err() {
                            shared.downlinks_dropped.fetch_add(1, Ordering::Relaxed);
                            tracing::debug!(%unit, "downlink dropped: the handset's queue is full");
                        }
                    }
                    Err(e) => {
                        shared.downlinks_bad.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(%unit, error = %e, "downlink is not a fieldlink Downlink");
                    }
                }
            }
            Event::Outgoing(rumqttc::Outgoing::Disconnect) => break "disconnected".to_owned(),
            _ => {}
        }
    };
    tracing::debug!(%unit, %reason, "handset event loop ended");
    shared
        .acks
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .fail_all(&reason);
}

#[cfg(test)]
mod tests {
    use super::*;
    use fieldlink_proto::Topics;

    #[test]
    fn broker_addresses_are_host_and_port() {
        assert_eq!(
            parse_broker("127.0.0.1:1883").ok(),
            Some(("127.0.0.1".into(), 1883))
        );
        assert_eq!(
            parse_broker("[::1]:1883").ok(),
            Some(("[::1]".into(), 1883))
        );
        for bad in ["localhost", ":1883", "host:port", "host:70000"] {
            assert!(
                matches!(parse_broker(bad), Err(SimError::BadBroker(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_secret_stays_out_of_debug_output() {
        let cfg = HandsetConfig::new(
            "127.0.0.1:1883",
            UnitId::new("u1").expect("valid"),
            "hunter2",
            Topics::default(),
        );
        assert!(!format!("{cfg:?}").contains("hunter2"));
    }
}
