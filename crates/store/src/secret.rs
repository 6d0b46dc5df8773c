//! Secrets of handsets and API tokens: generating them, hashing them for storage, checking them.
//!
//! Secrets are never stored, only a [`SecretHash`]. API tokens reach users as one string,
//! `fl_<token id>_<secret>` ([`format_token`], [`parse_token`]), so the server can find the record
//! by id and then check the secret.
//!
//! Why a fast salted SHA-256 and not argon2 or bcrypt: every secret here is machine-generated with
//! 256 bits of entropy ([`generate_secret`]), so guessing it is hopeless whatever the hash costs,
//! and a slow password hash buys nothing. It would cost a lot, though: after a radio outage 10,000
//! handsets reconnect at once, and at ~50 ms of CPU each a memory-hard hash would keep the server
//! busy for minutes. The salt still keeps equal secrets from having equal hashes.

use std::fmt;

use rand::TryRngCore;
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A salted SHA-256 of a secret: what the store keeps instead of the secret.
#[derive(Clone, Copy)]
pub struct SecretHash {
    /// Random per-secret salt.
    pub salt: [u8; 16],
    /// SHA-256(salt || secret).
    pub hash: [u8; 32],
}

impl SecretHash {
    /// Hashes `secret` with a fresh random salt.
    pub fn new(secret: &str) -> SecretHash {
        let mut salt = [0u8; 16];
        fill_random(&mut salt);
        SecretHash {
            salt,
            hash: digest(&salt, secret),
        }
    }

    /// Whether `secret` is the one this hash was made from (constant time in the hash bytes).
    pub fn verify(&self, secret: &str) -> bool {
        digest(&self.salt, secret).ct_eq(&self.hash).into()
    }

    /// Salt and hash as lowercase hex, as the store keeps them.
    pub(crate) fn to_hex(self) -> (String, String) {
        (hex::encode(self.salt), hex::encode(self.hash))
    }

    /// Back from [`SecretHash::to_hex`]; `None` when either part is not hex of the right length.
    pub(crate) fn from_hex(salt: &str, hash: &str) -> Option<SecretHash> {
        let mut out = SecretHash {
            salt: [0; 16],
            hash: [0; 32],
        };
        hex::decode_to_slice(salt, &mut out.salt).ok()?;
        hex::decode_to_slice(hash, &mut out.hash).ok()?;
        Some(out)
    }
}

/// Equal when salt and hash are equal; the comparison is constant time.
impl PartialEq for SecretHash {
    fn eq(&self, other: &Self) -> bool {
        (self.salt.ct_eq(&other.salt) & self.hash.ct_eq(&other.hash)).into()
    }
}

impl Eq for SecretHash {}

/// Prints only a short fingerprint, so logs never carry a full hash.
impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretHash({}…)", hex::encode(&self.hash[..3]))
    }
}

fn digest(salt: &[u8; 16], secret: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(secret.as_bytes());
    h.finalize().into()
}

/// Fills `buf` from the operating system's random source.
///
/// Panics if the OS cannot give randomness: nothing secure can be done without it.
fn fill_random(buf: &mut [u8]) {
    OsRng
        .try_fill_bytes(buf)
        .expect("the operating system's random number generator failed");
}

/// A new secret: 32 random bytes from the OS as 64 lowercase hex characters.
///
/// Hex, so that it survives shells, URLs, MQTT passwords and `mosquitto_pub -P` unquoted.
pub fn generate_secret() -> String {
    let mut b = [0u8; 32];
    fill_random(&mut b);
    hex::encode(b)
}

/// A short random id with a prefix, such as `tok_5f2a9c1e`.
///
/// 32 random bits: ids only need to be unique, not secret. A collision is reported by the store
/// as [`crate::StoreError::AlreadyExists`] and the caller draws again.
pub fn generate_id(prefix: &str) -> String {
    let mut b = [0u8; 4];
    fill_random(&mut b);
    format!("{prefix}_{}", hex::encode(b))
}

/// The API token as users see it: `fl_<token id>_<secret>`.
pub fn format_token(id: &str, secret: &str) -> String {
    format!("fl_{id}_{secret}")
}

/// Splits `fl_<token id>_<secret>` into id and secret; `None` when it does not have that shape.
///
/// The id may itself contain `_` (`tok_5f2a9c1e`); the secret is hex and never does, so the split
/// is at the last `_`.
pub fn parse_token(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix("fl_")?;
    let (id, secret) = rest.rsplit_once('_')?;
    (!id.is_empty() && !secret.is_empty()).then_some((id, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_right_and_wrong() {
        let s = generate_secret();
        assert_eq!(s.len(), 64);
        assert!(
            s.bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        let h = SecretHash::new(&s);
        assert!(h.verify(&s));
        assert!(!h.verify("wrong"));
        assert!(!h.verify(""));
        // Salted: the same secret hashes differently twice.
        assert_ne!(SecretHash::new(&s).hash, h.hash);
        let (salt, hash) = h.to_hex();
        assert_eq!(SecretHash::from_hex(&salt, &hash), Some(h));
        assert_eq!(SecretHash::from_hex("zz", &hash), None);
    }

    #[test]
    fn debug_hides_the_hash() {
        let h = SecretHash::new("x");
        let dbg = format!("{h:?}");
        assert!(!dbg.contains(&hex::encode(h.hash)));
        assert!(dbg.len() < 24, "{dbg}");
    }

    #[test]
    fn token_round_trip() {
        let id = generate_id("tok");
        assert!(id.starts_with("tok_") && id.len() == 12, "{id}");
        let secret = generate_secret();
        let t = format_token(&id, &secret);
        assert_eq!(parse_token(&t), Some((id.as_str(), secret.as_str())));
        assert_eq!(parse_token("fl_abc"), None);
        assert_eq!(parse_token("xx_tok_1_2"), None);
        assert_eq!(parse_token("fl__s"), None);
        assert_eq!(parse_token("fl_id_"), None);
    }
}
