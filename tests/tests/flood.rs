//! A flooding handset is throttled and flagged while another's fixes keep flowing: the real
//! server on its embedded broker, two real MQTT handsets, the default limit (20 messages a
//! second per unit, bursts of 100).

use std::time::Duration;

use fieldlink_e2e::{Options, TestServer, eventually, fix, now_ms};

const WAIT: Duration = Duration::from_secs(20);
const THROTTLED: &str = "fieldlink_mqtt_rejected_total{reason=\"throttled\"}";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flooding_handset_is_throttled_and_another_keeps_flowing() {
    let srv = TestServer::start(Options {
        units: 2,
        ..Default::default()
    })
    .await;
    let (flood, calm) = (srv.handset(0).await, srv.handset(1).await);
    let limit = f64::from(srv.config.mqtt.max_messages_per_s);
    let burst = f64::from(srv.config.mqtt.message_burst);
    assert!(limit > 0.0, "the default config has a rate limit");

    // u000 sends 3,000 fixes as fast as its connection takes them (QoS 0, as handsets send
    // fixes); u001 sends one fix every 200 ms meanwhile, each acknowledged by the broker.
    let started = std::time::Instant::now();
    let flooder = tokio::spawn(async move {
        for i in 0..3000 {
            let f = fix(30.27, 120.15 + f64::from(i) * 1e-6, now_ms());
            flood.publish_fix(f).await.expect("the flood is published");
        }
        flood
    });
    let mut last = (0.0, 0.0);
    for i in 0..10 {
        let spot = (30.2741 + f64::from(i) * 2e-6, 120.1551); // walking pace
        calm.publish_fix_qos1(fix(spot.0, spot.1, now_ms()))
            .await
            .expect("the calm handset publishes");
        last = spot;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _flood = flooder.await.expect("flood task");

    // The calm unit's last fix is its position: the flood did not crowd it out.
    eventually(WAIT, "the calm unit's last fix shown", || async {
        let u = srv.unit("u001").await;
        (u["lat"].as_f64() == Some(last.0) && u["lon"].as_f64() == Some(last.1)).then_some(())
    })
    .await;
    // The flooder was throttled: most of its 3,000 were dropped and counted.
    let throttled = eventually(WAIT, "the flood counted as throttled", || async {
        let n = srv.metric(THROTTLED).await;
        (n > 0.0).then_some(n)
    })
    .await;
    let elapsed = started.elapsed().as_secs_f64() + 1.0;
    let allowed = burst + limit * elapsed;
    assert!(
        throttled >= 3000.0 - allowed,
        "{throttled} throttled; at most {allowed:.0} of 3,000 may pass in {elapsed:.1} s"
    );
    let accepted_gps = srv
        .metric("fieldlink_mqtt_messages_total{kind=\"gps\"}")
        .await;
    assert!(
        accepted_gps >= 10.0,
        "accepted gps messages: {accepted_gps}"
    );
    srv.stop().await;
}
