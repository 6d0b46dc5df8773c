//! The embedded broker's listener reading a connection's first bytes (the CONNECT it checks
//! before anything reaches rumqttd), on the raw bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = fieldlink_ingest::broker::read_first_packet(data);
});
