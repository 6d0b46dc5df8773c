//! The MQTT uplink decoder: topic + payload → a decoded, validated uplink or a rejection.
//! Input framing: `fieldlink_ingest::decode::decode_framed` (first byte picks the topic).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = fieldlink_ingest::decode::decode_framed(data);
});
