//! Replays the `ws_client_frame` fuzz target's corpus (`fuzz/corpus/ws_client_frame/`: the seeds
//! and every crash ever found) through the client-frame decoder, framed as the target frames it
//! (first byte: low bit set = binary/protobuf, else text/JSON): each input decodes or is refused,
//! and none panics.

use std::path::Path;

#[test]
fn the_websocket_fuzz_corpus_decodes_or_is_refused_without_panicking() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/ws_client_frame");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} is empty", dir.display());
    let (mut accepted, mut refused) = (0, 0);
    for file in &files {
        let input = std::fs::read(file).expect("read a corpus file");
        let (binary, frame) = match input.split_first() {
            Some((flag, frame)) => (flag & 1 == 1, frame),
            None => (false, &input[..]),
        };
        match fieldlink_push::wire::decode_client(frame, binary) {
            Ok(_) => accepted += 1,
            Err(_) => refused += 1,
        }
    }
    assert!(accepted >= 1, "{accepted} accepted, {refused} refused");
    assert!(refused >= 1, "{accepted} accepted, {refused} refused");
}
