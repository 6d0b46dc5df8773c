//! Replays the `owntracks_json` fuzz target's corpus (`fuzz/corpus/owntracks_json/`: the seeds
//! and every crash ever found) through the OwnTracks decoder: each input decodes or is refused,
//! and none panics.

use std::path::Path;

#[test]
fn the_owntracks_fuzz_corpus_decodes_or_is_refused_without_panicking() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/owntracks_json");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} is empty", dir.display());
    let (mut accepted, mut refused) = (0, 0);
    for file in &files {
        let input = std::fs::read(file).expect("read a corpus file");
        match fieldlink_proto::owntracks::decode(&input) {
            Ok(_) => accepted += 1,
            Err(_) => refused += 1,
        }
    }
    assert!(accepted >= 3, "{accepted} accepted, {refused} refused");
    assert!(refused >= 1, "{accepted} accepted, {refused} refused");
}
