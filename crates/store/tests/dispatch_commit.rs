//! `Store::commit` against real databases (SQLite file, PostgreSQL schema): atomicity, request
//! idempotency under concurrency, and the journal's sequence numbers and resume.

#[macro_use]
mod dispatch_support;

use std::collections::BTreeSet;

use dispatch_support::{dispatch_command, event, incident, t};
use fieldlink_store::{ChangeSet, Committed, Store, StoreConfig, StoreError};
use serde_json::json;

on_both_backends!(
    commit_is_atomic,
    replayed_request_writes_nothing,
    concurrent_same_request_writes_once,
    journal_sequence_and_resume,
);

fn written(c: Committed) -> Vec<i64> {
    match c {
        Committed::Written(seqs) => seqs,
        other => panic!("expected Written, got {other:?}"),
    }
}

async fn commit_is_atomic(cfg: StoreConfig) {
    let store = Store::open(&cfg).await.expect("open");
    assert_eq!(
        written(store.commit(&ChangeSet::default()).await.unwrap()),
        Vec::<i64>::new()
    );
    let first = dispatch_command("1", 1_000, Some(("req-1", json!({ "incident": "inc-1" }))));
    let seqs = written(store.commit(&first).await.unwrap());
    assert_eq!(seqs.len(), 2);
    assert!(seqs[0] < seqs[1]);
    assert_eq!(store.last_seq().await.unwrap(), seqs[1]);
    let got = store
        .get_incident("inc-1")
        .await
        .unwrap()
        .expect("incident");
    assert_eq!(got, incident("inc-1", "dispatched", true, 1_000, false));
    assert_eq!(store.get_order("wo-1").await.unwrap().unwrap().unit, "u-1");
    assert_eq!(
        store.get_outbox("ob-1").await.unwrap().unwrap().entry,
        first.outbox[0]
    );
    assert_eq!(
        store.load_dispatch_state().await.unwrap().timers,
        first.timers_set
    );

    // A second command whose last part fails (inc-1 again, marked new): nothing of it stays.
    let mut bad = dispatch_command("2", 2_000, Some(("req-2", json!("second"))));
    bad.incidents
        .push(incident("inc-1", "new", true, 2_000, true));
    bad.events.push(event(2_000, "incident.created", "inc-1"));
    let err = store.commit(&bad).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::AlreadyExists { what: "incident", id } if id == "inc-1"),
        "{err:?}"
    );
    assert_eq!(store.last_seq().await.unwrap(), seqs[1], "no journal rows");
    assert!(store.journal_since(seqs[1], 100).await.unwrap().is_empty());
    assert!(store.get_incident("inc-2").await.unwrap().is_none());
    assert!(store.get_order("wo-2").await.unwrap().is_none());
    assert!(store.get_outbox("ob-2").await.unwrap().is_none());
    let state = store.load_dispatch_state().await.unwrap();
    assert_eq!(state.timers.len(), 1);
    assert_eq!(state.incidents[0].status, "dispatched", "inc-1 untouched");

    // The failed request id was not recorded: the corrected command goes through.
    let good = dispatch_command("2", 2_000, Some(("req-2", json!("second"))));
    assert_eq!(written(store.commit(&good).await.unwrap()).len(), 2);

    // Updates (new: false) replace the snapshot; a duplicate outbox id fails the commit.
    let update = ChangeSet {
        incidents: vec![incident("inc-1", "closed", false, 1_000, false)],
        ..ChangeSet::default()
    };
    written(store.commit(&update).await.unwrap());
    assert_eq!(
        store.get_incident("inc-1").await.unwrap().unwrap().status,
        "closed"
    );
    let dup = ChangeSet {
        events: vec![event(3_000, "x", "wo-1")],
        outbox: good.outbox.clone(),
        ..ChangeSet::default()
    };
    let err = store.commit(&dup).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::AlreadyExists {
                what: "outbox entry",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(store.journal_since(0, 100).await.unwrap().len(), 4);
    store.close().await;
}

async fn replayed_request_writes_nothing(cfg: StoreConfig) {
    let store = Store::open(&cfg).await.expect("open");
    let result = json!({ "incident": "inc-a", "orders": ["wo-a"] });
    let cs = dispatch_command("a", 1_000, Some(("req-a", result.clone())));
    let seqs = written(store.commit(&cs).await.unwrap());

    // The same request again, even with other content (a retry after a new decision), and
    // after a reopen: the first result, nothing written.
    for attempt in 0..2 {
        let retry = dispatch_command("b", 5_000, Some(("req-a", json!("other"))));
        assert_eq!(
            store.commit(&retry).await.unwrap(),
            Committed::Replayed(result.clone())
        );
        assert_eq!(
            store.last_seq().await.unwrap(),
            seqs[1],
            "attempt {attempt}"
        );
        assert!(store.get_incident("inc-b").await.unwrap().is_none());
        assert!(store.get_outbox("ob-b").await.unwrap().is_none());
        assert_eq!(store.load_dispatch_state().await.unwrap().timers.len(), 1);
    }
    store.close().await;
    let store = Store::open(&cfg).await.expect("reopen");
    let retry = dispatch_command("a", 1_000, Some(("req-a", json!("again"))));
    assert_eq!(
        store.commit(&retry).await.unwrap(),
        Committed::Replayed(result)
    );
    assert_eq!(store.journal_since(0, 100).await.unwrap().len(), 2);
    store.close().await;
}

async fn concurrent_same_request_writes_once(cfg: StoreConfig) {
    let store = Store::open(&cfg).await.expect("open");
    // 20 racing deliveries of one request, each with its own ids so duplicates would show.
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let cs =
                    dispatch_command(&i.to_string(), 1_000, Some(("req-x", json!({ "by": i }))));
                (i, store.commit(&cs).await.expect("commit"))
            })
        })
        .collect();
    let mut winners = Vec::new();
    let mut replays = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            (i, Committed::Written(seqs)) => winners.push((i, seqs)),
            (_, Committed::Replayed(v)) => replays.push(v),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one commit writes");
    let (w, seqs) = &winners[0];
    assert_eq!(replays.len(), 19);
    assert!(
        replays.iter().all(|v| *v == json!({ "by": w })),
        "{replays:?}"
    );
    let journal = store.journal_since(0, 1_000).await.unwrap();
    assert_eq!(journal.iter().map(|e| e.seq).collect::<Vec<_>>(), *seqs);
    let state = store.load_dispatch_state().await.unwrap();
    assert_eq!(state.incidents.len(), 1);
    assert_eq!(state.incidents[0].id, format!("inc-{w}"));
    assert_eq!((state.orders.len(), state.timers.len()), (1, 1));
    assert_eq!(store.due_outbox(t(i64::MAX), 100).await.unwrap().len(), 1);
    store.close().await;
}

async fn journal_sequence_and_resume(cfg: StoreConfig) {
    let store = Store::open(&cfg).await.expect("open");
    // Concurrent commits without request ids: every event gets its own, increasing, number.
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let cs = dispatch_command(&format!("c{i}"), 1_000 + i, None);
                written(store.commit(&cs).await.expect("commit"))
            })
        })
        .collect();
    let mut all = BTreeSet::new();
    for task in tasks {
        let seqs = task.await.unwrap();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
        all.extend(seqs);
    }
    assert_eq!(all.len(), 40, "no sequence number given twice");
    let journal = store.journal_since(0, 1_000).await.unwrap();
    let got: Vec<i64> = journal.iter().map(|e| e.seq).collect();
    assert_eq!(
        got,
        all.iter().copied().collect::<Vec<_>>(),
        "ordered, complete"
    );
    assert_eq!(store.last_seq().await.unwrap(), *got.last().unwrap());
    assert_eq!(journal[0].data["note"], "unicode ok: 走失老人");

    // Resume after any seq gives exactly the rest; paging by 3 rebuilds the whole journal.
    for k in [0, 1, 17, 39] {
        let rest = store.journal_since(got[k], 1_000).await.unwrap();
        assert_eq!(rest, journal[k + 1..], "after the {k}th");
    }
    let (mut paged, mut after) = (Vec::new(), 0);
    loop {
        let page = store.journal_since(after, 3).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.seq;
        paged.extend(page);
    }
    assert_eq!(paged, journal);

    // The supervision window: inclusive bounds on the event time, sequence order.
    let window = store.journal_range(t(1_005), t(1_009)).await.unwrap();
    assert_eq!(window.len(), 10);
    assert!(
        window
            .iter()
            .all(|e| (1_005..=1_009).contains(&e.at.as_millis()))
    );
    assert!(window.windows(2).all(|w| w[0].seq < w[1].seq));
    assert!(store.journal_range(t(0), t(999)).await.unwrap().is_empty());
    store.close().await;
}
