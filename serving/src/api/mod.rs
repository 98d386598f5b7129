//! The `/v1` JSON API (docs/reference.md §7).

pub mod freshness;
pub mod videos;
pub mod views;

use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

/// All `/v1` routes.
pub fn router() -> OpenApiRouter<AppState> {
    views::router()
        .merge(videos::router())
        .merge(freshness::router())
}
