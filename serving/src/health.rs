//! `GET /healthz` (the process is up) and `GET /readyz` (the database answers).

use std::time::Duration;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::Problem;
use crate::model::Status;
use crate::state::AppState;

/// How long `/readyz` waits for the database.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// The health routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
}

/// Liveness: 200 while the process serves requests; never touches the database.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process is up", body = Status)))]
pub async fn healthz() -> Json<Status> {
    Json(Status { status: "ok" })
}

/// Readiness: 200 when Postgres answers within two seconds, else 503.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "The database answers", body = Status),
        (status = 503, description = "The database is unreachable or too slow", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn readyz(State(state): State<AppState>) -> Result<Response, Problem> {
    let ping = playsource_store::views::ping(&state.inner.pool);
    match tokio::time::timeout(READY_TIMEOUT, ping).await {
        Ok(answered) => {
            answered.map_err(crate::error::from_store)?;
            Ok(Json(Status { status: "ready" }).into_response())
        }
        Err(_) => Err(Problem::unavailable(
            "the database did not answer within 2 seconds; check that Postgres is up and reachable",
        )),
    }
}
