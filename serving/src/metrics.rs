//! The serving layer's Prometheus metrics: names, the recorder and the per-route middleware (the
//! `/metrics` endpoint is in `scrape.rs`). Imports nothing of the crate: every layer records
//! into it.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

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
