//! The store against real databases: every scenario runs with the same assertions on an SQLite
//! file in a temporary directory and on PostgreSQL in a schema of its own (skipped with a message
//! when PostgreSQL is not running, a failure when `CI=true`).

use std::future::Future;
use std::time::Instant;

use fieldlink_store::testing::{drop_schema, postgres_config_or_skip, sqlite_config};
use fieldlink_store::{
    Backend, NewToken, NewUnit, PositionRow, Role, SealMark, SecretHash, Store, StoreConfig,
    StoreError, Timestamp, TrackRow, UnitType, ZoneKind, ZoneRecord, format_token, generate_id,
    generate_secret, parse_token,
};

/// One `mod` per scenario with a `sqlite` and a `postgres` test running it.
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[tokio::test]
            async fn sqlite() {
                let dir = tempfile::tempdir().expect("temporary directory");
                super::$scenario(fieldlink_store::testing::sqlite_config(dir.path())).await;
            }

            #[tokio::test]
            async fn postgres() {
                super::on_postgres(stringify!($scenario), super::$scenario).await;
            }
        }
    )*};
}

on_both_backends!(
    units,
    tokens,
    latest_positions,
    track_history,
    zones,
    seal_marks,
    reopen_keeps_data
);

/// Runs `scenario` in a fresh PostgreSQL schema and drops the schema afterwards, pass or fail.
async fn on_postgres<F, Fut>(name: &str, scenario: F)
where
    F: FnOnce(StoreConfig) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(cfg) = postgres_config_or_skip(name).await else {
        return;
    };
    let outcome = tokio::spawn(scenario(cfg.clone())).await;
    drop_schema(&cfg).await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

fn t(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms)
}

fn new_unit(id: &str, secret: &str) -> NewUnit {
    NewUnit {
        id: id.into(),
        name: format!("Unit {id}"),
        unit_type: UnitType::EBike,
        skills: vec!["first_aid".into(), "ladder".into()],
        secret: SecretHash::new(secret),
        seal_key: format!("{secret:0>32}"),
        now: t(1_000),
    }
}

fn position(unit: &str, fix_ms: i64, lat: f64) -> PositionRow {
    PositionRow {
        unit: unit.into(),
        fix_time: t(fix_ms),
        received_at: t(fix_ms + 150),
        lat,
        lon: 121.47,
        alt_m: Some(12.5),
        accuracy_m: Some(4.0),
        speed_mps: None,
        heading_deg: Some(90.0),
        battery_pct: Some(77.0),
        source: "gps".into(),
    }
}

fn fix(unit: &str, fix_ms: i64, flag: Option<&str>) -> TrackRow {
    let p = position(unit, fix_ms, 31.23 + fix_ms as f64 * 1e-9);
    TrackRow {
        unit: p.unit,
        fix_time: p.fix_time,
        received_at: p.received_at,
        lat: p.lat,
        lon: p.lon,
        alt_m: p.alt_m,
        accuracy_m: p.accuracy_m,
        speed_mps: Some(1.5),
        heading_deg: p.heading_deg,
        battery_pct: None,
        source: p.source,
        flag: flag.map(String::from),
    }
}

async fn units(cfg: StoreConfig) {
    let store = Store::open(&cfg).await.expect("open");
    store.ping().await.expect("ping");
    assert_eq!(store.count_units().await.unwrap(), 0);

    let secret = generate_secret();
    let created = store.create_unit(&new_unit("u2", &secret)).await.unwrap();
    store.create_unit(&new_unit("u1", "other")).await.unwrap();
    let dup = store.create_unit(&new_unit("u2", "again")).await;
    assert!(
        matches!(&dup, Err(StoreError::AlreadyExists { what: "unit", id }) if id == "u2"),
        "{dup:?}"
    );
    assert_eq!(store.count_units().await.unwrap(), 2);

    let got = store.get_unit("u2").await.unwrap().expect("u2 exists");
    assert_eq!(got, created);
    assert_eq!(got.unit_type, UnitType::EBike);
    assert_eq!(got.skills, ["first_aid", "ladder"]);
    assert!(!got.disabled);
    assert!(got.secret.verify(&secret));
    assert!(!got.secret.verify("wrong"));
    assert_eq!(store.get_unit("nobody").await.unwrap(), None);

    let ids: Vec<String> = store
        .list_units()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.id)
        .collect();
    assert_eq!(ids, ["u1", "u2"]);

    store.set_unit_disabled("u2", true, t(2_000)).await.unwrap();
    let got = store.get_unit("u2").await.unwrap().unwrap();
    assert!(got.disabled);
    assert_eq!((got.created_at, got.updated_at), (t(1_000), t(2_000)));
    store
        .set_unit_disabled("u2", false, t(2_500))
        .await
        .unwrap();
    assert!(!store.get_unit("u2").await.unwrap().unwrap().disabled);
    let missing = store.set_unit_disabled("nobody", true, t(2_000)).await;
    assert!(
        matches!(missing, Err(StoreError::NotFound { what: "unit", .. })),
        "{missing:?}"
    );

    let rotated = generate_secret();
    store
        .set_unit_secret("u2", &SecretHash::new(&rotated), &"k".repeat(32), t(3_000))
        .await
        .unwrap();
    let got = store.get_unit("u2").await.unwrap().unwrap();
    assert!(got.secret.verify(&rotated));
    assert_eq!(
        got.seal_key.as_deref(),
        Some("k".repeat(32).as_str()),
        "the seal key changes with the secret"
    );
    assert!(
        !got.secret.verify(&secret),
        "the old secret must stop working"
    );
    assert_eq!(got.updated_at, t(3_000));
    let missing = store
        .set_unit_secret("nobody", &SecretHash::new("x"), &"k".repeat(32), t(3_000))
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound { .. })),
        "{missing:?}"
    );
    store.close().await;
}

async fn tokens(cfg: StoreConfig) {
    let store = Store::open(&cfg).await.expect("open");
    let id = generate_id("tok");
    let secret = generate_secret();
    let new = NewToken {
        id: id.clone(),
        name: "wall display".into(),
        role: Role::Dispatcher,
        secret: SecretHash::new(&secret),
        now: t(5_000),
    };
    let created = store.create_token(&new).await.unwrap();
    assert!(matches!(
        store.create_token(&new).await,
        Err(StoreError::AlreadyExists {
            what: "API token",
            ..
        })
    ));
    store
        .create_token(&NewToken {
            id: "tok_admin".into(),
            role: Role::Admin,
            now: t(6_000),
            ..new.clone()
        })
        .await
        .unwrap();
    assert_eq!(store.count_tokens().await.unwrap(), 2);

    // What a user presents, back to a record and a verified secret.
    let presented = format_token(&id, &secret);
    let (pid, psecret) = parse_token(&presented).expect("well-formed token");
    let got = store.get_token(pid).await.unwrap().expect("token exists");
    assert_eq!(got, created);
    assert!(got.secret.verify(psecret));
    assert!(!got.secret.verify(&generate_secret()));
    assert!(got.role.allows(Role::Viewer) && !got.role.allows(Role::Admin));
    assert_eq!(store.get_token("tok_none").await.unwrap(), None);

    let listed: Vec<String> = store
        .list_tokens()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(listed, [id.clone(), "tok_admin".into()]);

    store.revoke_token(&id, t(7_000)).await.unwrap();
    store
        .revoke_token(&id, t(8_000))
        .await
        .expect("revoking twice is harmless");
    assert!(store.get_token(&id).await.unwrap().unwrap().revoked);
    assert!(!store.get_token("tok_admin").await.unwrap().unwrap().revoked);
    assert!(matches!(
        store.revoke_token("tok_none", t(7_000)).await,
        Err(StoreError::NotFound {
            what: "API token",
            ..
        })
    ));
    store.close().await;
}

async fn latest_positions(cfg: StoreConfig) {
    let store = Store::open(&cfg).await.expect("open");
    store.upsert_latest_positions(&[]).await.unwrap();
    store
        .upsert_latest_positions(&[position("b", 100, 31.0), position("a", 100, 31.0)])
        .await
        .unwrap();
    // A buffered fix arriving late must not move the unit back; an equal time is not newer.
    store
        .upsert_latest_positions(&[position("a", 50, 99.0), position("b", 100, 99.0)])
        .await
        .unwrap();
    let got = store.load_latest_positions().await.unwrap();
    assert_eq!(got, [position("a", 100, 31.0), position("b", 100, 31.0)]);

    // Newer wins; within one batch the newest fix per unit wins whatever its place.
    store
        .upsert_latest_positions(&[
            position("a", 300, 33.0),
            position("a", 200, 32.0),
            position("b", 150, 31.5),
            position("c", 10, 30.0),
        ])
        .await
        .unwrap();
    let got = store.load_latest_positions().await.unwrap();
    assert_eq!(
        got,
        [
            position("a", 300, 33.0),
            position("b", 150, 31.5),
            position("c", 10, 30.0)
        ]
    );
    store.close().await;
}

async fn track_history(cfg: StoreConfig) {
    let store = Store::open(&cfg).await.expect("open");
    let base = 1_700_000_000_000_i64;
    // 1,000 fixes a second apart, every tenth flagged by the filter, given out of order.
    let mut batch: Vec<TrackRow> = (0..1_000)
        .map(|i| fix("u1", base + i * 1_000, (i % 10 == 9).then_some("jump")))
        .collect();
    batch.reverse();
    let started = Instant::now();
    store.append_track(&batch).await.unwrap();
    let elapsed = started.elapsed();
    eprintln!(
        "{:?}: appended 1,000 track rows in one batch in {elapsed:?}",
        store.backend()
    );
    store
        .append_track(&[fix("u2", base, None), fix("u2", base + 500, None)])
        .await
        .unwrap();
    store.append_track(&[]).await.unwrap();

    let all = |flagged| store.track("u1", t(base), t(base + 1_000_000), flagged, 10_000);
    let accepted = all(false).await.unwrap();
    assert_eq!(accepted.len(), 900);
    assert!(accepted.iter().all(|r| r.flag.is_none()));
    assert!(
        accepted.windows(2).all(|w| w[0].fix_time < w[1].fix_time),
        "ascending"
    );
    let everything = all(true).await.unwrap();
    assert_eq!(everything.len(), 1_000);
    assert_eq!(everything[9].flag.as_deref(), Some("jump"));
    // Round trip of every column.
    let mut expected = batch.clone();
    expected.sort_by_key(|r| r.fix_time);
    assert_eq!(everything, expected);

    // A range is inclusive at both ends; the limit keeps the oldest.
    let range = store
        .track("u1", t(base + 100_000), t(base + 199_000), true, 10_000)
        .await
        .unwrap();
    assert_eq!(range.len(), 100);
    assert_eq!(range[0].fix_time, t(base + 100_000));
    assert_eq!(range[99].fix_time, t(base + 199_000));
    let first = store
        .track("u1", t(0), t(i64::MAX), false, 5)
        .await
        .unwrap();
    let times: Vec<i64> = first
        .iter()
        .map(|r| r.fix_time.as_millis() - base)
        .collect();
    assert_eq!(times, [0, 1_000, 2_000, 3_000, 4_000]);
    assert!(
        store
            .track("u3", t(0), t(i64::MAX), true, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // A handset re-sending its buffer changes nothing.
    store.append_track(&batch[..10]).await.unwrap();
    assert_eq!(all(true).await.unwrap().len(), 1_000);

    // Retention: everything before base + 500 s goes, for every unit.
    let deleted = store.prune_track(t(base + 500_000)).await.unwrap();
    assert_eq!(deleted, 500 + 2);
    let left = all(true).await.unwrap();
    assert_eq!(left.len(), 500);
    assert_eq!(left[0].fix_time, t(base + 500_000));
    assert_eq!(store.prune_track(t(base + 500_000)).await.unwrap(), 0);
    store.close().await;
}

fn mark(unit: &str, channel: &str, last: u64) -> SealMark {
    SealMark {
        unit: unit.into(),
        channel: channel.into(),
        last,
    }
}

async fn seal_marks(cfg: StoreConfig) {
    let store = Store::open(&cfg).await.unwrap();
    assert!(store.load_seal_marks().await.unwrap().is_empty());
    // Microsecond counters of today, and the largest a counter can be.
    let now_us = 1_764_460_800_000_000;
    store
        .save_seal_marks(&[
            mark("u1", "sealed", now_us),
            mark("u1", "owntracks", 1_764_460_800),
            mark("u2", "sealed", i64::MAX as u64),
        ])
        .await
        .unwrap();
    // A later write raises a mark; an older one landing late does not lower it.
    store
        .save_seal_marks(&[mark("u1", "sealed", now_us + 5), mark("u1", "sealed", 3)])
        .await
        .unwrap();
    store
        .save_seal_marks(&[mark("u1", "sealed", now_us - 1)])
        .await
        .unwrap();
    store.close().await;

    let store = Store::open(&cfg).await.unwrap();
    let mut got = store.load_seal_marks().await.unwrap();
    got.sort_by(|a, b| (&a.unit, &a.channel).cmp(&(&b.unit, &b.channel)));
    assert_eq!(
        got,
        vec![
            mark("u1", "owntracks", 1_764_460_800),
            mark("u1", "sealed", now_us + 5),
            mark("u2", "sealed", i64::MAX as u64),
        ]
    );
    store.close().await;
}

fn zone(id: &str, kind: ZoneKind, at_ms: i64) -> ZoneRecord {
    let (geometry, radius_m) = match kind {
        ZoneKind::Grid => (
            r#"{"type":"Polygon","coordinates":[[[120.16,30.25],[120.17,30.25],[120.17,30.26],[120.16,30.25]]]}"#,
            None,
        ),
        ZoneKind::Geofence => (
            r#"{"type":"Point","coordinates":[120.165,30.255]}"#,
            Some(150.5),
        ),
    };
    ZoneRecord {
        id: id.into(),
        kind,
        name: format!("Zone {id} 湖滨"),
        geometry: geometry.into(),
        radius_m,
        members: match kind {
            ZoneKind::Grid => vec!["u1".into(), "u2".into()],
            ZoneKind::Geofence => vec![],
        },
        created_at: t(at_ms),
        updated_at: t(at_ms),
        alarm_on: match kind {
            ZoneKind::Grid => None,
            ZoneKind::Geofence => Some("enter".into()),
        },
    }
}

async fn zones(cfg: StoreConfig) {
    let store = Store::open(&cfg).await.expect("open");
    assert!(store.list_zones(None).await.unwrap().is_empty());
    assert_eq!(store.get_zone("g1").await.unwrap(), None);

    let g1 = store
        .put_zone(&zone("g1", ZoneKind::Grid, 1_000))
        .await
        .unwrap();
    assert_eq!(g1, zone("g1", ZoneKind::Grid, 1_000));
    store
        .put_zone(&zone("g0", ZoneKind::Grid, 1_100))
        .await
        .unwrap();
    let fence = store
        .put_zone(&zone("scene", ZoneKind::Geofence, 1_200))
        .await
        .unwrap();
    assert_eq!(fence.radius_m, Some(150.5));
    assert!(fence.members.is_empty());
    assert_eq!(store.get_zone("g1").await.unwrap(), Some(g1.clone()));

    let ids = |list: Vec<ZoneRecord>| list.into_iter().map(|z| z.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.list_zones(None).await.unwrap()),
        ["g0", "g1", "scene"]
    );
    assert_eq!(
        ids(store.list_zones(Some(ZoneKind::Grid)).await.unwrap()),
        ["g0", "g1"]
    );
    assert_eq!(
        ids(store.list_zones(Some(ZoneKind::Geofence)).await.unwrap()),
        ["scene"]
    );

    // Upsert: everything is replaced except created_at.
    let mut changed = zone("g1", ZoneKind::Grid, 5_000);
    changed.name = "Renamed".into();
    changed.members = vec!["u3".into()];
    let stored = store.put_zone(&changed).await.unwrap();
    assert_eq!(stored.created_at, t(1_000));
    assert_eq!(stored.updated_at, t(5_000));
    assert_eq!(
        (stored.name.as_str(), &stored.members[..]),
        ("Renamed", &["u3".to_owned()][..])
    );
    assert_eq!(store.get_zone("g1").await.unwrap(), Some(stored));
    assert_eq!(store.list_zones(None).await.unwrap().len(), 3);

    store.delete_zone("g1").await.unwrap();
    assert_eq!(store.get_zone("g1").await.unwrap(), None);
    let missing = store.delete_zone("g1").await;
    assert!(
        matches!(&missing, Err(StoreError::NotFound { what: "zone", id }) if id == "g1"),
        "{missing:?}"
    );
    assert_eq!(ids(store.list_zones(None).await.unwrap()), ["g0", "scene"]);
    store.close().await;
}

async fn reopen_keeps_data(cfg: StoreConfig) {
    let store = Store::open(&cfg).await.expect("open");
    store.create_unit(&new_unit("u1", "s")).await.unwrap();
    store
        .upsert_latest_positions(&[position("u1", 100, 31.0)])
        .await
        .unwrap();
    store.append_track(&[fix("u1", 100, None)]).await.unwrap();
    store
        .put_zone(&zone("g1", ZoneKind::Grid, 100))
        .await
        .unwrap();
    store.close().await;
    assert!(store.ping().await.is_err(), "a closed store refuses work");

    // Opening again also re-runs the migrations, which must be a no-op.
    let again = Store::open(&cfg).await.expect("reopen");
    assert!(again.get_unit("u1").await.unwrap().is_some());
    assert_eq!(
        again.load_latest_positions().await.unwrap(),
        [position("u1", 100, 31.0)]
    );
    assert_eq!(
        again
            .track("u1", t(0), t(200), true, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        again.get_zone("g1").await.unwrap(),
        Some(zone("g1", ZoneKind::Grid, 100))
    );
    again.close().await;
}

#[tokio::test]
async fn sqlite_creates_missing_directories() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/fieldlink.db");
    let cfg = StoreConfig::new(format!("sqlite://{}", path.display()));
    let store = Store::open(&cfg).await.expect("open");
    assert_eq!(store.backend(), Backend::Sqlite);
    assert!(path.exists());
    assert!(format!("{store:?}").contains("fieldlink.db"));
    store.close().await;
}

#[tokio::test]
async fn bad_configs_are_explained_without_passwords() {
    let err = Store::open(&StoreConfig::new("mysql://fl:hunter2@db/fl"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::BadUrl(_)), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("mysql://fl:***@db/fl") && !msg.contains("hunter2"),
        "{msg}"
    );

    let cfg = StoreConfig {
        url: "postgres://fl:hunter2@127.0.0.1:5432/test".into(),
        pg_schema: Some("Robert'); DROP TABLE units;--".into()),
    };
    assert!(!format!("{cfg:?}").contains("hunter2"));
    let err = Store::open(&cfg).await.unwrap_err();
    assert!(matches!(err, StoreError::BadSchema(_)), "{err:?}");

    // Nothing listens on port 1: the message names the place, not the password.
    let err = Store::open(&StoreConfig::new("postgres://fl:hunter2@127.0.0.1:1/fl"))
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StoreError::Connect { .. }), "{err:?}");
    assert!(
        msg.contains("127.0.0.1:1") && !msg.contains("hunter2"),
        "{msg}"
    );

    let err = Store::open(&StoreConfig::new("sqlite://"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::BadUrl(_)), "{err:?}");
}

#[tokio::test]
async fn postgres_backend_and_schema_isolation() {
    let Some(cfg) = postgres_config_or_skip("postgres_backend_and_schema_isolation").await else {
        return;
    };
    let Some(other) = postgres_config_or_skip("postgres_backend_and_schema_isolation").await else {
        return;
    };
    let a = Store::open(&cfg).await.expect("open a");
    let b = Store::open(&other).await.expect("open b");
    assert_eq!(a.backend(), Backend::Postgres);
    a.create_unit(&new_unit("u1", "s")).await.unwrap();
    assert_eq!(a.count_units().await.unwrap(), 1);
    assert_eq!(
        b.count_units().await.unwrap(),
        0,
        "schemas must not see each other"
    );
    a.close().await;
    b.close().await;
    drop_schema(&cfg).await;
    drop_schema(&other).await;
}

#[test]
fn sqlite_config_points_into_the_directory() {
    let cfg = sqlite_config(std::path::Path::new("/tmp/x"));
    assert_eq!(cfg.url, "sqlite:///tmp/x/fieldlink.db");
}
