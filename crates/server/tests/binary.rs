//! The `fieldlink` binary as an operator meets it: config errors in words, a first start that
//! prints its credentials, and a clean stop on SIGTERM.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn fieldlink() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fieldlink"));
    // Keep the test independent of the developer's environment and of config/fieldlink.toml.
    cmd.env_remove("RUST_LOG").env_remove("FIELDLINK_CONFIG");
    cmd
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The server on `data`, its embedded broker on `mqtt`: the first-run credentials on a piped
/// stdout, JSON logs on a piped stderr.
fn serve(data: &std::path::Path, mqtt: &str) -> std::process::Child {
    fieldlink()
        .arg("--data")
        .arg(data)
        .args(["--http", &format!("127.0.0.1:{}", free_port())])
        .args(["--mqtt", mqtt])
        .args(["--log-format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts")
}

/// Sends each line of `stream` to `tx`, on a thread of its own, until either end closes.
fn forward_lines(stream: impl std::io::Read + Send + 'static, tx: std::sync::mpsc::Sender<String>) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
}

#[test]
fn every_config_problem_is_reported_at_once_with_exit_status_2() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("bad.toml");
    std::fs::write(
        &file,
        "[mqtt]\nurl = \"http://broker\"\ntopic_root = \"fl/#\"\n[[units]]\nid = \"a b\"\nsecret = \"short\"\n",
    )
    .expect("write");
    let out = fieldlink()
        .args(["--config"])
        .arg(&file)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "mqtt.url",
        "topic prefix",
        "units[0]: unit id",
        "at least 16 characters",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
}

#[test]
fn a_missing_config_file_is_named() {
    let out = fieldlink()
        .args(["--config", "/nonexistent/fieldlink.toml"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/fieldlink.toml"));
}

#[test]
fn first_start_prints_credentials_and_sigterm_stops_it_cleanly() {
    let dir = tempfile::tempdir().expect("dir");
    let mqtt = format!("127.0.0.1:{}", free_port());
    let mut child = serve(dir.path(), &mqtt);
    let stdout = child.stdout.take().expect("stdout");
    // The logs are not read here; keep their pipe from filling.
    let (logs, _unread) = std::sync::mpsc::channel();
    forward_lines(child.stderr.take().expect("stderr"), logs);
    let mut lines = BufReader::new(stdout).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    while let Some(Ok(line)) = lines.next() {
        let ready = line.contains("They are saved in");
        seen.push(line);
        if ready || Instant::now() > deadline {
            break;
        }
    }
    let text = seen.join("\n");
    assert!(text.contains("Admin API token: fl_tok_"), "{text}");
    assert!(text.contains("Demo unit: id demo-1"), "{text}");
    let saved =
        std::fs::read_to_string(dir.path().join("first-run-credentials.txt")).expect("saved");
    assert!(saved.contains("fl_tok_"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("first-run-credentials.txt"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o077,
            0,
            "credentials must be readable by the owner only"
        );
    }

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "exit status after SIGTERM: {status}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "fieldlink did not stop within 15 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The second start creates nothing new and prints no credentials.
    let out = fieldlink()
        .arg("--data")
        .arg(dir.path())
        .args(["units", "list"])
        .output()
        .expect("runs");
    assert!(out.status.success());
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(listing.contains("demo-1"), "{listing}");
}

#[test]
fn environment_variables_override_the_defaults_and_flags_override_both() {
    let env_dir = tempfile::tempdir().expect("dir");
    let flag_dir = tempfile::tempdir().expect("dir");
    let out = fieldlink()
        .env("FIELDLINK_DATA_DIR", env_dir.path())
        .args(["units", "add", "from-env", "--type", "car"])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        env_dir.path().join("fieldlink.db").exists(),
        "FIELDLINK_DATA_DIR chose the store"
    );

    let out = fieldlink()
        .env("FIELDLINK_DATA_DIR", env_dir.path())
        .arg("--data")
        .arg(flag_dir.path())
        .args(["units", "list"])
        .output()
        .expect("runs");
    assert!(out.status.success());
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(
        !listing.contains("from-env"),
        "--data wins over the environment:\n{listing}"
    );
    assert!(flag_dir.path().join("fieldlink.db").exists());

    let out = fieldlink()
        .env("FIELDLINK_MQTT__TOPIC_ROOT", "fl/#")
        .args(["units", "list"])
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(2),
        "a bad nested key from the environment is refused"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("topic prefix"));
}

#[test]
fn a_taken_port_stops_the_first_start_before_any_credentials_are_created() {
    let dir = tempfile::tempdir().expect("dir");
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let out = fieldlink()
        .arg("--data")
        .arg(dir.path())
        .args(["--http", &format!("127.0.0.1:{}", free_port())])
        .args(["--mqtt", &format!("127.0.0.1:{port}")])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already in use"));
    assert!(
        !dir.path().join("first-run-credentials.txt").exists(),
        "nothing is created when the start fails on a port"
    );
}

#[test]
fn certs_dev_writes_a_ca_and_certificates_and_says_how_to_use_them() {
    let dir = tempfile::tempdir().expect("dir");
    let out = fieldlink()
        .arg("--data")
        .arg(dir.path())
        .args(["certs", "dev", "--host", "localhost,fieldlink.lan"])
        .output()
        .expect("runs");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    for expected in [
        "ca.pem",
        "server.pem",
        "FIELDLINK_HTTP__TLS=true",
        "fieldlink.lan",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    let certs = dir.path().join("certs");
    for file in [
        "ca.pem",
        "server.pem",
        "server.key",
        "client.pem",
        "client.key",
    ] {
        let pem = std::fs::read_to_string(certs.join(file)).expect(file);
        assert!(pem.starts_with("-----BEGIN "), "{file}: {pem}");
    }
}

#[test]
fn tls_without_a_certificate_is_a_config_error_in_words() {
    let out = fieldlink()
        .args(["--http", "127.0.0.1:0"])
        .env("FIELDLINK_HTTP__TLS", "true")
        .env("FIELDLINK_MQTT__PLAIN", "false")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "tls.cert and tls.key",
        "fieldlink certs dev",
        "mqtt.tls_listen too",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
}

/// Runs `fieldlink seal ARGS` with the unit's secret in the environment and `input` on stdin.
fn seal(args: &[&str], input: &[u8]) -> std::process::Output {
    use std::io::Write as _;
    let mut child = fieldlink()
        .arg("seal")
        .args(args)
        .env("FL_UNIT_SECRET", "the-unit-secret")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("fieldlink runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("input written");
    child.wait_with_output().expect("fieldlink ends")
}

#[test]
fn seal_seals_for_a_topic_opens_a_downlink_and_prints_the_key() {
    let key = fieldlink_seal::SealKey::derive("the-unit-secret");
    // An uplink sealed for its topic's kind, with the unit's key.
    let out = seal(&["--topic", "fl/v1/u/demo-1/gps"], b"a fix");
    assert!(out.status.success(), "{out:?}");
    let opened = fieldlink_seal::open(&key, "gps", &out.stdout).expect("opens for gps");
    assert_eq!(opened.payload, b"a fix");
    // A downlink (sealed here for its topic) opens with --open.
    let down = seal(&["--topic", "fl/v1/u/demo-1/down"], b"an order");
    let out = seal(&["--open"], &down.stdout);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout, b"an order");
    // The key, for the OwnTracks app.
    let out = seal(&["--print-key"], b"");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), key.as_text());
    // An uplink is not a downlink, and a topic must be ours: refused in words.
    let out = seal(
        &["--open"],
        &seal(&["--topic", "fl/v1/u/demo-1/gps"], b"x").stdout,
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a downlink sealed for this unit"));
    let out = seal(&["--topic", "fl/v1/u/demo-1"], b"x");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a fieldlink topic"));
}

/// An MQTT CONNECT as a handset sends it: protocol `level` (4 is MQTT 3.1.1; 5 adds an empty
/// property list), clean session, keep-alive 60 s, username and password.
fn connect_packet(level: u8, client_id: &str, username: &str, password: &str) -> Vec<u8> {
    fn string(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&u16::try_from(s.len()).expect("short").to_be_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    let mut body = Vec::new();
    string(&mut body, "MQTT");
    body.extend_from_slice(&[level, 0b1100_0010, 0, 60]);
    if level == 5 {
        body.push(0);
    }
    string(&mut body, client_id);
    string(&mut body, username);
    string(&mut body, password);
    let mut packet = vec![0x10, u8::try_from(body.len()).expect("short")];
    packet.extend(body);
    packet
}

/// A refused MQTT login is answered with the CONNACK code that says why (rumqttd alone closed
/// the socket without a word), and logged with the handset's address as well as its id.
#[test]
fn a_refused_mqtt_login_gets_its_reason_and_is_logged_with_the_address() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().expect("dir");
    let mqtt = format!("127.0.0.1:{}", free_port());
    let mut child = serve(dir.path(), &mqtt);
    // Credentials come on stdout and logs on stderr; read both on threads, line by line.
    let (tx, lines) = std::sync::mpsc::channel();
    forward_lines(child.stdout.take().expect("stdout"), tx.clone());
    forward_lines(child.stderr.take().expect("stderr"), tx);
    let wait_for = |what: &str, matches: &dyn Fn(&str) -> bool| -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) if matches(&line) => return line,
                Ok(_) => {}
                Err(_) => panic!("no line with {what} within 60 s"),
            }
        }
    };
    wait_for("the first-run credentials", &|l| {
        l.contains("They are saved in")
    });

    for (level, client_id, username, code, case) in [
        (4, "demo-1", "demo-1", 5, "wrong secret: not authorised"),
        (
            4,
            "demo+1",
            "demo+1",
            2,
            "a wildcard in the id: identifier rejected",
        ),
        (
            5,
            "demo-1",
            "demo-1",
            1,
            "MQTT 5: unacceptable protocol version",
        ),
    ] {
        let mut tcp = std::net::TcpStream::connect(&mqtt).expect("connects");
        tcp.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        tcp.write_all(&connect_packet(
            level,
            client_id,
            username,
            "not-the-secret",
        ))
        .expect("sends CONNECT");
        let mut connack = [0u8; 4];
        tcp.read_exact(&mut connack).expect(case);
        assert_eq!(connack, [0x20, 0x02, 0x00, code], "{case}");
        let mut rest = Vec::new();
        let _ = tcp.read_to_end(&mut rest);
        assert!(rest.is_empty(), "{case}: closed after the CONNACK");
    }

    for (reason, id) in [
        ("bad_credentials", Some("demo-1")),
        ("bad_identity", Some("demo+1")),
        ("bad_connect", None),
    ] {
        let line = wait_for(reason, &|l| {
            l.contains("MQTT connection refused") && l.contains(&format!("\"reason\":\"{reason}\""))
        });
        assert!(line.contains("\"peer\":\"127.0.0.1:"), "{line}");
        if let Some(id) = id {
            assert!(line.contains(id), "the client id in {line}");
        }
    }

    let _ = child.kill();
    let _ = child.wait();
}
