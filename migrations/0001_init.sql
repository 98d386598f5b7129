-- playsource schema, version 1. Never edit an applied migration: add a new file.
-- Video ids are u64 (contract §1), so they are NUMERIC(20,0) here, not BIGINT.

-- Side input (contract §2), loaded by `playsource catalog load`.
CREATE TABLE catalog (
    video_id    NUMERIC(20, 0) PRIMARY KEY CHECK (video_id >= 1 AND video_id <= 18446744073709551615),
    title       TEXT        NOT NULL,
    genre       TEXT        NOT NULL,
    kind        TEXT        NOT NULL CHECK (kind IN ('movie', 'episode', 'show')),
    launch_date DATE        NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Views of contract §4. rt_* is written by the stream (additive deltas), batch_* by the batch
-- layer (a whole day replaced at once). Both have the same shape.
CREATE TABLE rt_hourly (
    hour       TIMESTAMPTZ NOT NULL,
    country    TEXT        NOT NULL,
    device     TEXT        NOT NULL,
    sop_row    TEXT        NOT NULL,
    sod_row    TEXT        NOT NULL,
    genre      TEXT        NOT NULL,
    new_launch BOOLEAN     NOT NULL,
    plays      BIGINT      NOT NULL,
    PRIMARY KEY (hour, country, device, sop_row, sod_row, genre, new_launch)
);

CREATE TABLE rt_video_daily (
    day      DATE           NOT NULL,
    video_id NUMERIC(20, 0) NOT NULL,
    sod_row  TEXT           NOT NULL,
    plays    BIGINT         NOT NULL,
    PRIMARY KEY (video_id, day, sod_row)
);

CREATE TABLE batch_hourly (LIKE rt_hourly INCLUDING ALL);
CREATE TABLE batch_video_daily (LIKE rt_video_daily INCLUDING ALL);

-- A day is batch-complete once it has a row here; `generation` grows with every publish so
-- readers can tell that a day was republished.
CREATE SEQUENCE batch_generation;
CREATE TABLE batch_days (
    day          DATE        PRIMARY KEY,
    generation   BIGINT      NOT NULL DEFAULT nextval('batch_generation'),
    completed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    plays        BIGINT      NOT NULL,
    impressions  BIGINT      NOT NULL,
    too_late_plays BIGINT    NOT NULL DEFAULT 0
);

-- The stream's progress: the next offset to read per topic-partition, written in the same
-- transaction as the view deltas it covers. Kafka's committed group offsets are informational.
CREATE TABLE stream_offsets (
    group_id    TEXT        NOT NULL,
    topic       TEXT        NOT NULL,
    partition   INTEGER     NOT NULL,
    next_offset BIGINT      NOT NULL,
    high_water  TIMESTAMPTZ,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, topic, partition)
);

-- Fencing: the owner of a partition unit holds the current epoch; a write that carries an older
-- epoch is refused, so a stale owner after a rebalance cannot commit.
CREATE TABLE stream_leases (
    group_id    TEXT        NOT NULL,
    partition   INTEGER     NOT NULL,
    owner       TEXT        NOT NULL,
    epoch       BIGINT      NOT NULL,
    acquired_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, partition)
);

-- Events the stream found too late (contract §4), per hour of their ts: the batch layer counts
-- them, and `playsource audit` uses these to explain drift.
CREATE TABLE rt_too_late (
    hour     TIMESTAMPTZ NOT NULL,
    topic    TEXT        NOT NULL,
    country  TEXT        NOT NULL,
    device   TEXT        NOT NULL,
    events   BIGINT      NOT NULL,
    PRIMARY KEY (hour, topic, country, device)
);
