//! `--prune-realtime`: realtime rows of days batch-complete for longer than the threshold go;
//! rows of recent or incomplete days stay.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use playsource_batch::prune_realtime;
use playsource_domain::Day;
use sqlx::PgPool;

async fn rt_rows(pool: &PgPool, d: Day) -> (i64, i64, i64) {
    let (from, to) = (
        d.start().to_datetime().unwrap(),
        d.plus(1).start().to_datetime().unwrap(),
    );
    let count = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .bind(from)
                .bind(to)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    (
        count("SELECT count(*) FROM rt_hourly WHERE hour >= $1 AND hour < $2").await,
        count("SELECT count(*) FROM rt_video_daily WHERE day = ($1 AT TIME ZONE 'UTC')::date AND $2 IS NOT NULL").await,
        count("SELECT count(*) FROM rt_too_late WHERE hour >= $1 AND hour < $2").await,
    )
}

async fn seed_day(pool: &PgPool, d: Day, completed_days_ago: Option<i32>) {
    for hour in [0, 23] {
        let h = (d.start().0 + hour * 3_600_000) as f64 / 1000.0;
        sqlx::query("INSERT INTO rt_hourly VALUES (to_timestamp($1), 'US', 'tv', 'top_picks', 'billboard', 'drama', false, 3)")
            .bind(h)
            .execute(pool)
            .await
            .unwrap();
        sqlx::query("INSERT INTO rt_too_late VALUES (to_timestamp($1), 'plays', 'US', 'tv', 1)")
            .bind(h)
            .execute(pool)
            .await
            .unwrap();
    }
    sqlx::query("INSERT INTO rt_video_daily VALUES ($1, 7, 'billboard', 6)")
        .bind(d.to_date())
        .execute(pool)
        .await
        .unwrap();
    if let Some(ago) = completed_days_ago {
        sqlx::query(
            "INSERT INTO batch_days (day, completed_at, plays, impressions) VALUES ($1, now() - make_interval(days => $2), 6, 0)",
        )
        .bind(d.to_date())
        .bind(ago)
        .execute(pool)
        .await
        .unwrap();
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn prunes_only_days_complete_for_long_enough(pool: PgPool) {
    let old = day("2026-11-01");
    let recent = day("2026-11-20");
    let open = day("2026-11-21");
    seed_day(&pool, old, Some(10)).await;
    seed_day(&pool, recent, Some(1)).await;
    seed_day(&pool, open, None).await;

    let p = prune_realtime(&pool, 7).await.unwrap();
    assert_eq!((p.rt_hourly, p.rt_video_daily, p.rt_too_late), (2, 1, 2));
    assert_eq!(rt_rows(&pool, old).await, (0, 0, 0));
    assert_eq!(rt_rows(&pool, recent).await, (2, 1, 2));
    assert_eq!(rt_rows(&pool, open).await, (2, 1, 2));
    // Nothing left to prune: a second run deletes nothing.
    assert_eq!(prune_realtime(&pool, 7).await.unwrap(), Default::default());
    // A threshold of 0 prunes every batch-complete day, never an open one.
    prune_realtime(&pool, 0).await.unwrap();
    assert_eq!(rt_rows(&pool, recent).await, (0, 0, 0));
    assert_eq!(rt_rows(&pool, open).await, (2, 1, 2));
}

#[sqlx::test(migrations = "../migrations")]
async fn a_huge_threshold_is_a_usage_error(pool: PgPool) {
    let err = prune_realtime(&pool, u32::MAX).await.unwrap_err();
    assert!(err.to_string().contains("--prune-realtime"), "{err}");
}
