//! The handset's side of sealed payloads (`fieldlink_seal`, docs/security.md): on the embedded
//! broker, which has no topic ACL, every uplink is sealed with the unit's key for its topic's
//! kind, and only downlinks that open with that key, newer than the last one, are believed.

use std::sync::Mutex;

use fieldlink_proto::{Topic, Topics};
use fieldlink_seal::{Counter, CounterGuard, SealKey};

/// A unit's key and its sending counter: seals what a handset of the unit sends, opens what
/// fieldlink sends it. `fieldlink seal` uses it too.
#[derive(Debug)]
pub struct Sealer {
    key: SealKey,
    topics: Topics,
    counter: Mutex<Counter>,
}

impl Sealer {
    /// The sealer of the unit whose secret is `secret`.
    pub fn new(secret: &str, topics: Topics) -> Sealer {
        Sealer {
            key: SealKey::derive(secret),
            topics,
            counter: Mutex::default(),
        }
    }

    /// `payload` sealed for `topic`: the fieldlink envelope with the topic's kind as context, or
    /// the OwnTracks app's `encrypted` envelope on an OwnTracks topic. On a topic that is
    /// neither, the last level stands in for the kind (the server refuses the topic first).
    pub fn seal(&self, topic: &str, payload: &[u8]) -> Vec<u8> {
        let context = match self.topics.parse(topic) {
            Ok(Topic::OwnTracks { .. }) => {
                return fieldlink_seal::seal_owntracks(&self.key, rand::random(), payload);
            }
            Ok(Topic::Uplink { kind, .. }) => kind.as_str(),
            Ok(Topic::Downlink { .. }) => fieldlink_seal::DOWNLINK_CONTEXT,
            Err(_) => topic.rsplit('/').next().unwrap_or_default(),
        };
        let counter = self.next_counter();
        fieldlink_seal::seal(&self.key, context, counter, rand::random(), payload)
    }

    /// The next counter: microseconds of the wall clock, strictly increasing. Not the handset's
    /// (maybe manual) clock: a handset connected again later must count on from where the last
    /// one stopped, as the server remembers the highest counter it accepted.
    pub fn next_counter(&self) -> u64 {
        let now_micros = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        self.counter
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .next(now_micros)
    }

    /// Opens a downlink, refusing one not sealed by fieldlink for this unit, or older than the
    /// last one believed.
    pub fn open_downlink(
        &self,
        guard: &mut CounterGuard,
        payload: &[u8],
    ) -> Result<Vec<u8>, String> {
        let opened = fieldlink_seal::open(&self.key, fieldlink_seal::DOWNLINK_CONTEXT, payload)
            .map_err(|e| e.to_string())?;
        if !guard.accept(opened.counter) {
            return Err(format!(
                "counter {} is not newer than {}: a replayed downlink",
                opened.counter,
                guard.last()
            ));
        }
        Ok(opened.payload)
    }

    /// The unit's seal key as text: what the OwnTracks app's "encryption key" setting takes.
    pub fn key_text(&self) -> &str {
        self.key.as_text()
    }
}
