//! Two questions about hops, one embedded broker, the same publisher load, rounds rotating
//! which mode goes first:
//!
//! - Issue 2: "with the embedded broker, consume through its in-process link rather than a
//!   second TCP hop (measure both)": A against B.
//! - Issue 8: what fieldlink's own listener in front of rumqttd (`broker/front.rs`: caps per
//!   address, the CONNECT checked and refusals logged with the address, then the connection
//!   handed to rumqttd through `rumqttd::Acceptor`) costs per message: A against C.
//!
//! - (A) **link**: one rumqttc publisher over TCP, through fieldlink's listener as a handset
//!   connects, sends `N` QoS 0 messages on `fl/v1/u/u1/gps`; counted as they come out of
//!   `Source.uplink` (rumqttd's in-process link).
//! - (B) **tcp**: the same load, counted at a rumqttc subscriber over TCP on `fl/v1/u/+/+`.
//!   `Source.uplink` is still drained in the background (the link stays subscribed: the broker
//!   cannot be started without it), so in (B) the router delivers every message twice.
//! - (C) **direct**: as (A), but the publisher connects straight to rumqttd's own listener on
//!   its loopback port, skipping fieldlink's (what handsets did before issue 8).
//!
//! One fast publisher lets the listener copy many messages per read, which flatters it. So a
//! second table has the shape of the real load: `FLEET` handsets each sending one message every
//! `FLEET_PERIOD` (10,000 messages a second in all) for `FLEET_SECS`, through fieldlink's
//! listener (A) or straight to rumqttd (C), alternating; CPU per message over the window, which
//! includes the simulated handsets' own cost (the same in both).
//!
//! Rates are `N / (first publish .. last arrival)`. CPU is the whole process's (broker,
//! clients, link) utime + stime from `/proc/self/stat` over the same window, per message.
//! Run with `cargo bench -p fieldlink-ingest --bench hop`; it prints a table, no criterion.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fieldlink_ingest::{Authenticator, EmbeddedBroker, EmbeddedBrokerConfig, IngestMetrics};
use fieldlink_proto::Topics;
use prometheus_client::registry::Registry;
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Messages per measurement.
const N: u64 = 200_000;
/// Messages in the unreported warm-up of each mode.
const WARMUP: u64 = 20_000;
/// Measured rounds per mode, rotating which goes first.
const ROUNDS: usize = 6;
const PAYLOAD_BYTES: usize = 60;
const TOPIC: &str = "fl/v1/u/u1/gps";
const FILTER: &str = "fl/v1/u/+/+";
/// Longest a measurement may take before it is reported as incomplete.
const TIMEOUT: Duration = Duration::from_secs(15);
/// Request channel of each rumqttc client.
const CLIENT_CAPACITY: usize = 10_000;
/// Handsets in the fleet table, each its own rumqttc client and connection.
const FLEET: usize = 2000;
/// Time between two messages of one fleet handset.
const FLEET_PERIOD: Duration = Duration::from_millis(200);
/// Measurement window of one fleet round.
const FLEET_SECS: u64 = 10;
/// Fleet rounds per mode.
const FLEET_ROUNDS: usize = 3;
/// Linux's USER_HZ (the unit of utime/stime in /proc), fixed at 100 on x86 and arm.
const TICKS_PER_SEC: f64 = 100.0;

#[derive(Debug)]
struct AcceptAll;

impl Authenticator for AcceptAll {
    fn authenticate(&self, _client_id: &str, _username: &str, _password: &str) -> bool {
        true
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Link,
    Tcp,
    Direct,
}

const MODES: [Mode; 3] = [Mode::Link, Mode::Tcp, Mode::Direct];

#[derive(Debug, Clone, Copy)]
struct Sample {
    arrived: u64,
    /// Messages per second at the consumer.
    rate: f64,
    /// Messages per second the publisher handed to its client (upper bound on the load).
    pub_rate: f64,
    /// Process CPU microseconds per message.
    cpu_us: f64,
}

/// What the background drain of `Source.uplink` has seen.
#[derive(Debug, Default)]
struct LinkCount {
    count: AtomicU64,
    /// Notify `reached` when `count` gets here.
    target: AtomicU64,
    reached: Notify,
}

fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at field 3 (state);
    // utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| fields.get(i - 3).and_then(|f| f.parse::<u64>().ok());
    field(14).unwrap_or(0) + field(15).unwrap_or(0)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "?".to_owned())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

fn options(id: &str, port: u16) -> MqttOptions {
    let mut o = MqttOptions::new(id, "127.0.0.1", port);
    // rumqttc's default is 10 KiB each way and 100 in flight; neither may limit the run.
    o.set_max_packet_size(1 << 20, 1 << 20);
    o.set_inflight(u16::MAX);
    o.set_keep_alive(Duration::from_secs(60));
    o.set_clean_session(true);
    // rumqttd refuses a CONNECT without credentials once an auth handler is set.
    o.set_credentials(id, "bench");
    o
}

/// Connects and waits for the CONNACK.
async fn connect(id: &str, port: u16) -> (AsyncClient, EventLoop) {
    let (client, mut eventloop) = AsyncClient::new(options(id, port), CLIENT_CAPACITY);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => return (client, eventloop),
            Ok(_) => {}
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("{id} could not connect: {e}"),
        }
    }
}

/// Polls the publisher's event loop until the connection ends.
fn drive(mut eventloop: EventLoop) -> JoinHandle<()> {
    tokio::spawn(async move { while eventloop.poll().await.is_ok() {} })
}

/// Publishes `n` messages; returns when the last one is in the client's queue.
fn publish(client: AsyncClient, n: u64) -> JoinHandle<Instant> {
    tokio::spawn(async move {
        let payload = Bytes::from(vec![b'g'; PAYLOAD_BYTES]);
        for _ in 0..n {
            client
                .publish_bytes(TOPIC, QoS::AtMostOnce, false, payload.clone())
                .await
                .expect("publisher queue open");
        }
        Instant::now()
    })
}

/// One measurement of `n` messages in `mode`: `port` is fieldlink's listener, `direct`
/// rumqttd's own.
async fn measure(
    mode: Mode,
    n: u64,
    (port, direct): (u16, u16),
    link: &LinkCount,
    tag: &str,
) -> Sample {
    // (B) The subscriber is connected and subscribed (SUBACK seen) before anything is sent.
    let subscriber = if mode == Mode::Tcp {
        let (client, mut eventloop) = connect(&format!("bench-sub-{tag}"), port).await;
        client
            .subscribe(FILTER, QoS::AtMostOnce)
            .await
            .expect("subscribe");
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::SubAck(_))) => break,
                Ok(_) => {}
                Err(e) => panic!("subscriber lost before SUBACK: {e}"),
            }
        }
        let counter = tokio::spawn(async move {
            let mut arrived = 0u64;
            let mut last = None;
            let deadline = tokio::time::Instant::now() + TIMEOUT;
            while arrived < n {
                match tokio::time::timeout_at(deadline, eventloop.poll()).await {
                    Ok(Ok(Event::Incoming(Packet::Publish(p)))) => {
                        if p.topic == TOPIC {
                            arrived += 1;
                            last = Some(Instant::now());
                        }
                    }
                    Ok(Ok(_)) => {}
                    Ok(Err(_)) | Err(_) => break,
                }
            }
            (arrived, last)
        });
        Some((client, counter))
    } else {
        None
    };

    let publish_to = if mode == Mode::Direct { direct } else { port };
    let (publisher, eventloop) = connect(&format!("bench-pub-{tag}"), publish_to).await;
    let driver = drive(eventloop);
    let link_base = link.count.load(Ordering::Acquire);
    link.target.store(link_base + n, Ordering::Release);

    let cpu0 = cpu_ticks();
    let t0 = Instant::now();
    let published = publish(publisher.clone(), n);

    let (arrived, last) = match subscriber {
        Some((client, counter)) => {
            let (arrived, last) = counter.await.expect("subscriber task");
            let _ = client.disconnect().await;
            (arrived, last)
        }
        None => {
            let done = tokio::time::timeout(TIMEOUT, async {
                while link.count.load(Ordering::Acquire) < link_base + n {
                    link.reached.notified().await;
                }
            })
            .await;
            let at = Instant::now();
            let arrived = link.count.load(Ordering::Acquire) - link_base;
            (arrived.min(n), done.ok().map(|()| at))
        }
    };
    let end = last.unwrap_or_else(Instant::now);
    let cpu1 = cpu_ticks();
    let pub_done = published.await.expect("publisher task");

    // Let the link drain everything of this round (in B it gets every message too), so the
    // next round's count starts clean.
    let settle = Instant::now() + Duration::from_secs(10);
    while link.count.load(Ordering::Acquire) < link_base + n && Instant::now() < settle {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let _ = publisher.disconnect().await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    driver.abort();

    let secs = end.duration_since(t0).as_secs_f64();
    Sample {
        arrived,
        rate: arrived as f64 / secs,
        pub_rate: n as f64 / pub_done.duration_since(t0).as_secs_f64(),
        cpu_us: (cpu1 - cpu0) as f64 / TICKS_PER_SEC * 1e6 / arrived.max(1) as f64,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len().is_multiple_of(2) {
        (v[m - 1] + v[m]) / 2.0
    } else {
        v[m]
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run());
}

async fn run() {
    let port = free_port();
    let cfg = EmbeddedBrokerConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], port)),
        max_connections: 2 * FLEET + 16,
        // 100 MiB of commit log, so a consumer falling behind within a round is never skipped
        // ahead (a 200,000-message round is about 16 MiB). Other limits are fieldlink's defaults.
        max_segments: 100,
        ..EmbeddedBrokerConfig::default()
    };
    let mut registry = Registry::default();
    let metrics = IngestMetrics::register(&mut registry);
    let shutdown = CancellationToken::new();
    let (broker, source): (EmbeddedBroker, _) = EmbeddedBroker::start(
        &cfg,
        Arc::new(AcceptAll),
        // No downlinks here, so no seal keys.
        Arc::new(std::collections::HashSet::<fieldlink_proto::UnitId>::new()),
        &Topics::default(),
        &metrics,
        shutdown.clone(),
    )
    .expect("embedded broker starts");

    // The link is drained for the whole run, in both modes.
    let link = Arc::new(LinkCount::default());
    let mut uplink = source.uplink;
    {
        let link = Arc::clone(&link);
        tokio::spawn(async move {
            while let Some(m) = uplink.recv().await {
                if m.topic == TOPIC {
                    let now = link.count.fetch_add(1, Ordering::AcqRel) + 1;
                    if now == link.target.load(Ordering::Acquire) {
                        link.reached.notify_one();
                    }
                }
            }
        });
    }

    let until = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(("127.0.0.1", port)).is_err() && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let ports = (port, broker.upstream_addr().port());
    println!(
        "hop: {N} QoS 0 messages of {PAYLOAD_BYTES} B on {TOPIC} per measurement, one rumqttc \
         publisher over TCP, embedded rumqttd behind fieldlink's listener on 127.0.0.1:{port}"
    );
    println!("A = through fieldlink's listener, counted at the in-process link (Source.uplink)");
    println!(
        "B = through fieldlink's listener, counted at a rumqttc subscriber over TCP on {FILTER}"
    );
    println!("C = straight to rumqttd's loopback port, counted at the in-process link");
    println!(
        "cores: {}; loadavg at start: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        loadavg()
    );

    for mode in MODES {
        measure(mode, WARMUP, ports, &link, &format!("warm-{mode:?}")).await;
    }

    println!();
    println!(
        "{:>5} {:>6} {:>10} {:>10} {:>10} {:>6} {:>6} {:>9} {:>9} {:>9} {:>10} {:>10} {:>10}",
        "round",
        "first",
        "A msg/s",
        "B msg/s",
        "C msg/s",
        "A/B",
        "A/C",
        "A cpu us",
        "B cpu us",
        "C cpu us",
        "A pub/s",
        "B pub/s",
        "C pub/s"
    );
    // Per mode (in MODES order): rates, CPU per message, offered rates.
    let mut rate: [Vec<f64>; 3] = Default::default();
    let mut cpu: [Vec<f64>; 3] = Default::default();
    let mut offered: [Vec<f64>; 3] = Default::default();
    let (mut a_over_b, mut a_over_c) = (Vec::new(), Vec::new());
    let mut incomplete = Vec::new();
    for round in 0..ROUNDS {
        let mut order = MODES;
        order.rotate_left(round % MODES.len());
        let mut got = [None; 3];
        for mode in order {
            let tag = format!("{round}-{mode:?}");
            let s = measure(mode, N, ports, &link, &tag).await;
            if s.arrived < N {
                incomplete.push(format!(
                    "round {round} {mode:?}: {} of {N} arrived",
                    s.arrived
                ));
            }
            got[mode as usize] = Some(s);
        }
        let [a, b, c] = got.map(|s| s.expect("every mode measured"));
        println!(
            "{:>5} {:>6} {:>10.0} {:>10.0} {:>10.0} {:>6.2} {:>6.2} {:>9.2} {:>9.2} {:>9.2} {:>10.0} {:>10.0} {:>10.0}",
            round + 1,
            format!("{:?}", order[0]),
            a.rate,
            b.rate,
            c.rate,
            a.rate / b.rate,
            a.rate / c.rate,
            a.cpu_us,
            b.cpu_us,
            c.cpu_us,
            a.pub_rate,
            b.pub_rate,
            c.pub_rate
        );
        for (i, s) in [a, b, c].into_iter().enumerate() {
            rate[i].push(s.rate);
            cpu[i].push(s.cpu_us);
            offered[i].push(s.pub_rate);
        }
        a_over_b.push(a.rate / b.rate);
        a_over_c.push(a.rate / c.rate);
    }
    let [ra, rb, rc] = rate.map(median);
    let [ca, cb, cc] = cpu.map(median);
    let [oa, ob, oc] = offered.map(median);
    println!(
        "{:>5} {:>6} {:>10.0} {:>10.0} {:>10.0} {:>6.2} {:>6.2} {:>9.2} {:>9.2} {:>9.2} {:>10.0} {:>10.0} {:>10.0}",
        "med",
        "",
        ra,
        rb,
        rc,
        median(a_over_b),
        median(a_over_c),
        ca,
        cb,
        cc,
        oa,
        ob,
        oc
    );
    println!();
    if incomplete.is_empty() {
        println!("all {N} messages arrived in every measurement");
    } else {
        for line in incomplete {
            println!("INCOMPLETE {line}");
        }
    }
    fleet_table(ports, &link).await;
    println!("loadavg at end: {}", loadavg());
    println!(
        "A/B and A/C are medians of per-round ratios; cpu us = process utime+stime (10 ms ticks) per \
         message; pub msg/s = rate the publisher queued into its client (the offered load)"
    );
    shutdown.cancel();
}

/// The fleet table (see the module notes): per round, A then C or C then A.
async fn fleet_table((port, direct): (u16, u16), link: &LinkCount) {
    let per_s = FLEET as f64 / FLEET_PERIOD.as_secs_f64();
    println!();
    println!(
        "fleet: {FLEET} handsets, one {PAYLOAD_BYTES} B message each every {FLEET_PERIOD:?} \
         ({per_s:.0} msg/s), {FLEET_SECS} s per measurement"
    );
    println!(
        "{:>5} {:>6} {:>10} {:>10} {:>9} {:>9} {:>7} {:>7}",
        "round", "first", "A msg/s", "C msg/s", "A cpu us", "C cpu us", "A cpu%", "C cpu%"
    );
    let (mut a_cpu, mut c_cpu, mut a_pct, mut c_pct) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..FLEET_ROUNDS {
        let order = if round % 2 == 0 {
            [(Mode::Link, port), (Mode::Direct, direct)]
        } else {
            [(Mode::Direct, direct), (Mode::Link, port)]
        };
        let mut got = [(0.0, 0.0, 0.0); 2];
        for (mode, to) in order {
            let sample = fleet_round(to, link, &format!("{round}-{mode:?}")).await;
            got[usize::from(mode == Mode::Direct)] = sample;
        }
        let [(ar, ac, ap), (cr, cc, cp)] = got;
        println!(
            "{:>5} {:>6} {:>10.0} {:>10.0} {:>9.2} {:>9.2} {:>7.1} {:>7.1}",
            round + 1,
            format!("{:?}", order[0].0),
            ar,
            cr,
            ac,
            cc,
            ap,
            cp
        );
        a_cpu.push(ac);
        c_cpu.push(cc);
        a_pct.push(ap);
        c_pct.push(cp);
    }
    let (ac, cc) = (median(a_cpu), median(c_cpu));
    println!(
        "{:>5} {:>6} {:>10} {:>10} {:>9.2} {:>9.2} {:>7.1} {:>7.1}",
        "med",
        "",
        "",
        "",
        ac,
        cc,
        median(a_pct),
        median(c_pct)
    );
    println!(
        "fieldlink's listener: {:+.2} us of CPU per message (A - C), {:.2}x",
        ac - cc,
        ac / cc
    );
}

/// One fleet measurement through `port`: (messages/s at the link, CPU us per message, process
/// CPU % of one core).
async fn fleet_round(port: u16, link: &LinkCount, tag: &str) -> (f64, f64, f64) {
    let mut clients = Vec::with_capacity(FLEET);
    let mut drivers = Vec::with_capacity(FLEET);
    for i in 0..FLEET {
        let (client, eventloop) = connect(&format!("fleet-{tag}-{i}"), port).await;
        clients.push(client);
        drivers.push(drive(eventloop));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let base = link.count.load(Ordering::Acquire);
    let cpu0 = cpu_ticks();
    let t0 = Instant::now();
    let senders: Vec<JoinHandle<()>> = clients
        .iter()
        .enumerate()
        .map(|(i, client)| {
            let client = client.clone();
            tokio::spawn(async move {
                // Spread the handsets evenly over the period, as real ones are.
                let phase = FLEET_PERIOD.mul_f64(i as f64 / FLEET as f64);
                let start = tokio::time::Instant::now() + phase;
                let mut tick = tokio::time::interval_at(start, FLEET_PERIOD);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let payload = Bytes::from(vec![b'g'; PAYLOAD_BYTES]);
                let end = tokio::time::Instant::now() + Duration::from_secs(FLEET_SECS);
                loop {
                    tick.tick().await;
                    if tokio::time::Instant::now() >= end {
                        return;
                    }
                    let _ = client
                        .publish_bytes(TOPIC, QoS::AtMostOnce, false, payload.clone())
                        .await;
                }
            })
        })
        .collect();
    for sender in senders {
        let _ = sender.await;
    }
    let cpu1 = cpu_ticks();
    let secs = t0.elapsed().as_secs_f64();
    // What was sent in the window has arrived a moment later.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let arrived = link.count.load(Ordering::Acquire) - base;
    for client in &clients {
        let _ = client.disconnect().await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for driver in drivers {
        driver.abort();
    }
    let cpu_s = (cpu1 - cpu0) as f64 / TICKS_PER_SEC;
    (
        arrived as f64 / secs,
        cpu_s * 1e6 / arrived.max(1) as f64,
        cpu_s / secs * 100.0,
    )
}
