//! Every error path of the HTTP API answers one shape, over real HTTP against a real server:
//! `{"error": {"code", "message", ...}}` as `application/json`, with a stable code and a message
//! in words. One row per path: axum's extractor refusals (415, 400, 422, 413, query, path), the
//! fallbacks (404, 405 with `Allow`), and the handlers' own refusals.

use fieldlink_e2e::{Options, TestServer};
use reqwest::Method;
use serde_json::{Value, json};

/// Who calls.
#[derive(Debug, Clone, Copy)]
enum Caller {
    Nobody,
    Viewer,
    Admin,
}

/// What the request carries.
#[derive(Debug, Clone)]
enum Body {
    None,
    /// `Content-Type: application/json`.
    Json(Value),
    /// These bytes with this Content-Type (none when `None`).
    Raw(Option<&'static str>, Vec<u8>),
}

/// One error path and what it must answer.
#[derive(Debug)]
struct Row {
    what: &'static str,
    method: Method,
    path: &'static str,
    caller: Caller,
    body: Body,
    status: u16,
    code: &'static str,
    /// Words the message must contain.
    says: &'static str,
    /// The `field` the error names, if it must name one.
    field: Option<&'static str>,
}

fn row(what: &'static str, method: Method, path: &'static str, caller: Caller) -> Row {
    Row {
        what,
        method,
        path,
        caller,
        body: Body::None,
        status: 0,
        code: "",
        says: "",
        field: None,
    }
}

impl Row {
    fn body(mut self, body: Body) -> Row {
        self.body = body;
        self
    }
    fn answers(mut self, status: u16, code: &'static str, says: &'static str) -> Row {
        (self.status, self.code, self.says) = (status, code, says);
        self
    }
    fn field(mut self, field: &'static str) -> Row {
        self.field = Some(field);
        self
    }
}

fn rows() -> Vec<Row> {
    use Caller::*;
    let unit = |kind: &str| json!({"id": "patrol-09", "type": kind});
    let incident = json!({"kind": "fire", "lat": 30.27, "lon": 120.15});
    let too_large = vec![b' '; 3 * 1024 * 1024];
    vec![
        row("no Content-Type", Method::POST, "/api/v1/units", Admin)
            .body(Body::Raw(None, unit("car").to_string().into_bytes()))
            .answers(
                415,
                "unsupported_media_type",
                "Content-Type: application/json",
            ),
        row("a text body", Method::POST, "/api/v1/incidents", Admin)
            .body(Body::Raw(
                Some("text/plain"),
                incident.to_string().into_bytes(),
            ))
            .answers(415, "unsupported_media_type", "got text/plain"),
        row("cameras as XML", Method::POST, "/api/v1/cameras", Admin)
            .body(Body::Raw(Some("application/xml"), b"<cameras/>".to_vec()))
            .answers(415, "unsupported_media_type", "text/csv"),
        row("bad JSON syntax", Method::POST, "/api/v1/units", Admin)
            .body(Body::Raw(
                Some("application/json"),
                br#"{"id": "x","#.to_vec(),
            ))
            .answers(400, "bad_json", "not valid JSON"),
        row("JSON and more", Method::POST, "/api/v1/incidents", Admin)
            .body(Body::Raw(
                Some("application/json"),
                br#"{"kind": "fire", "lat": 1, "lon": 2} x"#.to_vec(),
            ))
            .answers(400, "bad_json", "follows the JSON value"),
        row(
            "an empty required body",
            Method::POST,
            "/api/v1/orders/o1/cancel",
            Admin,
        )
        .body(Body::Raw(Some("application/json"), Vec::new()))
        .answers(400, "bad_json", "the body is empty"),
        row("a bad enum", Method::POST, "/api/v1/units", Admin)
            .body(Body::Json(unit("tank")))
            .answers(
                422,
                "bad_body",
                r#"`type` must be one of on_foot, e_bike, motorcycle, car, other; got "tank""#,
            )
            .field("type"),
        row("a missing field", Method::POST, "/api/v1/incidents", Admin)
            .body(Body::Json(json!({"lat": 30.27, "lon": 120.15})))
            .answers(422, "bad_body", "`kind` is required")
            .field("kind"),
        row("an unknown field", Method::POST, "/api/v1/incidents", Admin)
            .body(Body::Json(
                json!({"kind": "fire", "lat": 1, "lon": 2, "urgent": true}),
            ))
            .answers(422, "bad_body", "`urgent` is not known")
            .field("urgent"),
        row("a wrong type", Method::POST, "/api/v1/incidents", Admin)
            .body(Body::Json(
                json!({"kind": "fire", "lat": "north", "lon": 2}),
            ))
            .answers(422, "bad_body", r#"`lat` must be a number; got "north""#)
            .field("lat"),
        row(
            "a wrong type in a list",
            Method::POST,
            "/api/v1/incidents/i1/dispatch",
            Admin,
        )
        .body(Body::Json(json!({"units": ["u000", 7]})))
        .answers(422, "bad_body", "`units[1]` must be a string; got 7")
        .field("units[1]"),
        row(
            "a list for a talkgroup",
            Method::PUT,
            "/api/v1/talkgroups/tg1",
            Admin,
        )
        .body(Body::Json(json!([1, 2])))
        .answers(422, "bad_body", "must be a talkgroup object"),
        row(
            "a body over the limit",
            Method::POST,
            "/api/v1/incidents",
            Admin,
        )
        .body(Body::Raw(Some("application/json"), too_large))
        .answers(413, "body_too_large", "larger than 2 MiB"),
        row(
            "a bad number in a query",
            Method::GET,
            "/api/v1/streams?radius_m=far",
            Viewer,
        )
        .answers(
            400,
            "bad_query",
            r#"`radius_m` must be a number; got "far""#,
        )
        .field("radius_m"),
        row(
            "a negative limit",
            Method::GET,
            "/api/v1/talkgroups/tg1/log?limit=-1",
            Viewer,
        )
        .answers(400, "bad_query", "`limit` must be a whole number")
        .field("limit"),
        row(
            "a bad time in a query",
            Method::GET,
            "/api/v1/reports/sla?from=yesterday",
            Viewer,
        )
        .answers(400, "bad_time", "is not a date and time"),
        row(
            "a path that is not UTF-8",
            Method::GET,
            "/api/v1/units/%FF",
            Viewer,
        )
        .answers(400, "bad_path", "not UTF-8"),
        row(
            "an unknown route",
            Method::GET,
            "/api/v1/nothing-here",
            Viewer,
        )
        .answers(404, "no_such_endpoint", "/api/v1/nothing-here"),
        row("a wrong method", Method::DELETE, "/api/v1/incidents", Admin).answers(
            405,
            "method_not_allowed",
            "does not take DELETE",
        ),
        row(
            "a wrong method off the API",
            Method::POST,
            "/healthz",
            Nobody,
        )
        .answers(405, "method_not_allowed", "does not take POST"),
        row("no token", Method::GET, "/api/v1/units", Nobody).answers(401, "unauthenticated", ""),
        row("a viewer writes", Method::POST, "/api/v1/units", Viewer)
            .body(Body::Json(unit("car")))
            .answers(403, "forbidden", ""),
        row(
            "an unknown unit",
            Method::GET,
            "/api/v1/units/nobody",
            Viewer,
        )
        .answers(404, "unit_not_found", r#""nobody""#),
        row(
            "an unknown order",
            Method::POST,
            "/api/v1/orders/wo_x/cancel",
            Admin,
        )
        .body(Body::Json(json!({"reason": "duplicate call"})))
        .answers(404, "unknown_order", "unknown order wo_x"),
        row(
            "an unavailable unit",
            Method::POST,
            "/api/v1/incidents/{incident}/dispatch",
            Admin,
        )
        .body(Body::Json(json!({"units": ["u000"]})))
        .answers(
            409,
            "unit_unavailable",
            "unit u000 is offline, not available",
        ),
    ]
}

/// The methods an `Allow` header lists.
fn allowed(headers: &reqwest::header::HeaderMap) -> Vec<String> {
    let allow = headers.get("allow").and_then(|v| v.to_str().ok());
    let mut methods: Vec<String> = (allow.unwrap_or_default().split(','))
        .map(|m| m.trim().to_owned())
        .filter(|m| !m.is_empty())
        .collect();
    methods.sort();
    methods
}

#[tokio::test]
async fn every_error_path_answers_the_one_json_shape() {
    let srv = TestServer::start(Options {
        units: 1,
        ..Default::default()
    })
    .await;
    let (status, created) = srv
        .post(
            "/api/v1/incidents",
            Some(&srv.admin),
            json!({"kind": "fire", "lat": 30.27, "lon": 120.15}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let incident = created["incident"]["id"].as_str().expect("incident id");
    let http = reqwest::Client::new();
    let rows = rows();
    for r in &rows {
        let path = r.path.replace("{incident}", incident);
        let mut req = http.request(r.method.clone(), format!("{}{path}", srv.base));
        req = match r.caller {
            Caller::Nobody => req,
            Caller::Viewer => req.bearer_auth(&srv.viewer),
            Caller::Admin => req.bearer_auth(&srv.admin),
        };
        req = match &r.body {
            Body::None => req,
            Body::Json(v) => req.json(v),
            Body::Raw(content_type, bytes) => {
                let req = req.body(bytes.clone());
                match content_type {
                    Some(t) => req.header("content-type", *t),
                    None => req,
                }
            }
        };
        let resp = req.send().await.expect("HTTP request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body");
        let what = r.what;
        assert_eq!(status, r.status, "{what}: status; body {text}");
        let content_type = headers.get("content-type").and_then(|v| v.to_str().ok());
        assert_eq!(content_type, Some("application/json"), "{what}: {text}");
        let body: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{what}: {e}"));
        let error = body["error"]
            .as_object()
            .unwrap_or_else(|| panic!("{what}: {body}"));
        assert_eq!(error["code"], json!(r.code), "{what}: {body}");
        let message = error["message"].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "{what}: a message: {body}");
        assert!(
            message.contains(r.says),
            "{what}: {message:?} says {:?}",
            r.says
        );
        for rust_ish in ["(\"", "Some(", "expected f64", "at line", "Failed to", "::"] {
            assert!(
                !message.contains(rust_ish),
                "{what}: words, not Rust: {message}"
            );
        }
        if let Some(field) = r.field {
            assert_eq!(error["field"], json!(field), "{what}: {body}");
        }
        if status == 405 {
            let methods = allowed(&headers);
            let expected: &[&str] = match path.as_str() {
                "/healthz" => &["GET", "HEAD"],
                _ => &["GET", "HEAD", "POST"],
            };
            assert_eq!(methods, expected, "{what}: the Allow header");
        }
    }
    assert_eq!(rows.len(), 25, "every row ran");
    srv.stop().await;
}

#[tokio::test]
async fn open_orders_are_named_in_words() {
    // Closing an incident that still has an order: the refusal lists the order ids plainly.
    let clock = fieldlink_e2e::dispatch::manual_clock();
    let srv = TestServer::start_with_clock(
        Options {
            units: 2,
            ..Default::default()
        },
        clock.clone(),
    )
    .await;
    let (a, b) = (srv.handset(0).await, srv.handset(1).await);
    let site = fieldlink_e2e::dispatch::SITE;
    let (status, created) = srv
        .post(
            "/api/v1/incidents",
            Some(&srv.admin),
            json!({"kind": "dispute", "lat": site.0, "lon": site.1}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["incident"]["id"].as_str().expect("id").to_owned();
    fieldlink_e2e::dispatch::place(&srv, &clock, &a, &b, &id).await;
    let order = fieldlink_e2e::dispatch::one_click(&srv, &id, "u000").await;

    let path = format!("/api/v1/incidents/{id}/close");
    let (status, body) = srv.post(&path, Some(&srv.admin), json!({})).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "orders_open", "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert_eq!(
        message,
        format!("incident {id} still has open orders: {order}; cancel them or wait until they end")
    );
    srv.stop().await;
}
