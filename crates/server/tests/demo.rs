//! `fieldlink demo` as a newcomer runs it (briefly, with incidents every second and quick
//! answers): a real process with its own server, simulated responders over real MQTT, and the
//! story on its terminal. Then `fieldlink sim` against that running demo, through its HTTP API
//! and broker. And the story as an operator reads it: alarms and field reports by incident
//! number, and the closing summary after Ctrl-C.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn fieldlink() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fieldlink"));
    cmd.env_remove("RUST_LOG")
        .env_remove("FIELDLINK_CONFIG")
        .env_remove("FL_ADMIN_TOKEN");
    cmd
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Every stdout line of `child`, as it comes, on a channel.
fn lines(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Reads lines until one satisfies `pick`; every line read is appended to `seen`.
fn wait_for<T>(
    rx: &mpsc::Receiver<String>,
    seen: &mut Vec<String>,
    within: Duration,
    what: &str,
    mut pick: impl FnMut(&str) -> Option<T>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx.recv_timeout(left).unwrap_or_else(|_| {
            panic!(
                "no {what} within {within:?}; output so far:\n{}",
                seen.join("\n")
            )
        });
        seen.push(line.clone());
        if let Some(v) = pick(&line) {
            return v;
        }
    }
}

#[test]
fn the_demo_dispatches_incidents_that_responders_accept_and_sim_joins_it() {
    let data = tempfile::tempdir().expect("dir");
    let mqtt = free_port();
    let mut demo = fieldlink()
        .args([
            "demo",
            "--units",
            "40",
            "--duration",
            "25s",
            "--incident-every",
            "1s",
        ])
        .args([
            "--accept-delay",
            "1s-3s",
            "--sla-every",
            "5s",
            "--seed",
            "7",
        ])
        .args([
            "--http",
            "127.0.0.1:0",
            "--mqtt",
            &format!("127.0.0.1:{mqtt}"),
        ])
        .arg("--data")
        .arg(data.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the demo starts");
    let rx = lines(&mut demo);
    let mut seen = Vec::new();
    let (http, token) = wait_for(&rx, &mut seen, Duration::from_secs(30), "API line", |l| {
        let rest = l.trim().strip_prefix("API:")?.trim();
        let (addr, token) = rest.split_once("admin token:")?;
        Some((addr.trim().to_owned(), token.trim().to_owned()))
    });
    assert!(http.starts_with("http://127.0.0.1:"), "{http}");

    // `fieldlink sim` joins the running demo with five responders of its own.
    let mut sim = fieldlink()
        .args([
            "sim",
            "--server",
            &http,
            "--broker",
            &format!("127.0.0.1:{mqtt}"),
        ])
        .args([
            "--units",
            "5",
            "--prefix",
            "ext",
            "--progress-every",
            "1s",
            "--orders-only",
        ])
        .env("FL_ADMIN_TOKEN", &token)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sim starts");
    let sim_rx = lines(&mut sim);
    let mut sim_seen = Vec::new();
    wait_for(
        &sim_rx,
        &mut sim_seen,
        Duration::from_secs(20),
        "sim progress",
        |l| l.starts_with("5/5 responders connected").then_some(()),
    );
    let status = Command::new("kill")
        .args(["-INT", &sim.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    wait_for(
        &sim_rx,
        &mut sim_seen,
        Duration::from_secs(10),
        "sim stop",
        |l| l.starts_with("Stopped.").then_some(()),
    );
    assert!(
        sim.wait().expect("sim ends").success(),
        "{}",
        sim_seen.join("\n")
    );

    // A second run of sim renews the secrets of the units it registered before.
    let again = fieldlink()
        .args([
            "sim",
            "--server",
            &http,
            "--broker",
            &format!("127.0.0.1:{mqtt}"),
        ])
        .args([
            "--units",
            "5",
            "--prefix",
            "ext",
            "--token",
            &token,
            "--orders-only",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sim starts again");
    let mut again = again;
    let again_rx = lines(&mut again);
    let mut again_seen = Vec::new();
    wait_for(
        &again_rx,
        &mut again_seen,
        Duration::from_secs(20),
        "renewed secrets",
        |l| l.contains("5 of them already existed").then_some(()),
    );
    wait_for(
        &again_rx,
        &mut again_seen,
        Duration::from_secs(20),
        "on duty",
        |l| l.starts_with("5 responders on duty").then_some(()),
    );
    let _ = Command::new("kill")
        .args(["-INT", &again.id().to_string()])
        .status();
    assert!(again.wait().expect("sim ends").success());

    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = demo.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the demo did not stop after --duration"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    seen.extend(rx.iter());
    let out = seen.join("\n");
    let mut err = String::new();
    if let Some(mut e) = demo.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    assert!(status.success(), "{out}\n{err}");
    for expected in [
        "Incident #1: ",
        "dispatched to sim",
        " accepted incident #",
        "SLA so far: ",
        "Stopping the demo",
    ] {
        assert!(
            out.contains(expected),
            "{expected:?} missing in:\n{out}\n{err}"
        );
    }
    // Acceptances were quick, so the SLA figures count some within the target.
    let last_sla = (out.lines().rev())
        .find(|l| l.contains("SLA so far: "))
        .expect("an SLA line");
    assert!(!last_sla.contains(" 0 accepted"), "{last_sla}");
}

/// A narrative line without its `[mm:ss] ` time.
fn told(line: &str) -> Option<&str> {
    let rest = line.strip_prefix('[')?;
    Some(rest.split_once("] ")?.1)
}

/// The number after the first `#` in `text`.
fn number_after_hash(text: &str) -> Option<usize> {
    let rest = &text[text.find('#')? + 1..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// A row of the summary's targets table: (what, met, of).
fn target_row(line: &str) -> (String, usize, usize) {
    let mut cells: Vec<&str> = line.split_whitespace().collect();
    if cells.last() == Some(&"%") {
        cells.pop();
    }
    let n = cells.len();
    assert!(n >= 4, "not a target row: {line:?}");
    let parse = |s: &str| s.parse::<usize>().unwrap_or_else(|_| panic!("{line:?}"));
    (
        cells[..n - 3].join(" "),
        parse(cells[n - 3]),
        parse(cells[n - 2]),
    )
}

#[test]
fn the_demo_tells_alarms_and_field_reports_by_number_and_ends_with_a_summary() {
    let data = tempfile::tempdir().expect("dir");
    let mut demo = fieldlink()
        .args(["demo", "--units", "20", "--duration", "50s"])
        .args(["--incident-every", "1s", "--accept-delay", "1s-3s"])
        .args(["--sla-every", "10s", "--seed", "3"])
        .args(["--http", "127.0.0.1:0"])
        .args(["--mqtt", &format!("127.0.0.1:{}", free_port())])
        .arg("--data")
        .arg(data.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the demo starts");
    let rx = lines(&mut demo);
    let mut seen = Vec::new();

    // Read as an operator would: every incident is introduced by number before anything else
    // is said about it; an alarm names one of them; a field report is numbered, has a
    // position and is dispatched by the demo.
    let mut introduced = std::collections::BTreeSet::new();
    let mut alarm_seen = false;
    let mut field_report = None;
    let mut followed_up = false;
    wait_for(
        &rx,
        &mut seen,
        Duration::from_secs(60),
        "an alarm by incident number and a field report followed up",
        |line| {
            let text = told(line)?;
            for internal in ["inc_", "al_", "wo_"] {
                assert!(!text.contains(internal), "an internal id in {line:?}");
            }
            if let Some(rest) = text.strip_prefix("Incident #") {
                let n = number_after_hash(text)?;
                if introduced.insert(n) {
                    assert!(
                        !rest.contains("dispatched"),
                        "told before introduced: {line}"
                    );
                }
                if text.contains(", reported from the field by sim") {
                    // `Incident #5: traffic at 30.2512, 120.1634, normal priority, reported from the field ...`
                    let at = rest
                        .split_once(" at ")
                        .map(|(_, at)| at)
                        .unwrap_or_default();
                    let mut coords = at.split(", ").take(2).map(str::parse::<f64>);
                    assert!(
                        matches!((coords.next(), coords.next()), (Some(Ok(_)), Some(Ok(_)))),
                        "a field report without a position: {line}"
                    );
                    field_report.get_or_insert(n);
                }
                let dispatched =
                    rest.contains(" dispatched to sim") || rest.contains(" sent on to sim");
                followed_up |= dispatched && field_report == Some(n);
            }
            if let Some(rest) = text.strip_prefix("Alarm: ") {
                let n = number_after_hash(rest).unwrap_or_else(|| panic!("no number: {line}"));
                assert!(
                    introduced.contains(&n),
                    "an alarm for an unknown #{n}: {line}"
                );
                alarm_seen = true;
                // Dispatched with no one free: the alarm says it waits in the queue.
                followed_up |= field_report == Some(n) && rest.ends_with("waits in the queue.");
            }
            (alarm_seen && followed_up).then_some(())
        },
    );

    // Ctrl-C ends it with the summary.
    let status = Command::new("kill")
        .args(["-INT", &demo.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = demo.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "the demo did not stop on Ctrl-C");
        std::thread::sleep(Duration::from_millis(100));
    };
    seen.extend(rx.iter());
    let out = seen.join("\n");
    let mut err = String::new();
    if let Some(mut e) = demo.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    assert!(status.success(), "{out}\n{err}");

    let incidents = (seen.iter().filter_map(|l| told(l)))
        .filter(|t| t.starts_with("Incident #"))
        .filter_map(number_after_hash)
        .max()
        .expect("incidents told");
    let orders_told = (seen.iter().filter_map(|l| told(l)))
        .filter(|t| {
            t.contains(" dispatched to ")
                || t.contains(" sent on to ")
                || t.contains(": reinforcement sent to ")
        })
        .count();
    let start = (seen.iter())
        .position(|l| l.starts_with("Summary of the demo ("))
        .unwrap_or_else(|| panic!("no summary in:\n{out}"));
    let summary = &seen[start..];
    let text = summary.join("\n");
    assert_eq!(
        summary[1].split_whitespace().collect::<Vec<_>>(),
        ["target", "met", "of", "share"],
        "{text}"
    );
    let rows: Vec<_> = summary[2..5].iter().map(|l| target_row(l)).collect();
    assert_eq!(rows[0].0, "accepted within 1 minute", "{text}");
    assert_eq!(rows[1].0, "on scene within 3 minutes", "{text}");
    assert_eq!(rows[2].0, "reinforcements within 5 minutes", "{text}");
    for (what, met, of) in &rows {
        assert!(met <= of, "{what}: {met} of {of}\n{text}");
    }
    assert_eq!(
        rows[0].2, incidents,
        "every incident told is counted\n{text}"
    );
    assert!(
        rows[0].1 > 0,
        "quick answers meet the 1-minute target\n{text}"
    );
    assert_eq!(summary[5], format!("{incidents} incidents."), "{text}");

    let header = &summary[7];
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>().join(" "),
        "responder orders accepted declined unanswered on scene reinforcing accept s on scene s",
        "{text}"
    );
    let responders = &summary[8..];
    assert!(
        summary[6].starts_with(&format!("{} responder", responders.len())),
        "{text}"
    );
    let mut orders = 0;
    for row in responders {
        assert_eq!(row.len(), header.len(), "columns not aligned:\n{text}");
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cells.len(), 9, "{row}");
        assert!(cells[0].starts_with("sim"), "{row}");
        let n = |i: usize| {
            cells[i]
                .parse::<usize>()
                .unwrap_or_else(|_| panic!("{row}"))
        };
        assert!(
            n(1) >= n(2) + n(3) + n(4),
            "more answers than orders: {row}"
        );
        orders += n(1);
    }
    assert_eq!(
        orders, orders_told,
        "every order told is in the table\n{out}"
    );
}
