-- The streaming layer's recovery state (see docs/stream.md).

-- The latest snapshot of each partition unit's attribution engine, written in the same
-- transaction as the offsets it is exact at: a restart restores it and replays only the events
-- between these offsets and `stream_offsets`.
CREATE TABLE stream_snapshots (
    group_id           TEXT        NOT NULL,
    partition          INTEGER     NOT NULL,
    impressions_topic  TEXT        NOT NULL,
    plays_topic        TEXT        NOT NULL,
    impressions_offset BIGINT      NOT NULL,
    plays_offset       BIGINT      NOT NULL,
    format             INTEGER     NOT NULL,
    taken_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    state              BYTEA       NOT NULL,
    PRIMARY KEY (group_id, partition)
);

-- Archive files written to the staging folder and committed with a flush but not yet renamed
-- into the archive (paths relative to the archive root). A new owner of the partition renames
-- the listed ones and deletes every other staged file, so readers see each file exactly once.
CREATE TABLE stream_archive_staged (
    group_id    TEXT        NOT NULL,
    partition   INTEGER     NOT NULL,
    staged_path TEXT        NOT NULL,
    final_path  TEXT        NOT NULL,
    rows        BIGINT      NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, partition, staged_path)
);
