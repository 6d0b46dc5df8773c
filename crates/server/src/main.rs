//! The `fieldlink` binary: parse the command line, load the config, run the command.
//! Everything else lives in the library (`src/lib.rs`).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use fieldlink_clock::SystemClock;
use fieldlink_server::cli::{CertsCommand, Cli, Command, GlobalArgs};
use fieldlink_server::{Config, admin, certs, demo, seal, sim, telemetry};
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let global = cli.global();
    let mut config = match Config::load(global.config.as_deref(), &global.overrides()) {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("fieldlink cannot start: {errors}");
            return ExitCode::from(2);
        }
    };
    // sim and demo talk to the operator on the terminal: only warnings and errors are logged
    // there, unless RUST_LOG asks for more.
    if matches!(cli.command, Some(Command::Sim(_) | Command::Demo(_))) {
        config.log.level = "warn".to_owned();
    }
    telemetry::init(&config.log);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("fieldlink cannot start its runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command.unwrap_or(Command::Serve(GlobalArgs::default())) {
            Command::Serve(_) => serve(config).await,
            Command::Units(units) => admin::units(&config, units.command).await,
            Command::Tokens(tokens) => admin::tokens(&config, tokens.command).await,
            Command::Sim(args) => sim::run(&config, args, stop_on_signal()?).await,
            Command::Demo(args) => demo::run(config, &global, args, stop_on_signal()?).await,
            Command::Certs(certs) => match certs.command {
                CertsCommand::Dev { dir, hosts, days } => certs::dev(&config, dir, hosts, days),
            },
            Command::Seal(args) => seal::run(&config, &args),
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
    // Listen for signals before anything else, so a SIGTERM during start-up is not fatal.
    let mut signals = Signals::install()?;
    let grace = Duration::from_secs(config.shutdown.grace_seconds);
    let data_dir = config.data_dir.clone();
    let tls = config.http.tls;
    let server = fieldlink_server::start(config, Arc::new(SystemClock)).await?;
    if let Some(first_run) = server.first_run() {
        admin::announce_first_run(&data_dir, first_run, &server, tls)?;
    }
    let stop = server.shutdown_token();
    tokio::spawn(async move {
        signals.next().await;
        tracing::info!("stopping: finishing in-flight work (press Ctrl-C again to force)");
        stop.cancel();
        signals.next().await;
        std::process::exit(130);
    });
    server.run_until_stopped(grace).await;
    tracing::info!("stopped");
    Ok(())
}

/// A token cancelled at the first Ctrl-C or SIGTERM; the second one ends the process at once.
fn stop_on_signal() -> anyhow::Result<CancellationToken> {
    let mut signals = Signals::install()?;
    let stop = CancellationToken::new();
    let token = stop.clone();
    tokio::spawn(async move {
        signals.next().await;
        eprintln!("stopping (press Ctrl-C again to force)");
        token.cancel();
        signals.next().await;
        std::process::exit(130);
    });
    Ok(stop)
}

/// SIGINT (Ctrl-C) and SIGTERM, registered once.
struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Signals {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Signals {})
    }

    async fn next(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
