//! Who may connect to the embedded broker, tried with a real MQTT client: a client id or
//! username that is empty or carries `+`, `#`, `/` or a control character is refused at CONNECT
//! and counted in `fieldlink_mqtt_connect_refused_total{reason="bad_identity"}`, even with the
//! right secret; a wrong secret is counted as `bad_credentials`; the unit's own login still works.

use std::time::Duration;

use fieldlink_e2e::{Options, TestServer, eventually, fix, now_ms};
use rumqttc::{AsyncClient, ConnectReturnCode, Event, MqttOptions, Packet};

const WAIT: Duration = Duration::from_secs(10);

/// Connects with this client id and login; true when the broker accepts (CONNACK Success).
async fn connects(broker: &str, client_id: &str, username: &str, password: &str) -> bool {
    let (host, port) = broker.split_once(':').expect("host:port");
    let mut options = MqttOptions::new(client_id, host, port.parse().expect("port"));
    options
        .set_keep_alive(Duration::from_secs(30))
        .set_credentials(username, password);
    let (_client, mut eventloop) = AsyncClient::new(options, 4);
    let outcome = tokio::time::timeout(WAIT, async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    return ack.code == ConnectReturnCode::Success;
                }
                Ok(_) => {}
                // fieldlink answers a refused login with its CONNACK code, which rumqttc
                // reports as an error (ConnectionRefused).
                Err(_) => return false,
            }
        }
    })
    .await;
    outcome.expect("the broker answers or closes in time")
}

#[tokio::test]
async fn identities_with_wildcards_separators_or_control_characters_are_refused_at_connect() {
    let srv = TestServer::start(Options {
        units: 1,
        ..Default::default()
    })
    .await;
    let secret = srv.units[0].secret.clone();
    let refused = "fieldlink_mqtt_connect_refused_total{reason=\"bad_identity\"}";
    let bad_credentials = "fieldlink_mqtt_connect_refused_total{reason=\"bad_credentials\"}";
    assert_eq!(srv.metric(refused).await, 0.0);

    // The unit's own login works (the broker is up and the secret is right).
    assert!(connects(&srv.broker, "u000", "u000", &secret).await);

    let bad = [
        ("u000", "u0+0"),
        ("u0+0", "u0+0"),
        ("u000", "#"),
        ("u#", "u#"),
        ("u000/gps", "u000"),
        ("u000", "u000/down"),
        ("u000\n", "u000\n"),
        ("u000", "u000\u{1b}[2J"),
        ("u000\u{7f}", "u000"),
    ];
    for (client_id, username) in bad {
        assert!(
            !connects(&srv.broker, client_id, username, &secret).await,
            "{client_id:?} / {username:?} must be refused"
        );
    }
    let expected = bad.len() as f64;
    eventually(WAIT, "every bad identity counted", || async {
        (srv.metric(refused).await == expected).then_some(())
    })
    .await;

    // A wrong secret is a different reason.
    assert!(!connects(&srv.broker, "u000", "u000", "not-the-secret-at-all").await);
    assert_eq!(srv.metric(bad_credentials).await, 1.0);
    assert_eq!(srv.metric(refused).await, expected);

    // And the unit still gets its fixes through.
    let handset = srv.handset(0).await;
    handset
        .publish_fix_qos1(fix(30.2741, 120.1551, now_ms()))
        .await
        .expect("published");
    eventually(WAIT, "u000's fix", || async {
        (srv.unit("u000").await["lat"].as_f64() == Some(30.2741)).then_some(())
    })
    .await;
    srv.stop().await;
}
