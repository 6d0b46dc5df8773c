//! The checks serde cannot make: values that parse but make no sense, alone or together.
//!
//! Each [`Problem`] names the key it is about as a file writes it (`units[0]`,
//! `dispatch.accept_timeout_s`), so that [`super::Config::load`] can name it as the user wrote
//! it: the file and key, or the environment variable, or the flag.

use fieldlink_proto::topic::{DEFAULT_OWNTRACKS_PREFIX, DEFAULT_ROOT};
use fieldlink_proto::{Topics, UnitId};

use super::Config;

/// One problem: the key it is about, and the rest of the sentence after the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Problem {
    /// As a file writes it (`units[0]`); empty when the problem is about several keys.
    key: String,
    /// Starts with what follows the key: `" must be greater than 0"`, `": ..."`.
    rest: String,
}

impl Problem {
    fn at(key: impl Into<String>, rest: impl Into<String>) -> Self {
        Problem {
            key: key.into(),
            rest: rest.into(),
        }
    }

    /// A problem about several keys, said in full.
    fn general(text: impl Into<String>) -> Self {
        Problem::at("", text)
    }

    /// A domain crate's message, which starts with its key (`accept_timeout_s must be > 0`,
    /// `intercom.max_talk_s must ...`), under `section`.
    fn from_message(section: &str, text: &str) -> Self {
        let split = text.find([' ', ':']).unwrap_or(text.len());
        let (key, rest) = text.split_at(split);
        let key = if key.starts_with(&format!("{section}.")) {
            key.to_owned()
        } else {
            format!("{section}.{key}")
        };
        Problem::at(key, rest)
    }

    /// The sentence, with the key named by `name` (which gets the key as a file writes it).
    pub(super) fn render(&self, name: impl Fn(&str) -> String) -> String {
        if self.key.is_empty() {
            self.rest.trim_start().to_owned()
        } else {
            format!("{}{}", name(&self.key), self.rest)
        }
    }
}

/// A path that must name a readable file.
const NOT_A_FILE: &str = "is not a readable file (paths are relative to the working directory)";

impl Config {
    /// Every problem serde cannot see, at once.
    pub(super) fn problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        self.mqtt_problems(&mut problems);
        self.tls_problems(&mut problems);
        let url = self.store.url.trim();
        if !(url.is_empty()
            || url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            problems.push(Problem::at(
                "store.url",
                format!(
                    " must start with sqlite:// or postgres://, got \"{}\"",
                    fieldlink_store::redact_url(url)
                ),
            ));
        }
        for (key, files) in [
            ("zones.geofence_files", &self.zones.geofence_files),
            ("zones.grid_files", &self.zones.grid_files),
            ("video.camera_files", &self.video.camera_files),
        ] {
            for (i, file) in files.iter().enumerate() {
                if !file.is_file() {
                    let rest = format!(": {} {NOT_A_FILE}", file.display());
                    problems.push(Problem::at(format!("{key}[{i}]"), rest));
                }
            }
        }
        if let Err(dispatch) = self.dispatch.validate() {
            problems.extend(
                dispatch
                    .iter()
                    .map(|p| Problem::from_message("dispatch", p)),
            );
        }
        problems.extend(
            (self.intercom.validate().iter()).map(|p| Problem::from_message("intercom", p)),
        );
        problems.extend(
            (self.video.core().validate().iter()).map(|p| Problem::from_message("video", p)),
        );
        let mut groups = std::collections::HashSet::new();
        for (i, g) in self.talkgroups.iter().enumerate() {
            let key = format!("talkgroups[{i}]");
            if g.id.as_str().trim().is_empty() {
                problems.push(Problem::at(key, ": a talkgroup needs an id"));
            } else if !groups.insert(g.id.as_str()) {
                let rest = format!(": talkgroup \"{}\" is listed twice", g.id.as_str());
                problems.push(Problem::at(key, rest));
            }
        }
        if self.data_dir.as_os_str().is_empty() {
            problems.push(Problem::at("data_dir", " must not be empty"));
        }
        self.unit_problems(&mut problems);
        problems
    }

    fn mqtt_problems(&self, problems: &mut Vec<Problem>) {
        if let Err(e) = Topics::new(&self.mqtt.topic_root, DEFAULT_OWNTRACKS_PREFIX) {
            problems.push(Problem::at("mqtt.topic_root", format!(": {e}")));
        }
        if let Err(e) = Topics::new(DEFAULT_ROOT, &self.mqtt.owntracks_prefix) {
            problems.push(Problem::at("mqtt.owntracks_prefix", format!(": {e}")));
        }
        if !self.mqtt.embedded() {
            let url = self.mqtt.url.trim();
            if !(url.starts_with("mqtt://")
                || url.starts_with("tcp://")
                || url.starts_with("mqtts://"))
            {
                problems.push(Problem::at(
                    "mqtt.url",
                    format!(
                        " must look like mqtt://host:port or mqtts://host:port (or be empty to run the embedded broker), got \"{url}\""
                    ),
                ));
            }
        }
        for (key, value) in [
            ("mqtt.max_payload_bytes", self.mqtt.max_payload_bytes),
            ("mqtt.max_batch_fixes", self.mqtt.max_batch_fixes),
            ("mqtt.max_connections", self.mqtt.max_connections),
            ("mqtt.uplink_queue", self.mqtt.uplink_queue),
        ] {
            if value == 0 {
                problems.push(Problem::at(key, " must be greater than 0"));
            }
        }
    }

    /// Listeners that need a certificate, files that are missing.
    fn tls_problems(&self, problems: &mut Vec<Problem>) {
        let wants_cert = self.http.tls || (self.mqtt.embedded() && self.mqtt.tls_listen.is_some());
        if wants_cert && !self.tls.configured() {
            problems.push(Problem::general(
                "http.tls or mqtt.tls_listen needs a certificate: set tls.cert and tls.key (PEM files; `fieldlink certs dev` makes some for trying)",
            ));
        }
        if self.mqtt.embedded() && !self.mqtt.plain && self.mqtt.tls_listen.is_none() {
            problems.push(Problem::at(
                "mqtt.plain",
                " = false leaves the embedded broker no listener: set mqtt.tls_listen too",
            ));
        }
        if self.mqtt.client_cert.as_os_str().is_empty()
            != self.mqtt.client_key.as_os_str().is_empty()
        {
            problems.push(Problem::general(
                "mqtt.client_cert and mqtt.client_key go together: set both or neither",
            ));
        }
        let files = [
            ("tls.cert", &self.tls.cert),
            ("tls.key", &self.tls.key),
            ("mqtt.ca_file", &self.mqtt.ca_file),
            ("mqtt.client_cert", &self.mqtt.client_cert),
            ("mqtt.client_key", &self.mqtt.client_key),
        ];
        for (key, file) in files {
            if !file.as_os_str().is_empty() && !file.is_file() {
                let rest = format!(": {} {NOT_A_FILE}", file.display());
                problems.push(Problem::at(key, rest));
            }
        }
    }

    fn unit_problems(&self, problems: &mut Vec<Problem>) {
        let mut seen = std::collections::HashSet::new();
        for (i, unit) in self.units.iter().enumerate() {
            let key = format!("units[{i}]");
            if let Err(e) = UnitId::new(unit.id.as_str()) {
                problems.push(Problem::at(&key, format!(": {e}")));
            }
            if !seen.insert(unit.id.as_str()) {
                let rest = format!(": unit \"{}\" is listed twice", unit.id);
                problems.push(Problem::at(&key, rest));
            }
            if unit.secret.chars().count() < 16 {
                problems.push(Problem::at(
                    &key,
                    format!(
                        " ({}): the secret must be at least 16 characters (use `fieldlink units add` to generate one)",
                        unit.id
                    ),
                ));
            }
            if !unit.unit_type.is_empty()
                && unit.unit_type.parse::<fieldlink_store::UnitType>().is_err()
            {
                problems.push(Problem::at(
                    &key,
                    format!(
                        " ({}): type \"{}\" is not one of on_foot, e_bike, motorcycle, car, other",
                        unit.id, unit.unit_type
                    ),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_domain_message_is_split_at_its_key() {
        let p = Problem::from_message("dispatch", "accept_timeout_s must be > 0");
        assert_eq!(p, Problem::at("dispatch.accept_timeout_s", " must be > 0"));
        let p = Problem::from_message("video", "video.stale_after_s must be at least 1");
        assert_eq!(
            p.render(|k| format!("<{k}>")),
            "<video.stale_after_s> must be at least 1"
        );
        let p = Problem::from_message("dispatch", "targets.default: every target must be > 0 s");
        assert_eq!(p.key, "dispatch.targets.default");
    }
}
