//! Delivery bookkeeping against real databases (SQLite file, PostgreSQL schema): the outbox
//! due / attempt / done / claim cycle, and timer claims with leases.

#[macro_use]
mod dispatch_support;

use std::collections::BTreeSet;

use dispatch_support::{outbox, t, timer};
use fieldlink_store::{ChangeSet, Committed, Store, StoreConfig, StoreError};

on_both_backends!(outbox_cycle, timer_claims);

async fn commit(store: &Store, cs: ChangeSet) {
    let done = store.commit(&cs).await.expect("commit");
    assert!(matches!(done, Committed::Written(_)), "{done:?}");
}

async fn outbox_cycle(cfg: StoreConfig) {
    let store = Store::open(&cfg).await.expect("open");
    commit(
        &store,
        ChangeSet {
            outbox: vec![
                outbox("ob-a", "u-1", "wo-1", 100, 100),
                outbox("ob-b", "u-2", "wo-2", 150, 200),
            ],
            ..ChangeSet::default()
        },
    )
    .await;
    let due = |now| {
        let store = store.clone();
        async move {
            let rows = store.due_outbox(t(now), 100).await.unwrap();
            rows.into_iter()
                .map(|r| (r.entry.id, r.attempts))
                .collect::<Vec<_>>()
        }
    };
    assert!(due(99).await.is_empty());
    assert_eq!(due(150).await, [("ob-a".into(), 0)]);
    store.mark_outbox_attempt("ob-a", t(300)).await.unwrap();
    assert_eq!(due(250).await, [("ob-b".into(), 0)]);
    assert_eq!(
        due(300).await,
        [("ob-b".into(), 0), ("ob-a".into(), 1)],
        "by next attempt"
    );
    let a = store.get_outbox("ob-a").await.unwrap().unwrap();
    assert_eq!(
        (a.attempts, a.entry.next_attempt, a.done_at),
        (1, t(300), None)
    );
    assert_eq!(
        a.entry.payload,
        outbox("ob-a", "u-1", "wo-1", 100, 100).payload
    );
    let missing = store.mark_outbox_attempt("ob-none", t(1)).await;
    assert!(
        matches!(missing, Err(StoreError::NotFound { .. })),
        "{missing:?}"
    );

    // The receipt arrives (twice, and once for an unknown id): done, and no longer due.
    for _ in 0..2 {
        commit(
            &store,
            ChangeSet {
                outbox_done: vec![("ob-a".into(), t(400)), ("ob-none".into(), t(400))],
                ..ChangeSet::default()
            },
        )
        .await;
    }
    assert_eq!(
        store.get_outbox("ob-a").await.unwrap().unwrap().done_at,
        Some(t(400))
    );
    assert_eq!(due(10_000).await, [("ob-b".into(), 0)]);

    // Claiming records the attempt; a second claimer gets nothing until the retry time.
    let claimed = store
        .claim_due_outbox(t(1_000), t(2_000), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(
        (claimed[0].attempts, claimed[0].entry.next_attempt),
        (1, t(2_000))
    );
    assert!(
        store
            .claim_due_outbox(t(1_000), t(2_000), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .claim_due_outbox(t(2_000), t(3_000), 10)
            .await
            .unwrap()[0]
            .attempts,
        2
    );

    // Retention: done messages before the cut go; pending ones stay whatever their age.
    assert_eq!(store.prune_dispatch(t(500)).await.unwrap(), 1);
    assert!(store.get_outbox("ob-a").await.unwrap().is_none());
    assert!(store.get_outbox("ob-b").await.unwrap().is_some());
    store.close().await;
}

async fn timer_claims(cfg: StoreConfig) {
    let store = Store::open(&cfg).await.expect("open");
    let timers: Vec<_> = (0..10)
        .map(|i| timer(&format!("tm-{i}"), 100 + i, "wo"))
        .collect();
    commit(
        &store,
        ChangeSet {
            timers_set: timers.clone(),
            ..ChangeSet::default()
        },
    )
    .await;
    assert!(
        store
            .claim_due_timers(t(99), t(1_000), 10)
            .await
            .unwrap()
            .is_empty()
    );

    // Ten concurrent claimers of one timer each: every due timer goes to exactly one of them.
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.claim_due_timers(t(500), t(1_000), 1).await.unwrap() })
        })
        .collect();
    let mut seen = BTreeSet::new();
    for task in tasks {
        for tm in task.await.unwrap() {
            assert!(seen.insert(tm.id.clone()), "{} claimed twice", tm.id);
        }
    }
    assert_eq!(seen.len(), 10);
    assert!(
        store
            .claim_due_timers(t(999), t(2_000), 100)
            .await
            .unwrap()
            .is_empty(),
        "leased"
    );

    // Re-arming drops the lease; an expired lease frees the rest; cleared timers are gone.
    commit(
        &store,
        ChangeSet {
            timers_set: vec![timer("tm-0", 900, "wo")],
            timers_cleared: vec!["tm-9".into()],
            ..ChangeSet::default()
        },
    )
    .await;
    let again = store.claim_due_timers(t(950), t(2_000), 100).await.unwrap();
    assert_eq!(again, [timer("tm-0", 900, "wo")]);
    let after_lease = store
        .claim_due_timers(t(1_000), t(3_000), 100)
        .await
        .unwrap();
    assert_eq!(after_lease, timers[1..9]);
    store.close().await;
}
