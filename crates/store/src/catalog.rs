//! The catalog side input (contract §2): bulk loading from CSV and reading it back for the
//! in-process caches of the stream and batch layers.

use std::path::Path;

use chrono::NaiveDate;
use playsource_domain::{Kind, VideoId, VideoMeta};
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

/// Parses the CSV at `path` (header `video_id,title,genre,kind,launch_date`) and upserts every
/// row in one transaction. A bad row fails the whole file with its line and column, and nothing
/// is loaded. Returns the number of videos in the file.
pub async fn load_csv(pool: &PgPool, path: &Path) -> Result<usize, Error> {
    let rows = read_csv(path)?;
    upsert(pool, &rows).await?;
    tracing::info!(videos = rows.len(), file = %path.display(), "catalog loaded");
    Ok(rows.len())
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

/// Inserts or updates these videos, all in one transaction: nothing is written if any is
/// invalid, and `updated_at` moves only for rows whose values changed. Returns how many were
/// given.
pub async fn upsert(pool: &PgPool, videos: &[VideoMeta]) -> Result<usize, Error> {
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
        sqlx::query(UPSERT_SQL)
            .bind(&ids)
            .bind(&titles)
            .bind(&genres)
            .bind(&kinds)
            .bind(&dates)
            .execute(&mut *tx)
            .await
            .map_err(Error::query(what))?;
    }
    tx.commit().await.map_err(Error::query(what))?;
    Ok(videos.len())
}

/// Every video of the catalog, ordered by id.
pub async fn fetch_all(pool: &PgPool) -> Result<Vec<VideoMeta>, Error> {
    let rows: Vec<(String, String, String, String, NaiveDate)> = sqlx::query_as(
        "SELECT video_id::text, title, genre, kind, launch_date FROM catalog ORDER BY catalog.video_id",
    )
    .fetch_all(pool)
    .await
    .map_err(Error::query("reading the catalog"))?;
    rows.into_iter()
        .map(|(id, title, genre, kind, date)| {
            let video_id = id
                .parse::<u64>()
                .map_err(|_| Error::Corrupt(format!("catalog video_id `{id}` is not a u64")))?;
            let kind = Kind::parse(&kind).ok_or_else(|| {
                Error::Corrupt(format!("catalog video {id} has unknown kind `{kind}`"))
            })?;
            Ok(VideoMeta {
                video_id: VideoId(video_id),
                title,
                genre,
                kind,
                launch_date: playsource_domain::Day::from_date(date),
            })
        })
        .collect()
}

/// A cheap fingerprint of the catalog's contents: (number of videos, latest `updated_at`).
/// Caches poll it and call [`fetch_all`] only when it changes.
pub async fn version(pool: &PgPool) -> Result<(i64, Option<chrono::DateTime<chrono::Utc>>), Error> {
    sqlx::query_as("SELECT count(*), max(updated_at) FROM catalog")
        .fetch_one(pool)
        .await
        .map_err(Error::query("reading the catalog version"))
}
