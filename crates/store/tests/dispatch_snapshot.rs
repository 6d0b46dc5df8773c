//! The single-row dispatch snapshot and the responder rows beside it: written inside `commit`,
//! replaced by the next one, absent before the first, and never written by a replayed request.

#[macro_use]
mod dispatch_support;

use dispatch_support::{dispatch_command, t};
use fieldlink_store::{ChangeSet, Committed, Store, StoreConfig};
use serde_json::json;

on_both_backends!(snapshot_follows_commits);

async fn snapshot_follows_commits(cfg: StoreConfig) {
    let store = Store::open(&cfg).await.expect("open");
    assert_eq!(store.load_dispatch_snapshot().await.unwrap(), None);

    let first = ChangeSet {
        snapshot: Some(json!({"n": 1})),
        responders: vec![
            ("u1".to_owned(), json!({"unit": "u1", "online": true})),
            ("u2".to_owned(), json!({"unit": "u2", "online": false})),
        ],
        ..dispatch_command("1", 1_000, Some(("req-1", json!({"id": "inc-1"}))))
    };
    let Committed::Written(seqs) = store.commit(&first).await.unwrap() else {
        panic!("first commit writes");
    };
    let snap = store.load_dispatch_snapshot().await.unwrap().unwrap();
    assert_eq!(snap.data, json!({"n": 1}));
    assert_eq!(snap.last_seq, *seqs.last().unwrap());
    assert_eq!(snap.updated_at, t(1_000));
    assert_eq!(snap.responders.len(), 2);

    // A replay writes nothing, the snapshot included.
    let replay = ChangeSet {
        snapshot: Some(json!({"n": 99})),
        responders: vec![("u3".to_owned(), json!({"unit": "u3"}))],
        ..dispatch_command("9", 9_000, Some(("req-1", json!({"id": "inc-9"}))))
    };
    assert!(matches!(
        store.commit(&replay).await.unwrap(),
        Committed::Replayed(_)
    ));
    let snap = store.load_dispatch_snapshot().await.unwrap().unwrap();
    assert_eq!(snap.data, json!({"n": 1}));
    assert_eq!(snap.responders.len(), 2, "the replay wrote no responder");

    // A commit without events keeps the last sequence number; the rows are replaced.
    let only = ChangeSet {
        at: t(2_000),
        snapshot: Some(json!({"n": 2})),
        responders: vec![("u2".to_owned(), json!({"unit": "u2", "online": true}))],
        ..ChangeSet::default()
    };
    store.commit(&only).await.unwrap();
    store.close().await;
    let store = Store::open(&cfg).await.expect("reopen");
    let snap = store.load_dispatch_snapshot().await.unwrap().unwrap();
    assert_eq!(snap.data, json!({"n": 2}));
    assert_eq!(snap.last_seq, *seqs.last().unwrap());
    assert_eq!(
        snap.responders,
        vec![
            json!({"unit": "u1", "online": true}),
            json!({"unit": "u2", "online": true})
        ]
    );
    store.close().await;
}
