//! `fieldlink seal`: what a handset does to its payloads on the embedded broker, for people
//! trying fieldlink with `mosquitto_pub` and `mosquitto_sub` (README, "Try it with
//! mosquitto_pub"). The sealing itself is the simulated handsets' ([`fieldlink_sim::Sealer`]),
//! so the command and the handsets cannot drift apart.

use std::io::{Read, Write};

use anyhow::{Context, Result, bail};
use fieldlink_seal::CounterGuard;
use fieldlink_sim::Sealer;

use crate::Config;
use crate::cli::SealArgs;

/// Largest input read (the server refuses larger payloads anyway).
const MAX_INPUT: u64 = 1 << 20;

/// Runs `fieldlink seal`.
pub fn run(config: &Config, args: &SealArgs) -> Result<()> {
    let sealer = Sealer::new(&args.secret, config.mqtt.topics()?);
    let mut out = std::io::stdout().lock();
    if args.print_key {
        writeln!(out, "{}", sealer.key_text())?;
        return Ok(());
    }
    let input = read_stdin()?;
    let output = if args.open {
        sealer
            .open_downlink(&mut CounterGuard::default(), &input)
            .map_err(|why| {
                anyhow::anyhow!("this is not a downlink sealed for this unit's secret: {why}")
            })?
    } else {
        let topic = args.topic.as_deref().unwrap_or_default();
        if config.mqtt.topics()?.parse(topic).is_err() {
            bail!(
                "{topic:?} is not a fieldlink topic (fl/v1/u/UNIT/KIND) nor an OwnTracks one (owntracks/UNIT/DEVICE)"
            );
        }
        sealer.seal(topic, &input)
    };
    out.write_all(&output)?;
    out.flush()?;
    Ok(())
}

fn read_stdin() -> Result<Vec<u8>> {
    let mut input = Vec::new();
    std::io::stdin()
        .take(MAX_INPUT + 1)
        .read_to_end(&mut input)
        .context("cannot read the payload from standard input")?;
    if input.len() as u64 > MAX_INPUT {
        bail!("the payload on standard input is larger than {MAX_INPUT} bytes");
    }
    Ok(input)
}
