//! Bounded memory while Postgres is unavailable: the stream reaches Postgres through a TCP proxy
//! the test cuts (the shared server is not disturbed). While its flush retries, the stream
//! pauses its input partitions at the broker — it stops reading while input keeps arriving — and
//! after Postgres is back the views are exact.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use playsource_domain::Ts;
use sqlx::PgPool;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// Forwards connections to the shared Postgres until cut; when cut, closes every open
/// connection and refuses new ones until restored.
struct PgProxy {
    port: u16,
    cut: Arc<AtomicBool>,
    conns: Arc<Mutex<CancellationToken>>,
}

impl PgProxy {
    async fn start() -> PgProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let conns = Arc::new(Mutex::new(CancellationToken::new()));
        let (c, t) = (Arc::clone(&cut), Arc::clone(&conns));
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if c.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let stop = t.lock().unwrap().clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect("127.0.0.1:5432").await else {
                        return;
                    };
                    tokio::select! {
                        _ = stop.cancelled() => {}
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                    }
                });
            }
        });
        PgProxy { port, cut, conns }
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        let mut t = self.conns.lock().unwrap();
        t.cancel();
        *t = CancellationToken::new();
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

/// The sum of a metric's samples in the Prometheus text rendering.
fn metric(h: &PrometheusHandle, name: &str) -> f64 {
    h.render()
        .lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn wait_until(what: &str, limit: Duration, mut cond: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !cond().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn a_retrying_flush_stops_reading_and_the_views_are_exact_after_recovery(pool: PgPool) {
    let metrics = PrometheusBuilder::new().install_recorder().unwrap();
    let t = topics("backpressure");
    create_topics(&t).await;
    let w = workload(
        33,
        400,
        Ts::parse_rfc3339("2026-11-23T06:00:00Z").unwrap(),
        3,
    );
    load_catalog(&pool, &w.catalog).await;
    let imps = imp_msgs(&w.impressions);
    let plays = play_msgs(&w.plays);
    let cut_at = |n: usize, share: usize| n * share / 100;
    let p = producer();
    produce_raw(&p, &t.impressions, &imps[..cut_at(imps.len(), 50)]).await;
    produce_raw(&p, &t.plays, &plays[..cut_at(plays.len(), 50)]).await;
    let first = (cut_at(imps.len(), 50) + cut_at(plays.len(), 50)) as i64;

    let proxy = PgProxy::start().await;
    let db: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&pool)
        .await
        .unwrap();
    let url = format!("postgres://postgres@127.0.0.1:{}/{db}", proxy.port);
    let group = format!("g-{}", t.plays);
    let archive = tempfile::tempdir().unwrap();
    let mut cfg = config(&t, &group, archive.path());
    cfg.session_timeout = Duration::from_secs(6);
    cfg.retry_timeout = Duration::from_secs(180);
    let stream = tokio::spawn(async move {
        playsource_stream::run_with_url(cfg, &url, CancellationToken::new()).await
    });
    let committed = |pool: PgPool, group: String| async move {
        sqlx::query_scalar::<_, i64>(
            "SELECT coalesce(sum(next_offset), 0)::int8 FROM stream_offsets WHERE group_id = $1",
        )
        .bind(group)
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    wait_until(
        "the first half committed",
        Duration::from_secs(120),
        async || committed(pool.clone(), group.clone()).await >= first,
    )
    .await;

    // Postgres goes away for the stream; a little input makes it flush (and retry).
    proxy.cut();
    produce_raw(
        &p,
        &t.impressions,
        &imps[cut_at(imps.len(), 50)..cut_at(imps.len(), 55)],
    )
    .await;
    produce_raw(
        &p,
        &t.plays,
        &plays[cut_at(plays.len(), 50)..cut_at(plays.len(), 55)],
    )
    .await;
    wait_until(
        "the stream to pause its input",
        Duration::from_secs(60),
        async || metric(&metrics, "playsource_stream_backpressure_paused") == 1.0,
    )
    .await;
    let consumed = metric(&metrics, "playsource_stream_consumed_total");
    // Input keeps arriving while paused: none of it is read.
    produce_raw(&p, &t.impressions, &imps[cut_at(imps.len(), 55)..]).await;
    produce_raw(&p, &t.plays, &plays[cut_at(plays.len(), 55)..]).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        metric(&metrics, "playsource_stream_consumed_total"),
        consumed,
        "the stream kept reading while its flush could not reach Postgres"
    );
    assert_eq!(
        metric(&metrics, "playsource_stream_backpressure_paused"),
        1.0
    );

    // Postgres is back: the flush goes through, reading resumes, nothing is lost.
    proxy.restore();
    let summary = tokio::time::timeout(Duration::from_secs(180), stream)
        .await
        .expect("the stream did not go idle after Postgres came back")
        .unwrap()
        .unwrap();
    assert!(summary.consumed > 0);
    assert_eq!(
        metric(&metrics, "playsource_stream_backpressure_paused"),
        0.0
    );
    assert_views_exact(&pool, &w).await;
}
