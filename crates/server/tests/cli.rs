//! The `fieldlink` binary's command line as a user and a script meet it: config problems all
//! at once and named as written, results alone on stdout with aligned tables, logs on stderr
//! without colours, and each subcommand's help showing only its own options.

mod common;

use std::path::Path;
use std::process::Output;

use common::fieldlink;

/// [`common::run`], and no colours in what it printed.
fn run(data: &Path, args: &[&str]) -> Output {
    let out = common::run(data, args);
    assert_no_colours(&out);
    out
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("UTF-8")
}

/// Neither stream is a terminal here: no ANSI escape may appear in either.
fn assert_no_colours(out: &Output) {
    for (name, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        assert!(
            !bytes.contains(&0x1b),
            "ANSI escapes on {name}:\n{}",
            String::from_utf8_lossy(bytes)
        );
    }
}

/// Every line of a table starts each column at the header's column: checked at the first
/// character of each header word, which must start a cell on every row (no cell is empty).
fn assert_aligned(table: &str, columns: &[&str]) {
    let lines: Vec<Vec<char>> = table.lines().map(|l| l.chars().collect()).collect();
    let header: String = lines[0].iter().collect();
    let mut starts = Vec::new();
    for c in columns {
        let at = header.find(c).expect("column in the header");
        starts.push(header[..at].chars().count());
    }
    assert!(lines.len() > 1, "a table with rows:\n{table}");
    for line in &lines[1..] {
        for (&at, column) in starts.iter().zip(columns) {
            let here = line.get(at).copied().unwrap_or(' ');
            let before = if at == 0 { ' ' } else { line[at - 1] };
            assert!(
                here != ' ' && before == ' ',
                "column {column:?} does not line up in:\n{table}"
            );
        }
    }
}

#[test]
fn five_config_problems_are_reported_together_each_named_as_written() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("bad.toml");
    std::fs::write(
        &file,
        "[dispatch]\naccept_timeout_s = \"abc\"\n\n[http]\nlisen = \"0.0.0.0:9090\"\n\n[store]\nurl = \"mysql://db\"\n",
    )
    .expect("write");
    let out = fieldlink()
        .arg("--config")
        .arg(&file)
        .env("FIELDLINK_HTTP__LISTEN", "nope")
        .env("FIELDLINK_MQTT__MAX_CONNECTIONS", "0")
        .args(["units", "list"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2), "exit status 2");
    assert!(out.stdout.is_empty(), "nothing on stdout");
    let err = text(&out.stderr);
    let problems: Vec<&str> = (err.lines())
        .filter_map(|l| l.strip_prefix("  - "))
        .collect();
    assert_eq!(problems.len(), 5, "five problems in:\n{err}");
    let file = file.display().to_string();
    for expected in [
        format!("{file}: dispatch.accept_timeout_s must be a whole number of seconds, got \"abc\""),
        format!("{file}: http.lisen is not a setting fieldlink knows"),
        format!("{file}: store.url must start with sqlite:// or postgres://"),
        "FIELDLINK_HTTP__LISTEN must be an address and port, like \"0.0.0.0:8080\", got \"nope\""
            .to_owned(),
        "FIELDLINK_MQTT__MAX_CONNECTIONS must be greater than 0".to_owned(),
    ] {
        assert!(
            problems.iter().any(|p| p.starts_with(&expected)),
            "no problem starting {expected:?} in:\n{err}"
        );
    }
    for internal in ["default.", "HTTP.LISTEN", "for key"] {
        assert!(!err.contains(internal), "{internal:?} in:\n{err}");
    }
}

#[test]
fn results_go_to_stdout_in_aligned_tables_and_logs_to_stderr() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path();
    let long_id = "a-unit-id-longer-than-twenty-four-characters";
    let out = run(
        data,
        &[
            "units",
            "add",
            "patrol-01",
            "--name",
            "Wang Lei",
            "--type",
            "e_bike",
        ],
    );
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "the result only:\n{stdout}");
    assert!(
        lines[0].starts_with("Unit patrol-01 registered (e_bike)"),
        "{stdout}"
    );
    assert!(
        lines[2].trim().len() >= 16,
        "the secret on its own line: {stdout}"
    );
    assert!(
        text(&out.stderr).contains("INFO"),
        "the store's log lines are on stderr:\n{}",
        text(&out.stderr)
    );
    run(
        data,
        &[
            "units",
            "add",
            long_id,
            "--name",
            "湖滨 1",
            "--skills",
            "first_aid,mediation",
        ],
    );

    let out = run(data, &["units", "list"]);
    let table = text(&out.stdout);
    assert!(
        table.starts_with("id "),
        "only the table on stdout:\n{table}"
    );
    assert_eq!(table.lines().count(), 3, "{table}");
    assert!(table.contains(long_id) && table.contains("first_aid,mediation"));
    assert_aligned(&table, &["id", "type", "state", "name"]);

    let out = run(data, &["tokens", "add", "wall display", "--role", "viewer"]);
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().count(), 2, "the result only:\n{stdout}");
    assert!(stdout.contains("fl_tok_"), "{stdout}");
    assert!(!stdout.contains("INFO"), "{stdout}");
    run(data, &["tokens", "add", "x", "--role", "dispatcher"]);

    let out = run(data, &["tokens", "list"]);
    let table = text(&out.stdout);
    assert_eq!(table.lines().count(), 3, "{table}");
    assert_aligned(&table, &["id", "role", "state", "name"]);

    // The flags also come after the subcommand.
    let out = fieldlink()
        .args(["units", "list", "--data"])
        .arg(data)
        .output()
        .expect("runs");
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("patrol-01"));
}

#[test]
fn each_subcommand_help_shows_its_own_options_only() {
    let help = |args: &[&str]| {
        let out = fieldlink().args(args).arg("--help").output().expect("runs");
        assert!(out.status.success(), "{args:?} --help");
        // As one line: the help may be wrapped to the terminal's width.
        text(&out.stdout)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let sim = help(&["sim"]);
    assert!(
        sim.contains("--broker") && sim.contains("--server"),
        "{sim}"
    );
    for server_only in ["--mqtt", "--http", "--log-format", "--data"] {
        assert!(
            !sim.contains(server_only),
            "sim --help shows {server_only}:\n{sim}"
        );
    }
    let units = help(&["units", "list"]);
    assert!(units.contains("--data"), "{units}");
    assert!(!units.contains("--mqtt"), "{units}");
    let demo = help(&["demo"]);
    assert!(
        demo.contains("temporary directory, removed at the end"),
        "demo --help agrees with the README about --data:\n{demo}"
    );
    let top = help(&[]);
    for words in ["command room", "responders", "demo", "units", "sim"] {
        assert!(top.contains(words), "{words:?} in:\n{top}");
    }
}
