-- The temporal catalog (contract §2): each `playsource catalog load` that changes anything records
-- a version; a version holds only the videos it changed (or added), effective from
-- `effective_from` (NULL: the beginning of time, for the first version ever loaded). A play takes
-- each video's values from the latest version, in (effective_from, version) order, effective at
-- or before its ts. The `catalog` table of 0001 keeps the latest values loaded for each video.
CREATE TABLE catalog_versions (
    version        BIGINT      PRIMARY KEY,
    effective_from TIMESTAMPTZ,
    loaded_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    file           TEXT        NOT NULL DEFAULT '',
    videos         BIGINT      NOT NULL
);

CREATE TABLE catalog_entries (
    version     BIGINT         NOT NULL REFERENCES catalog_versions (version),
    video_id    NUMERIC(20, 0) NOT NULL CHECK (video_id >= 1 AND video_id <= 18446744073709551615),
    title       TEXT           NOT NULL,
    genre       TEXT           NOT NULL,
    kind        TEXT           NOT NULL CHECK (kind IN ('movie', 'episode', 'show')),
    launch_date DATE           NOT NULL,
    PRIMARY KEY (video_id, version)
);

-- A catalog loaded before versions existed becomes version 1, in effect from the beginning of time.
INSERT INTO catalog_versions (version, effective_from, loaded_at, file, videos)
SELECT 1, NULL, max(updated_at), '(catalog before versions)', count(*) FROM catalog HAVING count(*) > 0;
INSERT INTO catalog_entries (version, video_id, title, genre, kind, launch_date)
SELECT 1, video_id, title, genre, kind, launch_date FROM catalog WHERE EXISTS (SELECT 1 FROM catalog_versions);
