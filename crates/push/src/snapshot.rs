//! Splitting a large snapshot into parts.
//!
//! A snapshot of every unit's position or presence is megabytes of JSON, more than tungstenite
//! may hold unwritten for one client (`max_write_buffer_bytes`): written whole, it would fail and
//! drop the session without a close frame. So a snapshot larger than
//! [`crate::PushConfig`]'s part size is sent as several `snapshot` messages with the same `seq`
//! and `channels`, each top-level array of `items` split between them, numbered by `part` and
//! ended by `last: true`.

use std::io;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::filter::Channel;
use crate::protocol::ServerMessage;

/// Counts the bytes of a serialisation without keeping them.
struct Counter(usize);

impl io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn json_len(v: &impl Serialize) -> usize {
    let mut counter = Counter(0);
    // Serialising a `Value` or our messages cannot fail.
    let _ = serde_json::to_writer(&mut counter, v);
    counter.0
}

/// The `snapshot` messages of `items`: one (`part: 1, last: true`) when it fits in `limit`
/// bytes, else as many as needed for each to fit (an element larger than `limit` alone still
/// makes a part of its own). Values that are not top-level arrays go in the first part.
pub(crate) fn snapshot_messages(
    channels: Vec<Channel>,
    seq: i64,
    items: Value,
    limit: usize,
) -> Vec<ServerMessage> {
    let envelope = json_len(&ServerMessage::Snapshot {
        channels: channels.clone(),
        seq,
        items: Value::Null,
        part: u32::MAX,
        last: false,
    });
    let budget = limit.saturating_sub(envelope).max(1);
    let chunks: Vec<Value> = if json_len(&items) <= budget {
        vec![items]
    } else {
        match items {
            Value::Array(a) => split_array(a, budget)
                .into_iter()
                .map(Value::Array)
                .collect(),
            Value::Object(o) => split_object(o, budget)
                .into_iter()
                .map(Value::Object)
                .collect(),
            other => vec![other],
        }
    };
    let n = chunks.len();
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, items)| ServerMessage::Snapshot {
            channels: channels.clone(),
            seq,
            items,
            part: u32::try_from(i + 1).unwrap_or(u32::MAX),
            last: i + 1 == n,
        })
        .collect()
}

fn split_array(a: Vec<Value>, budget: usize) -> Vec<Vec<Value>> {
    let mut out = Vec::new();
    let mut current = Vec::new();
    let mut size = 2;
    for element in a {
        let cost = json_len(&element) + 1;
        if !current.is_empty() && size + cost > budget {
            out.push(std::mem::take(&mut current));
            size = 2;
        }
        size += cost;
        current.push(element);
    }
    if !current.is_empty() || out.is_empty() {
        out.push(current);
    }
    out
}

fn split_object(o: Map<String, Value>, budget: usize) -> Vec<Map<String, Value>> {
    let mut out = Vec::new();
    let mut current = Map::new();
    let mut size = 2;
    let mut arrays = Vec::new();
    for (key, value) in o {
        match value {
            Value::Array(a) => arrays.push((key, a)),
            other => {
                size += json_len(&key) + 2 + json_len(&other);
                current.insert(key, other);
            }
        }
    }
    for (key, array) in arrays {
        // `"key":[]` and a comma.
        let key_cost = json_len(&key) + 4;
        let mut chunk: Vec<Value> = Vec::new();
        for element in array {
            let element_cost = json_len(&element) + 1;
            let mut cost = element_cost + if chunk.is_empty() { key_cost } else { 0 };
            if (!current.is_empty() || !chunk.is_empty()) && size + cost > budget {
                if !chunk.is_empty() {
                    current.insert(key.clone(), Value::Array(std::mem::take(&mut chunk)));
                }
                out.push(std::mem::take(&mut current));
                size = 2;
                cost = element_cost + key_cost;
            }
            size += cost;
            chunk.push(element);
        }
        if chunk.is_empty() && !current.contains_key(&key) {
            // An empty array still names its key, in the current part.
            size += key_cost;
        }
        if !chunk.is_empty() || !current.contains_key(&key) {
            current.insert(key, Value::Array(chunk));
        }
    }
    if !current.is_empty() || out.is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn reassemble(msgs: &[ServerMessage]) -> Value {
        let mut object = Map::new();
        let mut array = Vec::new();
        for (i, msg) in msgs.iter().enumerate() {
            let ServerMessage::Snapshot {
                items, part, last, ..
            } = msg
            else {
                panic!("not a snapshot");
            };
            assert_eq!(*part as usize, i + 1);
            assert_eq!(*last, i + 1 == msgs.len());
            match items.clone() {
                Value::Object(o) => {
                    for (k, v) in o {
                        match (object.get_mut(&k), v) {
                            (Some(Value::Array(have)), Value::Array(more)) => have.extend(more),
                            (_, v) => {
                                object.insert(k, v);
                            }
                        }
                    }
                }
                Value::Array(a) => array.extend(a),
                other => return other,
            }
        }
        if object.is_empty() {
            Value::Array(array)
        } else {
            Value::Object(object)
        }
    }

    #[test]
    fn small_snapshot_is_one_last_part() {
        let items = json!({"incidents": [1, 2], "n": 3});
        let msgs = snapshot_messages(vec![Channel::Incidents], 7, items.clone(), 1000);
        assert_eq!(msgs.len(), 1);
        let json = serde_json::to_value(&msgs[0]).expect("json");
        assert_eq!(json["part"], 1);
        assert_eq!(json["last"], true);
        assert_eq!(json["items"], items);
    }

    #[test]
    fn large_snapshot_is_split_under_the_limit_and_reassembles() {
        let units: Vec<Value> = (0..500)
            .map(|i| {
                json!({"unit": format!("u{i:04}"), "lat": 39.0 + f64::from(i) * 1e-4,
                       "pad": "x".repeat(40)})
            })
            .collect();
        let presence: Vec<Value> = (0..300)
            .map(|i| json!({"unit": format!("u{i}"), "state": "online"}))
            .collect();
        let items =
            json!({"positions": units, "presence": presence, "empty": [], "seq_note": "kept"});
        let limit = 4096;
        let channels = vec![Channel::Positions, Channel::Presence];
        let msgs = snapshot_messages(channels.clone(), 9, items.clone(), limit);
        assert!(msgs.len() > 10, "{}", msgs.len());
        for msg in &msgs {
            let text = serde_json::to_string(msg).expect("json");
            assert!(text.len() <= limit, "{} > {limit}", text.len());
            let ServerMessage::Snapshot {
                seq, channels: c, ..
            } = msg
            else {
                panic!("not a snapshot");
            };
            assert_eq!(*seq, 9);
            assert_eq!(c, &channels);
        }
        assert_eq!(reassemble(&msgs), items);

        let array = Value::Array(
            (0..100)
                .map(|i| json!({"i": i, "pad": "y".repeat(50)}))
                .collect(),
        );
        let msgs = snapshot_messages(vec![Channel::Positions], 1, array.clone(), 1024);
        assert!(msgs.len() > 3);
        assert_eq!(reassemble(&msgs), array);
    }
}
