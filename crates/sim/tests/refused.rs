//! Connection failures are said in words; no real broker needed.

use std::time::Duration;

use fieldlink_proto::{Topics, UnitId};
use fieldlink_sim::{Fleet, FleetConfig, Handset, HandsetConfig, SimError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn cfg(broker: &str) -> HandsetConfig {
    let unit = UnitId::new("u1").expect("valid");
    HandsetConfig::new(broker, unit, "wrong", Topics::default())
}

/// A one-shot "broker" that answers any CONNECT with CONNACK return code `code`.
async fn refusing_broker(code: u8) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buf = [0u8; 512];
            let _ = socket.read(&mut buf).await;
            let _ = socket.write_all(&[0x20, 0x02, 0x00, code]).await;
        }
    });
    addr
}

#[tokio::test]
async fn bad_credentials_are_refused_in_words() {
    let broker = refusing_broker(4).await;
    let err = Handset::connect(cfg(&broker)).await.expect_err("refused");
    assert!(matches!(err, SimError::Refused { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("refused unit u1") && text.contains("bad user name or password"),
        "{text}"
    );
}

#[tokio::test]
async fn not_authorized_is_refused_too() {
    let broker = refusing_broker(5).await;
    let err = Handset::connect(cfg(&broker)).await.expect_err("refused");
    assert!(err.to_string().contains("not authorized"), "{err}");
}

#[tokio::test]
async fn nothing_listening_names_the_broker() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        l.local_addr().expect("addr").port()
    }; // closed again: nothing listens there now
    let broker = format!("127.0.0.1:{port}");
    let err = Handset::connect(cfg(&broker)).await.expect_err("no broker");
    assert!(matches!(err, SimError::Connect { .. }), "{err:?}");
    assert!(err.to_string().contains(&broker), "{err}");
}

#[tokio::test]
async fn a_broker_that_never_answers_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let broker = listener.local_addr().expect("addr").to_string();
    let mut c = cfg(&broker);
    c.connect_timeout = Duration::from_millis(300);
    let err = Handset::connect(c).await.expect_err("silent broker");
    assert!(matches!(err, SimError::ConnectTimeout { .. }), "{err:?}");
    drop(listener);
}

#[tokio::test]
async fn a_fleet_that_cannot_connect_says_how_many_failed() {
    let broker = refusing_broker(4).await;
    let units = (0..3)
        .map(|i| (UnitId::new(format!("f{i}")).expect("valid"), "x".to_owned()))
        .collect();
    let err = Fleet::start(FleetConfig::new(broker, Topics::default(), units))
        .await
        .expect_err("refused");
    assert!(
        matches!(
            err,
            SimError::FleetConnect {
                failed: 3,
                total: 3,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("3 of 3 handsets could not connect"),
        "{err}"
    );
}

#[tokio::test]
async fn a_bad_fleet_config_lists_every_problem() {
    let u = UnitId::new("dup").expect("valid");
    let mut cfg = FleetConfig::new(
        "127.0.0.1:1",
        Topics::default(),
        vec![(u.clone(), "a".into()), (u, "b".into())],
    );
    cfg.fix_interval = Duration::ZERO;
    let err = Fleet::start(cfg).await.expect_err("bad config");
    let text = err.to_string();
    assert!(
        text.contains("fix_interval") && text.contains("listed twice"),
        "{text}"
    );
}
