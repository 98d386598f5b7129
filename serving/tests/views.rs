//! The series endpoints: shape, every bucket present, ordering, shares, filters, granularities,
//! the source object; the per-video endpoint and freshness.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use sqlx::PgPool;

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

#[sqlx::test(migrations = "../migrations")]
async fn source_of_play_has_every_bucket_sorted_rows_and_shares(pool: PgPool) {
    insert_hourly(
        &pool,
        "rt_hourly",
        &[
            h(
                "2026-11-21T00:00:00Z",
                "continue_watching",
                "trending_now",
                500,
            ),
            h("2026-11-21T00:00:00Z", "trending_now", "trending_now", 700),
            h("2026-11-21T00:00:00Z", "my_list", "my_list", 17),
            h("2026-11-21T00:00:00Z", "billboard", "my_list", 17),
            // Same row in another cell of the same hour: summed.
            Hourly {
                country: "FR",
                ..h("2026-11-21T00:00:00Z", "trending_now", "unattributed", 32)
            },
            h("2026-11-21T02:00:00Z", "unattributed", "unattributed", 3),
            // Outside the range.
            h("2026-11-21T03:00:00Z", "top_10", "top_10", 99),
            h("2026-11-20T23:00:00Z", "top_10", "top_10", 99),
        ],
    )
    .await;
    let app = router(&pool);
    let a = get(
        &app,
        "/v1/source-of-play?from=2026-11-21T00:00:00Z&to=2026-11-21T03:00:00Z",
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert!(a.content_type.starts_with("application/json"));
    let j = &a.json;
    let mut keys: Vec<&str> = j.as_object().unwrap().keys().map(|k| k.as_str()).collect();
    keys.sort();
    assert_eq!(keys, ["from", "granularity", "series", "source", "to"]);
    assert_eq!(j["from"], "2026-11-21T00:00:00Z");
    assert_eq!(j["to"], "2026-11-21T03:00:00Z");
    assert_eq!(j["granularity"], "hour");
    let series = j["series"].as_array().unwrap();
    let buckets: Vec<&str> = series
        .iter()
        .map(|b| b["bucket"].as_str().unwrap())
        .collect();
    assert_eq!(
        buckets,
        [
            "2026-11-21T00:00:00Z",
            "2026-11-21T01:00:00Z",
            "2026-11-21T02:00:00Z"
        ]
    );
    let total = 500 + 700 + 32 + 17 + 17;
    assert_eq!(series[0]["plays"], total);
    let rows = rows_of(&series[0]);
    let names: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    // plays desc, then row_type asc on ties.
    assert_eq!(
        names,
        ["trending_now", "continue_watching", "billboard", "my_list"]
    );
    assert_eq!(rows[0].1, 732);
    assert_eq!(rows[1].2, round6(500.0 / total as f64));
    assert_eq!(rows[2].2, round6(17.0 / total as f64));
    // Empty bucket: present, zero plays, no rows.
    assert_eq!(series[1]["plays"], 0);
    assert_eq!(series[1]["rows"].as_array().unwrap().len(), 0);
    assert_eq!(
        rows_of(&series[2]),
        vec![("unattributed".to_owned(), 3, 1.0)]
    );
    // Nothing batch-complete, no stream offsets yet.
    assert!(j["source"]["batch_complete_through"].is_null());
    assert!(j["source"]["realtime_high_water"].is_null());
}

#[sqlx::test(migrations = "../migrations")]
async fn source_of_discovery_groups_by_sod_and_filters(pool: PgPool) {
    insert_hourly(
        &pool,
        "rt_hourly",
        &[
            h(
                "2026-11-21T10:00:00Z",
                "continue_watching",
                "trending_now",
                10,
            ),
            h("2026-11-21T10:00:00Z", "my_list", "trending_now", 5),
            h("2026-11-21T10:00:00Z", "continue_watching", "top_10", 4),
            Hourly {
                device: "mobile",
                ..h("2026-11-21T10:00:00Z", "unattributed", "unattributed", 8)
            },
            Hourly {
                country: "DE",
                genre: "comedy",
                new_launch: true,
                ..h("2026-11-21T10:00:00Z", "top_10", "top_10", 6)
            },
        ],
    )
    .await;
    let app = router(&pool);
    let base = "/v1/source-of-discovery?from=2026-11-21T10:00:00Z&to=2026-11-21T11:00:00Z";
    let a = get(&app, base).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let rows = rows_of(&a.json["series"][0]);
    assert_eq!(
        rows.iter().map(|r| (r.0.as_str(), r.1)).collect::<Vec<_>>(),
        [("trending_now", 15), ("top_10", 10), ("unattributed", 8)]
    );
    let cases: [(&str, i64); 8] = [
        ("&country=US", 19 + 8),
        ("&country=DE", 6),
        ("&device=mobile", 8),
        ("&genre=comedy", 6),
        ("&new_launch=true", 6),
        ("&new_launch=false", 27),
        ("&play_row=continue_watching", 14),
        ("&play_row=unattributed&device=mobile&country=US", 8),
    ];
    for (filter, plays) in cases {
        let a = get(&app, &format!("{base}{filter}")).await;
        assert_eq!(a.status, 200, "{filter}: {}", a.text);
        assert_eq!(a.json["series"][0]["plays"], plays, "{filter}");
    }
    let a = get(&app, &format!("{base}&play_row=continue_watching")).await;
    assert_eq!(
        rows_of(&a.json["series"][0])
            .iter()
            .map(|r| (r.0.as_str(), r.1))
            .collect::<Vec<_>>(),
        [("trending_now", 10), ("top_10", 4)]
    );
    // A filter value that matches nothing: every bucket still present, empty.
    let a = get(&app, &format!("{base}&country=JP")).await;
    assert_eq!(a.json["series"].as_array().unwrap().len(), 1);
    assert_eq!(a.json["series"][0]["plays"], 0);
}

#[sqlx::test(migrations = "../migrations")]
async fn day_granularity_and_offsets_and_partial_buckets(pool: PgPool) {
    insert_hourly(
        &pool,
        "rt_hourly",
        &[
            h("2026-11-21T00:00:00Z", "a", "a", 1),
            h("2026-11-21T23:00:00Z", "a", "a", 2),
            h("2026-11-22T05:00:00Z", "b", "b", 4),
            h("2026-11-23T00:00:00Z", "b", "b", 8),
        ],
    )
    .await;
    let app = router(&pool);
    // from 2026-11-21T01:00+01:00 is 00:00Z; to is 23-00:30Z: days 21, 22, 23 start in range.
    let a = get(
        &app,
        "/v1/source-of-play?from=2026-11-21T01:00:00%2B01:00&to=2026-11-23T00:30:00Z&granularity=day",
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json["from"], "2026-11-21T00:00:00Z");
    assert_eq!(a.json["to"], "2026-11-23T00:30:00Z");
    assert_eq!(a.json["granularity"], "day");
    let s = a.json["series"].as_array().unwrap();
    let got: Vec<(&str, i64)> = s
        .iter()
        .map(|b| (b["bucket"].as_str().unwrap(), b["plays"].as_i64().unwrap()))
        .collect();
    assert_eq!(
        got,
        [
            ("2026-11-21T00:00:00Z", 3),
            ("2026-11-22T00:00:00Z", 4),
            ("2026-11-23T00:00:00Z", 8)
        ]
    );
    // Hour granularity: only buckets whose start is in [from, to).
    let a = get(
        &app,
        "/v1/source-of-play?from=2026-11-20T23:30:00Z&to=2026-11-21T01:00:00Z",
    )
    .await;
    let s = a.json["series"].as_array().unwrap();
    assert_eq!(s.len(), 1);
    assert_eq!(s[0]["bucket"], "2026-11-21T00:00:00Z");
    // A range with no bucket start in it: an empty series, not an error.
    let a = get(
        &app,
        "/v1/source-of-play?from=2026-11-21T00:10:00Z&to=2026-11-21T00:50:00Z",
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.json["series"].as_array().unwrap().len(), 0);
    // The limits themselves are accepted.
    let a = get(
        &app,
        "/v1/source-of-play?from=2026-10-01T00:00:00Z&to=2026-11-01T00:00:00Z",
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json["series"].as_array().unwrap().len(), 31 * 24);
    let a = get(
        &app,
        "/v1/source-of-discovery?from=2025-11-21T00:00:00Z&to=2026-11-22T00:00:00Z&granularity=day",
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json["series"].as_array().unwrap().len(), 366);
}

#[sqlx::test(migrations = "../migrations")]
async fn video_discovery_and_freshness(pool: PgPool) {
    let big = u64::MAX;
    insert_video(
        &pool,
        "rt_video_daily",
        &[
            ("2026-11-21", 42, "trending_now", 6),
            ("2026-11-22", 42, "trending_now", 3),
            ("2026-11-22", 42, "top_10", 9),
            ("2026-11-23", 42, "top_10", 100),
            ("2026-11-21", 43, "top_10", 5),
            ("2026-11-21", big, "my_list", 2),
        ],
    )
    .await;
    set_high_water(&pool, 0, "2026-11-22T23:59:58.12Z").await;
    set_high_water(&pool, 1, "2026-11-22T10:00:00Z").await;
    let app = router(&pool);
    let a = get(
        &app,
        "/v1/videos/42/discovery?from=2026-11-21T00:00:00Z&to=2026-11-23T00:00:00Z",
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let mut keys: Vec<&str> = a
        .json
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    keys.sort();
    assert_eq!(keys, ["plays", "rows", "video_id"]);
    assert_eq!(a.json["video_id"], 42);
    assert_eq!(a.json["plays"], 18);
    assert_eq!(
        rows_of(&a.json),
        vec![
            ("top_10".to_owned(), 9, 0.5),
            ("trending_now".to_owned(), 9, 0.5)
        ]
    );
    let a = get(
        &app,
        &format!("/v1/videos/{big}/discovery?from=2026-11-21T00:00:00Z&to=2026-11-22T00:00:00Z"),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json["video_id"].as_u64(), Some(big));
    assert_eq!(a.json["plays"], 2);
    // A video with no plays: zero and no rows.
    let a = get(
        &app,
        "/v1/videos/7/discovery?from=2026-11-21T00:00:00Z&to=2026-11-22T00:00:00Z",
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.json["plays"], 0);
    assert_eq!(a.json["rows"].as_array().unwrap().len(), 0);

    complete_day(&pool, "2026-11-19").await;
    complete_day(&pool, "2026-11-20").await;
    // The freshness snapshot is at most a second old.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let a = get(&app, "/v1/freshness").await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json["batch_complete_through"], "2026-11-20");
    assert_eq!(a.json["realtime_high_water"], "2026-11-22T23:59:58.120Z");
    let a = get(
        &app,
        "/v1/source-of-play?from=2026-11-21T00:00:00Z&to=2026-11-21T01:00:00Z",
    )
    .await;
    assert_eq!(a.json["source"]["batch_complete_through"], "2026-11-20");
    assert_eq!(
        a.json["source"]["realtime_high_water"],
        "2026-11-22T23:59:58.120Z"
    );
}
