//! The serving layer's Prometheus metrics: names, the recorder, the per-route middleware and the
//! `/metrics` endpoint.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::merge::Freshness;
use crate::replica::ReplicaState;
use crate::AppState;

/// Requests answered, by `route`, `method` and `status`.
pub const HTTP_REQUESTS: &str = "playsource_http_requests_total";
/// Request latency in seconds, by `route` and `method` (histogram).
pub const HTTP_DURATION: &str = "playsource_http_request_duration_seconds";
/// Answers served from the result cache.
pub const CACHE_HITS: &str = "playsource_serving_cache_hits_total";
/// Cacheable lookups that missed the result cache.
pub const CACHE_MISSES: &str = "playsource_serving_cache_misses_total";
/// Times the cache was emptied because the batch view was (re)published.
pub const CACHE_INVALIDATIONS: &str = "playsource_serving_cache_invalidations_total";
/// Requests refused with 503 because the database was unreachable or too slow.
pub const DB_UNAVAILABLE: &str = "playsource_serving_db_unavailable_total";
/// Connections closed on accept because [`crate::conn::ConnLimits::max_connections`] were open.
pub const CONNECTIONS_REJECTED: &str = "playsource_serving_connections_rejected_total";
/// Connections closed by the server, by `reason` (`header_timeout`: the request head did not
/// arrive in time; `idle`: no byte moved either way for the idle timeout).
pub const CONNECTIONS_CLOSED: &str = "playsource_serving_connections_closed_total";
/// Connections open now (gauge).
pub const CONNECTIONS_OPEN: &str = "playsource_serving_connections_open";
/// Requests answered 429 because the bound on distinct uncached queries in flight was reached.
pub const QUERIES_SHED: &str = "playsource_serving_queries_shed_total";
/// Unix time (seconds) of 00:00 UTC of the latest batch-complete day (gauge; absent until a day
/// is complete). Alert when it is more than two days and a few hours old.
pub const BATCH_LATEST_COMPLETE_DAY: &str = "playsource_batch_latest_complete_day_seconds";
/// Number of batch-complete days (gauge).
pub const BATCH_COMPLETE_DAYS: &str = "playsource_batch_complete_days";
/// Greatest publish generation in `batch_days` (gauge; moves on every publish or re-run).
pub const BATCH_GENERATION: &str = "playsource_batch_generation";

/// Series answered from the in-memory replica.
pub const REPLICA_ANSWERS: &str = "playsource_serving_replica_answers_total";
/// Series the replica could not answer (answered by SQL), by `reason` (`stale`: something
/// committed since it was read; `not_loaded`; `outside_window`: the range starts before the
/// window; `check_failed`: the snapshot check met a database error).
pub const REPLICA_FALLBACKS: &str = "playsource_serving_replica_fallbacks_total";
/// Replica loads, by `part` (`batch`: after a publish; `realtime`: every reload).
pub const REPLICA_RELOADS: &str = "playsource_serving_replica_reloads_total";
/// Seconds the last load of a replica `part` took (gauge).
pub const REPLICA_LOAD_SECONDS: &str = "playsource_serving_replica_load_seconds";
/// View rows held by the replica, by `part` (gauge).
pub const REPLICA_ROWS: &str = "playsource_serving_replica_rows";
/// Estimated bytes held by the replica (gauge).
pub const REPLICA_BYTES: &str = "playsource_serving_replica_bytes";

/// How long a scrape of `/metrics` waits for the batch freshness before rendering without it.
const SCRAPE_FRESHNESS_WAIT: Duration = Duration::from_secs(2);

/// Latency buckets, seconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide Prometheus recorder, installed on first use. If another recorder was
/// installed before (by an embedding program), a private one is returned and a warning logged.
pub fn prometheus() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.to_owned()), &LATENCY_BUCKETS);
            let builder = match builder {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e, "latency buckets refused; latency is a summary");
                    PrometheusBuilder::new()
                }
            };
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!(
                    "a metrics recorder is already installed; /metrics shows only its own"
                );
            }
            describe();
            handle
        })
        .clone()
}

fn describe() {
    metrics::describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by route, method and status."
    );
    metrics::describe_histogram!(
        HTTP_DURATION,
        metrics::Unit::Seconds,
        "HTTP request latency, by route and method."
    );
    metrics::describe_counter!(CACHE_HITS, "Answers served from the result cache.");
    metrics::describe_counter!(
        CACHE_MISSES,
        "Cacheable lookups that missed the result cache."
    );
    metrics::describe_counter!(
        CACHE_INVALIDATIONS,
        "Times the result cache was emptied after a batch publish."
    );
    metrics::describe_counter!(
        DB_UNAVAILABLE,
        "Requests answered 503 because Postgres was unreachable or too slow."
    );
    metrics::describe_counter!(
        CONNECTIONS_REJECTED,
        "Connections closed on accept because the connection cap was reached."
    );
    metrics::describe_counter!(
        CONNECTIONS_CLOSED,
        "Connections closed by the server, by reason (header_timeout, idle)."
    );
    metrics::describe_gauge!(CONNECTIONS_OPEN, "Connections open now.");
    metrics::describe_counter!(
        QUERIES_SHED,
        "Requests answered 429 because too many distinct uncached queries were in flight."
    );
    metrics::describe_gauge!(
        BATCH_LATEST_COMPLETE_DAY,
        metrics::Unit::Seconds,
        "Unix time of 00:00 UTC of the latest batch-complete day."
    );
    metrics::describe_counter!(
        REPLICA_ANSWERS,
        "Series answered from the in-memory replica."
    );
    metrics::describe_counter!(
        REPLICA_FALLBACKS,
        "Series answered by SQL because the replica was stale or the range outside its window."
    );
    metrics::describe_counter!(REPLICA_RELOADS, "Replica loads, by part.");
    metrics::describe_gauge!(
        REPLICA_LOAD_SECONDS,
        metrics::Unit::Seconds,
        "Duration of the last replica load, by part."
    );
    metrics::describe_gauge!(REPLICA_ROWS, "View rows held by the replica, by part.");
    metrics::describe_gauge!(
        REPLICA_BYTES,
        metrics::Unit::Bytes,
        "Estimated memory held by the replica."
    );
    metrics::describe_gauge!(BATCH_COMPLETE_DAYS, "Number of batch-complete days.");
    metrics::describe_gauge!(
        BATCH_GENERATION,
        "Greatest publish generation of the batch view."
    );
}

/// Publishes the batch view's state as read by the freshness watcher.
pub fn record_freshness(f: &Freshness) {
    let (days, generation) = f.version;
    metrics::gauge!(BATCH_COMPLETE_DAYS).set(days as f64);
    metrics::gauge!(BATCH_GENERATION).set(generation as f64);
    if let Some(day) = f.through {
        let start = day.and_time(chrono::NaiveTime::MIN).and_utc().timestamp();
        metrics::gauge!(BATCH_LATEST_COMPLETE_DAY).set(start as f64);
    }
}

/// Publishes the size of a freshly loaded replica.
pub fn record_replica(r: &ReplicaState) {
    let (batch, realtime) = r.rows();
    metrics::gauge!(REPLICA_ROWS, "part" => "batch").set(batch as f64);
    metrics::gauge!(REPLICA_ROWS, "part" => "realtime").set(realtime as f64);
    metrics::gauge!(REPLICA_BYTES).set(r.bytes() as f64);
}

/// Middleware: counts every request and records its latency under its route template
/// (`unmatched` for unknown paths, so hostile URLs cannot blow up the label set). Method and
/// status labels are static strings (no allocation per request on the common answers).
pub async fn track(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route: metrics::SharedString = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".into(), |p| p.as_str().to_owned().into());
    let method = method_label(req.method());
    let resp = next.run(req).await;
    let status = status_label(resp.status());
    if resp.status() == axum::http::StatusCode::SERVICE_UNAVAILABLE {
        metrics::counter!(DB_UNAVAILABLE, "route" => route.clone()).increment(1);
    }
    metrics::counter!(HTTP_REQUESTS, "route" => route.clone(), "method" => method, "status" => status)
        .increment(1);
    metrics::histogram!(HTTP_DURATION, "route" => route, "method" => method)
        .record(start.elapsed().as_secs_f64());
    resp
}

/// The method label: the standard methods by name, anything else `other`.
fn method_label(m: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// The status label: the code's three digits.
fn status_label(s: axum::http::StatusCode) -> metrics::SharedString {
    match s.as_u16() {
        200 => "200".into(),
        400 => "400".into(),
        404 => "404".into(),
        429 => "429".into(),
        503 => "503".into(),
        code => code.to_string().into(),
    }
}

/// `GET /metrics`: Prometheus text exposition. The batch gauges are refreshed first (through
/// the freshness watcher, so at most one query a second), so they are current even when no API
/// request came in; if Postgres does not answer in time, the last values are rendered.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format 0.0.4", body = String, content_type = "text/plain")))]
pub async fn render(State(state): State<AppState>) -> Response {
    let inner = &state.inner;
    let refresh = inner.watcher.current(&inner.pool, &inner.cache);
    match tokio::time::timeout(SCRAPE_FRESHNESS_WAIT, refresh).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::debug!(error = %e, "batch gauges not refreshed for /metrics"),
        Err(_) => tracing::debug!("batch gauges not refreshed for /metrics: Postgres is slow"),
    }
    state.inner.metrics.run_upkeep();
    let mut resp = state.inner.metrics.render().into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}
