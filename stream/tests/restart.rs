//! Restarts: a clean stop and an abort mid-run (no final flush) lose nothing and count nothing
//! twice; state is rebuilt by replay, from a checkpoint or from the earliest offsets.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use playsource_domain::Ts;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

fn start() -> Ts {
    Ts::parse_rfc3339("2026-11-21T08:00:00Z").unwrap()
}

/// Splits each topic's messages at its event-time midpoint, so the second half only follows.
fn halves(w: &Workload) -> [(Msgs, Msgs); 2] {
    let mid = Ts(start().0 + 2 * 3_600_000);
    let i1: Vec<_> = w
        .impressions
        .iter()
        .filter(|i| i.ts < mid)
        .cloned()
        .collect();
    let i2: Vec<_> = w
        .impressions
        .iter()
        .filter(|i| i.ts >= mid)
        .cloned()
        .collect();
    let p1: Vec<_> = w.plays.iter().filter(|p| p.ts < mid).cloned().collect();
    let p2: Vec<_> = w.plays.iter().filter(|p| p.ts >= mid).cloned().collect();
    [
        (imp_msgs(&i1), play_msgs(&p1)),
        (imp_msgs(&i2), play_msgs(&p2)),
    ]
}

#[sqlx::test(migrations = "../migrations")]
async fn a_clean_restart_continues_exactly(pool: PgPool) {
    let t = topics("restart");
    create_topics(&t).await;
    let w = workload(5, 500, start(), 4);
    load_catalog(&pool, &w.catalog).await;
    let [(i1, p1), (i2, p2)] = halves(&w);
    let p = producer();
    produce_raw(&p, &t.impressions, &i1).await;
    produce_raw(&p, &t.plays, &p1).await;
    let archive = tempfile::tempdir().unwrap();
    let first = run_until_idle(config(&t, "g-restart", archive.path()), &pool).await;
    assert_eq!(first.consumed as usize, i1.len() + p1.len());
    let layers: Vec<Vec<String>> =
        sqlx::query_scalar("SELECT layers FROM stream_checkpoints WHERE group_id = 'g-restart'")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert!(!layers.is_empty(), "a clean stop checkpoints its units");
    for file in layers.iter().flatten() {
        assert!(
            file.starts_with("_checkpoints/g-restart/") && archive.path().join(file).is_file(),
            "the manifest names a layer file in the archive: {file}"
        );
    }
    produce_raw(&p, &t.impressions, &i2).await;
    produce_raw(&p, &t.plays, &p2).await;
    let second = run_until_idle(config(&t, "g-restart", archive.path()), &pool).await;
    assert_eq!(
        second.consumed as usize,
        i2.len() + p2.len(),
        "the second run reads only new messages"
    );
    assert_eq!(
        second.replayed, 0,
        "restored from the checkpoint at the committed offsets: nothing to replay"
    );
    assert_views_exact(&pool, &w).await;
    archive_exact(archive.path(), &t, &w);
}

/// A checkpoint whose layer file is gone (deleted by hand, a lifecycle rule) is ignored with a
/// log line: the unit rebuilds by replay, and the views stay exact.
#[sqlx::test(migrations = "../migrations")]
async fn a_missing_checkpoint_layer_falls_back_to_replay(pool: PgPool) {
    let t = topics("ckptgone");
    create_topics(&t).await;
    let w = workload(5, 400, start(), 4);
    load_catalog(&pool, &w.catalog).await;
    let [(i1, p1), (i2, p2)] = halves(&w);
    let p = producer();
    produce_raw(&p, &t.impressions, &i1).await;
    produce_raw(&p, &t.plays, &p1).await;
    let archive = tempfile::tempdir().unwrap();
    run_until_idle(config(&t, "g-ckptgone", archive.path()), &pool).await;
    let layers: Vec<Vec<String>> =
        sqlx::query_scalar("SELECT layers FROM stream_checkpoints WHERE group_id = 'g-ckptgone'")
            .fetch_all(&pool)
            .await
            .unwrap();
    let first = layers
        .iter()
        .flatten()
        .next()
        .expect("a checkpoint")
        .clone();
    std::fs::remove_file(archive.path().join(&first)).unwrap();
    produce_raw(&p, &t.impressions, &i2).await;
    produce_raw(&p, &t.plays, &p2).await;
    let second = run_until_idle(config(&t, "g-ckptgone", archive.path()), &pool).await;
    assert!(second.replayed > 0, "the unit whose layer is gone replays");
    assert_views_exact(&pool, &w).await;
    archive_exact(archive.path(), &t, &w);
}

/// A layer at every flush, over many flushes: the chain is folded into one full layer in the
/// background (so it stays short), the files it replaced are deleted, and a restart restores it.
#[sqlx::test(migrations = "../migrations")]
async fn long_checkpoint_chains_are_merged_in_the_background(pool: PgPool) {
    let t = topics("ckptmerge");
    create_topics(&t).await;
    let w = workload(5, 600, start(), 4);
    load_catalog(&pool, &w.catalog).await;
    let imps = imp_msgs(&w.impressions);
    let plays = play_msgs(&w.plays);
    let archive = tempfile::tempdir().unwrap();
    let group = "g-ckptmerge";
    let mut cfg = config(&t, group, archive.path());
    cfg.exit_when_idle = None;
    cfg.checkpoint_interval = Duration::ZERO;
    let store = cfg.archive.clone();
    let token = CancellationToken::new();
    let handle = tokio::spawn(playsource_stream::run(cfg, pool.clone(), token.clone()));
    let p = producer();
    let rounds = 30;
    for r in 0..rounds {
        let (a, b) = (imps.len() * r / rounds, imps.len() * (r + 1) / rounds);
        let (c, d) = (plays.len() * r / rounds, plays.len() * (r + 1) / rounds);
        produce_raw(&p, &t.impressions, &imps[a..b]).await;
        produce_raw(&p, &t.plays, &plays[c..d]).await;
        tokio::time::sleep(Duration::from_millis(450)).await;
    }
    token.cancel();
    handle.await.unwrap().unwrap();
    let layers: Vec<Vec<String>> =
        sqlx::query_scalar("SELECT layers FROM stream_checkpoints WHERE group_id = $1")
            .bind(group)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert!(!layers.is_empty());
    assert!(
        layers.iter().all(|chain| chain.len() < 16),
        "chains stay short: {layers:?}"
    );
    assert!(
        layers.iter().any(|chain| !chain[0].ends_with("/e1-0.ckpt")),
        "some chain starts with a merged layer: {layers:?}"
    );
    // Only the named files are left (what merges replaced was deleted after the commits).
    let named: std::collections::BTreeSet<String> = layers.into_iter().flatten().collect();
    let on_disk: std::collections::BTreeSet<String> = store
        .list(&format!("_checkpoints/{group}"))
        .unwrap()
        .into_iter()
        .map(|(path, _)| path)
        .collect();
    let extra: Vec<_> = on_disk.difference(&named).collect();
    assert!(extra.len() <= 4, "superseded layers are deleted: {extra:?}");
    let again = run_until_idle(config(&t, group, archive.path()), &pool).await;
    assert_eq!(again.replayed, 0, "restored from the merged chain");
    assert_views_exact(&pool, &w).await;
}

async fn abort_mid_run(pool: PgPool, name: &str, checkpoint_every: Duration) {
    let t = topics(name);
    create_topics(&t).await;
    let w = workload(6, 700, start(), 4);
    load_catalog(&pool, &w.catalog).await;
    let [(i1, p1), (i2, p2)] = halves(&w);
    let p = producer();
    produce_raw(&p, &t.impressions, &i1).await;
    produce_raw(&p, &t.plays, &p1).await;
    let archive = tempfile::tempdir().unwrap();
    let group = format!("g-{name}");
    let mut cfg = config(&t, &group, archive.path());
    cfg.exit_when_idle = None;
    cfg.checkpoint_interval = checkpoint_every;
    let token = CancellationToken::new();
    let handle = tokio::spawn(playsource_stream::run(cfg, pool.clone(), token));
    // Kill it (no final flush) right after it committed something, while it still works.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM stream_offsets WHERE group_id = $1")
            .bind(&group)
            .fetch_one(&pool)
            .await
            .unwrap();
        if n > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the stream never committed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    produce_raw(&p, &t.impressions, &i2[..i2.len() / 2]).await;
    produce_raw(&p, &t.plays, &p2[..p2.len() / 2]).await;
    handle.abort();
    let _ = handle.await;
    produce_raw(&p, &t.impressions, &i2[i2.len() / 2..]).await;
    produce_raw(&p, &t.plays, &p2[p2.len() / 2..]).await;
    let cfg = config(&t, &group, archive.path());
    let cfg_store = cfg.archive.clone();
    let after = run_until_idle(cfg, &pool).await;
    if checkpoint_every > Duration::from_secs(60) {
        assert!(
            after.replayed > 0,
            "no checkpoint: the engine is rebuilt by replay"
        );
    } else {
        // A layer at every flush: many incremental layers, merged in the background; the
        // committed manifest names only files that exist, and nothing else is left behind.
        let layers: Vec<Vec<String>> =
            sqlx::query_scalar("SELECT layers FROM stream_checkpoints WHERE group_id = $1")
                .bind(&group)
                .fetch_all(&pool)
                .await
                .unwrap();
        assert!(
            layers.iter().all(|chain| chain.len() < 16),
            "chains are merged in the background: {layers:?}"
        );
        let named: std::collections::BTreeSet<String> = layers.into_iter().flatten().collect();
        assert!(!named.is_empty());
        let on_disk: std::collections::BTreeSet<String> = cfg_store
            .list(&format!("_checkpoints/{group}"))
            .unwrap()
            .into_iter()
            .map(|(path, _)| path)
            .collect();
        assert!(
            named.is_subset(&on_disk),
            "{named:?} not all in {on_disk:?}"
        );
    }
    assert_views_exact(&pool, &w).await;
    archive_exact(archive.path(), &t, &w);
}

#[sqlx::test(migrations = "../migrations")]
async fn an_abort_without_checkpoints_rebuilds_by_replay(pool: PgPool) {
    abort_mid_run(pool, "abortreplay", Duration::from_secs(3600)).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn an_abort_with_checkpoints_rebuilds_from_the_checkpoint(pool: PgPool) {
    abort_mid_run(pool, "abortsnap", Duration::ZERO).await;
}

/// A committed offset can fall inside one of the broker's record batches (a flush does not wait
/// for a batch's end). Resuming there must read exactly from that offset — also on a broker that
/// answers a fetch inside a batch with the next batch, or with nothing inside the last one
/// (tansu 0.6), which would otherwise skip the batch's rest.
#[sqlx::test(migrations = "../migrations")]
async fn a_committed_offset_inside_a_record_batch_resumes_exactly_there(pool: PgPool) {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let t = topics("inbatch");
    create_topics(&t).await;
    let w = workload(8, 300, start(), 4);
    load_catalog(&pool, &w.catalog).await;
    let (imps, plays) = (imp_msgs(&w.impressions), play_msgs(&w.plays));
    // Lingering producer: each round lands in one batch per partition.
    let p: FutureProducer = playsource_kafka::client_config(BROKERS)
        .set("linger.ms", "200")
        .create()
        .unwrap();
    let per = PARTITIONS as usize;
    // Two rounds per topic-partition; `round_a[k][p]` messages in the first.
    let mut round_a = [[0i64; PARTITIONS as usize]; 2];
    for round in 0..2 {
        for (k, (topic, msgs)) in [(&t.impressions, &imps), (&t.plays, &plays)]
            .into_iter()
            .enumerate()
        {
            let half = msgs.len() / 2;
            let part = if round == 0 {
                &msgs[..half]
            } else {
                &msgs[half..]
            };
            let mut futs = Vec::new();
            for (i, (key, value)) in part.iter().enumerate() {
                let partition = (i % per) as i32;
                if round == 0 {
                    round_a[k][i % per] += 1;
                }
                let rec = FutureRecord::to(topic)
                    .partition(partition)
                    .key(key.as_str())
                    .payload(value.as_slice());
                futs.push(p.send_result(rec).map_err(|(e, _)| e).unwrap());
            }
            for f in futs {
                f.await.unwrap().map_err(|(e, _)| e).unwrap();
            }
        }
    }
    // Committed offsets 3 into the first batch (impressions) and into the last one (plays).
    let mut skipped = 0i64;
    for part in 0..PARTITIONS {
        for (k, topic) in [&t.impressions, &t.plays].into_iter().enumerate() {
            let at = if k == 0 {
                3
            } else {
                round_a[k][part as usize] + 3
            };
            skipped += at;
            sqlx::query(
                "INSERT INTO stream_offsets (group_id, topic, partition, next_offset) VALUES ('g-inbatch', $1, $2, $3)",
            )
            .bind(topic)
            .bind(part)
            .bind(at)
            .execute(&pool)
            .await
            .unwrap();
        }
    }
    let archive = tempfile::tempdir().unwrap();
    let run = run_until_idle(config(&t, "g-inbatch", archive.path()), &pool).await;
    let total = (imps.len() + plays.len()) as i64;
    assert_eq!(
        run.replayed as i64, skipped,
        "replayed up to the committed offsets"
    );
    assert_eq!(
        run.consumed as i64,
        total - skipped,
        "read live from exactly the committed offsets"
    );
    let (_, imp_rows) = topic_rows(archive.path(), &t.impressions);
    let (_, play_rows) = topic_rows(archive.path(), &t.plays);
    assert_eq!(
        imp_rows + play_rows,
        total - skipped,
        "archived from the committed offsets"
    );
}
