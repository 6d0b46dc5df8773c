//! Unit ids as the tracker's map keys: their hash, and a key that holds short ids inline.
//!
//! Every fix looks its unit up by id. With std's SipHash-1-3 that hash alone cost ~200
//! instructions per fix (as much as every filter together, measured under callgrind with
//! `examples/apply_fix.rs`); this one is a folded 64×64→128-bit multiply per 8 bytes (the
//! mixing of wyhash and foldhash), ~30 instructions for a typical id. Ids arrive from handsets,
//! so the hash is keyed from std's random source, once per tracker: colliding ids cannot be
//! worked out offline (it is not a cryptographic MAC, only a cheap defence against flooding).

use std::borrow::Borrow;
use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::sync::Arc;

/// Ids up to this many bytes sit in the map's own bucket.
const INLINE: usize = 23;

/// A unit id as a key of `slots_by_unit`. Comparing the id looked up with an `Arc<str>` key read
/// the key's bytes from wherever the `Arc` was allocated: one more cache miss per fix at 100k
/// units and up. Ids of up to 23 bytes are held inline instead; longer ones share the `Arc`.
/// Looked up by `&[u8]` (`Borrow<[u8]>`), hashed and compared as those bytes.
#[derive(Clone)]
pub(super) enum UnitKey {
    Inline { len: u8, bytes: [u8; INLINE] },
    Shared(Arc<str>),
}

impl UnitKey {
    pub(super) fn new(id: &Arc<str>) -> Self {
        let len = id.len();
        if len <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..len].copy_from_slice(id.as_bytes());
            UnitKey::Inline {
                len: len as u8,
                bytes,
            }
        } else {
            UnitKey::Shared(Arc::clone(id))
        }
    }
}

impl Borrow<[u8]> for UnitKey {
    fn borrow(&self) -> &[u8] {
        match self {
            UnitKey::Inline { len, bytes } => &bytes[..usize::from(*len)],
            UnitKey::Shared(id) => id.as_bytes(),
        }
    }
}

/// As the id itself, as the `Arc<str>` keys printed before.
impl fmt::Debug for UnitKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&String::from_utf8_lossy(self.borrow()), f)
    }
}

// Hash and Eq agree with `[u8]`'s, as `Borrow` requires.
impl Hash for UnitKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        Borrow::<[u8]>::borrow(self).hash(state);
    }
}

impl PartialEq for UnitKey {
    fn eq(&self, other: &Self) -> bool {
        Borrow::<[u8]>::borrow(self) == Borrow::<[u8]>::borrow(other)
    }
}

impl Eq for UnitKey {}

/// Constants from the hex digits of pi (the key is mixed into both).
const P0: u64 = 0x243F_6A88_85A3_08D3;
const P1: u64 = 0x1319_8A2E_0370_7344;

fn fold_mul(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

/// Builds [`IdHasher`]s with one random key per tracker.
#[derive(Debug, Clone)]
pub(super) struct IdHashState {
    key: u64,
}

impl Default for IdHashState {
    fn default() -> Self {
        IdHashState {
            key: RandomState::new().hash_one(P0),
        }
    }
}

impl BuildHasher for IdHashState {
    type Hasher = IdHasher;

    fn build_hasher(&self) -> IdHasher {
        IdHasher {
            acc: self.key,
            key: self.key,
        }
    }
}

#[derive(Debug)]
pub(super) struct IdHasher {
    acc: u64,
    key: u64,
}

impl IdHasher {
    fn mix(&mut self, word: u64) {
        self.acc = fold_mul(self.acc ^ word ^ P0, self.key ^ P1);
    }
}

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        let word = |b: &[u8]| u64::from_le_bytes(b.try_into().expect("8 bytes"));
        let len = bytes.len();
        if len >= 8 {
            let mut chunks = bytes.chunks_exact(8);
            for chunk in &mut chunks {
                self.mix(word(chunk));
            }
            if !chunks.remainder().is_empty() {
                // The last 8 bytes, overlapping the previous word: no byte-by-byte tail.
                self.mix(word(&bytes[len - 8..]));
            }
        } else if len >= 4 {
            let half = |b: &[u8]| u64::from(u32::from_le_bytes(b.try_into().expect("4 bytes")));
            self.mix(half(&bytes[..4]) | (half(&bytes[len - 4..]) << 32));
        } else {
            for &b in bytes {
                self.mix(u64::from(b));
            }
        }
        // The length tells apart inputs the overlapping reads would otherwise confuse.
        self.mix(len as u64);
    }

    fn write_u8(&mut self, b: u8) {
        self.mix(u64::from(b));
    }

    fn write_u32(&mut self, v: u32) {
        self.mix(u64::from(v));
    }

    fn write_u64(&mut self, v: u64) {
        self.mix(v);
    }

    fn write_usize(&mut self, v: usize) {
        self.mix(v as u64);
    }

    fn finish(&self) -> u64 {
        fold_mul(self.acc, self.key ^ P0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_inline_or_shared_find_their_ids() {
        let mut map: std::collections::HashMap<UnitKey, u32, IdHashState> = Default::default();
        let ids = [
            "",
            "u1",
            "exactly-23-bytes-long-x",
            "24-bytes-long-and-shared",
            "中文编号",
        ];
        for (i, id) in ids.iter().enumerate() {
            let key = UnitKey::new(&Arc::from(*id));
            let inline = matches!(key, UnitKey::Inline { .. });
            assert_eq!(inline, id.len() <= INLINE, "{id}");
            map.insert(key, i as u32);
        }
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(map.get(id.as_bytes()), Some(&(i as u32)), "{id}");
        }
        assert_eq!(map.get(&b"u2"[..]), None);
        assert_eq!(
            map.get(&b"u1\0"[..]),
            None,
            "inline padding is not part of the id"
        );
    }

    #[test]
    fn equal_ids_hash_equal_and_near_ids_apart() {
        let state = IdHashState::default();
        let ids: Vec<String> = (0..50_000).map(|i| format!("unit-{i:07}")).collect();
        let mut hashes: Vec<u64> = ids.iter().map(|id| state.hash_one(id.as_str())).collect();
        assert_eq!(state.hash_one("unit-0000042"), hashes[42]);
        hashes.sort_unstable();
        hashes.dedup();
        assert_eq!(hashes.len(), ids.len());
        // Every length up to 20 (the tail paths) is told apart from its neighbours.
        let long = "abcdefghijklmnopqrst";
        let mut prefixes: Vec<u64> = (0..=long.len())
            .map(|n| state.hash_one(&long[..n]))
            .collect();
        prefixes.sort_unstable();
        prefixes.dedup();
        assert_eq!(prefixes.len(), long.len() + 1);
        // The top 7 bits pick hashbrown's tag: they must vary too.
        let tags: std::collections::HashSet<u64> = ids[..1000]
            .iter()
            .map(|id| state.hash_one(id.as_str()) >> 57)
            .collect();
        assert!(tags.len() > 100, "{} tags", tags.len());
    }
}
