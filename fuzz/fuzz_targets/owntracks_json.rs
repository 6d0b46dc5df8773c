//! The OwnTracks JSON decoder, on the raw payload.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = fieldlink_proto::owntracks::decode(data);
});
