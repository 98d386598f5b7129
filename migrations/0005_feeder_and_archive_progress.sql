-- One realtime view, one owner; and the archive's completeness (contract §4, docs/stream.md).

-- The one consumer group that feeds the realtime view (rt_*). A stream of another group refuses
-- to start unless told `--take-over`, which hands the view over (see crates/store/src/feeder.rs).
CREATE TABLE stream_feeder (
    view     TEXT        NOT NULL PRIMARY KEY DEFAULT 'realtime' CHECK (view = 'realtime'),
    group_id TEXT        NOT NULL,
    since    TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- How far the stream has archived each topic-partition into an archive (`archive` is the
-- archive root as the stream names it, made absolute): the greatest event time archived, and the
-- last wall-clock time at which the partition was read to the end of its log with everything
-- flushed. `playsource batch --date D` publishes D only when every partition of both topics is
-- past D + 1 day + allowed lateness in one of the two. Written in the flush transaction.
CREATE TABLE archive_progress (
    archive      TEXT        NOT NULL,
    topic        TEXT        NOT NULL,
    partition    INTEGER     NOT NULL,
    group_id     TEXT        NOT NULL,
    high_water   TIMESTAMPTZ,
    caught_up_at TIMESTAMPTZ,
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (archive, topic, partition)
);
