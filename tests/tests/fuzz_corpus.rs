//! Replays each fuzz target's corpus (`fuzz/corpus/<target>/`: the seeds and every crash ever
//! found) through the entry point the target fuzzes: each input decodes or is refused, and none
//! panics. The assertions on counts catch a corpus that no longer means what it did (the seeds
//! hold valid messages of each kind, and malformed ones).

use std::path::Path;

/// Feeds every file of `fuzz/corpus/{target}` to `decode` (true: accepted); (accepted, refused).
fn replay(target: &str, decode: impl Fn(&[u8]) -> bool) -> (usize, usize) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} is empty", dir.display());
    let accepted = (files.iter())
        .filter(|file| decode(&std::fs::read(file).expect("read a corpus file")))
        .count();
    (accepted, files.len() - accepted)
}

#[test]
fn the_uplink_corpus_decodes_or_is_refused_without_panicking() {
    let (accepted, refused) = replay("uplink_protobuf", |input| {
        fieldlink_ingest::decode::decode_framed(input).is_ok()
    });
    // Too few accepted would mean the framing (first byte picks the topic) moved.
    assert!(accepted >= 10, "{accepted} accepted, {refused} refused");
    assert!(refused >= 1, "{accepted} accepted, {refused} refused");
}

#[test]
fn the_owntracks_corpus_decodes_or_is_refused_without_panicking() {
    let (accepted, refused) = replay("owntracks_json", |input| {
        fieldlink_proto::owntracks::decode(input).is_ok()
    });
    assert!(accepted >= 3, "{accepted} accepted, {refused} refused");
    assert!(refused >= 1, "{accepted} accepted, {refused} refused");
}

#[test]
fn the_websocket_corpus_decodes_or_is_refused_without_panicking() {
    // Framed as the target frames it: first byte's low bit set = binary (protobuf), else JSON.
    let (accepted, refused) = replay("ws_client_frame", |input| {
        let (binary, frame) = match input.split_first() {
            Some((flag, frame)) => (flag & 1 == 1, frame),
            None => (false, input),
        };
        fieldlink_push::wire::decode_client(frame, binary).is_ok()
    });
    assert!(accepted >= 1, "{accepted} accepted, {refused} refused");
    assert!(refused >= 1, "{accepted} accepted, {refused} refused");
}

#[test]
fn the_mqtt_connect_corpus_is_read_or_refused_without_panicking() {
    // Accepted: a whole MQTT 3.1.1 CONNECT. Not yet whole, or never one: refused.
    let (accepted, refused) = replay("mqtt_connect", |input| {
        matches!(
            fieldlink_ingest::broker::read_first_packet(input),
            Ok(Some(_))
        )
    });
    assert!(accepted >= 5, "{accepted} accepted, {refused} refused");
    assert!(refused >= 5, "{accepted} accepted, {refused} refused");
}
