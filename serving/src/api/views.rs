//! `GET /v1/source-of-play` and `GET /v1/source-of-discovery`: merged series per bucket.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::body::HeadTail;
use crate::cache::{CacheKey, Cached, Computed};
use crate::error::Problem;
use crate::merge;
use crate::model::SeriesResponse;
use crate::params::{self, View};
use crate::series_json;
use crate::state::AppState;

/// The two series routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(source_of_play))
        .routes(routes!(source_of_discovery))
}

/// Source of Play: plays per home-page row the play started from, per bucket.
#[utoipa::path(get, path = "/v1/source-of-play", tag = "views",
    params(
        ("from" = String, Query, format = DateTime, description = "RFC 3339 with offset; buckets whose start is in [from, to)", example = "2026-11-21T00:00:00Z"),
        ("to" = String, Query, format = DateTime, description = "RFC 3339 with offset, after `from`", example = "2026-11-22T00:00:00Z"),
        ("granularity" = Option<String>, Query, pattern = "^(hour|day)$", description = "`hour` (default, range ≤ 31 days) or `day` (range ≤ 366 days)"),
        ("country" = Option<String>, Query, pattern = "^[A-Z]{2}$", description = "ISO 3166-1 alpha-2, upper case (an assigned code)"),
        ("device" = Option<String>, Query, pattern = "^[a-z0-9_]{1,64}$", description = "device token, e.g. `tv`"),
        ("genre" = Option<String>, Query, min_length = 1, max_length = 256, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$", description = "catalog genre (`unknown` for videos missing from the catalog), without control characters"),
        ("new_launch" = Option<bool>, Query, description = "`true` or `false`"),
    ),
    responses(
        (status = 200, description = "Every bucket of the range, ascending", body = SeriesResponse<'static>),
        (status = 400, description = "A parameter is missing, duplicated, empty, unknown or malformed", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many distinct uncached queries in flight; retry after `Retry-After` seconds", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "seconds to wait before retrying"))),
        (status = 503, description = "The database is unreachable or too slow; retry", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn source_of_play(State(state): State<AppState>, uri: Uri) -> Result<Response, Problem> {
    compute(&state, View::SourceOfPlay, uri.query()).await
}

/// Source of Discovery: plays per row where the member first came across the title, per bucket.
#[utoipa::path(get, path = "/v1/source-of-discovery", tag = "views",
    params(
        ("from" = String, Query, format = DateTime, description = "RFC 3339 with offset; buckets whose start is in [from, to)", example = "2026-11-21T00:00:00Z"),
        ("to" = String, Query, format = DateTime, description = "RFC 3339 with offset, after `from`", example = "2026-11-22T00:00:00Z"),
        ("granularity" = Option<String>, Query, pattern = "^(hour|day)$", description = "`hour` (default, range ≤ 31 days) or `day` (range ≤ 366 days)"),
        ("country" = Option<String>, Query, pattern = "^[A-Z]{2}$", description = "ISO 3166-1 alpha-2, upper case (an assigned code)"),
        ("device" = Option<String>, Query, pattern = "^[a-z0-9_]{1,64}$", description = "device token, e.g. `tv`"),
        ("genre" = Option<String>, Query, min_length = 1, max_length = 256, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$", description = "catalog genre (`unknown` for videos missing from the catalog), without control characters"),
        ("new_launch" = Option<bool>, Query, description = "`true` or `false`"),
        ("play_row" = Option<String>, Query, pattern = "^[a-z0-9_]{1,64}$", description = "only plays whose Source of Play is this row type (`unattributed` allowed)"),
    ),
    responses(
        (status = 200, description = "Every bucket of the range, ascending", body = SeriesResponse<'static>),
        (status = 400, description = "A parameter is missing, duplicated, empty, unknown or malformed", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many distinct uncached queries in flight; retry after `Retry-After` seconds", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "seconds to wait before retrying"))),
        (status = 503, description = "The database is unreachable or too slow; retry", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn source_of_discovery(
    State(state): State<AppState>,
    uri: Uri,
) -> Result<Response, Problem> {
    compute(&state, View::SourceOfDiscovery, uri.query()).await
}

async fn compute(state: &AppState, view: View, raw: Option<&str>) -> Result<Response, Problem> {
    let q = params::series_query(view, raw)?;
    let inner = &state.inner;
    let fresh = inner.watcher.current(&inner.pool, &inner.cache).await?;
    let cacheable = fresh.covers_range(q.lo, q.hi);
    let (q, pool) = (&q, &inner.pool);
    if !cacheable {
        // Touches a realtime day: never cached; from the replica when it is current. Either
        // way an uncached computation: it holds a slot of the bound (none free: 429).
        let _slot = inner.uncached.enter()?;
        if let Some(ans) = inner.replica.series(pool, q).await {
            return Ok(respond(ans.body.head, ans.freshness.tail));
        }
        let ans = merge::series(pool, q).await?;
        return Ok(respond(
            series_json::from_buckets(q, &ans.series).head,
            ans.freshness.tail,
        ));
    }
    // Probably all batch-complete: through the cache (concurrent misses computed once).
    let (value, tail) = inner
        .cache
        .answer(
            &inner.uncached,
            fresh.version,
            CacheKey::series(q),
            cacheable,
            move || async move {
                let ans = merge::series(pool, q).await?;
                Ok(Computed {
                    value: Cached::Series(Arc::new(series_json::from_buckets(q, &ans.series))),
                    all_batch: ans.all_batch,
                    extra: ans.freshness.tail,
                })
            },
        )
        .await?;
    match value {
        // The shared head is sent as it is (not copied per hit), after this request's own
        // `from`/`to` (the entry is shared by every `from`/`to` giving the same buckets).
        Cached::Series(s) => Ok(respond_with_prefix(
            series_json::prefix(q),
            s.head.slice(s.prefix..),
            tail.unwrap_or_else(|| fresh.tail.clone()),
        )),
        Cached::Video(_) => Err(Problem::internal()),
    }
}

/// A 200 answer: the serialised head and the tail (the `source` object and the closing brace,
/// [`series_json::answer_tail`]) — the same bytes as serialising a [`SeriesResponse`].
fn respond(head: Bytes, tail: Bytes) -> Response {
    respond_with_prefix(Bytes::new(), head, tail)
}

/// A 200 answer of `prefix`, `head` and `tail`.
fn respond_with_prefix(prefix: Bytes, head: Bytes, tail: Bytes) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        Body::new(HeadTail::with_prefix(prefix, head, tail)),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Bucket, RowShare, Source};
    use crate::params::fmt_second;

    #[test]
    fn spliced_bytes_equal_the_serialised_response() {
        let q = params::series_query(
            View::SourceOfPlay,
            Some("from=2026-11-21T00:30:00%2B01:00&to=2026-11-21T02:00:00Z"),
        )
        .unwrap();
        let series = vec![Bucket {
            bucket: "2026-11-21T00:00:00Z".to_owned(),
            plays: 3,
            rows: vec![RowShare {
                row_type: "a\"b\\é".to_owned(),
                plays: 3,
                share: 1.0,
            }],
        }];
        for source in [
            Source {
                batch_complete_through: Some("2026-11-20".to_owned()),
                realtime_high_water: Some("2026-11-21T23:59:58.120Z".to_owned()),
            },
            Source {
                batch_complete_through: None,
                realtime_high_water: None,
            },
        ] {
            let want = serde_json::to_vec(&SeriesResponse {
                from: fmt_second(q.from),
                to: fmt_second(q.to),
                granularity: q.granularity.as_str(),
                series: &series,
                source: source.clone(),
            })
            .unwrap();
            let resp = respond(
                series_json::from_buckets(&q, &series).head,
                series_json::answer_tail(&source),
            );
            assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/json");
            let got = futures::executor::block_on(axum::body::to_bytes(resp.into_body(), 1 << 20))
                .unwrap();
            assert_eq!(got.as_ref(), want.as_slice());
        }
    }
}
