//! Sealed payloads: who sent a message, and that it is not a replay, on a broker that cannot
//! say so itself.
//!
//! rumqttd, the embedded broker, checks a handset's id and secret at CONNECT but has no topic
//! ACL, so a logged-in handset could publish on another unit's topic. On that path every
//! payload, uplink and downlink, is sealed with a key only the unit and fieldlink hold. A
//! message on unit B's topic that does not open with B's key is refused, whoever published it.
//! See `docs/security.md` for the threat model.
//!
//! # The construction
//!
//! libsodium's `crypto_secretbox` (XSalsa20-Poly1305), the one the OwnTracks app uses for its
//! payload encryption, keyed per unit:
//!
//! - **Key** ([`SealKey`]): 32 characters, `hex(SHA-256("fieldlink seal v1" ‖ 0 ‖ secret))[..32]`,
//!   used as 32 key bytes, as OwnTracks uses the text typed in its "encryption key" setting.
//!   fieldlink stores it beside the secret's hash (it cannot be turned back into the secret,
//!   which alone logs in); rotating the secret changes it.
//! - **Envelope** ([`seal`] / [`open`]): `"FLS1"` ‖ nonce (24 bytes) ‖ secretbox. The nonce is
//!   the sender's counter (8 bytes, big-endian) followed by 16 random bytes, so the counter is
//!   authenticated (changing it breaks the tag) and nonces never repeat.
//! - **Context**: the plaintext starts with the topic's kind (`gps`, `ack`, … or `down`) and a
//!   zero byte, so a sealed fix cannot be replayed as a receipt, nor an uplink reflected back
//!   down to the handset.
//! - **Replay** ([`CounterGuard`]): a receiver accepts a counter only if it is greater than the
//!   last one it accepted from that sender. Senders use microseconds since the epoch, made
//!   strictly increasing ([`Counter`]), so a restarted handset need not remember its counter.
//! - **OwnTracks** ([`open_owntracks`] / [`seal_owntracks`]): the app's own envelope,
//!   `{"_type":"encrypted","data":base64(nonce ‖ secretbox)}` with a random nonce; its replay
//!   counter is the location's `tst`, checked by the decoder.
//!
//! No I/O and no clock: callers pass counters and random bytes in.

use crypto_secretbox::aead::{Aead, KeyInit};
use crypto_secretbox::{Key, Nonce, XSalsa20Poly1305};
use sha2::{Digest, Sha256};
use thiserror::Error;

/// The first bytes of a sealed payload.
pub const MAGIC: &[u8; 4] = b"FLS1";
/// Nonce length of XSalsa20.
pub const NONCE_LEN: usize = 24;
/// Poly1305 tag length.
pub const TAG_LEN: usize = 16;
/// The context of downlinks (fieldlink to a handset); uplinks use their topic's kind.
pub const DOWNLINK_CONTEXT: &str = "down";
/// Bytes a seal adds to a payload, not counting the context.
pub const OVERHEAD: usize = MAGIC.len() + NONCE_LEN + TAG_LEN;

/// Why a payload did not open.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SealError {
    /// It does not start with the seal's magic bytes (sent in the clear, or by an old handset).
    #[error("the payload is not sealed")]
    NotSealed,
    /// Shorter than an empty sealed payload.
    #[error("the sealed payload is truncated")]
    Truncated,
    /// The tag does not verify: another key (another unit, an old secret) or altered bytes.
    #[error("the seal does not open with this unit's key")]
    Forged,
    /// It opened, but was sealed for another kind of message.
    #[error("the payload was sealed for {found:?}, not {expected:?}")]
    WrongContext {
        /// The context this topic wants.
        expected: String,
        /// The context inside.
        found: String,
    },
    /// The key text is not 32 characters.
    #[error("a seal key is 32 characters, not {0}")]
    BadKey(usize),
    /// Not an OwnTracks `encrypted` message.
    #[error("not an OwnTracks encrypted message: {0}")]
    NotOwnTracks(String),
}

/// A unit's sealing key: 32 printable characters, used as the key's 32 bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct SealKey([u8; 32]);

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(..)")
    }
}

impl SealKey {
    /// The key that belongs to a unit's secret.
    pub fn derive(secret: &str) -> SealKey {
        let digest = Sha256::new()
            .chain_update(b"fieldlink seal v1\0")
            .chain_update(secret.as_bytes())
            .finalize();
        let text = hex::encode(&digest[..16]);
        let mut key = [0u8; 32];
        key.copy_from_slice(text.as_bytes());
        SealKey(key)
    }

    /// A key from its text (what `fieldlink units add` prints, and OwnTracks users type).
    pub fn from_text(text: &str) -> Result<SealKey, SealError> {
        let bytes: [u8; 32] = (text.as_bytes())
            .try_into()
            .map_err(|_| SealError::BadKey(text.len()))?;
        Ok(SealKey(bytes))
    }

    /// The key as text.
    pub fn as_text(&self) -> &str {
        // Built only from 32 ASCII bytes (`derive`) or a `&str` of 32 bytes (`from_text`).
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    fn cipher(&self) -> XSalsa20Poly1305 {
        XSalsa20Poly1305::new(&Key::from(self.0))
    }
}

/// A payload that opened: the sender's counter and the plaintext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The sender's counter (check it with a [`CounterGuard`]).
    pub counter: u64,
    /// The payload as the sender wrote it.
    pub payload: Vec<u8>,
}

/// The nonce in `bytes`, which the callers cut to [`NONCE_LEN`].
fn nonce_of(bytes: &[u8]) -> Nonce {
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&bytes[..NONCE_LEN]);
    Nonce::from(nonce)
}

/// True when `payload` looks sealed (starts with [`MAGIC`]).
pub fn is_sealed(payload: &[u8]) -> bool {
    payload.starts_with(MAGIC)
}

/// Seals `payload` for `context` (the topic's kind) with `key`, `counter` and 16 `random`
/// bytes (fresh for every message).
pub fn seal(
    key: &SealKey,
    context: &str,
    counter: u64,
    random: [u8; 16],
    payload: &[u8],
) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    nonce[..8].copy_from_slice(&counter.to_be_bytes());
    nonce[8..].copy_from_slice(&random);
    let mut plain = Vec::with_capacity(context.len() + 1 + payload.len());
    plain.extend_from_slice(context.as_bytes());
    plain.push(0);
    plain.extend_from_slice(payload);
    let boxed = key
        .cipher()
        .encrypt(&Nonce::from(nonce), plain.as_slice())
        .unwrap_or_default(); // XSalsa20-Poly1305 encryption cannot fail for in-memory input
    let mut out = Vec::with_capacity(MAGIC.len() + NONCE_LEN + boxed.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&boxed);
    out
}

/// Opens a payload sealed for `context` with `key`.
pub fn open(key: &SealKey, context: &str, sealed: &[u8]) -> Result<Opened, SealError> {
    let rest = sealed.strip_prefix(MAGIC).ok_or(SealError::NotSealed)?;
    if rest.len() < NONCE_LEN + TAG_LEN {
        return Err(SealError::Truncated);
    }
    let (nonce, boxed) = rest.split_at(NONCE_LEN);
    let plain = key
        .cipher()
        .decrypt(&nonce_of(nonce), boxed)
        .map_err(|_| SealError::Forged)?;
    let split = plain
        .iter()
        .position(|&b| b == 0)
        .ok_or(SealError::Forged)?;
    let (found, payload) = (&plain[..split], &plain[split + 1..]);
    if found != context.as_bytes() {
        return Err(SealError::WrongContext {
            expected: context.to_owned(),
            found: String::from_utf8_lossy(found).into_owned(),
        });
    }
    let mut counter = [0u8; 8];
    counter.copy_from_slice(&nonce[..8]);
    Ok(Opened {
        counter: u64::from_be_bytes(counter),
        payload: payload.to_vec(),
    })
}

/// Seals an OwnTracks JSON message as the app does: `{"_type":"encrypted","data":...}`.
pub fn seal_owntracks(key: &SealKey, nonce: [u8; NONCE_LEN], json: &[u8]) -> Vec<u8> {
    use base64::Engine as _;
    let boxed = key
        .cipher()
        .encrypt(&Nonce::from(nonce), json)
        .unwrap_or_default();
    let mut data = nonce.to_vec();
    data.extend_from_slice(&boxed);
    let data = base64::engine::general_purpose::STANDARD.encode(data);
    serde_json::json!({"_type": "encrypted", "data": data})
        .to_string()
        .into_bytes()
}

/// Opens the OwnTracks app's `{"_type":"encrypted"}` message; returns the inner JSON.
pub fn open_owntracks(key: &SealKey, payload: &[u8]) -> Result<Vec<u8>, SealError> {
    use base64::Engine as _;
    let value: serde_json::Value = serde_json::from_slice(payload)
        .map_err(|e| SealError::NotOwnTracks(format!("not JSON: {e}")))?;
    if value["_type"] != "encrypted" {
        return Err(SealError::NotSealed);
    }
    let data = value["data"]
        .as_str()
        .ok_or_else(|| SealError::NotOwnTracks("no \"data\" string".to_owned()))?;
    let data = base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|e| SealError::NotOwnTracks(format!("\"data\" is not base64: {e}")))?;
    if data.len() < NONCE_LEN + TAG_LEN {
        return Err(SealError::Truncated);
    }
    let (nonce, boxed) = data.split_at(NONCE_LEN);
    key.cipher()
        .decrypt(&nonce_of(nonce), boxed)
        .map_err(|_| SealError::Forged)
}

/// A sender's counter: microseconds since the epoch, strictly increasing even when the clock
/// stands still or steps back.
#[derive(Debug, Default, Clone)]
pub struct Counter {
    last: u64,
}

impl Counter {
    /// The next counter at `now_micros`.
    pub fn next(&mut self, now_micros: u64) -> u64 {
        self.last = now_micros.max(self.last + 1);
        self.last
    }
}

/// A receiver's replay check for one sender: a counter must exceed the last accepted one.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CounterGuard {
    last: u64,
}

impl CounterGuard {
    /// A guard that has already accepted `last` (restored after a restart).
    pub fn starting_at(last: u64) -> CounterGuard {
        CounterGuard { last }
    }

    /// Accepts `counter` if it is newer than every counter accepted so far.
    pub fn accept(&mut self, counter: u64) -> bool {
        if counter <= self.last {
            return false;
        }
        self.last = counter;
        true
    }

    /// The last counter accepted.
    pub fn last(&self) -> u64 {
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: [u8; 16] = [7; 16];

    #[test]
    fn a_sealed_payload_opens_with_its_key_and_context_and_keeps_its_counter() {
        let key = SealKey::derive("secret-a");
        let sealed = seal(&key, "gps", 42, R, b"fix");
        assert!(is_sealed(&sealed));
        assert_eq!(sealed.len(), OVERHEAD + "gps".len() + 1 + 3);
        let opened = open(&key, "gps", &sealed).expect("opens");
        assert_eq!(
            (opened.counter, opened.payload.as_slice()),
            (42, &b"fix"[..])
        );
    }

    #[test]
    fn another_units_key_an_old_secret_or_a_flipped_bit_do_not_open_it() {
        let sealed = seal(&SealKey::derive("secret-a"), "gps", 1, R, b"fix");
        assert_eq!(
            open(&SealKey::derive("secret-b"), "gps", &sealed),
            Err(SealError::Forged)
        );
        let key = SealKey::derive("secret-a");
        for i in MAGIC.len()..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert_eq!(open(&key, "gps", &bad), Err(SealError::Forged), "byte {i}");
        }
    }

    #[test]
    fn a_payload_sealed_for_one_kind_is_refused_as_another() {
        let key = SealKey::derive("secret-a");
        let sealed = seal(&key, "gps", 1, R, b"fix");
        assert!(matches!(
            open(&key, "ack", &sealed),
            Err(SealError::WrongContext { .. })
        ));
        assert!(matches!(
            open(&key, "down", &sealed),
            Err(SealError::WrongContext { .. })
        ));
    }

    #[test]
    fn clear_and_truncated_payloads_are_told_apart() {
        let key = SealKey::derive("s");
        assert_eq!(open(&key, "gps", b"\x0a\x03abc"), Err(SealError::NotSealed));
        assert_eq!(open(&key, "gps", b"FLS1short"), Err(SealError::Truncated));
    }

    #[test]
    fn the_key_is_32_printable_characters_and_depends_on_the_secret() {
        let a = SealKey::derive("secret-a");
        assert_eq!(a.as_text().len(), 32);
        assert!(a.as_text().chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, SealKey::derive("secret-b"));
        assert_eq!(SealKey::from_text(a.as_text()), Ok(a));
        assert_eq!(SealKey::from_text("short"), Err(SealError::BadKey(5)));
    }

    #[test]
    fn counters_increase_even_when_the_clock_does_not_and_replays_are_refused() {
        let mut counter = Counter::default();
        let (a, b, c) = (counter.next(1_000), counter.next(1_000), counter.next(900));
        assert!(a < b && b < c);
        let mut guard = CounterGuard::default();
        assert!(guard.accept(a));
        assert!(!guard.accept(a), "the same counter twice");
        assert!(guard.accept(c));
        assert!(!guard.accept(b), "an older counter after a newer one");
        assert!(
            !CounterGuard::starting_at(c).accept(c),
            "restored after a restart"
        );
    }

    #[test]
    fn owntracks_encrypted_messages_round_trip_and_refuse_another_key() {
        let key = SealKey::from_text("0123456789abcdef0123456789abcdef").expect("key");
        let inner = br#"{"_type":"location","lat":30.27,"lon":120.15,"tst":1700000000}"#;
        let sealed = seal_owntracks(&key, [3; NONCE_LEN], inner);
        let text = String::from_utf8(sealed.clone()).expect("utf8");
        assert!(text.contains(r#""_type":"encrypted""#), "{text}");
        assert_eq!(
            open_owntracks(&key, &sealed).expect("opens"),
            inner.to_vec()
        );
        let other = SealKey::derive("x");
        assert_eq!(open_owntracks(&other, &sealed), Err(SealError::Forged));
        assert_eq!(open_owntracks(&key, inner), Err(SealError::NotSealed));
    }

    /// NaCl's and libsodium's own test vector for crypto_secretbox (XSalsa20-Poly1305), so the
    /// construction, tag first as in `crypto_secretbox_easy`, matches what the OwnTracks app
    /// produces.
    #[test]
    fn secretbox_matches_the_nacl_test_vector() {
        let key = hex::decode("1b27556473e985d462cd51197a9a46c76009549eac6474f206c4ee0844f68389")
            .expect("hex");
        let nonce = hex::decode("69696ee955b62b73cd62bda875fc73d68219e0036b7a0b37").expect("hex");
        let message = hex::decode(concat!(
            "be075fc53c81f2d5cf141316ebeb0c7b5228c52a4c62cbd44b66849b64244ffc",
            "e5ecbaaf33bd751a1ac728d45e6c61296cdc3c01233561f41db66cce314adb31",
            "0e3be8250c46f06dceea3a7fa1348057e2f6556ad6b1318a024a838f21af1fde",
            "048977eb48f59ffd4924ca1c60902e52f0a089bc76897040e082f93776384864",
            "5e0705",
        ))
        .expect("hex");
        let expected = concat!(
            "f3ffc7703f9400e52a7dfb4b3d3305d98e993b9f48681273c29650ba32fc76ce",
            "48332ea7164d96a4476fb8c531a1186ac0dfc17c98dce87b4da7f011ec48c972",
            "71d2c20f9b928fe2270d6fb863d51738b48eeee314a7cc8ab932164548e526ae",
            "90224368517acfeabd6bb3732bc0e9da99832b61ca01b6de56244a9e88d5f9b3",
            "7973f622a43d14a6599b1f654cb45a74e355a5",
        );
        let key: [u8; 32] = key.try_into().expect("32 bytes");
        let boxed = XSalsa20Poly1305::new(&Key::from(key))
            .encrypt(&nonce_of(&nonce), message.as_slice())
            .expect("encrypt");
        assert_eq!(hex::encode(boxed), expected);
    }
}
