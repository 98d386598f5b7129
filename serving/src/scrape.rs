//! `GET /metrics`: the Prometheus scrape.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

/// How long a scrape of `/metrics` waits for the batch freshness before rendering without it.
const SCRAPE_FRESHNESS_WAIT: Duration = Duration::from_secs(2);

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
