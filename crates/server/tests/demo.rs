//! `fieldlink demo` as a newcomer runs it (briefly, with incidents every second and quick
//! answers): a real process with its own server, simulated responders over real MQTT, and the
//! story on its terminal. Then `fieldlink sim` against that running demo, through its HTTP API
//! and broker.

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
    pick: impl Fn(&str) -> Option<T>,
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
