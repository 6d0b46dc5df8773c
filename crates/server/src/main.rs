//! The `fieldlink` binary: parse the command line, load the config, run the command.
//! Everything else lives in the library (`src/lib.rs`).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use fieldlink_clock::SystemClock;
use fieldlink_server::cli::{Cli, Command};
use fieldlink_server::{Config, admin, telemetry};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.global.config.as_deref(), &cli.global.overrides()) {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("fieldlink cannot start: {errors}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(&config.log);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("fieldlink cannot start its runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => serve(config).await,
            Command::Units(cmd) => admin::units(&config, cmd).await,
            Command::Tokens(cmd) => admin::tokens(&config, cmd).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fieldlink: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let grace = Duration::from_secs(config.shutdown.grace_seconds);
    let data_dir = config.data_dir.clone();
    let server = fieldlink_server::start(config, Arc::new(SystemClock)).await?;
    if let Some(first_run) = server.first_run() {
        admin::announce_first_run(&data_dir, first_run, &server)?;
    }
    let stop = server.shutdown_token();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("stopping: finishing in-flight work (press Ctrl-C again to force)");
        stop.cancel();
        wait_for_signal().await;
        std::process::exit(130);
    });
    server.run_until_stopped(grace).await;
    tracing::info!("stopped");
    Ok(())
}

/// SIGINT (Ctrl-C) or SIGTERM.
async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
