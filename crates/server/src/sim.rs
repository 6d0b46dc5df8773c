//! `fieldlink sim`: simulated responders against a running fieldlink.
//!
//! The units (`{prefix}000`, `{prefix}001`, ...) are registered through the HTTP API with an
//! admin token: `POST /api/v1/units` answers with the new unit's secret; a unit that already
//! exists (an earlier run) gets a new secret with `POST /api/v1/units/{id}/rotate-secret`, since
//! secrets are only stored hashed. Each unit is registered with the type its simulated kind has
//! (on foot, e-bike, car), because the server's jump filter uses the type's speed; a third of
//! them get the `first_aid` skill, so medical incidents find someone. Then the crew
//! ([`fieldlink_sim::Crew`]) connects over MQTT and runs in real time, and the terminal shows
//! progress in words every few seconds until Ctrl-C. With `--orders ws` each unit also opens a
//! session on the server's `/ws/handset` (the same `--server`) and takes its work orders and
//! sends its receipts there; positions and the rest stay on MQTT.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use fieldlink_proto::UnitId;
use fieldlink_sim::{
    Behaviour, Crew, CrewConfig, CrewStats, CrewStatsHandle, OrderChannel, UnitKind, kind_for,
};
use serde_json::{Value, json};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::Config;
use crate::cli::{OrdersOver, SimArgs};

/// Registrations in flight at once.
const REGISTER_CONCURRENCY: usize = 8;

/// Runs `fieldlink sim` until `stop` is cancelled.
pub async fn run(config: &Config, args: SimArgs, stop: CancellationToken) -> Result<()> {
    let topics = config.mqtt.topics()?;
    let ids = unit_ids(&args.prefix, args.units)?;
    let kinds: Vec<UnitKind> = (0..ids.len()).map(|i| kind_for(args.seed, i)).collect();
    println!(
        "Registering {} simulated responders with {} ...",
        ids.len(),
        args.server
    );
    let units = register(&args, &ids, &kinds).await?;
    println!("Connecting them to the MQTT broker at {} ...", args.broker);
    let mut cfg = CrewConfig::new(args.broker.clone(), topics, units);
    cfg.seed = args.seed;
    cfg.kinds = Some(kinds);
    cfg.fix_interval = args.rate;
    cfg.sealed = !args.plain;
    if let Some(bbox) = args.bbox {
        cfg.bbox = bbox;
    }
    if args.orders_only {
        cfg.behaviour = Behaviour::orders_only();
    }
    if args.orders == OrdersOver::Ws {
        cfg.orders = OrderChannel::websocket(args.server.clone());
        println!(
            "Their work orders come over WebSocket, from {}/ws/handset.",
            args.server.trim_end_matches('/')
        );
    }
    let crew = Crew::connect(cfg)
        .await
        .context("the simulated responders could not connect (is --broker the address of fieldlink's MQTT port, and --server its HTTP address?)")?;
    let stats = crew.stats_handle();
    println!(
        "{} responders on duty. Progress every {}; press Ctrl-C to stop.",
        ids.len(),
        seconds(args.progress_every)
    );
    let progress = tokio::spawn(print_progress(
        stats.clone(),
        args.progress_every,
        stop.clone(),
    ));
    let last = crew.run(args.rate, stop).await?;
    progress.abort();
    println!("Stopped. {}", summary(&last, None));
    Ok(())
}

/// `{prefix}000` ... as unit ids.
pub fn unit_ids(prefix: &str, n: usize) -> Result<Vec<UnitId>> {
    let width = n.saturating_sub(1).to_string().len().max(3);
    (0..n)
        .map(|i| {
            UnitId::new(format!("{prefix}{i:0width$}"))
                .with_context(|| format!("the prefix {prefix:?} does not make valid unit ids"))
        })
        .collect()
}

/// Whether the `i`-th simulated unit has the `first_aid` skill (a third of them).
pub fn has_first_aid(i: usize) -> bool {
    i.is_multiple_of(3)
}

/// Registers every unit through the API; returns ids and secrets in `ids` order.
async fn register(
    args: &SimArgs,
    ids: &[UnitId],
    kinds: &[UnitKind],
) -> Result<Vec<(UnitId, String)>> {
    let base = args.server.trim_end_matches('/').to_owned();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let mut secrets: Vec<Option<String>> = vec![None; ids.len()];
    let mut joins = JoinSet::new();
    let mut next = 0;
    let mut renewed = 0;
    loop {
        while joins.len() < REGISTER_CONCURRENCY && next < ids.len() {
            let (client, base, token) = (client.clone(), base.clone(), args.token.clone());
            let (id, kind, i) = (ids[next].to_string(), kinds[next], next);
            joins.spawn(async move {
                (
                    i,
                    register_one(&client, &base, &token, &id, kind, has_first_aid(i)).await,
                )
            });
            next += 1;
        }
        let Some(joined) = joins.join_next().await else {
            break;
        };
        let (i, result) = joined?;
        let (secret, existed) = result?;
        renewed += usize::from(existed);
        secrets[i] = Some(secret);
    }
    if renewed > 0 {
        println!("{renewed} of them already existed: their secrets were renewed.");
    }
    Ok(ids
        .iter()
        .cloned()
        .zip(secrets.into_iter().map(Option::unwrap_or_default))
        .collect())
}

/// Creates one unit, or renews its secret when it exists; returns the secret and whether it
/// existed.
async fn register_one(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    id: &str,
    kind: UnitKind,
    first_aid: bool,
) -> Result<(String, bool)> {
    let skills: Vec<&str> = if first_aid { vec!["first_aid"] } else { vec![] };
    let body = json!({ "id": id, "name": format!("Simulated {id}"), "type": kind.api_type(), "skills": skills });
    let url = format!("{base}/api/v1/units");
    let resp = client
        .post(&url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .with_context(|| format!("cannot reach fieldlink at {base} (is --server right?)"))?;
    let (status, answer) = answer(resp).await;
    let existed = match status {
        201 => false,
        409 => true,
        401 | 403 => bail!(
            "fieldlink refused the token ({status}): --token must be an admin API token (fieldlink tokens add NAME --role admin)"
        ),
        _ => bail!("registering unit {id} failed: {status} {answer}"),
    };
    let answer = if existed {
        let url = format!("{base}/api/v1/units/{id}/rotate-secret");
        let resp = client.post(&url).bearer_auth(token).send().await?;
        let (status, answer) = self::answer(resp).await;
        if status != 200 {
            bail!("renewing the secret of unit {id} failed: {status} {answer}");
        }
        answer
    } else {
        answer
    };
    let secret = answer["secret"]
        .as_str()
        .with_context(|| format!("fieldlink's answer for unit {id} has no secret: {answer}"))?;
    Ok((secret.to_owned(), existed))
}

async fn answer(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Prints a progress line every `every` until `stop`.
async fn print_progress(stats: CrewStatsHandle, every: Duration, stop: CancellationToken) {
    let mut ticker = tokio::time::interval(every.max(Duration::from_secs(1)));
    ticker.tick().await;
    let mut before = (Instant::now(), stats.snapshot());
    while stop.run_until_cancelled(ticker.tick()).await.is_some() {
        let now = (Instant::now(), stats.snapshot());
        let secs = now.0.duration_since(before.0).as_secs_f64().max(0.001);
        let rate = (now.1.fixes_sent - before.1.fixes_sent) as f64 / secs;
        println!("{}", summary(&now.1, Some(rate)));
        before = now;
    }
}

/// One line in words.
pub fn summary(s: &CrewStats, fixes_per_s: Option<f64>) -> String {
    let rate = fixes_per_s.map_or(String::new(), |r| format!(", {r:.0} fixes/s"));
    format!(
        "{}/{} responders connected ({} out of coverage){rate}; orders: {} received, {} accepted, {} declined, {} busy, {} unanswered, {} arrived, {} resolved, {} withdrawn",
        s.connected,
        s.units,
        s.offline,
        s.orders_received,
        s.accepted,
        s.rejected,
        s.busy,
        s.ignored,
        s.arrived,
        s.resolved,
        s.withdrawn,
    )
}

/// `15 s`, `2 min`, `1 min 30 s`.
pub fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64().round() as u64;
    match (s / 60, s % 60) {
        (0, s) => format!("{s} s"),
        (m, 0) => format!("{m} min"),
        (m, s) => format!("{m} min {s} s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_ids_are_numbered_with_enough_digits() {
        let ids = unit_ids("sim", 3).expect("ids");
        assert_eq!(ids[2].as_str(), "sim002");
        let ids = unit_ids("x", 1500).expect("ids");
        assert_eq!(ids[1499].as_str(), "x1499");
        assert!(unit_ids("bad prefix/", 1).is_err());
    }

    #[test]
    fn orders_come_over_mqtt_unless_asked_for_websocket() {
        use clap::Parser as _;

        use crate::cli::{Cli, Command};
        let orders = |extra: &[&str]| {
            let args = ["fieldlink", "sim", "--token", "t"].iter().chain(extra);
            match Cli::try_parse_from(args).expect("parses").command {
                Some(Command::Sim(sim)) => sim.orders,
                other => panic!("not sim: {other:?}"),
            }
        };
        assert_eq!(orders(&[]), OrdersOver::Mqtt);
        assert_eq!(orders(&["--orders", "ws"]), OrdersOver::Ws);
        assert!(
            Cli::try_parse_from(["fieldlink", "sim", "--token", "t", "--orders", "sms"]).is_err()
        );
    }

    #[test]
    fn durations_are_said_in_words() {
        assert_eq!(seconds(Duration::from_secs(15)), "15 s");
        assert_eq!(seconds(Duration::from_secs(120)), "2 min");
        assert_eq!(seconds(Duration::from_secs(90)), "1 min 30 s");
    }
}
