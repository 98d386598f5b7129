//! Shared by the batch tests: a small seeded workload generator, archive writing, catalog
//! loading and reading the batch view back.
#![allow(dead_code, clippy::unwrap_used)]

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};
use playsource_archive::{ArchiveStore, ImpressionsWriter, PlaysWriter};
use playsource_domain::aggregate::{HourlyRow, VideoDayRow};
use playsource_domain::{Catalog, Day, Impression, Kind, MemberId, Play, Ts, VideoId, VideoMeta};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sqlx::PgPool;

pub const ROWS: [&str; 8] = [
    "continue_watching",
    "trending_now",
    "top_picks",
    "my_list",
    "because_you_watched",
    "new_releases",
    "billboard",
    "brand_new_row_2027",
];
pub const COUNTRIES: [&str; 5] = ["US", "GB", "BR", "DE", "IN"];
pub const DEVICES: [&str; 4] = ["tv", "mobile", "web", "tablet"];

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The Python with pyarrow the tests use.
pub fn python() -> PathBuf {
    std::env::var_os("PLAYSOURCE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".services/venv/bin/python"))
}

pub fn day(s: &str) -> Day {
    Day::parse(s).unwrap()
}

pub fn ts(s: &str) -> Ts {
    Ts::parse_rfc3339(s).unwrap()
}

/// A generated workload.
pub struct Workload {
    pub impressions: Vec<Impression<'static>>,
    pub plays: Vec<Play<'static>>,
    pub catalog: Vec<VideoMeta>,
}

fn event_id(rng: &mut ChaCha8Rng, prefix: &str, n: usize) -> String {
    // Half canonical UUIDs (compact keys), half free text.
    if rng.gen_bool(0.5) {
        let b: [u8; 16] = rng.gen();
        let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    } else {
        format!("{prefix}-{n}")
    }
}

/// Sessions of members over `first..=last`: impressions at a session start, sometimes shared
/// timestamps, then plays of shown titles (some beyond the SoP window) and of unseen ones, with
/// redelivered copies of both.
pub fn workload(seed: u64, first: Day, last: Day, members: u64, sessions: usize) -> Workload {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let videos: u64 = 40;
    let catalog = (1..=videos - 8)
        .map(|v| VideoMeta {
            video_id: VideoId(v),
            title: format!("Title {v}"),
            genre: ["drama", "comedy", "documentary", "kids"][(v % 4) as usize].into(),
            kind: [Kind::Movie, Kind::Episode, Kind::Show][(v % 3) as usize],
            launch_date: last.plus(-(rng.gen_range(0..60))),
        })
        .collect();
    let span = (last.plus(1).start().0 - first.start().0) as u64;
    let mut impressions = Vec::new();
    let mut plays = Vec::new();
    for s in 0..sessions {
        let member = rng.gen_range(1..=members);
        let country = *COUNTRIES.choose(&mut rng).unwrap();
        let device = *DEVICES.choose(&mut rng).unwrap();
        let t0 = first.start().0 + (rng.gen_range(0..span) as i64);
        let shown: Vec<u64> = (0..rng.gen_range(1..6))
            .map(|_| rng.gen_range(1..=videos))
            .collect();
        let mut t = t0;
        for (k, &video) in shown.iter().enumerate() {
            if !rng.gen_bool(0.2) {
                t += rng.gen_range(0..120_000);
            }
            let imp = Impression {
                event_id: event_id(&mut rng, "imp", s * 10 + k).into(),
                ts: Ts(t),
                member_id: MemberId(member),
                video_id: VideoId(video),
                page: Cow::Borrowed(if rng.gen_bool(0.9) { "home" } else { "kids" }),
                row_type: Cow::Borrowed(ROWS.choose(&mut rng).unwrap()),
                row_index: rng.gen_range(0..40),
                rank: rng.gen_range(0..75),
                country: Cow::Borrowed(country),
                device: Cow::Borrowed(device),
            };
            if rng.gen_bool(0.03) {
                impressions.push(imp.clone());
            }
            impressions.push(imp);
        }
        for p in 0..rng.gen_range(0..3) {
            let video = if rng.gen_bool(0.85) {
                *shown.choose(&mut rng).unwrap()
            } else {
                rng.gen_range(1..=videos)
            };
            let play = Play {
                event_id: event_id(&mut rng, "play", s * 10 + p).into(),
                ts: Ts(t + rng.gen_range(0..45 * 60_000)),
                member_id: MemberId(member),
                video_id: VideoId(video),
                country: Cow::Borrowed(country),
                device: Cow::Borrowed(device),
                session_id: rng.gen_bool(0.7).then(|| format!("s-{s}").into()),
            };
            if rng.gen_bool(0.03) {
                plays.push(play.clone());
            }
            plays.push(play);
        }
    }
    impressions.shuffle(&mut rng);
    plays.shuffle(&mut rng);
    Workload {
        impressions,
        plays,
        catalog,
    }
}

/// Writes events into the archive with the archive crate's writer, in `files` files per hour.
pub fn write_archive(
    root: &Path,
    impressions: &[Impression<'_>],
    plays: &[Play<'_>],
    files: usize,
) {
    write_archive_in(&ArchiveStore::local(root), impressions, plays, files);
}

/// [`write_archive`] into any archive (a local folder or an object store).
pub fn write_archive_in(
    store: &ArchiveStore,
    impressions: &[Impression<'_>],
    plays: &[Play<'_>],
    files: usize,
) {
    let mut iw = ImpressionsWriter::in_store(store.clone(), "impressions").unwrap();
    for (n, chunk) in impressions
        .chunks(impressions.len().div_ceil(files).max(1))
        .enumerate()
    {
        for i in chunk {
            iw.push(i, None);
        }
        iw.flush(&format!("part-{n}")).unwrap();
    }
    let mut pw = PlaysWriter::in_store(store.clone(), "plays").unwrap();
    for (n, chunk) in plays.chunks(plays.len().div_ceil(files).max(1)).enumerate() {
        for p in chunk {
            pw.push(p, None);
        }
        pw.flush(&format!("part-{n}")).unwrap();
    }
}

/// Loads the catalog into Postgres.
pub async fn insert_catalog(pool: &PgPool, catalog: &[VideoMeta]) {
    // The first version: in effect from the beginning of time.
    playsource_store::catalog::upsert(pool, catalog)
        .await
        .unwrap();
}

pub fn catalog_of(entries: &[VideoMeta]) -> Catalog {
    Catalog::new(entries.iter().cloned())
}

/// The batch view's hourly rows of `d`, sorted like `Counts::hourly_rows`.
pub async fn batch_hourly(pool: &PgPool, table: &str, d: Day) -> Vec<HourlyRow> {
    #[derive(sqlx::FromRow)]
    struct Row {
        hour: DateTime<Utc>,
        country: String,
        device: String,
        sop_row: String,
        sod_row: String,
        genre: String,
        new_launch: bool,
        plays: i64,
    }
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT hour, country, device, sop_row, sod_row, genre, new_launch, plays FROM {table} \
         WHERE hour >= $1 AND hour < $2"
    ))
    .bind(d.start().to_datetime().unwrap())
    .bind(d.plus(1).start().to_datetime().unwrap())
    .fetch_all(pool)
    .await
    .unwrap();
    let mut out: Vec<HourlyRow> = rows
        .into_iter()
        .map(|r| HourlyRow {
            hour: Ts(r.hour.timestamp_millis()),
            country: r.country,
            device: r.device,
            sop_row: r.sop_row,
            sod_row: r.sod_row,
            genre: r.genre,
            new_launch: r.new_launch,
            plays: r.plays,
        })
        .collect();
    out.sort();
    out
}

/// The batch view's per-video rows of `d`, sorted.
pub async fn batch_video_daily(pool: &PgPool, d: Day) -> Vec<VideoDayRow> {
    let rows: Vec<(NaiveDate, String, String, i64)> = sqlx::query_as(
        "SELECT day, video_id::text, sod_row, plays FROM batch_video_daily WHERE day = $1",
    )
    .bind(d.to_date())
    .fetch_all(pool)
    .await
    .unwrap();
    let mut out: Vec<VideoDayRow> = rows
        .into_iter()
        .map(|(day, v, sod_row, plays)| VideoDayRow {
            day: Day::from_date(day),
            video_id: VideoId(v.parse().unwrap()),
            sod_row,
            plays,
        })
        .collect();
    out.sort();
    out
}

/// (generation, plays, impressions, too_late_plays) of `d` in `batch_days`.
pub async fn batch_day(pool: &PgPool, d: Day) -> Option<(i64, i64, i64, i64)> {
    sqlx::query_as(
        "SELECT generation, plays, impressions, too_late_plays FROM batch_days WHERE day = $1",
    )
    .bind(d.to_date())
    .fetch_optional(pool)
    .await
    .unwrap()
}

/// Every row of `batches` as text (cells joined by `|`, timestamps as their integer: display
/// would need chrono-tz for "UTC"), sorted.
pub fn rows_as_text(batches: &[arrow::array::RecordBatch]) -> Vec<String> {
    use arrow::compute::cast;
    use arrow::datatypes::DataType;
    use arrow::util::display::array_value_to_string;
    let mut rows = Vec::new();
    for b in batches {
        for row in 0..b.num_rows() {
            let cells: Vec<String> = b
                .columns()
                .iter()
                .map(|c| {
                    let c = match c.data_type() {
                        DataType::Timestamp(..) => cast(c, &DataType::Int64).unwrap(),
                        _ => c.clone(),
                    };
                    array_value_to_string(&c, row).unwrap()
                })
                .collect();
            rows.push(cells.join("|"));
        }
    }
    rows.sort();
    rows
}

/// The record batches of Parquet files on local disk.
pub fn read_batches(files: &[PathBuf]) -> Vec<arrow::array::RecordBatch> {
    let mut out = Vec::new();
    for f in files {
        let r = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            std::fs::File::open(f).unwrap(),
        )
        .unwrap()
        .build()
        .unwrap();
        out.extend(r.map(Result::unwrap));
    }
    out
}

/// (event_id, sop_row, sop_event_id, sod_row, sod_event_id) of every enriched play in
/// `batches`, sorted.
pub fn enriched_attributions(
    batches: &[arrow::array::RecordBatch],
) -> Vec<playsource_domain::attribution::reference::NaiveAttribution> {
    use arrow::array::{Array, AsArray};
    let mut out = Vec::new();
    for b in batches {
        let col = |name: &str| b.column_by_name(name).unwrap().as_string::<i32>().clone();
        let (id, sop, sop_id, sod, sod_id) = (
            col("event_id"),
            col("sop_row"),
            col("sop_event_id"),
            col("sod_row"),
            col("sod_event_id"),
        );
        let opt =
            |a: &arrow::array::StringArray, i: usize| a.is_valid(i).then(|| a.value(i).to_owned());
        for i in 0..b.num_rows() {
            out.push(
                playsource_domain::attribution::reference::NaiveAttribution {
                    play_event_id: id.value(i).to_owned(),
                    sop_row: sop.value(i).to_owned(),
                    sop_event_id: opt(&sop_id, i),
                    sod_row: sod.value(i).to_owned(),
                    sod_event_id: opt(&sod_id, i),
                },
            );
        }
    }
    out.sort();
    out
}
