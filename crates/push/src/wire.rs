//! The two encodings of the protocol and the negotiation between them.
//!
//! JSON is the default; `fieldlink.v1.proto` sends binary protobuf frames built from
//! `proto/push.proto`. Both come from the same [`ServerMessage`]/[`ClientMessage`] values, so
//! there is one schema: the conversions here are total in both directions (tested by round trip).

use fieldlink_clock::Timestamp;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use crate::filter::{Channel, Coords, Filter};
use crate::protocol::{ClientMessage, EventMessage, Limits, PositionUpdate, ServerMessage};

/// The generated protobuf types of `proto/push.proto`.
#[allow(missing_docs, missing_debug_implementations, clippy::all)]
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/fieldlink.push.v1.rs"));
}

/// The negotiated encoding of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// JSON text frames (`fieldlink.v1.json`, the default).
    Json,
    /// Protobuf binary frames (`fieldlink.v1.proto`).
    Proto,
}

impl Protocol {
    /// The subprotocol name of JSON.
    pub const JSON: &'static str = "fieldlink.v1.json";
    /// The subprotocol name of protobuf.
    pub const PROTO: &'static str = "fieldlink.v1.proto";

    /// The subprotocol name.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Json => Self::JSON,
            Protocol::Proto => Self::PROTO,
        }
    }

    /// The first of the client's `Sec-WebSocket-Protocol` values that we speak, if any.
    pub fn negotiate(offered: &str) -> Option<Protocol> {
        offered.split(',').map(str::trim).find_map(|p| match p {
            Self::JSON => Some(Protocol::Json),
            Self::PROTO => Some(Protocol::Proto),
            _ => None,
        })
    }

    /// A server message as a frame of this encoding.
    pub fn encode(self, msg: &ServerMessage) -> Message {
        match self {
            Protocol::Json => match serde_json::to_string(msg) {
                Ok(text) => Message::text(text),
                // Serialising our own types cannot fail (no maps with non-string keys); keep
                // the session alive with an error message should it ever happen.
                Err(e) => Message::text(format!(
                    r#"{{"type":"error","code":"internal","message":{}}}"#,
                    Value::String(e.to_string())
                )),
            },
            Protocol::Proto => {
                Message::binary(prost::Message::encode_to_vec(&server_to_proto(msg)))
            }
        }
    }
}

/// A client frame as a message: text is JSON, binary is protobuf, whatever was negotiated.
pub fn decode_client(frame: &[u8], binary: bool) -> Result<ClientMessage, String> {
    if binary {
        let pb: pb::ClientMessage =
            prost::Message::decode(frame).map_err(|e| format!("bad protobuf: {e}"))?;
        client_from_proto(pb)
    } else {
        serde_json::from_slice(frame).map_err(|e| format!("bad JSON: {e}"))
    }
}

fn json_text(v: &Value) -> String {
    v.to_string()
}

/// A time field of the protobuf form: the RFC 3339 `at`, or (from a sender that leaves it
/// empty) the `at_ms` beside it.
fn time_of(at: &str, at_ms: i64) -> Result<Timestamp, String> {
    if at.is_empty() {
        return Ok(Timestamp::from_millis(at_ms));
    }
    Timestamp::parse_rfc3339(at).ok_or_else(|| format!("at {at} is not an RFC 3339 time"))
}

fn json_value(s: &str) -> Result<Value, String> {
    if s.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(s).map_err(|e| format!("bad JSON field: {e}"))
}

fn channels_to_proto(channels: &[Channel]) -> Vec<String> {
    channels.iter().map(|c| c.as_str().to_owned()).collect()
}

fn channels_from_proto(channels: &[String]) -> Result<Vec<Channel>, String> {
    channels
        .iter()
        .map(|c| Channel::parse(c).ok_or_else(|| format!("unknown channel {c:?}")))
        .collect()
}

/// A server message in its protobuf form.
pub fn server_to_proto(msg: &ServerMessage) -> pb::ServerMessage {
    use pb::server_message::Msg;
    let m = match msg {
        ServerMessage::Hello {
            session,
            name,
            role,
            unit,
            protocol,
            limits,
        } => Msg::Hello(pb::Hello {
            session: session.clone(),
            name: name.clone(),
            role: role.clone(),
            unit: unit.clone(),
            protocol: protocol.clone(),
            limits: Some(pb::Limits {
                max_message_bytes: limits.max_message_bytes,
                max_frame_bytes: limits.max_frame_bytes,
                outbound_queue: limits.outbound_queue,
                position_tick_ms: limits.position_tick_ms,
                resume_limit: limits.resume_limit,
                ping_interval_ms: limits.ping_interval_ms,
                idle_timeout_ms: limits.idle_timeout_ms,
            }),
        }),
        ServerMessage::Snapshot {
            channels,
            seq,
            items,
            part,
            last,
        } => Msg::Snapshot(pb::Snapshot {
            channels: channels_to_proto(channels),
            seq: *seq,
            items_json: json_text(items),
            part: *part,
            last: *last,
        }),
        ServerMessage::Event(e) => Msg::Event(pb::Event {
            seq: e.seq,
            channel: e.channel.as_str().to_owned(),
            kind: e.kind.clone(),
            subject: e.subject.clone(),
            actor: e.actor.clone(),
            at: e.at.to_rfc3339(),
            at_ms: e.at_ms,
            unit: e.unit.clone(),
            lat: e.lat,
            lon: e.lon,
            grid: e.grid.clone(),
            data_json: json_text(&e.data),
        }),
        ServerMessage::Positions { at, at_ms, units } => Msg::Positions(pb::Positions {
            at: at.to_rfc3339(),
            at_ms: *at_ms,
            units: units
                .iter()
                .map(|p| pb::Position {
                    unit: p.unit.clone(),
                    lat: p.lat,
                    lon: p.lon,
                    at: p.at.to_rfc3339(),
                    at_ms: p.at_ms,
                    speed: p.speed,
                    heading: p.heading,
                    accuracy: p.accuracy,
                    status: p.status.clone(),
                    grid: p.grid.clone(),
                })
                .collect(),
        }),
        ServerMessage::Result { id, data } => Msg::Result(pb::Result {
            id: id.clone(),
            data_json: json_text(data),
        }),
        ServerMessage::Error { id, code, message } => Msg::Error(pb::Error {
            id: id.clone(),
            code: code.clone(),
            message: message.clone(),
        }),
        ServerMessage::SnapshotNeeded { from, oldest } => Msg::SnapshotNeeded(pb::SnapshotNeeded {
            from: *from,
            oldest: *oldest,
        }),
        ServerMessage::Order { data } => Msg::Order(pb::Order {
            data_json: json_text(data),
        }),
    };
    pb::ServerMessage { msg: Some(m) }
}

/// A server message from its protobuf form (what a protobuf client does).
pub fn server_from_proto(msg: pb::ServerMessage) -> Result<ServerMessage, String> {
    use pb::server_message::Msg;
    Ok(match msg.msg.ok_or("empty message")? {
        Msg::Hello(h) => {
            let l = h.limits.unwrap_or_default();
            ServerMessage::Hello {
                session: h.session,
                name: h.name,
                role: h.role,
                unit: h.unit,
                protocol: h.protocol,
                limits: Limits {
                    max_message_bytes: l.max_message_bytes,
                    max_frame_bytes: l.max_frame_bytes,
                    outbound_queue: l.outbound_queue,
                    position_tick_ms: l.position_tick_ms,
                    resume_limit: l.resume_limit,
                    ping_interval_ms: l.ping_interval_ms,
                    idle_timeout_ms: l.idle_timeout_ms,
                },
            }
        }
        Msg::Snapshot(s) => ServerMessage::Snapshot {
            channels: channels_from_proto(&s.channels)?,
            seq: s.seq,
            items: json_value(&s.items_json)?,
            part: s.part.max(1),
            last: s.last,
        },
        Msg::Event(e) => ServerMessage::Event(EventMessage {
            seq: e.seq,
            channel: Channel::parse(&e.channel)
                .ok_or_else(|| format!("unknown channel {:?}", e.channel))?,
            kind: e.kind,
            subject: e.subject,
            actor: e.actor,
            at: time_of(&e.at, e.at_ms)?,
            at_ms: e.at_ms,
            unit: e.unit,
            lat: e.lat,
            lon: e.lon,
            grid: e.grid,
            data: json_value(&e.data_json)?,
        }),
        Msg::Positions(p) => ServerMessage::Positions {
            at: time_of(&p.at, p.at_ms)?,
            at_ms: p.at_ms,
            units: p
                .units
                .into_iter()
                .map(|p| {
                    Ok(PositionUpdate {
                        at: time_of(&p.at, p.at_ms)?,
                        unit: p.unit,
                        lat: p.lat,
                        lon: p.lon,
                        at_ms: p.at_ms,
                        speed: p.speed,
                        heading: p.heading,
                        accuracy: p.accuracy,
                        status: p.status,
                        grid: p.grid,
                    })
                })
                .collect::<Result<_, String>>()?,
        },
        Msg::Result(r) => ServerMessage::Result {
            id: r.id,
            data: json_value(&r.data_json)?,
        },
        Msg::Error(e) => ServerMessage::Error {
            id: e.id,
            code: e.code,
            message: e.message,
        },
        Msg::SnapshotNeeded(s) => ServerMessage::SnapshotNeeded {
            from: s.from,
            oldest: s.oldest,
        },
        Msg::Order(o) => ServerMessage::Order {
            data: json_value(&o.data_json)?,
        },
    })
}

fn filter_to_proto(f: &Filter) -> pb::Filter {
    pb::Filter {
        bbox: f.bbox.map(|b| b.to_vec()).unwrap_or_default(),
        grid: f.grid.clone(),
        units: f.units.as_ref().map(|u| pb::UnitList { units: u.clone() }),
        coords: f.coords.as_str().to_owned(),
    }
}

fn filter_from_proto(f: pb::Filter) -> Result<Filter, String> {
    let bbox = match f.bbox.as_slice() {
        [] => None,
        [a, b, c, d] => Some([*a, *b, *c, *d]),
        _ => return Err("bbox must have 4 numbers".into()),
    };
    let coords = match f.coords.as_str() {
        "" | "wgs84" => Coords::Wgs84,
        "gcj02" => Coords::Gcj02,
        other => return Err(format!("unknown coords {other:?}")),
    };
    Ok(Filter {
        bbox,
        grid: f.grid,
        units: f.units.map(|u| u.units),
        coords,
    })
}

fn fields_from_proto(s: &str) -> Result<serde_json::Map<String, Value>, String> {
    match json_value(s)? {
        Value::Object(map) => Ok(map),
        Value::Null => Ok(serde_json::Map::new()),
        _ => Err("fields_json must be a JSON object".into()),
    }
}

/// A client message in its protobuf form (what a protobuf client sends).
pub fn client_to_proto(msg: &ClientMessage) -> pb::ClientMessage {
    use pb::client_message::Msg;
    let m = match msg {
        ClientMessage::Auth { token } => Msg::Auth(pb::Auth {
            token: token.clone(),
        }),
        ClientMessage::Subscribe {
            channels,
            filter,
            resume_from,
        } => Msg::Subscribe(pb::Subscribe {
            channels: channels_to_proto(channels),
            filter: Some(filter_to_proto(filter)),
            resume_from: *resume_from,
        }),
        ClientMessage::Unsubscribe { channels } => Msg::Unsubscribe(pb::Unsubscribe {
            channels: channels_to_proto(channels),
        }),
        ClientMessage::Command { id, op, args } => Msg::Command(pb::Command {
            id: id.clone(),
            op: op.clone(),
            args_json: json_text(args),
        }),
        ClientMessage::Receipt(fields) => Msg::Receipt(pb::HandsetInput {
            fields_json: Value::Object(fields.clone()).to_string(),
        }),
        ClientMessage::Status(fields) => Msg::Status(pb::HandsetInput {
            fields_json: Value::Object(fields.clone()).to_string(),
        }),
    };
    pb::ClientMessage { msg: Some(m) }
}

/// A client message from its protobuf form.
pub fn client_from_proto(msg: pb::ClientMessage) -> Result<ClientMessage, String> {
    use pb::client_message::Msg;
    Ok(match msg.msg.ok_or("empty message")? {
        Msg::Auth(a) => ClientMessage::Auth { token: a.token },
        Msg::Subscribe(s) => ClientMessage::Subscribe {
            channels: channels_from_proto(&s.channels)?,
            filter: match s.filter {
                Some(f) => filter_from_proto(f)?,
                None => Filter::default(),
            },
            resume_from: s.resume_from,
        },
        Msg::Unsubscribe(u) => ClientMessage::Unsubscribe {
            channels: channels_from_proto(&u.channels)?,
        },
        Msg::Command(c) => ClientMessage::Command {
            id: c.id,
            op: c.op,
            args: json_value(&c.args_json)?,
        },
        Msg::Receipt(r) => ClientMessage::Receipt(fields_from_proto(&r.fields_json)?),
        Msg::Status(s) => ClientMessage::Status(fields_from_proto(&s.fields_json)?),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn samples() -> Vec<ServerMessage> {
        vec![
            ServerMessage::Hello {
                session: "s1".into(),
                name: "ann".into(),
                role: "dispatcher".into(),
                unit: None,
                protocol: Protocol::PROTO.into(),
                limits: Limits {
                    max_message_bytes: 65536,
                    max_frame_bytes: 16384,
                    outbound_queue: 1024,
                    position_tick_ms: 250,
                    resume_limit: 10000,
                    ping_interval_ms: 15000,
                    idle_timeout_ms: 45000,
                },
            },
            ServerMessage::Hello {
                session: "s2".into(),
                name: "u7".into(),
                role: "responder".into(),
                unit: Some("u7".into()),
                protocol: Protocol::JSON.into(),
                limits: Limits {
                    max_message_bytes: 1,
                    max_frame_bytes: 2,
                    outbound_queue: 3,
                    position_tick_ms: 4,
                    resume_limit: 5,
                    ping_interval_ms: 6,
                    idle_timeout_ms: 7,
                },
            },
            ServerMessage::Snapshot {
                channels: vec![Channel::Incidents, Channel::Positions],
                seq: 42,
                items: json!({"incidents": [{"id": "i1", "lat": 39.9, "n": 3}], "positions": []}),
                part: 1,
                last: true,
            },
            ServerMessage::Snapshot {
                channels: vec![Channel::Positions, Channel::Presence],
                seq: 42,
                items: json!({"positions": [{"unit": "u9", "lat": 1.5}]}),
                part: 3,
                last: false,
            },
            ServerMessage::Event(EventMessage {
                seq: 43,
                channel: Channel::Orders,
                kind: "order_accepted".into(),
                subject: "o1".into(),
                actor: "u7".into(),
                at: Timestamp::from_millis(1_700_000_000_123),
                at_ms: 1_700_000_000_123,
                unit: Some("u7".into()),
                lat: Some(39.912345678),
                lon: Some(116.3),
                grid: Some("g1".into()),
                data: json!({"attempt": 1, "note": "ok", "nested": {"a": [1, 2.5, null, true]}}),
            }),
            ServerMessage::Event(EventMessage {
                seq: 44,
                channel: Channel::Alarms,
                kind: "sla_missed".into(),
                subject: "i1".into(),
                actor: "system".into(),
                at: Timestamp::from_millis(0),
                at_ms: 0,
                unit: None,
                lat: None,
                lon: None,
                grid: None,
                data: Value::Null,
            }),
            ServerMessage::Positions {
                at: Timestamp::from_millis(5),
                at_ms: 5,
                units: vec![
                    PositionUpdate {
                        unit: "u1".into(),
                        lat: 39.1,
                        lon: 116.2,
                        at: Timestamp::from_millis(4),
                        at_ms: 4,
                        speed: Some(1.5),
                        heading: Some(90.0),
                        accuracy: Some(5.0),
                        status: Some("available".into()),
                        grid: Some("g".into()),
                    },
                    PositionUpdate {
                        unit: "u2".into(),
                        lat: -1.0,
                        lon: 0.0,
                        at: Timestamp::from_millis(3),
                        at_ms: 3,
                        speed: None,
                        heading: None,
                        accuracy: None,
                        status: None,
                        grid: None,
                    },
                ],
            },
            ServerMessage::Result {
                id: "c1".into(),
                data: json!({"incident": "i2"}),
            },
            ServerMessage::error(Some("c2".into()), "forbidden", "viewers may not command"),
            ServerMessage::error(None, "bad_message", "bad JSON"),
            ServerMessage::SnapshotNeeded {
                from: 3,
                oldest: 100,
            },
            ServerMessage::Order {
                data: json!({"order_id": "o1", "incident": {"lat": 39.0, "lon": 116.0}}),
            },
        ]
    }

    #[test]
    fn every_server_message_round_trips_json_proto_json() {
        for msg in samples() {
            let json = serde_json::to_value(&msg).expect("serialise");
            let back: ServerMessage = serde_json::from_value(json.clone()).expect("parse");
            let bytes = prost::Message::encode_to_vec(&server_to_proto(&back));
            let decoded: pb::ServerMessage =
                prost::Message::decode(bytes.as_slice()).expect("decode");
            let again = server_from_proto(decoded).expect("from proto");
            let json_again = serde_json::to_value(&again).expect("serialise");
            assert_eq!(json, json_again, "{msg:?}");
        }
    }

    #[test]
    fn every_client_message_round_trips() {
        let msgs = vec![
            json!({"type": "auth", "token": "t"}),
            json!({"type": "subscribe", "channels": ["orders", "positions"],
                   "filter": {"bbox": [1.0, 2.0, 3.0, 4.0], "grid": "g", "units": ["u1"], "coords": "gcj02"},
                   "resume_from": 7}),
            json!({"type": "subscribe", "channels": [], "filter": {"bbox": null, "grid": null, "units": null, "coords": "wgs84"}}),
            json!({"type": "unsubscribe", "channels": ["video"]}),
            json!({"type": "command", "id": "c1", "op": "dispatch", "args": {"incident": "i1"}}),
            json!({"type": "receipt", "id": "r1", "order_id": "o1", "state": "accepted"}),
            json!({"type": "status", "duty": "on"}),
        ];
        for json in msgs {
            let msg: ClientMessage = serde_json::from_value(json.clone()).expect("parse");
            let bytes = prost::Message::encode_to_vec(&client_to_proto(&msg));
            let back = decode_client(&bytes, true).expect("decode");
            assert_eq!(msg, back);
            let json_again = serde_json::to_value(&back).expect("serialise");
            let reparsed: ClientMessage = serde_json::from_value(json_again).expect("parse");
            assert_eq!(msg, reparsed);
        }
    }

    #[test]
    fn negotiation_takes_the_first_known() {
        assert_eq!(
            Protocol::negotiate("x, fieldlink.v1.proto, fieldlink.v1.json"),
            Some(Protocol::Proto)
        );
        assert_eq!(
            Protocol::negotiate("fieldlink.v1.json"),
            Some(Protocol::Json)
        );
        assert_eq!(Protocol::negotiate("chat"), None);
    }
}
