//! One process per store, against the real binary: a second `fieldlink` on the same data
//! directory (SQLite) or the same PostgreSQL schema stops at once with a message naming the first
//! (its pid, host and start time), and starts once the first is gone, also after `kill -9`.

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

/// `fieldlink` on `data` with fresh ports and `env`; HTTP on `http`.
fn fieldlink(data: &Path, env: &[(&str, String)], http: u16) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fieldlink"));
    cmd.env_remove("RUST_LOG")
        .env_remove("FIELDLINK_CONFIG")
        .arg("--data")
        .arg(data)
        .args(["--http", &format!("127.0.0.1:{http}")])
        .args(["--mqtt", &format!("127.0.0.1:{}", free_port())])
        .args(["--log-format", "json"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// The status line of `GET /readyz` on `port`, if it answers.
fn readyz(port: u16) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .write_all(b"GET /readyz HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    answer.lines().next().map(str::to_owned)
}

/// The first server, once `/readyz` says 200.
struct Running(Child);

impl Running {
    fn start(data: &Path, env: &[(&str, String)]) -> Running {
        let http = free_port();
        let child = fieldlink(data, env, http)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starts");
        let mut running = Running(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = running.0.try_wait().expect("wait") {
                panic!("the server ended during its start: {status}");
            }
            if readyz(http).is_some_and(|line| line.contains(" 200 ")) {
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
    let out = fieldlink(data, env, free_port()).output().expect("runs");
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
    let list = Command::new(env!("CARGO_BIN_EXE_fieldlink"))
        .arg("--data")
        .arg(dir.path())
        .args(["units", "list"])
        .output()
        .expect("runs");
    assert!(list.status.success());
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
