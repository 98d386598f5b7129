//! The JSON bodies of the API (docs/reference.md §7), with their OpenAPI schemas.

use serde::Serialize;
use utoipa::ToSchema;

/// Where the numbers come from: how far the batch view reaches and how fresh the realtime one is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct Source {
    /// The latest batch-complete UTC day (`YYYY-MM-DD`), null when no day is complete.
    #[schema(example = "2026-11-20")]
    pub batch_complete_through: Option<String>,
    /// The greatest event time the streaming layer has consumed (RFC 3339, ms), null if none.
    #[schema(example = "2026-11-21T23:59:58.120Z")]
    pub realtime_high_water: Option<String>,
}

/// One row type's plays in a bucket.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct RowShare {
    /// The home-page row type (`unattributed` when no impression qualifies).
    #[schema(example = "continue_watching")]
    pub row_type: String,
    /// Plays attributed to this row.
    #[schema(example = 500)]
    pub plays: i64,
    /// `plays` / bucket plays, rounded to 6 decimals.
    #[schema(example = 0.405186)]
    pub share: f64,
}

/// One time bucket of a series.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Bucket {
    /// The bucket start, `YYYY-MM-DDTHH:MM:SSZ`.
    #[schema(example = "2026-11-21T00:00:00Z")]
    pub bucket: String,
    /// All plays in the bucket.
    #[schema(example = 1234)]
    pub plays: i64,
    /// Plays per row type, by plays descending then row type.
    pub rows: Vec<RowShare>,
}

/// The answer of `/v1/source-of-play` and `/v1/source-of-discovery`.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct SeriesResponse<'a> {
    /// The requested `from`, in UTC.
    #[schema(example = "2026-11-21T00:00:00Z")]
    pub from: String,
    /// The requested `to`, in UTC.
    #[schema(example = "2026-11-22T00:00:00Z")]
    pub to: String,
    /// `hour` or `day`.
    #[schema(example = "hour")]
    pub granularity: &'static str,
    /// Every bucket whose start is in `[from, to)`, ascending.
    pub series: &'a [Bucket],
    /// Freshness of the two views the answer merges.
    pub source: Source,
}

/// The answer of `/v1/videos/{video_id}/discovery`.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct VideoDiscovery {
    /// The video, 1 ..= 18446744073709551615.
    #[schema(
        example = 80100172,
        format = "uint64",
        minimum = 1,
        maximum = 18446744073709551615u64
    )]
    pub video_id: u64,
    /// All plays of the video on the days in range.
    #[schema(example = 1234)]
    pub plays: i64,
    /// Plays per Source of Discovery row type, by plays descending then row type.
    pub rows: Vec<RowShare>,
}

/// The answer of `/healthz` and `/readyz`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Status {
    /// `ok` (process up) or `ready` (database reachable).
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// Builds the rows of one bucket from `(row_type, plays)` pairs: sorted by plays descending then
/// row type (byte order), shares rounded to 6 decimals. Returns (total plays, rows).
pub fn rows_with_shares(mut pairs: Vec<(String, i64)>) -> (i64, Vec<RowShare>) {
    pairs.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let total: i64 = pairs.iter().map(|(_, p)| *p).sum();
    let rows = pairs
        .into_iter()
        .map(|(row_type, plays)| RowShare {
            share: share(plays, total),
            row_type,
            plays,
        })
        .collect();
    (total, rows)
}

fn share(plays: i64, total: i64) -> f64 {
    share_micros(plays, total) / 1e6
}

/// `plays` / `total` in millionths, rounded to a whole number (0 when `total` is not positive);
/// the share is this divided by 10⁶.
pub(crate) fn share_micros(plays: i64, total: i64) -> f64 {
    if total <= 0 {
        return 0.0;
    }
    ((plays as f64 / total as f64) * 1e6).round()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_sorted_and_shared() {
        let (total, rows) = rows_with_shares(vec![
            ("b".into(), 1),
            ("a".into(), 1),
            ("continue_watching".into(), 500),
            ("x".into(), 732),
        ]);
        assert_eq!(total, 1234);
        let names: Vec<&str> = rows.iter().map(|r| r.row_type.as_str()).collect();
        assert_eq!(names, ["x", "continue_watching", "a", "b"]);
        assert_eq!(rows[1].share, 0.405186);
        assert_eq!(serde_json::to_string(&rows[1].share).unwrap(), "0.405186");
    }
}
