-- The serving layer's read-only role (see docs/serving.md): `playsource serve` needs only SELECT
-- on the views, the batch-completeness table, the stream's high-water marks and the catalog.
-- Roles are cluster-wide while migrations run per database (tests run many at once), so the
-- role is created only if missing, and a concurrent creator's win is not an error.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'playsource_reader') THEN
        CREATE ROLE playsource_reader LOGIN NOINHERIT;
    END IF;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;

-- Grants are per database, so concurrent migrations of other databases do not collide here.
DO $$
BEGIN
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO playsource_reader', current_database());
END
$$;
GRANT USAGE ON SCHEMA public TO playsource_reader;
GRANT SELECT ON catalog, rt_hourly, rt_video_daily, batch_hourly, batch_video_daily, batch_days,
    stream_offsets TO playsource_reader;
