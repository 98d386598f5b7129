//! Health, readiness, metrics, the OpenAPI document, the dashboard assets, and the read-only role.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use playsource_serving::{app, AppState, Config};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

#[sqlx::test(migrations = "../migrations")]
async fn health_ready_metrics(pool: PgPool) {
    let app = router(&pool);
    let a = get(&app, "/healthz").await;
    assert_eq!(a.status, 200);
    assert_eq!(a.json["status"], "ok");
    let a = get(&app, "/readyz").await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json["status"], "ready");
    // Traffic on a few routes, one of them batch-complete twice (a cache hit).
    insert_hourly(
        &pool,
        "batch_hourly",
        &[h("2026-11-20T01:00:00Z", "a", "a", 1)],
    )
    .await;
    complete_day(&pool, "2026-11-20").await;
    for _ in 0..2 {
        get(
            &app,
            "/v1/source-of-play?from=2026-11-20T00:00:00Z&to=2026-11-21T00:00:00Z",
        )
        .await;
    }
    get(&app, "/v1/source-of-play?from=bad&to=2026-11-21T00:00:00Z").await;
    get(&app, "/no/such/route").await;
    let m = get(&app, "/metrics").await;
    assert_eq!(m.status, 200);
    assert!(
        m.content_type.starts_with("text/plain"),
        "{}",
        m.content_type
    );
    let text = &m.text;
    assert!(
        text.contains(r#"playsource_http_requests_total{route="/v1/source-of-play",method="GET",status="200"}"#),
        "{text}"
    );
    assert!(
        text.contains(r#"route="/v1/source-of-play",method="GET",status="400""#),
        "{text}"
    );
    assert!(text.contains(r#"route="unmatched""#), "{text}");
    assert!(
        text.contains("playsource_http_request_duration_seconds_bucket{"),
        "{text}"
    );
    assert!(
        text.contains("playsource_serving_cache_hits_total"),
        "{text}"
    );
    assert!(
        text.contains("playsource_serving_cache_misses_total"),
        "{text}"
    );
    assert!(!text.contains("/no/such/route"));
}

/// The value of an unlabelled gauge in a Prometheus text exposition.
fn gauge(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[sqlx::test(migrations = "../migrations")]
async fn metrics_show_the_latest_batch_complete_day(pool: PgPool) {
    let app = router(&pool);
    // No day complete yet: the count is 0 and the day gauge is not there.
    let m = get(&app, "/metrics").await;
    assert_eq!(m.status, 200);
    assert_eq!(
        gauge(&m.text, "playsource_batch_complete_days"),
        Some(0.0),
        "{}",
        m.text
    );
    assert_eq!(
        gauge(&m.text, "playsource_batch_latest_complete_day_seconds"),
        None
    );

    // A day is published: the next scrape (no API request in between) shows it.
    complete_day(&pool, "2026-11-20").await;
    complete_day(&pool, "2026-11-21").await;
    tokio::time::sleep(playsource_serving::cache::FRESHNESS_MAX_AGE).await;
    let m = get(&app, "/metrics").await;
    let day = gauge(&m.text, "playsource_batch_latest_complete_day_seconds");
    assert_eq!(
        day,
        Some(1_795_219_200.0),
        "2026-11-21T00:00:00Z; {}",
        m.text
    );
    assert_eq!(gauge(&m.text, "playsource_batch_complete_days"), Some(2.0));
    let g1 = gauge(&m.text, "playsource_batch_generation").unwrap();

    // A re-run of an older day moves the generation, not the day.
    complete_day(&pool, "2026-11-20").await;
    tokio::time::sleep(playsource_serving::cache::FRESHNESS_MAX_AGE).await;
    let m = get(&app, "/metrics").await;
    assert_eq!(
        gauge(&m.text, "playsource_batch_latest_complete_day_seconds"),
        Some(1_795_219_200.0)
    );
    assert!(gauge(&m.text, "playsource_batch_generation").unwrap() > g1);
}

#[sqlx::test(migrations = "../migrations")]
async fn openapi_describes_every_route(pool: PgPool) {
    let app = router(&pool);
    let a = get(&app, "/openapi.json").await;
    assert_eq!(a.status, 200);
    assert!(a.content_type.starts_with("application/json"));
    let doc = &a.json;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/v1/source-of-play",
        "/v1/source-of-discovery",
        "/v1/videos/{video_id}/discovery",
        "/v1/freshness",
        "/healthz",
        "/readyz",
        "/metrics",
        "/",
    ] {
        assert!(paths.contains_key(p), "{p} missing from {:?}", paths.keys());
        assert!(paths[p]["get"].is_object(), "{p}");
    }
    // Every documented path is actually routed (no 404), and vice versa for the API.
    for p in paths.keys() {
        let uri = p.replace("{video_id}", "1");
        let a = get(&app, &uri).await;
        assert_ne!(a.status, 404, "{uri}");
    }
    let sod = &paths["/v1/source-of-discovery"]["get"]["parameters"];
    let names: Vec<&str> = sod
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"play_row") && names.contains(&"from") && names.contains(&"granularity")
    );
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for s in [
        "SeriesResponse",
        "Bucket",
        "RowShare",
        "Source",
        "Problem",
        "VideoDiscovery",
    ] {
        assert!(schemas.contains_key(s), "schema {s} missing");
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn dashboard_assets_are_embedded(pool: PgPool) {
    let app = router(&pool);
    let a = get(&app, "/").await;
    assert_eq!(a.status, 200);
    assert!(a.content_type.starts_with("text/html"));
    assert!(a.text.contains("/assets/dashboard.js") && a.text.contains("Source of Discovery"));
    assert!(
        !a.text.contains("http://") && !a.text.contains("https://"),
        "no CDN"
    );
    let a = get(&app, "/assets/dashboard.js").await;
    assert!(a.content_type.starts_with("text/javascript"));
    assert!(a.text.contains("/v1/source-of-play"));
    let a = get(&app, "/assets/dashboard.css").await;
    assert!(a.content_type.starts_with("text/css"));
}

#[sqlx::test(migrations = "../migrations")]
async fn the_reader_role_can_serve_but_not_write(pool: PgPool) {
    insert_hourly(
        &pool,
        "rt_hourly",
        &[h("2026-11-21T00:00:00Z", "a", "a", 4)],
    )
    .await;
    let db: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&pool)
        .await
        .unwrap();
    let url = format!("postgres://playsource_reader@127.0.0.1:5432/{db}");
    let reader = PgPoolOptions::new()
        .max_connections(2)
        .connect(&url)
        .await
        .unwrap();
    let app = app(AppState::new(reader.clone(), Config::default()));
    let a = get(
        &app,
        "/v1/source-of-play?from=2026-11-21T00:00:00Z&to=2026-11-21T01:00:00Z",
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json["series"][0]["plays"], 4);
    let a = get(
        &app,
        "/v1/videos/1/discovery?from=2026-11-21T00:00:00Z&to=2026-11-22T00:00:00Z",
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let denied = sqlx::query("DELETE FROM rt_hourly").execute(&reader).await;
    let code = denied
        .unwrap_err()
        .as_database_error()
        .unwrap()
        .code()
        .unwrap()
        .into_owned();
    assert_eq!(code, "42501", "insufficient_privilege");
    reader.close().await;
}
