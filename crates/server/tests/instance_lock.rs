//! One process per store, against the real binary: a second `fieldlink` on the same data
//! directory (SQLite) or the same PostgreSQL schema stops at once with a message naming the first
//! (its pid, host and start time), and starts once the first is gone, also after `kill -9`. The
//! CLI takes no lock: a token it makes beside a running server works on the first call, and a
//! handset it registers gets in within the 3 s it promises.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Longest a refused second start may take ("fails fast"; PostgreSQL waits up to 3 s for a
/// just-killed holder's session to end).
const REFUSED_WITHIN: Duration = Duration::from_secs(15);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

impl Ports {
    fn free() -> Ports {
        Ports {
            http: free_port(),
            mqtt: free_port(),
        }
    }
}

/// The CLI on `data`: its stdout, after checking it succeeded.
fn cli(data: &Path, args: &[&str]) -> String {
    String::from_utf8_lossy(&common::run(data, args).stdout).into_owned()
}

/// `fieldlink` on `data` with `env`, listening on `ports`.
fn fieldlink(data: &Path, env: &[(&str, String)], ports: Ports) -> Command {
    let mut cmd = common::fieldlink();
    cmd.arg("--data")
        .arg(data)
        .args(["--http", &format!("127.0.0.1:{}", ports.http)])
        .args(["--mqtt", &format!("127.0.0.1:{}", ports.mqtt)])
        .args(["--log-format", "json"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// The status line of `GET path` on `port` (with a bearer token), if it answers.
fn get(port: u16, path: &str, token: Option<&str>) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let request = format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n{auth}\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    answer.lines().next().map(str::to_owned)
}

fn readyz(port: u16) -> Option<String> {
    get(port, "/readyz", None)
}

/// A server started by the test, once `/readyz` says 200.
struct Running(Child, Ports);

/// Where a [`Running`] server listens.
#[derive(Clone, Copy)]
struct Ports {
    http: u16,
    mqtt: u16,
}

impl Running {
    fn start(data: &Path, env: &[(&str, String)]) -> Running {
        let ports = Ports::free();
        let child = fieldlink(data, env, ports)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starts");
        let mut running = Running(child, ports);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = running.0.try_wait().expect("wait") {
                panic!("the server ended during its start: {status}");
            }
            if readyz(ports.http).is_some_and(|line| line.contains(" 200 ")) {
                return running;
            }
            assert!(Instant::now() < deadline, "not ready within 60 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn kill9(mut self) {
        let status = Command::new("kill")
            .args(["-KILL", &self.0.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        self.0.wait().expect("reaped");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

/// Runs a second server to its end (it must end by itself, refused).
fn second(data: &Path, env: &[(&str, String)]) -> Output {
    let started = Instant::now();
    let out = fieldlink(data, env, Ports::free()).output().expect("runs");
    assert!(
        started.elapsed() < REFUSED_WITHIN,
        "the refusal took {:?}",
        started.elapsed()
    );
    out
}

fn assert_refused_naming(out: &Output, first: &Running) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "the second server must not run:\n{stderr}"
    );
    let host = whoami_host();
    for expected in [
        "already in use by another fieldlink".to_owned(),
        format!("process {} on host {host}", first.0.id()),
        "running since 20".to_owned(),
        "stop that one first".to_owned(),
    ] {
        assert!(
            stderr.contains(&expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
}

/// The host name as the kernel has it (what the holder names).
fn whoami_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("the kernel's host name")
        .trim()
        .to_owned()
}

#[test]
fn a_second_server_on_the_same_data_directory_is_refused_naming_the_first() {
    let dir = tempfile::tempdir().expect("dir");
    let first = Running::start(dir.path(), &[]);
    let out = second(dir.path(), &[]);
    assert_refused_naming(&out, &first);
    // The first one is untouched: its store still answers (the CLI beside it still works).
    assert!(cli(dir.path(), &["units", "list"]).contains("demo-1"));
    // A crash leaves no stale lock: after kill -9 the next server runs.
    first.kill9();
    let again = Running::start(dir.path(), &[]);
    drop(again);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_the_same_postgres_schema_is_refused_naming_the_first() {
    let Some(cfg) = fieldlink_store::testing::postgres_config_or_skip("instance_lock").await else {
        return;
    };
    let env = vec![
        ("FIELDLINK_STORE__URL", cfg.url.clone()),
        (
            "FIELDLINK_STORE__PG_SCHEMA",
            cfg.pg_schema.clone().expect("schema"),
        ),
    ];
    // Each on a data directory of its own: the database is what they would share.
    let (a, b) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let first = tokio::task::block_in_place(|| Running::start(a.path(), &env));
    let out = tokio::task::block_in_place(|| second(b.path(), &env));
    assert_refused_naming(&out, &first);
    tokio::task::block_in_place(|| {
        first.kill9();
        drop(Running::start(b.path(), &env));
    });
    fieldlink_store::testing::drop_schema(&cfg).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_cli_makes_beside_a_running_server_works_as_it_says() {
    let dir = tempfile::tempdir().expect("dir");
    let server = tokio::task::block_in_place(|| Running::start(dir.path(), &[]));
    let ports = server.1;

    let out = cli(
        dir.path(),
        &["tokens", "add", "wall display", "--role", "viewer"],
    );
    assert!(
        out.contains("works on a running fieldlink at once"),
        "{out}"
    );
    let token = (out.split_whitespace())
        .find(|w| w.starts_with("fl_tok_"))
        .expect("a token")
        .to_owned();
    let status = tokio::task::block_in_place(|| get(ports.http, "/api/v1/units", Some(&token)));
    assert!(
        status.is_some_and(|s| s.contains(" 200 ")),
        "the first call"
    );

    let out = cli(dir.path(), &["units", "add", "patrol-09"]);
    assert!(out.contains("lets its handset in within 3 s"), "{out}");
    let secret = out.lines().last().expect("the secret").trim().to_owned();
    let started = Instant::now();
    let mut tries = 0;
    loop {
        tries += 1;
        if connack(ports.mqtt, "patrol-09", &secret).await
            == Some(rumqttc::ConnectReturnCode::Success)
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "patrol-09 not let in within 3 s ({tries} tries)"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(server);
}

/// The CONNACK code the broker on `port` answers a handset login with.
async fn connack(port: u16, unit: &str, secret: &str) -> Option<rumqttc::ConnectReturnCode> {
    let mut options = rumqttc::MqttOptions::new(unit, "127.0.0.1", port);
    options.set_credentials(unit, secret);
    let (_client, mut events) = rumqttc::AsyncClient::new(options, 10);
    let answer = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match events.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(ack))) => {
                    return Some(ack.code);
                }
                Ok(_) => {}
                Err(rumqttc::ConnectionError::ConnectionRefused(code)) => return Some(code),
                Err(_) => return None,
            }
        }
    });
    answer.await.ok().flatten()
}
