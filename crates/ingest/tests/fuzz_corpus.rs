//! Replays the `uplink_protobuf` fuzz target's corpus (`fuzz/corpus/uplink_protobuf/`: the seeds
//! and every crash ever found) through the same entry point: each input decodes or is refused,
//! and none panics.

use std::path::Path;

#[test]
fn the_uplink_fuzz_corpus_decodes_or_is_refused_without_panicking() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/uplink_protobuf");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} is empty", dir.display());
    let (mut accepted, mut refused) = (0, 0);
    for file in &files {
        let input = std::fs::read(file).expect("read a corpus file");
        match fieldlink_ingest::decode::decode_framed(&input) {
            Ok(_) => accepted += 1,
            Err(_) => refused += 1,
        }
    }
    // The seeds hold valid messages of each kind: too few accepted means the framing moved.
    assert!(accepted >= 10, "{accepted} accepted, {refused} refused");
    assert!(refused >= 1, "{accepted} accepted, {refused} refused");
}
