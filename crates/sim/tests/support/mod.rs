//! Helpers for the tests against a real broker: reachability, topic roots, an observer client.

#![allow(dead_code)] // each test file uses a different part

use std::future::Future;
use std::time::Duration;

use fieldlink_proto::Topics;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, Publish, QoS};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout};

/// The machine's Mosquitto (anonymous allowed, passwords ignored).
pub const MOSQUITTO: &str = "127.0.0.1:1883";

/// True when Mosquitto answers. With `CI=true` an absent broker fails the test loudly;
/// otherwise the test prints why it is skipped and the caller returns.
pub async fn mosquitto_or_skip() -> bool {
    let up = matches!(
        timeout(
            Duration::from_secs(2),
            tokio::net::TcpStream::connect(MOSQUITTO)
        )
        .await,
        Ok(Ok(_))
    );
    if !up {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("Mosquitto is not reachable at {MOSQUITTO}, and CI=true requires it");
        }
        eprintln!("SKIPPED (Mosquitto not reachable at {MOSQUITTO})");
    }
    up
}

/// A topic grammar under a root no other test uses.
pub fn unique_topics() -> Topics {
    let r: u64 = rand::random();
    Topics::new(&format!("t{r:016x}/fl/v1"), &format!("t{r:016x}/owntracks")).expect("valid root")
}

/// Polls `check` every 20 ms until it is true or `within` has passed; returns the last answer.
pub async fn eventually<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A plain rumqttc client that records what arrives on its filters.
pub struct Observer {
    pub client: AsyncClient,
    rx: mpsc::UnboundedReceiver<Publish>,
    task: JoinHandle<()>,
}

impl Observer {
    /// Connects and subscribes to `filters` at QoS 1; returns once every SUBACK (or, with no
    /// filters, the CONNACK) is in.
    pub async fn start(filters: &[String]) -> Observer {
        let id = format!("observer-{:016x}", rand::random::<u64>());
        let mut options = MqttOptions::new(id, "127.0.0.1", 1883);
        options.set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut eventloop) = AsyncClient::new(options, 1024);
        for f in filters {
            client
                .subscribe(f.clone(), QoS::AtLeastOnce)
                .await
                .expect("queue subscribe");
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let (subscribed_tx, subscribed_rx) = tokio::sync::oneshot::channel();
        let want = filters.len();
        let task = tokio::spawn(async move {
            let (mut subacks, mut subscribed_tx) = (0, Some(subscribed_tx));
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) if want == 0 => {
                        if let Some(s) = subscribed_tx.take() {
                            let _ = s.send(());
                        }
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        subacks += 1;
                        if subacks == want
                            && let Some(s) = subscribed_tx.take()
                        {
                            let _ = s.send(());
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let _ = tx.send(p);
                    }
                    Ok(_) => {}
                    Err(e) => {
                        eprintln!("observer lost the broker: {e}");
                        break;
                    }
                }
            }
        });
        timeout(Duration::from_secs(10), subscribed_rx)
            .await
            .expect("observer subscribed within 10 s")
            .expect("observer task alive");
        Observer { client, rx, task }
    }

    /// The next publish on exactly `topic` within `within` (others are skipped).
    pub async fn next_on(&mut self, topic: &str, within: Duration) -> Option<Publish> {
        let deadline = Instant::now() + within;
        loop {
            let p = timeout(
                deadline.saturating_duration_since(Instant::now()),
                self.rx.recv(),
            )
            .await
            .ok()??;
            if p.topic == topic {
                return Some(p);
            }
        }
    }

    /// Feeds every publish to `seen` until it returns true or `within` has passed.
    pub async fn until(
        &mut self,
        within: Duration,
        mut seen: impl FnMut(&Publish) -> bool,
    ) -> bool {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match timeout(left, self.rx.recv()).await {
                Ok(Some(p)) if seen(&p) => return true,
                Ok(Some(_)) => {}
                _ => return false,
            }
        }
    }
}

impl Drop for Observer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
