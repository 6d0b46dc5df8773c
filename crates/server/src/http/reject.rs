//! Refusals of bodies and query strings in words: which field was wrong, what it must be, and
//! what came instead, rebuilt from serde's errors (whose own text speaks of Rust: `expected f64`,
//! `unknown variant`, backticks, a line and column).
//!
//! Used by the extractors in `extract.rs`; `error.rs` turns the result into a response.

use serde_path_to_error::{Path, Segment};

/// Where a value came from, for the wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// A JSON body (or a WebSocket command's arguments).
    Body,
    /// A query string.
    Query,
}

/// A refusal described: the field it concerns (dotted path, `units[0]`) and the sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Described {
    /// The field, when the problem is at one.
    pub field: Option<String>,
    /// What was wrong and the form expected.
    pub message: String,
}

/// Describes serde's `raw` message (without serde_json's " at line .. column .." suffix) for a
/// value that failed at `path`. `value_of` finds the raw text of a field (query strings: their
/// decoder's number errors do not say what they read).
pub fn describe(
    place: Place,
    path: &Path,
    raw: &str,
    value_of: impl Fn(&str) -> Option<String>,
) -> Described {
    let at = dotted(path);
    if let Some(rest) = raw.strip_prefix("unknown variant ") {
        let (got, expected) = split_expected(rest);
        let got = json_quote(&unquote(&got));
        let message = match expected.as_deref().map(options) {
            Some(opts) if !opts.is_empty() => {
                format!(
                    "{} must be one of {}; got {got}",
                    who(place, &at),
                    opts.join(", ")
                )
            }
            _ => format!("{} takes no value; got {got}", who(place, &at)),
        };
        return Described { field: at, message };
    }
    if let Some(rest) = raw.strip_prefix("unknown field ") {
        let (name, expected) = split_expected(rest);
        let name = unquote(&name);
        // The path already ends at the unknown field; its owner is what comes before.
        let parent = match at.as_deref().and_then(|a| a.strip_suffix(name.as_str())) {
            Some(p) => (!p.is_empty()).then(|| p.trim_end_matches('.').to_owned()),
            None => at.clone(),
        };
        let field = Some(join(&parent, &name));
        let known = expected.as_deref().map(options).unwrap_or_default();
        let owner = match (&parent, place) {
            (Some(at), _) => format!("`{at}`"),
            (None, Place::Body) => "the body".to_owned(),
            (None, Place::Query) => "this query".to_owned(),
        };
        let message = if known.is_empty() {
            format!(
                "{} is not known: {owner} takes no fields",
                quoted_field(&field)
            )
        } else {
            format!(
                "{} is not known; {owner} takes {}",
                quoted_field(&field),
                known.join(", ")
            )
        };
        return Described { field, message };
    }
    if let Some(name) = raw.strip_prefix("missing field ") {
        let field = Some(join(&at, &unquote(name)));
        let message = format!("{} is required", who(place, &field));
        return Described { field, message };
    }
    if let Some(name) = raw.strip_prefix("duplicate field ") {
        let field = Some(join(&at, &unquote(name)));
        let message = format!("{} is given twice", who(place, &field));
        return Described { field, message };
    }
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = raw.strip_prefix(prefix) {
            let (got, expected) = split_expected(rest);
            let expected =
                expected.map_or_else(|| "something else".to_owned(), |e| expectation(&e));
            let message = format!(
                "{} must be {expected}; got {}",
                who(place, &at),
                unexpected(&got)
            );
            return Described { field: at, message };
        }
    }
    if let Some(rest) = raw.strip_prefix("invalid length ") {
        let (n, expected) = split_expected(rest);
        let expected = expected.map_or_else(|| "of another length".to_owned(), |e| expectation(&e));
        let message = format!("{} must be {expected}; got {n} elements", who(place, &at));
        return Described { field: at, message };
    }
    // The query decoder's own errors, from parsing a number or a boolean out of the text.
    let value = at.as_deref().and_then(&value_of);
    let expected = if raw.contains("float") {
        Some("a number")
    } else if raw.contains("digit") || raw.contains("integer") || raw.contains("number too") {
        Some("a whole number in range")
    } else if raw.contains("`true` or `false`") {
        Some("true or false")
    } else {
        None
    };
    let message = match (expected, value) {
        (Some(expected), Some(v)) => {
            format!(
                "{} must be {expected}; got {}",
                who(place, &at),
                json_quote(&v)
            )
        }
        (Some(expected), None) => format!("{} must be {expected}", who(place, &at)),
        (None, _) if at.is_some() => format!("{} is not valid: {raw}", who(place, &at)),
        (None, _) => raw.to_owned(),
    };
    Described { field: at, message }
}

/// The words for a JSON syntax error: serde_json's `raw` code at `line` and `column`.
pub fn syntax(raw: &str, line: usize, column: usize) -> String {
    let what = match raw {
        r if r.starts_with("EOF while parsing") => "it ends too early",
        "trailing characters" => "something follows the JSON value",
        "expected value" => "a JSON value was expected",
        "key must be a string" => "an object's key must be a string in double quotes",
        other => other,
    };
    format!("the body is not valid JSON: {what} (line {line}, column {column})")
}

/// serde_json's message without its " at line L column C" suffix.
pub fn without_position(message: &str) -> &str {
    match message.rfind(" at line ") {
        Some(i) => &message[..i],
        None => message,
    }
}

/// The path as people write it: `filter.bbox`, `units[0]`; `None` at the top.
fn dotted(path: &Path) -> Option<String> {
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => {}
        }
    }
    (!out.is_empty()).then_some(out)
}

fn join(parent: &Option<String>, name: &str) -> String {
    match parent {
        Some(p) => format!("{p}.{name}"),
        None => name.to_owned(),
    }
}

fn quoted_field(field: &Option<String>) -> String {
    field
        .as_deref()
        .map_or_else(|| "the value".to_owned(), |f| format!("`{f}`"))
}

fn who(place: Place, field: &Option<String>) -> String {
    match (field, place) {
        (Some(f), Place::Body) => format!("`{f}`"),
        (Some(f), Place::Query) => format!("the query parameter `{f}`"),
        (None, Place::Body) => "the body".to_owned(),
        (None, Place::Query) => "the query".to_owned(),
    }
}

/// `X, expected Y` → (`X`, `Y`).
fn split_expected(rest: &str) -> (String, Option<String>) {
    match rest.split_once(", expected ") {
        Some((got, expected)) => (got.to_owned(), Some(expected.to_owned())),
        None => (rest.to_owned(), None),
    }
}

/// The names in serde's "one of `a`, `b`" / "`a` or `b`" / "`a`".
fn options(expected: &str) -> Vec<String> {
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// `` `tank` `` → `tank`.
fn unquote(name: &str) -> String {
    name.trim_matches('`').to_owned()
}

/// `tank` → `"tank"`, as JSON prints a string.
fn json_quote(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// serde's name of what it wanted, in words.
fn expectation(expected: &str) -> String {
    let words = match expected {
        "f32" | "f64" => "a number",
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a whole number, 0 or more",
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "a whole number",
        "a string" | "a borrowed string" | "string" | "a char" => "a string",
        "a boolean" => "true or false",
        "a sequence" => "a list",
        "a map" => "an object",
        "unit" => "null",
        e if e.starts_with("struct ") || e.starts_with("a map") => "an object",
        e if e.starts_with("a tuple") || e.starts_with("tuple") => "a list",
        e if e.starts_with("enum ") || e == "variant identifier" => "one of its names, as a string",
        other => other,
    };
    words.to_owned()
}

/// serde's description of what came (`string "abc"`, ``integer `5` ``, `sequence`), as JSON.
fn unexpected(got: &str) -> String {
    if let Some(s) = got.strip_prefix("string ") {
        return s.to_owned();
    }
    if let Some((_, inner)) = got.split_once('`') {
        return inner.trim_end_matches('`').to_owned();
    }
    match got {
        "sequence" => "a list".to_owned(),
        "map" => "an object".to_owned(),
        "unit value" | "null" | "unit" => "null".to_owned(),
        other => other.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        #[serde(rename = "type")]
        kind: Kind,
        lat: f64,
        count: Option<usize>,
        units: Option<Vec<String>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Kind {
        OnFoot,
        EBike,
        PatrolCar,
    }

    fn body_error(json: &str) -> Described {
        let de = &mut serde_json::Deserializer::from_str(json);
        let err = serde_path_to_error::deserialize::<_, Body>(de).expect_err("refused");
        let raw = err.inner().to_string();
        describe(Place::Body, err.path(), without_position(&raw), |_| None)
    }

    #[test]
    fn a_bad_enum_names_the_field_its_options_and_the_value() {
        let d = body_error(r#"{"type": "tank", "lat": 1}"#);
        assert_eq!(d.field.as_deref(), Some("type"));
        assert_eq!(
            d.message,
            r#"`type` must be one of on_foot, e_bike, patrol_car; got "tank""#
        );
    }

    #[test]
    fn wrong_types_missing_and_unknown_fields_read_as_words() {
        let wrong = body_error(r#"{"type": "e_bike", "lat": "north"}"#);
        assert_eq!(wrong.message, r#"`lat` must be a number; got "north""#);
        let negative = body_error(r#"{"type": "e_bike", "lat": 1, "count": -2}"#);
        assert_eq!(
            negative.message,
            "`count` must be a whole number, 0 or more; got -2"
        );
        let list = body_error(r#"{"type": "e_bike", "lat": 1, "units": [1]}"#);
        assert_eq!(
            (list.field.as_deref(), list.message.as_str()),
            (Some("units[0]"), "`units[0]` must be a string; got 1")
        );
        let missing = body_error(r#"{"type": "e_bike"}"#);
        assert_eq!(missing.message, "`lat` is required");
        let unknown = body_error(r#"{"type": "e_bike", "lat": 1, "colour": "red"}"#);
        assert_eq!(
            unknown.message,
            "`colour` is not known; the body takes type, lat, count, units"
        );
        let not_object = body_error(r#""fire""#);
        assert_eq!(
            not_object.message,
            r#"the body must be an object; got "fire""#
        );
    }

    #[test]
    fn query_numbers_say_what_they_read() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Q {
            limit: Option<u32>,
        }
        let q = "limit=lots";
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(q.as_bytes()));
        let err = serde_path_to_error::deserialize::<_, Q>(de).expect_err("refused");
        let d = describe(Place::Query, err.path(), &err.inner().to_string(), |_| {
            Some("lots".into())
        });
        assert_eq!(
            d.message,
            r#"the query parameter `limit` must be a whole number in range; got "lots""#
        );
    }

    #[test]
    fn syntax_errors_say_where() {
        let err = serde_json::from_str::<serde_json::Value>(r#"{"a": 1,"#).expect_err("bad");
        let raw = err.to_string();
        assert_eq!(
            syntax(without_position(&raw), err.line(), err.column()),
            "the body is not valid JSON: it ends too early (line 1, column 8)"
        );
    }
}
