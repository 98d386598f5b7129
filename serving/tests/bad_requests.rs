//! Every class of bad request gets a 400 problem+json naming the parameter; hostile requests never
//! produce a 5xx; unknown routes are 404 problems and other methods 405 problems.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use sqlx::PgPool;

const OK_RANGE: &str = "from=2026-11-21T00:00:00Z&to=2026-11-22T00:00:00Z";

#[sqlx::test(migrations = "../migrations")]
async fn bad_parameters_are_400_problems(pool: PgPool) {
    let app = router(&pool);
    let cases: Vec<(String, &str)> =
        vec![
        // Missing, empty, duplicated, unknown.
        ("/v1/source-of-play".into(), "`from` is missing"),
        (
            "/v1/source-of-play?from=2026-11-21T00:00:00Z".into(),
            "`to` is missing",
        ),
        (
            "/v1/source-of-play?from=&to=2026-11-22T00:00:00Z".into(),
            "`from` is empty",
        ),
        (
            format!("/v1/source-of-play?{OK_RANGE}&country="),
            "`country` is empty",
        ),
        (
            format!("/v1/source-of-play?{OK_RANGE}&from=2026-11-21T00:00:00Z"),
            "`from` is given more than once",
        ),
        (
            format!("/v1/source-of-play?{OK_RANGE}&device=tv&device=tv"),
            "`device` is given more than once",
        ),
        (
            format!("/v1/source-of-play?{OK_RANGE}&contry=US"),
            "unknown parameter `contry`",
        ),
        (
            format!("/v1/source-of-play?{OK_RANGE}&play_row=my_list"),
            "unknown parameter `play_row`",
        ),
        // Bad timestamps.
        (
            "/v1/source-of-play?from=yesterday&to=2026-11-22T00:00:00Z".into(),
            "`from` = `yesterday`",
        ),
        (
            "/v1/source-of-play?from=2026-11-21&to=2026-11-22T00:00:00Z".into(),
            "not an RFC 3339",
        ),
        (
            "/v1/source-of-play?from=2026-11-21T00:00:00&to=2026-11-22T00:00:00Z".into(),
            "with an offset",
        ),
        (
            "/v1/source-of-play?from=2026-13-21T00:00:00Z&to=2026-11-22T00:00:00Z".into(),
            "not an RFC 3339",
        ),
        (
            "/v1/source-of-play?from=2026-11-21T00:00:00Z&to=1700000000".into(),
            "`to` = `1700000000`",
        ),
        (
            "/v1/source-of-play?from=%zz&to=2026-11-22T00:00:00Z".into(),
            "percent-escape",
        ),
        (
            "/v1/source-of-play?from=%FF%FE&to=2026-11-22T00:00:00Z".into(),
            "not UTF-8",
        ),
        // from >= to.
        (
            "/v1/source-of-play?from=2026-11-22T00:00:00Z&to=2026-11-22T00:00:00Z".into(),
            "must be before `to`",
        ),
        (
            "/v1/source-of-discovery?from=2026-11-23T00:00:00Z&to=2026-11-22T00:00:00Z".into(),
            "must be before `to`",
        ),
        // Ranges over the limits.
        (
            "/v1/source-of-play?from=2026-10-01T00:00:00Z&to=2026-11-01T00:00:01Z".into(),
            "longer than 31 days",
        ),
        (
            "/v1/source-of-play?from=2025-11-21T00:00:00Z&to=2026-11-22T00:00:01Z&granularity=day"
                .into(),
            "longer than 366 days",
        ),
        (
            "/v1/source-of-play?from=0001-01-01T00:00:00Z&to=9999-12-31T23:59:59Z&granularity=day"
                .into(),
            "longer than 366 days",
        ),
        // Unknown granularity and filter values.
        (
            format!("/v1/source-of-play?{OK_RANGE}&granularity=week"),
            "`granularity` = `week`",
        ),
        (
            format!("/v1/source-of-play?{OK_RANGE}&granularity=HOUR"),
            "`granularity`",
        ),
        (
            format!("/v1/source-of-play?{OK_RANGE}&country=us"),
            "`country` = `us`",
        ),
        (
            format!("/v1/source-of-play?{OK_RANGE}&country=ZZ"),
            "`country` = `ZZ`",
        ),
        (
            format!("/v1/source-of-play?{OK_RANGE}&country=USA"),
            "`country`",
        ),
        (
            format!("/v1/source-of-play?{OK_RANGE}&device=Smart%20TV"),
            "`device` = `Smart TV`",
        ),
        (
            format!("/v1/source-of-play?{OK_RANGE}&device={}", "a".repeat(65)),
            "`device`",
        ),
        (
            format!("/v1/source-of-play?{OK_RANGE}&new_launch=yes"),
            "`new_launch` = `yes`",
        ),
        (
            format!("/v1/source-of-play?{OK_RANGE}&new_launch=1"),
            "`new_launch`",
        ),
        (
            format!("/v1/source-of-play?{OK_RANGE}&genre={}", "g".repeat(300)),
            "`genre`",
        ),
        (
            format!("/v1/source-of-play?{OK_RANGE}&genre=%00"),
            "`genre`",
        ),
        (
            format!("/v1/source-of-discovery?{OK_RANGE}&play_row=My-List"),
            "`play_row` = `My-List`",
        ),
        // Video ids.
        (
            format!("/v1/videos/abc/discovery?{OK_RANGE}"),
            "video id `abc`",
        ),
        (format!("/v1/videos/0/discovery?{OK_RANGE}"), "is 0"),
        (
            format!("/v1/videos/-5/discovery?{OK_RANGE}"),
            "not a decimal integer",
        ),
        (
            format!("/v1/videos/18446744073709551616/discovery?{OK_RANGE}"),
            "too large",
        ),
        (
            format!("/v1/videos/99999999999999999999999999/discovery?{OK_RANGE}"),
            "too large",
        ),
        (
            format!("/v1/videos/1e3/discovery?{OK_RANGE}"),
            "not a decimal integer",
        ),
        ("/v1/videos/1/discovery".into(), "`from` is missing"),
        (format!("/v1/videos/%FF/discovery?{OK_RANGE}"), "not valid UTF-8"),
        (
            format!("/v1/videos/1/discovery?{OK_RANGE}&granularity=day"),
            "unknown parameter `granularity`",
        ),
        (
            "/v1/videos/1/discovery?from=2025-01-01T00:00:00Z&to=2026-11-22T00:00:00Z".into(),
            "longer than 366 days",
        ),
        (
            "/v1/videos/1/discovery?from=2026-11-22T00:00:00Z&to=2026-11-21T00:00:00Z".into(),
            "must be before",
        ),
    ];
    for (uri, needle) in &cases {
        let a = get(&app, uri).await;
        assert_problem(&a, 400, needle);
        // No internals in the sentence.
        let detail = a.json["detail"].as_str().unwrap();
        assert!(
            !detail.contains("SELECT") && !detail.contains("sqlx"),
            "{uri}: {detail}"
        );
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn unknown_routes_and_methods_are_problems(pool: PgPool) {
    let app = router(&pool);
    let a = get(&app, "/v2/source-of-play").await;
    assert_problem(&a, 404, "/v2/source-of-play");
    let a = get(&app, "/v1/videos/1/discover").await;
    assert_problem(&a, 404, "no resource");
    let a = get(&app, "/v1/videos//discovery").await;
    assert!(a.status == 400 || a.status == 404, "{}", a.status);
    assert_eq!(a.content_type, "application/problem+json");
    let a = send(&app, "POST", &format!("/v1/source-of-play?{OK_RANGE}")).await;
    assert_problem(&a, 405, "POST is not allowed");
    assert!(a.headers.get("allow").is_some());
    let a = send(&app, "DELETE", "/healthz").await;
    assert_problem(&a, 405, "not allowed");
    // HEAD works where GET does.
    let a = send(&app, "HEAD", "/healthz").await;
    assert_eq!(a.status, 200);
}

#[sqlx::test(migrations = "../migrations")]
async fn hostile_requests_never_get_a_5xx(pool: PgPool) {
    let app = router(&pool);
    let hostile = [
        "/v1/source-of-play?from=2026-11-21T00:00:00Z&to=2026-11-22T00:00:00Z&genre=%27%3B%20DROP%20TABLE%20rt_hourly%3B%20--",
        "/v1/source-of-play?from=2026-11-21T00:00:00Z&to=2026-11-22T00:00:00Z&genre=%E2%98%83",
        "/v1/source-of-play?from=0000-01-01T00:00:00Z&to=0000-01-02T00:00:00Z",
        "/v1/source-of-play?from=9999-12-31T00:00:00Z&to=9999-12-31T23:59:59.999Z",
        "/v1/source-of-play?from=1969-12-31T00:00:00Z&to=1970-01-01T01:00:00Z",
        "/v1/source-of-play?from=2026-11-21T00:00:00.123456789Z&to=2026-11-21T01:00:00-23:59",
        "/v1/source-of-play?from=2026-11-21T00:00:00Z&to=2026-11-22T00:00:00Z&&&",
        "/v1/source-of-play?=&&=x",
        "/v1/source-of-play?from",
        "/v1/source-of-discovery?from=2026-11-21T00:00:00Z&to=2026-11-22T00:00:00Z&play_row=unattributed",
        "/v1/videos/%F0%9F%92%A9/discovery?from=2026-11-21T00:00:00Z&to=2026-11-22T00:00:00Z",
        "/v1/videos/%FF/discovery?from=2026-11-21T00:00:00Z&to=2026-11-22T00:00:00Z",
        "/v1/videos/18446744073709551615/discovery?from=2026-11-21T00:00:00Z&to=2026-11-22T00:00:00Z",
        "/v1/freshness?x=1",
        "/../../etc/passwd",
        "/assets/../Cargo.toml",
    ];
    for uri in hostile {
        let a = get(&app, uri).await;
        assert!(
            a.status.as_u16() < 500,
            "{uri} gave {}: {}",
            a.status,
            a.text
        );
        if a.status.as_u16() >= 400 {
            assert_eq!(a.content_type, "application/problem+json", "{uri}");
        }
    }
    // The injection attempt was data, not SQL.
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM rt_hourly")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 0);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_request_body_over_the_limit_is_413(pool: PgPool) {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;
    let app = router(&pool);
    let req = Request::builder()
        .method("GET")
        .uri("/healthz")
        .header("content-length", "1000000")
        .body(Body::from(vec![b'x'; 1_000_000]))
        .unwrap();
    let resp = app.oneshot(req).await.unwrap();
    assert_eq!(resp.status(), 413);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    let j: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(j["detail"].as_str().unwrap().contains("no request body"));
}

#[sqlx::test(migrations = "../migrations")]
async fn a_request_over_the_timeout_is_503(pool: PgPool) {
    let config = playsource_serving::Config {
        request_timeout: std::time::Duration::from_millis(1),
        ..Default::default()
    };
    let app = playsource_serving::app(playsource_serving::AppState::new(pool.clone(), config));
    // Make the database slow: hold a lock the query needs.
    let mut blocker = pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE rt_hourly IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *blocker)
        .await
        .unwrap();
    let a = get(
        &app,
        "/v1/source-of-play?from=2026-11-21T00:00:00Z&to=2026-11-22T00:00:00Z",
    )
    .await;
    assert_problem(&a, 503, "took longer than");
    blocker.rollback().await.unwrap();
}
