//! `GET /v1/videos/{video_id}/discovery`: one video's Source of Discovery over a range of days.

use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::cache::{CacheKey, Cached, Computed};
use crate::error::Problem;
use crate::merge;
use crate::model::VideoDiscovery;
use crate::params;
use crate::state::AppState;

/// The per-video route.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(video_discovery))
}

/// Plays of one video per Source of Discovery row, over the UTC days whose start is in
/// `[from, to)`.
#[utoipa::path(get, path = "/v1/videos/{video_id}/discovery", tag = "views",
    params(
        ("video_id" = u64, Path, format = "uint64", minimum = 1, maximum = 18446744073709551615u64, description = "the video, 1 ..= 18446744073709551615"),
        ("from" = String, Query, format = DateTime, description = "RFC 3339 with offset; days whose start is in [from, to)", example = "2026-11-21T00:00:00Z"),
        ("to" = String, Query, format = DateTime, description = "RFC 3339 with offset, after `from`; range ≤ 366 days", example = "2026-11-22T00:00:00Z"),
    ),
    responses(
        (status = 200, description = "The video's plays per discovery row", body = VideoDiscovery),
        (status = 400, description = "A bad video id or a missing, duplicated, empty, unknown or malformed parameter", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many distinct uncached queries in flight; retry after `Retry-After` seconds", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "seconds to wait before retrying"))),
        (status = 503, description = "The database is unreachable or too slow; retry", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn video_discovery(
    State(state): State<AppState>,
    video_id: Result<Path<String>, PathRejection>,
    uri: Uri,
) -> Result<Response, Problem> {
    let Ok(Path(video_id)) = video_id else {
        return Err(Problem::bad_request(
            "the video id in the path is not valid UTF-8; give a decimal integer from 1 to 18446744073709551615",
        ));
    };
    compute(&state, &video_id, uri.query()).await
}

async fn compute(state: &AppState, video_id: &str, raw: Option<&str>) -> Result<Response, Problem> {
    let q = params::video_query(video_id, raw)?;
    let inner = &state.inner;
    let fresh = inner.watcher.current(&inner.pool, &inner.cache).await?;
    let cacheable = fresh.covers_range(q.lo, q.hi);
    let (q, pool) = (&q, &inner.pool);
    let (value, _) = inner
        .cache
        .answer(
            &inner.uncached,
            fresh.version,
            CacheKey::Video(q.clone()),
            cacheable,
            move || async move {
                let ans = merge::video(pool, q).await?;
                Ok(Computed {
                    value: Cached::Video(Arc::new(ans.body)),
                    all_batch: ans.all_batch,
                    extra: (),
                })
            },
        )
        .await?;
    match value {
        Cached::Video(v) => Ok(Json(&*v).into_response()),
        Cached::Series(_) => Err(Problem::internal()),
    }
}
