-- Batch beyond one machine (`playsource batch --date D --shard I/N`, docs/batch.md): each shard
-- records its part of day D here; the shard that records the last of the N parts (under the
-- day's advisory lock, in the same transaction) sums the parts into batch_hourly /
-- batch_video_daily and marks D complete, exactly like a one-machine publish. A part is keyed by
-- (day, shard_count, shard_index): a re-run of a shard replaces its own part. `inputs` is a
-- fingerprint of the day's archive listing: only parts computed from the same files are merged.
CREATE TABLE batch_shard_parts (
    day          DATE        NOT NULL,
    shard_count  INTEGER     NOT NULL CHECK (shard_count >= 1),
    shard_index  INTEGER     NOT NULL CHECK (shard_index >= 1 AND shard_index <= shard_count),
    inputs       TEXT        NOT NULL,
    plays        BIGINT      NOT NULL,
    impressions  BIGINT      NOT NULL,
    enriched_dir TEXT        NOT NULL,
    recorded_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (day, shard_count, shard_index)
);

CREATE TABLE batch_shard_hourly (
    day         DATE        NOT NULL,
    shard_count INTEGER     NOT NULL,
    shard_index INTEGER     NOT NULL,
    hour        TIMESTAMPTZ NOT NULL,
    country     TEXT        NOT NULL,
    device      TEXT        NOT NULL,
    sop_row     TEXT        NOT NULL,
    sod_row     TEXT        NOT NULL,
    genre       TEXT        NOT NULL,
    new_launch  BOOLEAN     NOT NULL,
    plays       BIGINT      NOT NULL,
    FOREIGN KEY (day, shard_count, shard_index)
        REFERENCES batch_shard_parts (day, shard_count, shard_index) ON DELETE CASCADE
);
CREATE INDEX batch_shard_hourly_part ON batch_shard_hourly (day, shard_count, shard_index);

CREATE TABLE batch_shard_video_daily (
    day         DATE           NOT NULL,
    shard_count INTEGER        NOT NULL,
    shard_index INTEGER        NOT NULL,
    video_id    NUMERIC(20, 0) NOT NULL,
    sod_row     TEXT           NOT NULL,
    plays       BIGINT         NOT NULL,
    FOREIGN KEY (day, shard_count, shard_index)
        REFERENCES batch_shard_parts (day, shard_count, shard_index) ON DELETE CASCADE
);
CREATE INDEX batch_shard_video_daily_part ON batch_shard_video_daily (day, shard_count, shard_index);
