-- Engine checkpoints move out of Postgres (docs/stream.md, "State across restarts").
--
-- Each partition unit's engine is checkpointed as a chain of layer files in the archive's store
-- (a local folder or an object store, under `_checkpoints/<group>/p<p>/`): a full layer, then
-- layers of only what changed. Postgres keeps the manifest, written in the flush transaction
-- that commits the offsets it is exact at: the files (archive-relative paths, oldest first),
-- their sizes, and the lease epoch that wrote it.
CREATE TABLE stream_checkpoints (
    group_id           TEXT        NOT NULL,
    partition          INTEGER     NOT NULL,
    impressions_topic  TEXT        NOT NULL,
    plays_topic        TEXT        NOT NULL,
    impressions_offset BIGINT      NOT NULL,
    plays_offset       BIGINT      NOT NULL,
    format             INTEGER     NOT NULL,
    epoch              BIGINT      NOT NULL,
    layers             TEXT[]      NOT NULL,
    layer_bytes        BIGINT[]    NOT NULL,
    taken_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, partition),
    CHECK (cardinality(layers) >= 1 AND cardinality(layers) = cardinality(layer_bytes))
);

-- Whole-engine snapshots in one row are no longer written or read: a unit without a checkpoint
-- rebuilds from Kafka (or the archive) once.
DROP TABLE stream_snapshots;
