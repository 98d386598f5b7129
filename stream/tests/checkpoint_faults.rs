//! Checkpoint faults at the flush: a layer that cannot be written does not stop the flush (the
//! view, offsets and archive commit without it; the unit's next layer is full), and a fenced
//! unit's new layer file is deleted, never named by a manifest.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use playsource_domain::aggregate::Counts;
use playsource_domain::{decode_impression, AttributionConfig, Engine, PerTopic};
use playsource_kafka::Topics;
use playsource_stream::checkpoint::{self, Manifest, PendingCheckpoint, TakenLayer};
use playsource_stream::dlq::Publisher;
use playsource_stream::flush::{flush, Shared};
use playsource_stream::retry::RetryPolicy;
use playsource_stream::sink_postgres::{self, OffsetRow, UnitCommit};
use playsource_stream::unit::UnitFlush;
use sqlx::PgPool;

fn shared(t: &Topics, group: &str, archive: &std::path::Path, pool: &PgPool) -> Arc<Shared> {
    Arc::new(Shared {
        publisher: Publisher::new(BROKERS).unwrap(),
        topics: PerTopic::new(t.impressions.clone(), t.plays.clone()),
        pool: pool.clone(),
        retry: RetryPolicy {
            budget: Duration::from_secs(5),
            cancel: Default::default(),
        },
        cfg: config(t, group, archive),
        compaction: Default::default(),
    })
}

/// A unit's flush with a full layer of a small engine, to be written at `seq`.
fn unit_flush(t: &Topics, group: &str, epoch: i64, seq: u64) -> UnitFlush {
    let mut e = Engine::new(AttributionConfig::default());
    let imp = br#"{"event_id":"i1","ts":"2026-11-21T10:00:00Z","member_id":1,"video_id":2,"page":"home","row_type":"top_picks","row_index":1,"rank":2,"country":"US","device":"tv"}"#;
    e.on_impression(&decode_impression(imp).unwrap(), &mut Vec::new());
    let (head, pairs) = e.take_layer(true);
    UnitFlush {
        commit: UnitCommit {
            partition: 1,
            epoch,
            counts: Counts::default(),
            too_late: Default::default(),
            offsets: vec![OffsetRow {
                topic: t.impressions.clone(),
                next_offset: 1,
                high_water: None,
            }],
            checkpoint: None,
            staged: Vec::new(),
        },
        archive: Vec::new(),
        dlq: Vec::new(),
        enriched: Vec::new(),
        catalog_use: None,
        checkpoint: Some(PendingCheckpoint {
            layer: TakenLayer {
                head,
                pairs,
                path: checkpoint::layer_path(group, 1, epoch, seq),
            },
            manifest: Manifest::default(),
            merged: None,
            offsets: PerTopic::new(1, 0),
        }),
    }
}

async fn manifests(pool: &PgPool, group: &str) -> Vec<Vec<String>> {
    sqlx::query_scalar("SELECT layers FROM stream_checkpoints WHERE group_id = $1")
        .bind(group)
        .fetch_all(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrations = "../migrations")]
async fn a_layer_that_cannot_be_written_does_not_stop_the_flush(pool: PgPool) {
    let t = topics("ckptfail");
    let archive = tempfile::tempdir().unwrap();
    let group = "g-ckptfail";
    let s = shared(&t, group, archive.path(), &pool);
    let epoch = sink_postgres::acquire_lease(&pool, group, 1, "me")
        .await
        .unwrap();
    // A file stands where the unit's checkpoint folder goes: the layer cannot be written.
    let folder = archive.path().join(checkpoint::folder(group, 1));
    std::fs::create_dir_all(folder.parent().unwrap()).unwrap();
    std::fs::write(&folder, b"not a folder").unwrap();
    let done = flush(Arc::clone(&s), vec![unit_flush(&t, group, epoch, 0)])
        .await
        .unwrap();
    assert_eq!(done.committed.len(), 1, "the flush committed");
    assert_eq!(done.checkpoints, vec![(1, epoch, None)], "the layer failed");
    assert!(
        manifests(&pool, group).await.is_empty(),
        "no manifest names it"
    );
    let next: Option<i64> = sink_postgres::committed_offset(&pool, group, &t.impressions, 1)
        .await
        .unwrap();
    assert_eq!(next, Some(1), "the offsets committed without the layer");

    // Writable again: the next flush's layer lands and its manifest is committed.
    std::fs::remove_file(&folder).unwrap();
    let done = flush(Arc::clone(&s), vec![unit_flush(&t, group, epoch, 1)])
        .await
        .unwrap();
    let files = done.checkpoints[0].2.clone().expect("written");
    assert_eq!(
        manifests(&pool, group).await,
        vec![vec![files[0].path.clone()]]
    );
    assert!(archive.path().join(&files[0].path).is_file());
}

#[sqlx::test(migrations = "../migrations")]
async fn a_fenced_units_new_layer_is_deleted(pool: PgPool) {
    let t = topics("ckptfence");
    let archive = tempfile::tempdir().unwrap();
    let group = "g-ckptfence";
    let s = shared(&t, group, archive.path(), &pool);
    let old = sink_postgres::acquire_lease(&pool, group, 1, "old")
        .await
        .unwrap();
    let _new = sink_postgres::acquire_lease(&pool, group, 1, "new")
        .await
        .unwrap();
    let f = unit_flush(&t, group, old, 0);
    let path = archive
        .path()
        .join(checkpoint::layer_path(group, 1, old, 0));
    let done = flush(Arc::clone(&s), vec![f]).await.unwrap();
    assert_eq!(done.fenced, vec![(1, old)]);
    assert!(done.checkpoints.is_empty());
    assert!(manifests(&pool, group).await.is_empty());
    assert!(!path.exists(), "the fenced layer file was deleted");
}
