//! `GET /v1/freshness`: how far the batch view reaches and how fresh the realtime view is.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::Problem;
use crate::model::Source;
use crate::state::AppState;

/// The freshness route.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(freshness))
}

/// The `source` object of the series answers, at most a second old.
#[utoipa::path(get, path = "/v1/freshness", tag = "views",
    responses(
        (status = 200, description = "Freshness of the batch and realtime views", body = Source),
        (status = 503, description = "The database is unreachable or too slow; retry", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn freshness(State(state): State<AppState>) -> Result<Response, Problem> {
    let inner = &state.inner;
    let f = inner.watcher.current(&inner.pool, &inner.cache).await?;
    Ok(Json(&f.source).into_response())
}
