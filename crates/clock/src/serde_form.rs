//! How a [`Timestamp`] looks in JSON: written as RFC 3339 with milliseconds and `Z`, read from
//! that string or from the integer milliseconds fieldlink wrote before (dispatch snapshots,
//! responder rows and journal payloads of older data directories must keep loading).
//!
//! A string of digits is read as milliseconds too: JSON map keys are strings, so a
//! `Timestamp` key written as an integer comes back as `"1796661813479"`.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Timestamp;

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TimestampVisitor)
    }
}

struct TimestampVisitor;

impl Visitor<'_> for TimestampVisitor {
    type Value = Timestamp;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a date and time like 2026-11-29T20:00:00.000Z")
    }

    fn visit_i64<E: de::Error>(self, ms: i64) -> Result<Timestamp, E> {
        Ok(Timestamp::from_millis(ms))
    }

    fn visit_u64<E: de::Error>(self, ms: u64) -> Result<Timestamp, E> {
        i64::try_from(ms)
            .map(Timestamp::from_millis)
            .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(ms), &self))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Timestamp, E> {
        if let Ok(ms) = s.parse::<i64>() {
            return Ok(Timestamp::from_millis(ms));
        }
        Timestamp::parse_rfc3339(s).ok_or_else(|| E::invalid_value(de::Unexpected::Str(s), &self))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn writes_rfc3339_with_milliseconds_and_z() {
        let t = Timestamp::from_millis(1_796_661_813_479);
        let json = serde_json::to_string(&t).expect("serialise");
        assert_eq!(json, r#""2026-12-07T16:43:33.479Z""#);
    }

    #[test]
    fn reads_the_string_and_the_old_integer() {
        let t = Timestamp::from_millis(1_796_661_813_479);
        let from_string: Timestamp =
            serde_json::from_str(r#""2026-12-07T16:43:33.479Z""#).expect("string");
        let from_offset: Timestamp =
            serde_json::from_str(r#""2026-12-08T00:43:33.479+08:00""#).expect("offset");
        let from_integer: Timestamp = serde_json::from_str("1796661813479").expect("integer");
        assert_eq!((from_string, from_offset, from_integer), (t, t, t));
    }

    #[test]
    fn map_keys_and_out_of_range_instants_round_trip() {
        let old: BTreeMap<Timestamp, u8> =
            serde_json::from_str(r#"{"1796661813479": 1}"#).expect("old key");
        assert_eq!(
            old.keys().next(),
            Some(&Timestamp::from_millis(1_796_661_813_479))
        );
        for t in [
            Timestamp::from_millis(i64::MAX),
            Timestamp::from_millis(i64::MIN),
        ] {
            let json = serde_json::to_string(&t).expect("serialise");
            assert_eq!(
                serde_json::from_str::<Timestamp>(&json).expect("read back"),
                t
            );
        }
    }

    #[test]
    fn refuses_words_in_plain_terms() {
        let err = serde_json::from_str::<Timestamp>(r#""yesterday""#).expect_err("refused");
        assert!(
            err.to_string()
                .contains("a date and time like 2026-11-29T20:00:00.000Z"),
            "{err}"
        );
    }
}
