//! The Lambda guarantee end to end, through the binary as a user runs it: `gen` → Kafka →
//! `stream` → realtime view, `batch` over the archive the stream wrote → batch view, and `audit`.
//! With no too-late events both views agree exactly; with too-late plays the batch view has them,
//! the realtime view does not, and `audit` explains the drift by them.

#![allow(clippy::unwrap_used)] // test helpers: a failed setup step should fail the test loudly

use std::process::Output;

use sqlx::PgPool;

mod scratch;

use scratch::Scratch;

struct Pipeline(Scratch);

impl Pipeline {
    fn new() -> Pipeline {
        Pipeline(Scratch::new("pipe"))
    }

    fn run(&self, args: &[&str]) -> Output {
        self.0.run(args)
    }

    fn ok(&self, args: &[&str]) -> Output {
        self.0.ok(args)
    }

    /// init, catalog, two days of traffic through Kafka and the stream, then the batch.
    fn through_both_layers(&self, late_share: &str) -> [String; 2] {
        let today = chrono::Utc::now().date_naive();
        let days = [2u64, 1].map(|n| {
            (today - chrono::Days::new(n))
                .format("%Y-%m-%d")
                .to_string()
        });
        let catalog = self.0.archive.path().join("catalog.csv");
        let catalog = catalog.to_str().unwrap();
        self.ok(&["init", "--partitions", "2"]);
        let gen = [
            "gen",
            "--to",
            "kafka",
            "--seed",
            "11",
            "--members",
            "300",
            "--start",
            &days[0],
            "--days",
            "2",
        ];
        self.ok(&[
            &gen[..],
            &["--late-share", late_share, "--catalog-out", catalog],
        ]
        .concat());
        self.ok(&["catalog", "load", catalog]);
        self.ok(&[
            "stream",
            "--group-id",
            &format!("g-{}", self.0.id),
            "--exit-when-idle",
            "3",
            "--metrics-listen",
            "127.0.0.1:0",
        ]);
        self.ok(&[
            "batch",
            "--from",
            &days[0],
            "--to",
            &days[1],
            "--no-progress",
        ]);
        days
    }

    async fn pool(&self) -> PgPool {
        PgPool::connect(&self.0.url).await.unwrap()
    }
}

#[tokio::test]
async fn with_nothing_too_late_realtime_equals_batch_and_audit_is_clean() {
    let p = Pipeline::new();
    let days = p.through_both_layers("0");
    let pool = p.pool().await;
    for day in &days {
        let (rt, batch) = (
            scratch::hourly_rows(&pool, "rt_hourly", day).await,
            scratch::hourly_rows(&pool, "batch_hourly", day).await,
        );
        assert!(!batch.is_empty(), "{day} has plays");
        assert_eq!(rt, batch, "{day}: realtime and batch views differ");
        let o = p.run(&["audit", "--date", day]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stdout)
        );
    }
    pool.close().await;
    p.0.drop_db().await;
}

#[tokio::test]
async fn too_late_plays_are_in_the_batch_view_only_and_explain_the_drift() {
    let p = Pipeline::new();
    let days = p.through_both_layers("0.02");
    let pool = p.pool().await;
    let late: i64 = sqlx::query_scalar(
        "SELECT coalesce(sum(events), 0)::bigint FROM rt_too_late WHERE topic = $1",
    )
    .bind(p.0.plays_topic())
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(late > 0, "the workload has too-late plays");
    let total = |table: &'static str| {
        let pool = pool.clone();
        let (d0, d1) = (days[0].clone(), days[1].clone());
        async move {
            sqlx::query_scalar::<_, i64>(&format!(
                "SELECT coalesce(sum(plays), 0)::bigint FROM {table} WHERE hour >= $1::date AND hour < $2::date + 1"
            ))
            .bind(d0)
            .bind(d1)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    let late_in_days: i64 = sqlx::query_scalar(
        "SELECT coalesce(sum(events), 0)::bigint FROM rt_too_late WHERE topic = $1 AND hour >= $2::date AND hour < $3::date + 1",
    )
    .bind(p.0.plays_topic())
    .bind(&days[0])
    .bind(&days[1])
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        total("batch_hourly").await - total("rt_hourly").await,
        late_in_days,
        "batch = realtime + too-late plays"
    );
    for day in &days {
        let o = p.run(&["audit", "--date", day]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "drift is explained by too-late events: {}",
            String::from_utf8_lossy(&o.stdout)
        );
    }
    pool.close().await;
    p.0.drop_db().await;
}
