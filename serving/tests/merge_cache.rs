//! The Lambda merge (batch view for batch-complete days, realtime for the rest) and the result
//! cache (batch-complete answers only, emptied when a day is republished).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use sqlx::PgPool;

async fn seed_two_days(pool: &PgPool) {
    // Day 21 is batch-complete: its batch rows count, its realtime rows do not.
    insert_hourly(
        pool,
        "batch_hourly",
        &[
            h(
                "2026-11-21T22:00:00Z",
                "continue_watching",
                "trending_now",
                40,
            ),
            h("2026-11-21T23:00:00Z", "my_list", "my_list", 10),
            // Day 22 has batch rows (a publish in progress, not marked complete): ignored.
            h("2026-11-22T00:00:00Z", "billboard", "billboard", 1000),
        ],
    )
    .await;
    insert_hourly(
        pool,
        "rt_hourly",
        &[
            h(
                "2026-11-21T22:00:00Z",
                "continue_watching",
                "trending_now",
                37,
            ),
            h("2026-11-21T23:00:00Z", "top_10", "top_10", 99),
            h("2026-11-22T00:00:00Z", "continue_watching", "top_10", 5),
            h("2026-11-22T01:00:00Z", "trending_now", "top_10", 7),
        ],
    )
    .await;
    complete_day(pool, "2026-11-21").await;
}

fn plays_per_bucket(j: &serde_json::Value) -> Vec<(String, i64)> {
    j["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["bucket"].as_str().unwrap().to_owned(),
                b["plays"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[sqlx::test(migrations = "../migrations")]
async fn a_range_half_batch_half_realtime_takes_each_day_from_its_view(pool: PgPool) {
    seed_two_days(&pool).await;
    let app = router(&pool);
    let a = get(
        &app,
        "/v1/source-of-play?from=2026-11-21T22:00:00Z&to=2026-11-22T02:00:00Z",
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(
        plays_per_bucket(&a.json),
        [
            ("2026-11-21T22:00:00Z".to_owned(), 40),
            ("2026-11-21T23:00:00Z".to_owned(), 10),
            ("2026-11-22T00:00:00Z".to_owned(), 5),
            ("2026-11-22T01:00:00Z".to_owned(), 7),
        ]
    );
    assert_eq!(rows_of(&a.json["series"][1])[0].0, "my_list");
    assert_eq!(a.json["source"]["batch_complete_through"], "2026-11-21");

    let a = get(
        &app,
        "/v1/source-of-discovery?from=2026-11-21T00:00:00Z&to=2026-11-23T00:00:00Z&granularity=day",
    )
    .await;
    assert_eq!(
        plays_per_bucket(&a.json),
        [
            ("2026-11-21T00:00:00Z".to_owned(), 50),
            ("2026-11-22T00:00:00Z".to_owned(), 12),
        ]
    );
    assert_eq!(
        rows_of(&a.json["series"][0]),
        vec![
            ("trending_now".to_owned(), 40, 0.8),
            ("my_list".to_owned(), 10, 0.2)
        ]
    );

    // The per-video view merges the same way.
    insert_video(
        &pool,
        "batch_video_daily",
        &[
            ("2026-11-21", 9, "top_10", 3),
            ("2026-11-22", 9, "top_10", 500),
        ],
    )
    .await;
    insert_video(
        &pool,
        "rt_video_daily",
        &[
            ("2026-11-21", 9, "top_10", 2),
            ("2026-11-22", 9, "my_list", 1),
        ],
    )
    .await;
    let a = get(
        &app,
        "/v1/videos/9/discovery?from=2026-11-21T00:00:00Z&to=2026-11-23T00:00:00Z",
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json["plays"], 4);
    let share = ((1.0f64 / 4.0) * 1e6).round() / 1e6;
    assert_eq!(
        rows_of(&a.json),
        vec![
            ("top_10".to_owned(), 3, 0.75),
            ("my_list".to_owned(), 1, share)
        ]
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn batch_answers_are_cached_until_a_day_is_republished(pool: PgPool) {
    seed_two_days(&pool).await;
    let state = state(&pool);
    let app = playsource_serving::app(state.clone());
    let batch_only =
        "/v1/source-of-play?from=2026-11-21T00:00:00Z&to=2026-11-22T00:00:00Z&granularity=day";
    let first = get(&app, batch_only).await;
    assert_eq!(first.json["series"][0]["plays"], 50);
    let (hits0, _) = state.cache_stats();

    // Changing batch rows without a publish is invisible: the answer comes from the cache.
    sqlx::query("UPDATE batch_hourly SET plays = plays + 1000 WHERE hour = '2026-11-21T22:00:00Z'")
        .execute(&pool)
        .await
        .unwrap();
    let again = get(&app, batch_only).await;
    assert_eq!(again.json["series"], first.json["series"]);
    assert_eq!(state.cache_stats().0, hits0 + 1);

    // Realtime answers are never cached: a new realtime row shows at once.
    let rt = "/v1/source-of-play?from=2026-11-22T00:00:00Z&to=2026-11-22T02:00:00Z";
    assert_eq!(get(&app, rt).await.json["series"][0]["plays"], 5);
    insert_hourly(
        &pool,
        "rt_hourly",
        &[h("2026-11-22T00:00:00Z", "my_list", "my_list", 1)],
    )
    .await;
    assert_eq!(get(&app, rt).await.json["series"][0]["plays"], 6);

    // A re-run republishes day 21 (new generation): within a second the new numbers show.
    complete_day(&pool, "2026-11-21").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let after = get(&app, batch_only).await;
    assert_eq!(after.json["series"][0]["plays"], 1050);
    let rows = rows_of(&after.json["series"][0]);
    assert_eq!(
        rows[0],
        (
            "continue_watching".to_owned(),
            1040,
            ((1040.0f64 / 1050.0) * 1e6).round() / 1e6
        )
    );

    // Completing another day also moves the version: day 22's batch rows now count.
    let mixed = "/v1/source-of-play?from=2026-11-22T00:00:00Z&to=2026-11-22T01:00:00Z";
    assert_eq!(get(&app, mixed).await.json["series"][0]["plays"], 6);
    complete_day(&pool, "2026-11-22").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(get(&app, mixed).await.json["series"][0]["plays"], 1000);
}

#[sqlx::test(migrations = "../migrations")]
async fn an_answer_is_one_snapshot_during_a_publish(pool: PgPool) {
    // A publish replaces the batch rows of a day and marks it complete in one transaction; a
    // reader sees either the old answer (realtime) or the new one (batch), never a mix.
    insert_hourly(
        &pool,
        "rt_hourly",
        &[h("2026-11-21T05:00:00Z", "a", "a", 3)],
    )
    .await;
    let app = router(&pool);
    let uri =
        "/v1/source-of-play?from=2026-11-21T00:00:00Z&to=2026-11-22T00:00:00Z&granularity=day";
    let publisher = {
        let pool = pool.clone();
        tokio::spawn(async move {
            for round in 0..20i64 {
                let mut tx = pool.begin().await.unwrap();
                sqlx::query(
                    "DELETE FROM batch_hourly WHERE hour >= '2026-11-21' AND hour < '2026-11-22'",
                )
                .execute(&mut *tx)
                .await
                .unwrap();
                sqlx::query(
                    "INSERT INTO batch_hourly VALUES ('2026-11-21T05:00:00Z','US','tv','a','a','drama',false,$1), \
                                                     ('2026-11-21T06:00:00Z','US','tv','b','b','drama',false,$1)",
                )
                .bind(100 + round)
                .execute(&mut *tx)
                .await
                .unwrap();
                sqlx::query(
                    "INSERT INTO batch_days (day, plays, impressions) VALUES ('2026-11-21', 0, 0) \
                     ON CONFLICT (day) DO UPDATE SET generation = nextval('batch_generation')",
                )
                .execute(&mut *tx)
                .await
                .unwrap();
                tx.commit().await.unwrap();
            }
        })
    };
    for _ in 0..40 {
        let a = get(&app, uri).await;
        assert_eq!(a.status, 200);
        let b = &a.json["series"][0];
        let rows = rows_of(b);
        let total = b["plays"].as_i64().unwrap();
        // Either realtime (3 plays of a) or a full batch publish (two equal rows).
        let consistent =
            total == 3 || (rows.len() == 2 && rows[0].1 == rows[1].1 && total == 2 * rows[0].1);
        assert!(consistent, "mixed answer: {b}");
    }
    publisher.await.unwrap();
}

#[sqlx::test(migrations = "../migrations")]
async fn concurrent_misses_of_one_batch_answer_are_computed_once(pool: PgPool) {
    seed_two_days(&pool).await;
    let state = state(&pool);
    let app = playsource_serving::app(state.clone());
    let uri = "/v1/source-of-discovery?from=2026-11-21T00:00:00Z&to=2026-11-22T00:00:00Z";
    let answers = futures_join(&app, uri, 8).await;
    for a in &answers {
        assert_eq!(a.status, 200);
        assert_eq!(a.json["series"], answers[0].json["series"]);
    }
    assert_eq!(state.cache_stats(), (7, 1));
}

async fn futures_join(app: &axum::Router, uri: &str, n: usize) -> Vec<Answer> {
    let mut tasks = Vec::new();
    for _ in 0..n {
        let (app, uri) = (app.clone(), uri.to_owned());
        tasks.push(tokio::spawn(async move { get(&app, &uri).await }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}
