//! Dispatch reads against real databases (SQLite file, PostgreSQL schema): the state reloaded at
//! restart and the HTTP query filters.

#[macro_use]
mod dispatch_support;

use dispatch_support::{alarm, dispatch_command, incident, order, timer};
use fieldlink_store::{AlarmRow, ChangeSet, Committed, IncidentRow, OrderRow, Store, StoreConfig};

on_both_backends!(state_survives_restart, queries_filter);

async fn commit(store: &Store, cs: ChangeSet) {
    let done = store.commit(&cs).await.expect("commit");
    assert!(matches!(done, Committed::Written(_)), "{done:?}");
}

async fn state_survives_restart(cfg: StoreConfig) {
    let store = Store::open(&cfg).await.expect("open");
    commit(&store, dispatch_command("1", 1_000, None)).await;
    commit(&store, dispatch_command("2", 2_000, None)).await;
    // inc-2 closes (its order resolved, its timer fired); inc-1's timer is re-armed.
    commit(
        &store,
        ChangeSet {
            incidents: vec![incident("inc-2", "closed", false, 2_000, false)],
            orders: vec![order("wo-2", "inc-2", "u-2", "resolved", false, 2_000)],
            alarms: vec![
                alarm("al-1", "raised", true, 2_500),
                alarm("al-0", "resolved", false, 10),
            ],
            timers_cleared: vec!["tm-2".into(), "tm-unknown".into()],
            timers_set: vec![
                timer("tm-1", 95_000, "wo-1"),
                timer("tm-3", 61_000, "inc-1"),
            ],
            ..ChangeSet::default()
        },
    )
    .await;
    let last = store.last_seq().await.unwrap();
    store.close().await;

    let store = Store::open(&cfg).await.expect("reopen");
    let state = store.load_dispatch_state().await.unwrap();
    assert_eq!(
        state.incidents,
        [incident("inc-1", "dispatched", true, 1_000, false)]
    );
    assert_eq!(
        state.orders.iter().map(|o| &o.id[..]).collect::<Vec<_>>(),
        ["wo-1"]
    );
    assert_eq!(
        state.alarms,
        [AlarmRow {
            new: false,
            ..alarm("al-1", "raised", true, 2_500)
        }]
    );
    // Original deadlines, soonest first.
    assert_eq!(
        state.timers,
        [
            timer("tm-3", 61_000, "inc-1"),
            timer("tm-1", 95_000, "wo-1")
        ]
    );
    assert_eq!(state.last_seq, last);
    store.close().await;
}

async fn queries_filter(cfg: StoreConfig) {
    let store = Store::open(&cfg).await.expect("open");
    commit(&store, dispatch_command("1", 1_000, None)).await;
    commit(&store, dispatch_command("2", 2_000, None)).await;
    let mut other_grid = incident("inc-3", "queued", true, 3_000, true);
    other_grid.grid = None;
    commit(
        &store,
        ChangeSet {
            incidents: vec![other_grid.clone()],
            // A second order on inc-1 for u-2, and u-2's first order cancelled.
            orders: vec![
                order("wo-1b", "inc-1", "u-2", "accepted", true, 4_000),
                order("wo-2", "inc-2", "u-2", "cancelled", false, 2_000),
            ],
            alarms: vec![
                alarm("al-1", "raised", true, 1),
                alarm("al-2", "acknowledged", true, 2),
            ],
            ..ChangeSet::default()
        },
    )
    .await;
    let ids = |rows: Vec<IncidentRow>| rows.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.list_incidents(None, None).await.unwrap()),
        ["inc-1", "inc-2", "inc-3"]
    );
    assert_eq!(
        ids(store
            .list_incidents(Some("dispatched"), None)
            .await
            .unwrap()),
        ["inc-1", "inc-2"]
    );
    assert_eq!(
        ids(store.list_incidents(None, Some("g-7")).await.unwrap()),
        ["inc-1", "inc-2"]
    );
    assert_eq!(
        ids(store
            .list_incidents(Some("queued"), Some("g-7"))
            .await
            .unwrap()),
        Vec::<String>::new()
    );
    assert_eq!(
        store.list_incidents(Some("queued"), None).await.unwrap(),
        [IncidentRow {
            new: false,
            ..other_grid
        }]
    );

    let order_ids = |rows: Vec<OrderRow>| rows.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(
        order_ids(store.orders_of_incident("inc-1").await.unwrap()),
        ["wo-1", "wo-1b"]
    );
    assert_eq!(
        order_ids(store.open_orders_of_unit("u-2").await.unwrap()),
        ["wo-1b"]
    );
    assert!(store.open_orders_of_unit("u-9").await.unwrap().is_empty());
    let wo2 = store.get_order("wo-2").await.unwrap().unwrap();
    assert_eq!((wo2.state.as_str(), wo2.open), ("cancelled", false));
    assert!(store.get_order("wo-9").await.unwrap().is_none());

    let alarm_ids = |rows: Vec<AlarmRow>| rows.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(
        alarm_ids(store.list_alarms(None).await.unwrap()),
        ["al-1", "al-2"]
    );
    assert_eq!(
        alarm_ids(store.list_alarms(Some("raised")).await.unwrap()),
        ["al-1"]
    );
    store.close().await;
}
