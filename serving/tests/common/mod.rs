//! Helpers shared by the serving tests: an app over a test database, requests through
//! `tower::ServiceExt::oneshot`, and direct inserts into the views.
#![allow(dead_code, clippy::unwrap_used)]

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use playsource_serving::{app, AppState, Config};
use serde_json::Value;
use sqlx::PgPool;
use tower::ServiceExt;

/// A state over the test pool with default settings.
pub fn state(pool: &PgPool) -> AppState {
    AppState::new(pool.clone(), Config::default())
}

/// An answer: status, content type, body as JSON (Null when not JSON), raw body.
pub struct Answer {
    pub status: StatusCode,
    pub content_type: String,
    pub json: Value,
    pub text: String,
    pub headers: axum::http::HeaderMap,
}

/// Sends one request through the router.
pub async fn send(router: &Router, method: &str, uri: &str) -> Answer {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::empty())
        .unwrap();
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = axum::body::to_bytes(resp.into_body(), 64 << 20)
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Answer {
        status,
        content_type,
        json,
        text,
        headers,
    }
}

/// GET through a fresh app over `pool`.
pub async fn get(router: &Router, uri: &str) -> Answer {
    send(router, "GET", uri).await
}

/// The app over the test pool.
pub fn router(pool: &PgPool) -> Router {
    app(state(pool))
}

/// Asserts a problem+json answer with the given status and a detail mentioning `needle`.
pub fn assert_problem(a: &Answer, status: u16, needle: &str) {
    assert_eq!(a.status.as_u16(), status, "body: {}", a.text);
    assert_eq!(
        a.content_type, "application/problem+json",
        "body: {}",
        a.text
    );
    assert_eq!(a.json["status"], status);
    assert!(a.json["type"].as_str().unwrap().starts_with("https://"));
    assert!(!a.json["title"].as_str().unwrap().is_empty());
    let detail = a.json["detail"].as_str().unwrap();
    assert!(
        detail.contains(needle),
        "detail {detail:?} should mention {needle:?}"
    );
}

/// One row of an hourly view.
#[derive(Clone, Debug)]
pub struct Hourly<'a> {
    pub hour: &'a str,
    pub country: &'a str,
    pub device: &'a str,
    pub sop: &'a str,
    pub sod: &'a str,
    pub genre: &'a str,
    pub new_launch: bool,
    pub plays: i64,
}

/// A row with defaults for everything but hour, rows and plays.
pub fn h<'a>(hour: &'a str, sop: &'a str, sod: &'a str, plays: i64) -> Hourly<'a> {
    Hourly {
        hour,
        country: "US",
        device: "tv",
        sop,
        sod,
        genre: "drama",
        new_launch: false,
        plays,
    }
}

/// Inserts rows into `rt_hourly` or `batch_hourly`.
pub async fn insert_hourly(pool: &PgPool, table: &str, rows: &[Hourly<'_>]) {
    assert!(table == "rt_hourly" || table == "batch_hourly");
    for r in rows {
        sqlx::query(&format!(
            "INSERT INTO {table} (hour, country, device, sop_row, sod_row, genre, new_launch, plays) \
             VALUES ($1::timestamptz, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(r.hour)
        .bind(r.country)
        .bind(r.device)
        .bind(r.sop)
        .bind(r.sod)
        .bind(r.genre)
        .bind(r.new_launch)
        .bind(r.plays)
        .execute(pool)
        .await
        .unwrap();
    }
}

/// Inserts rows into `rt_video_daily` or `batch_video_daily`.
pub async fn insert_video(pool: &PgPool, table: &str, rows: &[(&str, u64, &str, i64)]) {
    assert!(table == "rt_video_daily" || table == "batch_video_daily");
    for (day, video, sod, plays) in rows {
        sqlx::query(&format!(
            "INSERT INTO {table} (day, video_id, sod_row, plays) VALUES ($1::date, $2::text::numeric, $3, $4)"
        ))
        .bind(day)
        .bind(video.to_string())
        .bind(sod)
        .bind(plays)
        .execute(pool)
        .await
        .unwrap();
    }
}

/// Marks a day batch-complete (or republishes it: a new generation).
pub async fn complete_day(pool: &PgPool, day: &str) {
    sqlx::query(
        "INSERT INTO batch_days (day, plays, impressions) VALUES ($1::date, 0, 0) \
         ON CONFLICT (day) DO UPDATE SET generation = nextval('batch_generation'), completed_at = now()",
    )
    .bind(day)
    .execute(pool)
    .await
    .unwrap();
}

/// Sets the stream's high-water mark of one partition.
pub async fn set_high_water(pool: &PgPool, partition: i32, ts: &str) {
    sqlx::query(
        "INSERT INTO stream_offsets (group_id, topic, partition, next_offset, high_water) \
         VALUES ('g', 'plays', $1, 0, $2::timestamptz)",
    )
    .bind(partition)
    .bind(ts)
    .execute(pool)
    .await
    .unwrap();
}

/// The (row_type, plays, share) triples of a bucket or a video answer.
pub fn rows_of(v: &Value) -> Vec<(String, i64, f64)> {
    v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["row_type"].as_str().unwrap().to_owned(),
                r["plays"].as_i64().unwrap(),
                r["share"].as_f64().unwrap(),
            )
        })
        .collect()
}
