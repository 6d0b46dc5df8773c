//! The geofence and grid API end to end: roles, every refusal with its code, create, replace,
//! list and delete, against a real server. Units moving through areas are in `zones.rs`.

use fieldlink_e2e::{Options, TestServer};
use reqwest::Method;
use serde_json::{Value, json};

/// A square grid of ±0.001° around (30.26, 120.17).
fn square(id: &str, members: &[&str]) -> Value {
    fieldlink_e2e::square_grid(id, (30.26, 120.17), 0.001, members)
}

#[tokio::test]
async fn writes_need_a_dispatcher_and_bad_bodies_are_explained() {
    let srv = TestServer::start(Options {
        units: 1,
        ..Default::default()
    })
    .await;
    let viewer = Some(srv.viewer.as_str());
    let admin = Some(srv.admin.as_str());
    let dispatcher = srv.token(fieldlink_store::Role::Dispatcher).await;
    for (method, path) in [
        (Method::POST, "/api/v1/grids"),
        (Method::PUT, "/api/v1/grids/g"),
        (Method::POST, "/api/v1/geofences"),
    ] {
        let (status, body) = srv.send(method, path, viewer, Some(square("g", &[]))).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (403, Some("forbidden")),
            "{path}"
        );
    }
    assert_eq!(
        srv.post("/api/v1/grids", None, square("g", &[])).await.0,
        401
    );

    let circle = json!({"type": "Feature", "id": "scene",
        "geometry": {"type": "Point", "coordinates": [120.17, 30.26]},
        "properties": {"name": "Scene", "radius_m": 80}});
    let (status, body) = srv
        .post("/api/v1/geofences", Some(&dispatcher), circle.clone())
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["properties"]["radius_m"], 80.0);
    let (status, body) = srv
        .post("/api/v1/grids", admin, square("g", &["u000"]))
        .await;
    assert_eq!(status, 201, "{body}");

    let mut no_radius = circle.clone();
    no_radius["properties"] = json!({});
    let mut line = square("g9", &[]);
    line["geometry"] = json!({"type": "LineString", "coordinates": [[120.1, 30.2], [120.2, 30.2]]});
    let mut open_ring = square("g9", &[]);
    open_ring["geometry"]["coordinates"][0]
        .as_array_mut()
        .unwrap()
        .pop();
    for (path, body, status, code) in [
        ("/api/v1/grids", square("g", &[]), 409, "already_exists"),
        ("/api/v1/grids", square("scene", &[]), 409, "already_exists"),
        ("/api/v1/grids", line, 400, "bad_geometry"),
        ("/api/v1/grids", open_ring, 400, "bad_geometry"),
        ("/api/v1/geofences", no_radius, 400, "bad_radius"),
        (
            "/api/v1/grids",
            square("g9", &["nobody"]),
            400,
            "unknown_member",
        ),
        ("/api/v1/grids", square("bad id", &[]), 400, "bad_id"),
        ("/api/v1/grids", json!({"id": "x"}), 400, "bad_feature"),
    ] {
        let (got, answer) = srv.post(path, admin, body).await;
        assert_eq!(
            (got, answer["error"]["code"].as_str()),
            (status, Some(code)),
            "{answer}"
        );
    }
    let (status, body) = srv
        .send(
            Method::PUT,
            "/api/v1/grids/scene",
            admin,
            Some(square("scene", &[])),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("kind_mismatch"))
    );
    let (status, body) = srv
        .send(
            Method::PUT,
            "/api/v1/grids/g",
            admin,
            Some(square("other", &[])),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("id_mismatch"))
    );

    // PUT replaces; lists are FeatureCollections of their kind only.
    let mut renamed = square("g", &[]);
    renamed["properties"]["name"] = json!("湖滨 renamed");
    let (status, body) = srv
        .send(Method::PUT, "/api/v1/grids/g", admin, Some(renamed))
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, grids) = srv.get("/api/v1/grids", viewer).await;
    assert_eq!(grids["type"], "FeatureCollection");
    assert_eq!(grids["features"].as_array().unwrap().len(), 1);
    assert_eq!(grids["features"][0]["properties"]["name"], "湖滨 renamed");
    assert_eq!(grids["features"][0]["properties"]["members"], json!([]));
    let (_, fences) = srv.get("/api/v1/geofences", viewer).await;
    assert_eq!(fences["features"][0]["id"], "scene");
    let (status, body) = srv.get("/api/v1/units?grid=scene", viewer).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("grid_not_found"))
    );
    assert_eq!(srv.get("/api/v1/grids/scene", viewer).await.0, 404);

    assert_eq!(
        srv.send(Method::DELETE, "/api/v1/grids/g", viewer, None)
            .await
            .0,
        403
    );
    assert_eq!(
        srv.send(Method::DELETE, "/api/v1/grids/g", admin, None)
            .await
            .0,
        204
    );
    assert_eq!(srv.get("/api/v1/grids/g", viewer).await.0, 404);
    assert_eq!(
        srv.send(Method::DELETE, "/api/v1/grids/g", admin, None)
            .await
            .0,
        404
    );
    assert!(
        srv.server
            .state()
            .store
            .get_zone("g")
            .await
            .unwrap()
            .is_none()
    );
    srv.stop().await;
}
