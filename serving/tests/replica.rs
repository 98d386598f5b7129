//! The in-memory replica answers exactly what the SQL path (the reference) answers: many random
//! series queries (ranges, granularities, every filter, several filters, unknown filter values,
//! SoP and SoD, complete and incomplete days) through both paths on the same Postgres state,
//! before and after a republish.
#![allow(clippy::unwrap_used)]

mod common;

use chrono::{Duration as ChronoDuration, NaiveDate, Utc};
use common::*;
use playsource_serving::replica::Replica;
use playsource_serving::{merge, params, series_json, Config};
use sqlx::PgPool;

/// A small deterministic generator (xorshift64*), so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
}

const COUNTRIES: &[&str] = &["US", "BR", "GB"];
const DEVICES: &[&str] = &["tv", "web", "mobile"];
const ROWS: &[&str] = &[
    "continue_watching",
    "top_10",
    "my_list",
    "billboard",
    "unattributed",
];
const GENRES: &[&str] = &["drama", "comedy", "unknown"];

fn day(offset: i64) -> NaiveDate {
    Utc::now().date_naive() + ChronoDuration::days(offset)
}

/// Random rows for the hours of days `today-6 ..= today+1` into `table`; some plays negative so
/// that some (bucket, row) sums are zero.
async fn seed(pool: &PgPool, rng: &mut Rng, table: &str, rows: usize) {
    let mut sql = format!(
        "INSERT INTO {table} (hour, country, device, sop_row, sod_row, genre, new_launch, plays) VALUES "
    );
    let mut seen = std::collections::HashSet::new();
    let mut n = 0;
    while n < rows {
        let d = day(rng.below(8) as i64 - 6);
        let hour = rng.below(24);
        let (c, dv, sop, sod, g, nl) = (
            rng.pick(COUNTRIES),
            rng.pick(DEVICES),
            rng.pick(ROWS),
            rng.pick(ROWS),
            rng.pick(GENRES),
            rng.below(2) == 0,
        );
        if !seen.insert((d, hour, c, dv, sop, sod, g, nl)) {
            continue;
        }
        let plays = if rng.below(10) == 0 {
            -(rng.below(5) as i64)
        } else {
            1 + rng.below(50) as i64
        };
        if n > 0 {
            sql.push(',');
        }
        sql.push_str(&format!(
            "('{d}T{hour:02}:00:00Z','{c}','{dv}','{sop}','{sod}','{g}',{nl},{plays})"
        ));
        n += 1;
    }
    sql.push_str(" ON CONFLICT DO NOTHING");
    sqlx::query(&sql).execute(pool).await.unwrap();
}

/// A random query string for a series endpoint (valid: ranges within the limits).
fn random_query(rng: &mut Rng, sod: bool) -> String {
    let day_granularity = rng.below(3) == 0;
    let start = Utc::now()
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
        - ChronoDuration::days(7);
    let from = start + ChronoDuration::minutes(rng.below(9 * 24 * 60) as i64);
    let len_hours = 1 + rng.below(if day_granularity { 9 * 24 } else { 5 * 24 }) as i64;
    let mut to = from + ChronoDuration::hours(len_hours);
    if rng.below(4) == 0 {
        to += ChronoDuration::minutes(1 + rng.below(59) as i64);
    }
    let mut q = format!(
        "from={}&to={}",
        from.format("%Y-%m-%dT%H:%M:%SZ"),
        to.format("%Y-%m-%dT%H:%M:%SZ")
    );
    if day_granularity {
        q.push_str("&granularity=day");
    }
    // Each filter with probability 1/4 (so 0, 1 and several filters all occur); sometimes a
    // value no row has.
    let mut filter = |rng: &mut Rng, name: &str, values: &[&str], unknown: &str| {
        if rng.below(4) == 0 {
            let v = if rng.below(8) == 0 {
                unknown
            } else {
                rng.pick(values)
            };
            q.push_str(&format!("&{name}={v}"));
        }
    };
    filter(rng, "country", COUNTRIES, "FR");
    filter(rng, "device", DEVICES, "toaster");
    filter(rng, "genre", GENRES, "opera");
    filter(rng, "new_launch", &["true", "false"], "true");
    if sod {
        filter(rng, "play_row", ROWS, "nowhere");
    }
    q
}

/// Runs `n` random queries through the replica (loaded now) and the SQL path; asserts equality.
async fn compare(pool: &PgPool, replica: &Replica, rng: &mut Rng, n: usize) -> (usize, usize) {
    let state = replica.reload(pool).await.unwrap();
    let (mut answered, mut multi) = (0, 0);
    for _ in 0..n {
        let sod = rng.below(2) == 0;
        let raw = random_query(rng, sod);
        let view = if sod {
            params::View::SourceOfDiscovery
        } else {
            params::View::SourceOfPlay
        };
        let q = params::series_query(view, Some(&raw)).unwrap();
        let sql = merge::series(pool, &q).await.unwrap();
        let Some(mem) = state.series(&q) else {
            assert!(!state.covers(&q), "{raw}: in the window but not answered");
            continue;
        };
        answered += 1;
        multi += usize::from(raw.matches('&').count() >= 3);
        let want = series_json::from_buckets(&q, &sql.series);
        assert_eq!(
            String::from_utf8_lossy(&mem.body.head),
            String::from_utf8_lossy(&want.head),
            "{view:?} {raw}"
        );
        assert_eq!(mem.body.buckets, want.buckets, "{raw}");
        assert_eq!(mem.all_batch, sql.all_batch, "{view:?} {raw}");
        assert_eq!(mem.freshness.source, sql.freshness.source, "{raw}");
        assert_eq!(mem.freshness.version, sql.freshness.version, "{raw}");
    }
    (answered, multi)
}

async fn complete(pool: &PgPool, offset: i64) {
    complete_day(pool, &day(offset).to_string()).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn the_replica_answers_exactly_what_sql_answers(pool: PgPool) {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    seed(&pool, &mut rng, "batch_hourly", 1500).await;
    seed(&pool, &mut rng, "rt_hourly", 1500).await;
    set_high_water(&pool, 0, &format!("{}T05:06:07.890Z", day(0))).await;
    // Complete: -6, -5, -3, -2 (a gap at -4; -1, today and tomorrow realtime).
    for d in [-6, -5, -3, -2] {
        complete(&pool, d).await;
    }
    // A window starting at today-5: day -6 and earlier go to SQL.
    let replica = Replica::new(5);
    let (answered, multi) = compare(&pool, &replica, &mut rng, 400).await;
    assert!(
        answered > 250,
        "only {answered} of 400 answered from memory"
    );
    assert!(multi > 20, "only {multi} multi-filter queries");
    let (batch_rows, rt_rows) = replica.current().unwrap().rows();
    assert!(batch_rows > 0 && rt_rows > 0);

    // New realtime rows only: the batch part is kept, the realtime part re-read.
    seed(&pool, &mut rng, "rt_hourly", 300).await;
    sqlx::query("UPDATE rt_hourly SET plays = plays + 7 WHERE country = 'BR'")
        .execute(&pool)
        .await
        .unwrap();
    compare(&pool, &replica, &mut rng, 150).await;

    // A republish of day -3 with other numbers, and day -1 completed: the version moves.
    sqlx::query("UPDATE batch_hourly SET plays = plays * 3 + 1 WHERE genre = 'drama'")
        .execute(&pool)
        .await
        .unwrap();
    complete(&pool, -3).await;
    complete(&pool, -1).await;
    let before = replica.current().unwrap().freshness().version;
    compare(&pool, &replica, &mut rng, 300).await;
    assert_ne!(replica.current().unwrap().freshness().version, before);

    // A day removed from batch_days goes back to the realtime view.
    sqlx::query("DELETE FROM batch_days WHERE day = $1")
        .bind(day(-2))
        .execute(&pool)
        .await
        .unwrap();
    compare(&pool, &replica, &mut rng, 150).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn http_answers_with_and_without_the_replica_are_identical(pool: PgPool) {
    let mut rng = Rng(0x0dd_ba11_cafe_0002);
    seed(&pool, &mut rng, "batch_hourly", 800).await;
    seed(&pool, &mut rng, "rt_hourly", 800).await;
    set_high_water(&pool, 0, &format!("{}T01:02:03.456Z", day(0))).await;
    for d in [-6, -5, -4, -3, -2, -1] {
        complete(&pool, d).await;
    }
    let with = playsource_serving::AppState::new(pool.clone(), Config::default());
    with.replica().reload(&pool).await.unwrap();
    let with = playsource_serving::app(with);
    let without = playsource_serving::app(playsource_serving::AppState::new(
        pool.clone(),
        Config {
            memory_days: 0,
            ..Config::default()
        },
    ));
    for i in 0..120 {
        let sod = i % 2 == 0;
        let path = if sod {
            "/v1/source-of-discovery"
        } else {
            "/v1/source-of-play"
        };
        let uri = format!("{path}?{}", random_query(&mut rng, sod));
        let a = get(&with, &uri).await;
        let b = get(&without, &uri).await;
        assert_eq!(a.status, 200, "{uri}: {}", a.text);
        assert_eq!(a.content_type, b.content_type);
        assert_eq!(a.text, b.text, "{uri}");
    }
    // A realtime row written directly shows at once, replica or not.
    let uri = format!(
        "/v1/source-of-play?from={d}T00:00:00Z&to={d}T02:00:00Z",
        d = day(0)
    );
    let before = get(&with, &uri).await.json["series"][1]["plays"]
        .as_i64()
        .unwrap();
    sqlx::query(
        "INSERT INTO rt_hourly VALUES (($1::date + time '01:00') AT TIME ZONE 'UTC', 'XX', 'tv', 'a', 'a', 'drama', false, 5)",
    )
    .bind(day(0))
    .execute(&pool)
    .await
    .unwrap();
    let after = get(&with, &uri).await.json["series"][1]["plays"]
        .as_i64()
        .unwrap();
    assert_eq!(after, before + 5);
}
