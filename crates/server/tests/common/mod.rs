//! What the tests of the `fieldlink` binary share: the command, kept independent of the
//! developer's environment, and running it to success.

use std::path::Path;
use std::process::{Command, Output};

/// The binary, with no `RUST_LOG`, `FIELDLINK_CONFIG` or `NO_COLOR` from the caller's
/// environment, run from a directory without a `config/fieldlink.toml`.
pub fn fieldlink() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fieldlink"));
    cmd.env_remove("RUST_LOG")
        .env_remove("FIELDLINK_CONFIG")
        .env_remove("NO_COLOR")
        .current_dir(std::env::temp_dir());
    cmd
}

/// `fieldlink --data DATA ARGS...`, which must succeed; its output.
pub fn run(data: &Path, args: &[&str]) -> Output {
    let out = fieldlink()
        .arg("--data")
        .arg(data)
        .args(args)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "fieldlink {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
