//! The command line: `fieldlink [serve]`, `fieldlink units ...`, `fieldlink tokens ...`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{LogFormat, Overrides};

/// fieldlink: the backend and radio gateway for a command room and its field responders.
#[derive(Debug, Parser)]
#[command(name = "fieldlink", version, about, long_about = None)]
pub struct Cli {
    /// Settings shared by every command.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Settings shared by every command.
#[derive(Debug, Args, Clone, Default)]
pub struct GlobalArgs {
    /// Config file (TOML). Default: config/fieldlink.toml when it exists.
    #[arg(long, short = 'c', global = true, env = "FIELDLINK_CONFIG")]
    pub config: Option<PathBuf>,
    /// HTTP listen address, e.g. 0.0.0.0:8080.
    #[arg(long, global = true, value_name = "ADDR")]
    pub http: Option<SocketAddr>,
    /// Embedded MQTT broker listen address, e.g. 0.0.0.0:1883.
    #[arg(long, global = true, value_name = "ADDR")]
    pub mqtt: Option<SocketAddr>,
    /// Data directory (SQLite database, first-run credentials). Default: ./data.
    #[arg(long, global = true, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Log format.
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,
}

impl GlobalArgs {
    /// The flags that override the config file and the environment.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            http: self.http,
            mqtt: self.mqtt,
            data: self.data.clone(),
            log_format: self.log_format,
        }
    }
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve,
    /// Provision responder handsets.
    #[command(subcommand)]
    Units(UnitsCommand),
    /// Manage API tokens (admin, dispatcher, viewer).
    #[command(subcommand)]
    Tokens(TokensCommand),
}

/// `fieldlink units ...`
#[derive(Debug, Subcommand)]
pub enum UnitsCommand {
    /// Register a unit and print its new secret (shown once).
    Add {
        /// Unit id: letters, digits, '_', '-', '.' (also its MQTT client id and username).
        id: String,
        /// Display name (call sign).
        #[arg(long, default_value = "")]
        name: String,
        /// on_foot, e_bike, motorcycle, car or other.
        #[arg(long = "type", default_value = "on_foot")]
        unit_type: String,
        /// Skills, comma separated (e.g. first_aid,mediation).
        #[arg(long, value_delimiter = ',')]
        skills: Vec<String>,
    },
    /// List units.
    List,
    /// Refuse the unit's connections and messages.
    Disable {
        /// Unit id.
        id: String,
    },
    /// Accept the unit again.
    Enable {
        /// Unit id.
        id: String,
    },
    /// Give the unit a new secret (printed once); the old one stops working.
    RotateSecret {
        /// Unit id.
        id: String,
    },
}

/// `fieldlink tokens ...`
#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Create an API token and print it (shown once).
    Add {
        /// What it is for, e.g. "wall display".
        name: String,
        /// admin, dispatcher or viewer.
        #[arg(long, default_value = "viewer")]
        role: String,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by id (tok_...).
    Revoke {
        /// Token id.
        id: String,
    },
}
