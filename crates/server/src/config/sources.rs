//! Where each configuration value came from, so that every problem is named as the user wrote
//! it: `bad.toml: dispatch.accept_timeout_s`, `FIELDLINK_HTTP__LISTEN` or `--mqtt`, never the
//! internal `default.dispatch.accept_timeout_s` or `HTTP.LISTEN` figment would print.
//!
//! The file, the environment and the flags are each read into a [`Layer`] of their own. serde
//! stops at the first bad value, so [`Layers::extract`] reports that value, takes it out of the
//! layer it came from (the built-in default then applies) and tries again, until the tree
//! deserializes: every bad value is reported in one run, and the checks of [`super::checks`]
//! still see a whole tree.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use figment::error::Kind;
use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Value};
use figment::{Figment, Profile, Provider};

use super::{Config, Overrides};

/// The environment variables that are config keys start with this.
const ENV_PREFIX: &str = "FIELDLINK_";
/// `FIELDLINK_CONFIG` is `--config`'s variable (read by the command line), not a key.
const ENV_NOT_A_KEY: &str = "config";
/// More bad values than this in one configuration: stop looking (each round is one value).
const MAX_ROUNDS: usize = 200;

/// One source of values above the built-in defaults.
struct Layer {
    origin: Origin,
    data: Dict,
}

/// How a source names its keys to the user.
enum Origin {
    /// A TOML file, as given (`--config bad.toml`, or the default file).
    File(PathBuf),
    /// `FIELDLINK_*` variables: each dotted key's variable name as it is set.
    Env(BTreeMap<String, String>),
    /// Command-line flags: each dotted key's flag.
    Flags(BTreeMap<String, &'static str>),
}

/// The file, environment and flag layers, lowest first, and the problems met reading them.
pub(super) struct Layers {
    layers: Vec<Layer>,
    defaults: Dict,
    /// Problems with a source as a whole (a file that is not TOML), in words.
    pub(super) problems: Vec<String>,
}

impl Layers {
    /// Reads `file` (when given), the `FIELDLINK_*` environment and `overrides`.
    pub(super) fn read(file: Option<&Path>, overrides: &Overrides) -> Layers {
        let defaults = default_profile(Serialized::defaults(Config::default()).data())
            .expect("the built-in defaults serialize");
        let mut layers = Layers {
            layers: Vec::new(),
            defaults,
            problems: Vec::new(),
        };
        if let Some(path) = file {
            match default_profile(Toml::file_exact(path).data()) {
                Ok(data) => layers.layers.push(Layer {
                    origin: Origin::File(path.to_owned()),
                    data,
                }),
                Err(why) => {
                    (layers.problems).push(format!("{} is not valid TOML: {why}", path.display()))
                }
            }
        }
        layers.layers.push(env_layer());
        layers.layers.push(flag_layer(overrides));
        layers
    }

    /// Deserializes the layered tree, naming each bad value in `problems` and dropping it,
    /// until the rest deserializes. `None` when something could not be dropped.
    pub(super) fn extract(&mut self, problems: &mut Vec<String>) -> Option<Config> {
        let mut dropped: Vec<Vec<String>> = Vec::new();
        for _ in 0..MAX_ROUNDS {
            let errors = match self.figment().extract::<Config>() {
                Ok(config) => return Some(config),
                Err(errors) => errors,
            };
            let mut progress = false;
            for e in errors {
                let missing = match &e.kind {
                    Kind::MissingField(field) => Some([&e.path[..], &[field.to_string()]].concat()),
                    _ => None,
                };
                // A required value dropped for being bad is missing next: said once.
                if !missing.as_ref().is_some_and(|m| dropped.contains(m)) {
                    problems.push(self.describe(&e.path, &e.kind));
                }
                if self.drop_value(&e.path, missing.is_some()) {
                    progress = true;
                    dropped.push(e.path.clone());
                }
            }
            if !progress {
                return None;
            }
        }
        None
    }

    /// `key` (as [`display_key`] writes it) named as its source names it, e.g.
    /// `bad.toml: dispatch.accept_timeout_s` or `FIELDLINK_DISPATCH__ACCEPT_TIMEOUT_S`.
    pub(super) fn name_of(&self, key: &str) -> String {
        let path = parse_key(key);
        if path.is_empty() {
            return String::new();
        }
        self.name(&path)
    }

    fn figment(&self) -> Figment {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        for layer in &self.layers {
            figment = figment.merge(Serialized::from(&layer.data, Profile::Default));
        }
        figment
    }

    /// The highest layer holding a value at `path`, and that value.
    fn source(&self, path: &[String]) -> Option<(&Layer, &Value)> {
        self.layers
            .iter()
            .rev()
            .find_map(|l| find(&l.data, path).map(|v| (l, v)))
    }

    fn name(&self, path: &[String]) -> String {
        let key = display_key(path);
        let Some((layer, _)) = self.source(path) else {
            return key;
        };
        match &layer.origin {
            Origin::File(file) => format!("{}: {key}", file.display()),
            Origin::Env(vars) => longest_prefix(vars, path).map_or(key, Clone::clone),
            Origin::Flags(flags) => longest_prefix(flags, path).map_or(key, |f| f.to_string()),
        }
    }

    /// One deserialization error in words: where, what was expected, what was given.
    fn describe(&self, path: &[String], kind: &Kind) -> String {
        let name = self.name(path);
        let given = self.source(path).map(|(_, v)| value_in_words(v));
        let got = given.map(|g| format!(", got {g}")).unwrap_or_default();
        match kind {
            Kind::InvalidType(_, expected) | Kind::InvalidValue(_, expected) => {
                let form = expected_form(path, find(&self.defaults, path), expected);
                format!("{name} must be {form}{got}")
            }
            Kind::Message(message) => {
                let form = expected_form(path, find(&self.defaults, path), message);
                format!("{name} must be {form}{got}")
            }
            Kind::UnknownVariant(_, variants) => {
                format!("{name} must be one of {}{got}", variants.join(", "))
            }
            Kind::UnknownField(_, []) => {
                format!("{name} is not a setting fieldlink knows")
            }
            Kind::UnknownField(_, known) => format!(
                "{name} is not a setting fieldlink knows (here it knows {})",
                known.join(", ")
            ),
            Kind::MissingField(field) => format!("{name} needs `{field}`"),
            other => format!("{name}: {other}"),
        }
    }

    /// Takes the value at `path` out of the highest layer that has it. An array element is
    /// not taken out alone (the elements after it would be renumbered and misnamed): when the
    /// element itself is at fault (`whole_element`), the whole array goes.
    fn drop_value(&mut self, path: &[String], whole_element: bool) -> bool {
        let Some(layer) = self
            .layers
            .iter_mut()
            .rev()
            .find(|l| find(&l.data, path).is_some())
        else {
            return false;
        };
        let mut path = path.to_vec();
        if whole_element && path.last().is_some_and(|s| is_index(s)) {
            path.pop();
        }
        remove(&mut layer.data, &path)
    }
}

/// The variables `FIELDLINK_<SECTION>__<KEY>`, nested as figment's `Env::split("__")` would
/// nest them, with each key's variable name kept.
fn env_layer() -> Layer {
    let mut data = Dict::new();
    let mut names = BTreeMap::new();
    for (name, value) in std::env::vars_os() {
        let (Some(name), Some(value)) = (name.to_str(), value.to_str()) else {
            continue;
        };
        let Some(rest) = name
            .get(..ENV_PREFIX.len())
            .filter(|p| p.eq_ignore_ascii_case(ENV_PREFIX))
            .map(|_| &name[ENV_PREFIX.len()..])
        else {
            continue;
        };
        let key = rest.trim().to_ascii_lowercase().replace("__", ".");
        if key.is_empty() || key == ENV_NOT_A_KEY || key.split('.').any(str::is_empty) {
            continue;
        }
        let value: Value = value.parse().unwrap_or_else(|never| match never {});
        if let Value::Dict(_, nested) = figment::util::nest(&key, value) {
            data = merge(data, nested);
        }
        names.insert(key, name.to_owned());
    }
    Layer {
        origin: Origin::Env(names),
        data,
    }
}

fn flag_layer(overrides: &Overrides) -> Layer {
    let mut data = Dict::new();
    let mut flags = BTreeMap::new();
    let mut set = |key: &str, flag: &'static str, value: Value| {
        if let Value::Dict(_, nested) = figment::util::nest(key, value) {
            data = merge(std::mem::take(&mut data), nested);
        }
        flags.insert(key.to_owned(), flag);
    };
    if let Some(a) = overrides.http {
        set("http.listen", "--http", a.to_string().into());
    }
    if let Some(a) = overrides.mqtt {
        set("mqtt.listen", "--mqtt", a.to_string().into());
    }
    if let Some(d) = &overrides.data {
        set("data_dir", "--data", d.display().to_string().into());
    }
    if let Some(f) = overrides.log_format {
        let name = match f {
            super::LogFormat::Human => "human",
            super::LogFormat::Json => "json",
        };
        set("log.format", "--log-format", name.into());
    }
    Layer {
        origin: Origin::Flags(flags),
        data,
    }
}

/// The TOML parser's message without its drawing of the line: `TOML parse error at line 1,
/// column 7: invalid array, expected `]``.
fn one_line(message: &str) -> String {
    let mut parts = (message.lines())
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.contains('|'));
    let first = parts.next().unwrap_or_default().to_owned();
    let rest: Vec<&str> = parts.collect();
    if rest.is_empty() {
        first
    } else {
        format!("{first}: {}", rest.join(", "))
    }
}

/// The default profile's values, or why the source could not be read, in one line.
fn default_profile(
    data: Result<figment::value::Map<Profile, Dict>, figment::Error>,
) -> Result<Dict, String> {
    let mut data = data.map_err(|e| one_line(&e.kind.to_string()))?;
    Ok(data.remove(&Profile::Default).unwrap_or_default())
}

/// `a` with `b`'s keys on top, tables merged key by key.
fn merge(mut a: Dict, b: Dict) -> Dict {
    for (k, v) in b {
        let merged = match (a.remove(&k), v) {
            (Some(Value::Dict(_, old)), Value::Dict(tag, new)) => Value::Dict(tag, merge(old, new)),
            (_, v) => v,
        };
        a.insert(k, merged);
    }
    a
}

fn is_index(segment: &str) -> bool {
    !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit())
}

fn find<'a>(dict: &'a Dict, path: &[String]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let mut value = dict.get(first)?;
    for segment in rest {
        value = match value {
            Value::Dict(_, d) => d.get(segment)?,
            Value::Array(_, items) => items.get(segment.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(value)
}

fn remove(dict: &mut Dict, path: &[String]) -> bool {
    match path {
        [] => false,
        [last] => dict.remove(last).is_some(),
        [first, rest @ ..] => {
            let mut value = match dict.get_mut(first) {
                Some(v) => v,
                None => return false,
            };
            for (i, segment) in rest.iter().enumerate() {
                let last = i + 1 == rest.len();
                value = match value {
                    Value::Dict(_, d) if last => return d.remove(segment).is_some(),
                    Value::Dict(_, d) => match d.get_mut(segment) {
                        Some(v) => v,
                        None => return false,
                    },
                    Value::Array(_, items) => {
                        let Some(at) = segment.parse::<usize>().ok().filter(|&i| i < items.len())
                        else {
                            return false;
                        };
                        if last {
                            items.remove(at);
                            return true;
                        }
                        &mut items[at]
                    }
                    _ => return false,
                };
            }
            false
        }
    }
}

/// The name of the longest dotted prefix of `path` in `names` (a variable may set a whole table).
fn longest_prefix<'a, T>(names: &'a BTreeMap<String, T>, path: &[String]) -> Option<&'a T> {
    (1..=path.len())
        .rev()
        .find_map(|n| names.get(&path[..n].join(".")))
}

/// `units[0].secret` for the path `units`, `0`, `secret`.
pub(super) fn display_key(path: &[String]) -> String {
    let mut key = String::new();
    for segment in path {
        if is_index(segment) {
            key.push_str(&format!("[{segment}]"));
        } else {
            if !key.is_empty() {
                key.push('.');
            }
            key.push_str(segment);
        }
    }
    key
}

/// The path of a key written as [`display_key`] writes it.
fn parse_key(key: &str) -> Vec<String> {
    key.split(['.', '['])
        .map(|s| s.trim_end_matches(']'))
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// What serde's integer types say they expect.
const INTEGERS: [&str; 12] = [
    "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32", "i64", "i128", "isize",
];

/// What a value must look like, in words: from the key's name and its default's kind, else
/// from what serde expected.
fn expected_form(path: &[String], default: Option<&Value>, expected: &str) -> String {
    let key = path.last().map_or("", String::as_str);
    let unit = if key.ends_with("_ms") {
        " of milliseconds"
    } else if key.ends_with("_s") {
        " of seconds"
    } else if key.ends_with("_m") {
        " of metres"
    } else {
        ""
    };
    match default {
        Some(Value::Num(_, n)) if n.to_u128().is_some() || n.to_i128().is_some() => {
            format!("a whole number{unit}")
        }
        Some(Value::Num(..)) => format!("a number{unit}"),
        Some(Value::Bool(..)) => "true or false".to_owned(),
        Some(Value::String(_, s)) if s.parse::<std::net::SocketAddr>().is_ok() => {
            format!("an address and port, like \"{s}\"")
        }
        Some(Value::String(..)) => "text in quotes".to_owned(),
        Some(Value::Array(..)) => "a list, like [\"a\", \"b\"]".to_owned(),
        Some(Value::Dict(..)) => "a table of settings".to_owned(),
        _ if expected.contains("socket address") => {
            "an address and port, like \"0.0.0.0:8883\"".to_owned()
        }
        _ if expected.contains("IP address") => "an IP address, like \"127.0.0.1\"".to_owned(),
        _ if INTEGERS.contains(&expected) => format!("a whole number{unit}"),
        _ if matches!(expected, "f32" | "f64") => format!("a number{unit}"),
        _ if expected.contains("boolean") => "true or false".to_owned(),
        _ if expected.contains("string") => "text in quotes".to_owned(),
        _ => expected.to_owned(),
    }
}

/// A given value as the user would recognise it: `"abc"`, `12`, `true`, `a list`.
fn value_in_words(value: &Value) -> String {
    match value {
        Value::String(_, s) => format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")),
        Value::Char(_, c) => format!("\"{c}\""),
        Value::Bool(_, b) => b.to_string(),
        Value::Num(_, n) => match (n.to_u128(), n.to_i128(), n.to_f64()) {
            (Some(u), _, _) => u.to_string(),
            (_, Some(i), _) => i.to_string(),
            (_, _, Some(f)) => f.to_string(),
            _ => "a number".to_owned(),
        },
        Value::Empty(..) => "nothing".to_owned(),
        Value::Dict(..) => "a table".to_owned(),
        Value::Array(..) => "a list".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_written_as_in_the_file() {
        let path = parse_key("units[0].secret");
        assert_eq!(path, ["units", "0", "secret"]);
        assert_eq!(display_key(&path), "units[0].secret");
        assert_eq!(
            display_key(&parse_key("zones.grid_files[2]")),
            "zones.grid_files[2]"
        );
    }

    #[test]
    fn the_expected_form_comes_from_the_key_and_its_default() {
        let secs = Value::from(30u64);
        let path = parse_key("dispatch.accept_timeout_s");
        assert_eq!(
            expected_form(&path, Some(&secs), "u64"),
            "a whole number of seconds"
        );
        let addr = Value::from("0.0.0.0:8080");
        assert_eq!(
            expected_form(
                &parse_key("http.listen"),
                Some(&addr),
                "invalid socket address syntax"
            ),
            "an address and port, like \"0.0.0.0:8080\""
        );
        assert_eq!(value_in_words(&Value::from("a\"b")), "\"a\\\"b\"");
    }
}
