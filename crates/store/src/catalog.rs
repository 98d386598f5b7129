//! The catalog side input (docs/reference.md §2): bulk loading from CSV and reading it back for the
//! in-process caches of the stream and batch layers.

use std::path::Path;

use chrono::{DateTime, NaiveDate, Utc};
use playsource_domain::{Catalog, CatalogVersion, Kind, Ts, VideoId, VideoMeta};
use sqlx::PgPool;

use crate::Error;

/// Rows per `UNNEST` statement when upserting (all statements share one transaction).
const UPSERT_CHUNK: usize = 50_000;

const UPSERT_SQL: &str = "\
INSERT INTO catalog (video_id, title, genre, kind, launch_date)
SELECT * FROM UNNEST($1::text[]::numeric[], $2::text[], $3::text[], $4::text[], $5::date[])
ON CONFLICT (video_id) DO UPDATE SET
    title = EXCLUDED.title,
    genre = EXCLUDED.genre,
    kind = EXCLUDED.kind,
    launch_date = EXCLUDED.launch_date,
    updated_at = now()
WHERE (catalog.title, catalog.genre, catalog.kind, catalog.launch_date)
    IS DISTINCT FROM (EXCLUDED.title, EXCLUDED.genre, EXCLUDED.kind, EXCLUDED.launch_date)";

/// Parses the CSV at `path` (header `video_id,title,genre,kind,launch_date`) and records it as a
/// new version effective now, in one transaction. A bad row fails the whole file with its line
/// and column, and nothing is loaded. Returns the number of videos in the file.
pub async fn load_csv(pool: &PgPool, path: &Path) -> Result<usize, Error> {
    let rows = read_csv(path)?;
    let out = load_version(pool, &rows, None, &path.display().to_string()).await?;
    tracing::info!(videos = rows.len(), changed = out.changed, version = ?out.version, file = %path.display(), "catalog loaded");
    Ok(rows.len())
}

/// What a load recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loaded {
    /// The new version, or `None` when the file is identical to the catalog in effect then.
    pub version: Option<i64>,
    /// When it applies from (`None`: the beginning of time, for the first version).
    pub effective_from: Option<DateTime<Utc>>,
    /// Videos whose values changed (or that are new).
    pub changed: usize,
}

/// Reads and validates a catalog CSV without touching the database (errors name the file,
/// line and column).
pub fn read_csv(path: &Path) -> Result<Vec<VideoMeta>, Error> {
    let file = std::fs::File::open(path).map_err(|cause| Error::ReadFile {
        path: path.to_owned(),
        cause,
    })?;
    playsource_domain::catalog::parse_csv(std::io::BufReader::new(file)).map_err(|cause| {
        Error::Csv {
            path: path.to_owned(),
            cause,
        }
    })
}

/// Records these videos as a new version effective now (see [`load_version`]). Returns how
/// many were given.
pub async fn upsert(pool: &PgPool, videos: &[VideoMeta]) -> Result<usize, Error> {
    load_version(pool, videos, None, "").await?;
    Ok(videos.len())
}

/// Records these videos as a new catalog version, all in one transaction (nothing is written if
/// any is invalid). It applies from `effective_from` (default: the load time), or from the
/// beginning of time when it is the first version ever loaded. Only videos whose values differ
/// from those in effect then are stored; when none differ, no version is recorded. The
/// `catalog` table gets the file's values (the latest loaded for each video).
pub async fn load_version(
    pool: &PgPool,
    videos: &[VideoMeta],
    effective_from: Option<DateTime<Utc>>,
    file: &str,
) -> Result<Loaded, Error> {
    for v in videos {
        for (field, text) in [("title", &v.title), ("genre", &v.genre)] {
            if text.contains('\0') {
                return Err(Error::NulInText {
                    video_id: v.video_id.0,
                    field,
                });
            }
        }
    }
    let what = "loading the catalog";
    let mut tx = pool.begin().await.map_err(Error::query(what))?;
    // One load at a time: each computes its changes against the versions before it.
    sqlx::query("LOCK TABLE catalog_versions IN EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await
        .map_err(Error::query(what))?;
    let current = fetch_catalog_in(&mut tx).await?;
    let (now,): (DateTime<Utc>,) = sqlx::query_as("SELECT now()")
        .fetch_one(&mut *tx)
        .await
        .map_err(Error::query(what))?;
    let effective_from = if current.versions().is_empty() {
        None
    } else {
        Some(effective_from.unwrap_or(now))
    };
    let eff_ts = effective_from.map(|t| Ts(t.timestamp_millis()));
    let changed: Vec<VideoMeta> = current
        .changes(eff_ts, videos)
        .into_iter()
        .cloned()
        .collect();
    let mut version = None;
    if !changed.is_empty() {
        let v = current
            .versions()
            .iter()
            .map(|v| v.version)
            .max()
            .unwrap_or(0)
            + 1;
        sqlx::query(
            "INSERT INTO catalog_versions (version, effective_from, loaded_at, file, videos) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(v)
        .bind(effective_from)
        .bind(now)
        .bind(file)
        .bind(changed.len() as i64)
        .execute(&mut *tx)
        .await
        .map_err(Error::query(what))?;
        write_rows(&mut tx, ENTRIES_SQL, Some(v), &changed).await?;
        version = Some(v);
    }
    write_rows(&mut tx, UPSERT_SQL, None, videos).await?;
    tx.commit().await.map_err(Error::query(what))?;
    Ok(Loaded {
        version,
        effective_from,
        changed: changed.len(),
    })
}

const ENTRIES_SQL: &str = "\
INSERT INTO catalog_entries (version, video_id, title, genre, kind, launch_date)
SELECT $6, * FROM UNNEST($1::text[]::numeric[], $2::text[], $3::text[], $4::text[], $5::date[])";

async fn write_rows(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    sql: &str,
    version: Option<i64>,
    videos: &[VideoMeta],
) -> Result<(), Error> {
    let what = "loading the catalog";
    for chunk in videos.chunks(UPSERT_CHUNK) {
        let mut ids = Vec::with_capacity(chunk.len());
        let mut titles = Vec::with_capacity(chunk.len());
        let mut genres = Vec::with_capacity(chunk.len());
        let mut kinds = Vec::with_capacity(chunk.len());
        let mut dates: Vec<NaiveDate> = Vec::with_capacity(chunk.len());
        for v in chunk {
            ids.push(v.video_id.0.to_string());
            titles.push(v.title.as_str());
            genres.push(v.genre.as_str());
            kinds.push(v.kind.as_str());
            dates.push(v.launch_date.to_date());
        }
        let mut q = sqlx::query(sql)
            .bind(&ids)
            .bind(&titles)
            .bind(&genres)
            .bind(&kinds)
            .bind(&dates);
        if let Some(v) = version {
            q = q.bind(v);
        }
        q.execute(&mut **tx).await.map_err(Error::query(what))?;
    }
    Ok(())
}

/// The temporal catalog: every version and every video value each set.
pub async fn fetch_catalog(pool: &PgPool) -> Result<Catalog, Error> {
    let mut conn = pool
        .acquire()
        .await
        .map_err(Error::query("reading the catalog"))?;
    fetch_catalog_in(&mut conn).await
}

async fn fetch_catalog_in(conn: &mut sqlx::PgConnection) -> Result<Catalog, Error> {
    let versions = list_versions_in(&mut *conn).await?;
    let rows: Vec<(i64, String, String, String, String, NaiveDate)> = sqlx::query_as(
        "SELECT version, video_id::text, title, genre, kind, launch_date FROM catalog_entries",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(Error::query("reading the catalog"))?;
    let entries = rows
        .into_iter()
        .map(|(v, id, title, genre, kind, date)| Ok((v, meta(id, title, genre, kind, date)?)))
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(Catalog::from_history(
        versions.into_iter().map(|(v, _)| v),
        entries,
    ))
}

/// Every catalog version with the file it was loaded from, in effect order.
pub async fn list_versions(pool: &PgPool) -> Result<Vec<(CatalogVersion, String)>, Error> {
    let mut conn = pool
        .acquire()
        .await
        .map_err(Error::query("reading the catalog versions"))?;
    list_versions_in(&mut conn).await
}

/// A `catalog_versions` row: version, effective_from, loaded_at, file, videos.
type VersionRow = (i64, Option<DateTime<Utc>>, DateTime<Utc>, String, i64);

async fn list_versions_in(
    conn: &mut sqlx::PgConnection,
) -> Result<Vec<(CatalogVersion, String)>, Error> {
    let rows: Vec<VersionRow> = sqlx::query_as(
        "SELECT version, effective_from, loaded_at, file, videos FROM catalog_versions
         ORDER BY effective_from NULLS FIRST, version",
    )
    .fetch_all(conn)
    .await
    .map_err(Error::query("reading the catalog versions"))?;
    Ok(rows
        .into_iter()
        .map(|(version, eff, loaded, file, videos)| {
            (
                CatalogVersion {
                    version,
                    effective_from: eff.map(|t| Ts(t.timestamp_millis())),
                    loaded_at: Ts(loaded.timestamp_millis()),
                    videos: u64::try_from(videos).unwrap_or(0),
                },
                file,
            )
        })
        .collect())
}

fn meta(
    id: String,
    title: String,
    genre: String,
    kind: String,
    date: NaiveDate,
) -> Result<VideoMeta, Error> {
    let video_id = id
        .parse::<u64>()
        .map_err(|_| Error::Corrupt(format!("catalog video_id `{id}` is not a u64")))?;
    let kind = Kind::parse(&kind)
        .ok_or_else(|| Error::Corrupt(format!("catalog video {id} has unknown kind `{kind}`")))?;
    Ok(VideoMeta {
        video_id: VideoId(video_id),
        title,
        genre,
        kind,
        launch_date: playsource_domain::Day::from_date(date),
    })
}

/// The latest values loaded for every video (the `catalog` table), ordered by id. Enrichment
/// uses [`fetch_catalog`] instead: the values in effect at each play's ts.
pub async fn fetch_all(pool: &PgPool) -> Result<Vec<VideoMeta>, Error> {
    let rows: Vec<(String, String, String, String, NaiveDate)> = sqlx::query_as(
        "SELECT video_id::text, title, genre, kind, launch_date FROM catalog ORDER BY catalog.video_id",
    )
    .fetch_all(pool)
    .await
    .map_err(Error::query("reading the catalog"))?;
    rows.into_iter()
        .map(|(id, title, genre, kind, date)| meta(id, title, genre, kind, date))
        .collect()
}

/// A cheap fingerprint of the catalog's contents: (number of versions, latest load time).
/// Caches poll it and call [`fetch_catalog`] only when it changes.
pub async fn version(pool: &PgPool) -> Result<(i64, Option<chrono::DateTime<chrono::Utc>>), Error> {
    sqlx::query_as("SELECT count(*), max(loaded_at) FROM catalog_versions")
        .fetch_one(pool)
        .await
        .map_err(Error::query("reading the catalog version"))
}

/// Catalog versions with an id above `above`: (id, effective from; `None` for the beginning of
/// time).
pub async fn versions_above(
    pool: &PgPool,
    above: i64,
) -> Result<Vec<(i64, Option<chrono::DateTime<chrono::Utc>>)>, Error> {
    sqlx::query_as("SELECT version, effective_from FROM catalog_versions WHERE version > $1")
        .bind(above)
        .fetch_all(pool)
        .await
        .map_err(Error::query("checking for a newer catalog version"))
}
