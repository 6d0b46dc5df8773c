//! The WebSocket client-frame decoder (`/ws`, `/ws/handset`): the first input byte's low bit
//! says binary (protobuf) or text (JSON); the rest is the frame.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (binary, frame) = match data.split_first() {
        Some((flag, frame)) => (flag & 1 == 1, frame),
        None => (false, data),
    };
    let _ = fieldlink_push::wire::decode_client(frame, binary);
});
