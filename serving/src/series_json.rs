//! Series answers written straight to JSON bytes, byte for byte what serialising a
//! [`SeriesResponse`](crate::model::SeriesResponse) with `serde_json` gives, without building a
//! [`Bucket`] per bucket: no string per bucket or row, labels formatted from the day once, row
//! names escaped once (see the replica's dictionary). An hourly answer over a week is some
//! 60 KB; building it through `Vec<Bucket>` cost more allocator time than arithmetic.

use chrono::Datelike;
use playsource_domain::{Ts, DAY_MS};
use serde_json::ser::{CompactFormatter, Formatter};

use crate::model::{share_micros, Bucket, RowShare, Source};
use crate::params::{fmt_second, SeriesQuery};

/// A series answer serialised up to its `source` object: `{"from":…,"series":[…],"source":`.
/// A hit appends the current `source` and `}`, so it serialises no bucket.
#[derive(Debug)]
pub struct SeriesBody {
    /// The JSON text before the `source` value (shared by every answer sent from it).
    pub head: axum::body::Bytes,
    /// Length of the head's request-specific start, `{"from":…,"to":…,` (an answer for another
    /// `from`/`to` of the same buckets replaces it with its own).
    pub prefix: usize,
    /// Number of buckets.
    pub buckets: usize,
}

/// Writes one series answer up to its `source` value (see [`SeriesBody`]).
pub struct SeriesWriter {
    out: Vec<u8>,
    prefix: usize,
    buckets: usize,
    /// The day whose `YYYY-MM-DD` is in `date`.
    day: Option<i64>,
    date: [u8; 10],
}

impl SeriesWriter {
    /// Starts the answer of `q`: `{"from":…,"to":…,"granularity":…,"series":[`.
    pub fn new(q: &SeriesQuery) -> SeriesWriter {
        // An hourly bucket takes about 300 bytes; room for the `source` too, so no copy later.
        let cap = usize::try_from(q.bucket_count().clamp(0, 1 << 16)).unwrap_or(0) * 512 + 256;
        let mut out = Vec::with_capacity(cap);
        push_prefix(&mut out, q);
        let prefix = out.len();
        out.extend_from_slice(b"\"granularity\":");
        push_json_str(&mut out, q.granularity.as_str());
        out.extend_from_slice(b",\"series\":[");
        SeriesWriter {
            out,
            prefix,
            buckets: 0,
            day: None,
            date: [b'0'; 10],
        }
    }

    /// Adds the bucket starting at `t_ms` with `rows` already in answer order (plays descending,
    /// then row type), each as (the row type as a JSON string literal, plays); `total` is the sum
    /// of their plays.
    pub fn bucket<'a>(
        &mut self,
        t_ms: i64,
        total: i64,
        rows: impl IntoIterator<Item = (&'a [u8], i64)>,
    ) {
        self.open();
        self.label(t_ms);
        let rows = rows
            .into_iter()
            .map(|(name, plays)| Row::Counted { name, plays, total });
        self.rows(total, rows);
    }

    /// Adds a built [`Bucket`] (the SQL path's), its rows as they are.
    pub fn built(&mut self, b: &Bucket) {
        self.open();
        push_json_str(&mut self.out, &b.bucket);
        self.rows(b.plays, b.rows.iter().map(Row::Built));
    }

    /// Ends the series and opens `source`: `],"source":`.
    pub fn finish(mut self) -> SeriesBody {
        self.out.extend_from_slice(b"],\"source\":");
        SeriesBody {
            head: self.out.into(),
            prefix: self.prefix,
            buckets: self.buckets,
        }
    }

    /// `{"bucket":` (after a comma unless first); the plays are written by [`Self::rows`].
    fn open(&mut self) {
        if self.buckets > 0 {
            self.out.push(b',');
        }
        self.buckets += 1;
        self.out.extend_from_slice(b"{\"bucket\":");
    }

    /// `"YYYY-MM-DDTHH:MM:SSZ"`, as [`fmt_second`] writes it.
    fn label(&mut self, t_ms: i64) {
        let day = t_ms.div_euclid(DAY_MS);
        if self.day != Some(day) {
            let date = Ts(day * DAY_MS)
                .to_datetime()
                .map(|dt| dt.date_naive())
                .filter(|d| (0..=9999).contains(&d.year()));
            let Some(date) = date else {
                // Outside four-digit years: the general formatter.
                self.day = None;
                push_json_str(&mut self.out, &fmt_second(Ts(t_ms)));
                return;
            };
            let y = date.year().unsigned_abs();
            let digits = [
                y / 1000,
                y / 100 % 10,
                y / 10 % 10,
                y % 10,
                0,
                date.month() / 10,
                date.month() % 10,
                0,
                date.day() / 10,
                date.day() % 10,
            ];
            for (i, d) in digits.iter().enumerate() {
                self.date[i] = if i == 4 || i == 7 {
                    b'-'
                } else {
                    b'0' + *d as u8
                };
            }
            self.day = Some(day);
        }
        let secs = t_ms.rem_euclid(DAY_MS) / 1000;
        let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
        let two = |n: i64| [b'0' + (n / 10) as u8, b'0' + (n % 10) as u8];
        self.out.push(b'"');
        self.out.extend_from_slice(&self.date);
        self.out.push(b'T');
        self.out.extend_from_slice(&two(h));
        self.out.push(b':');
        self.out.extend_from_slice(&two(m));
        self.out.push(b':');
        self.out.extend_from_slice(&two(s));
        self.out.extend_from_slice(b"Z\"");
    }

    /// `,"plays":N,"rows":[{"row_type":…,"plays":…,"share":…},…]}`.
    fn rows<'a>(&mut self, total: i64, rows: impl IntoIterator<Item = Row<'a>>) {
        push_rows(&mut self.out, total, rows);
    }

    /// Adds the bucket starting at `t_ms` whose rest was rendered beforehand by
    /// [`bucket_rest`] (the replica keeps one per hour and slice).
    pub fn bucket_rendered(&mut self, t_ms: i64, rest: &[u8]) {
        self.open();
        self.label(t_ms);
        self.out.extend_from_slice(rest);
    }
}

/// Appends the request-specific start of a series answer: `{"from":…,"to":…,`.
fn push_prefix(out: &mut Vec<u8>, q: &SeriesQuery) {
    out.extend_from_slice(b"{\"from\":");
    push_json_str(out, &fmt_second(q.from));
    out.extend_from_slice(b",\"to\":");
    push_json_str(out, &fmt_second(q.to));
    out.push(b',');
}

/// The request-specific start of `q`'s answer, `{"from":…,"to":…,` (see [`SeriesBody::prefix`]).
pub fn prefix(q: &SeriesQuery) -> axum::body::Bytes {
    let mut out = Vec::with_capacity(64);
    push_prefix(&mut out, q);
    out.into()
}

/// A bucket's bytes after its label, `,"plays":N,"rows":[…]}`, for `rows` in answer order (as
/// [`SeriesWriter::bucket`] takes them): what [`SeriesWriter::bucket_rendered`] appends.
pub fn bucket_rest<'a>(total: i64, rows: impl IntoIterator<Item = (&'a [u8], i64)>) -> Box<[u8]> {
    let mut out = Vec::new();
    let rows = rows
        .into_iter()
        .map(|(name, plays)| Row::Counted { name, plays, total });
    push_rows(&mut out, total, rows);
    out.into_boxed_slice()
}

/// The rest of an empty bucket (see [`bucket_rest`]).
pub const EMPTY_BUCKET_REST: &[u8] = b",\"plays\":0,\"rows\":[]}";

/// `,"plays":N,"rows":[{"row_type":…,"plays":…,"share":…},…]}`.
fn push_rows<'a>(out: &mut Vec<u8>, total: i64, rows: impl IntoIterator<Item = Row<'a>>) {
    let mut f = CompactFormatter;
    out.extend_from_slice(b",\"plays\":");
    let _ = f.write_i64(out, total);
    out.extend_from_slice(b",\"rows\":[");
    for (i, row) in rows.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"row_type\":");
        match row {
            Row::Counted { name, plays, total } => {
                out.extend_from_slice(name);
                out.extend_from_slice(b",\"plays\":");
                let _ = f.write_i64(out, plays);
                out.extend_from_slice(b",\"share\":");
                push_share_micros(out, share_micros(plays, total));
            }
            Row::Built(r) => {
                push_json_str(out, &r.row_type);
                out.extend_from_slice(b",\"plays\":");
                let _ = f.write_i64(out, r.plays);
                out.extend_from_slice(b",\"share\":");
                push_share(out, r.share);
            }
        }
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
}

/// One row of a bucket, as its writer has it.
enum Row<'a> {
    /// The row type as a JSON string literal and its plays; the share is computed from `total`.
    Counted {
        name: &'a [u8],
        plays: i64,
        total: i64,
    },
    /// A built row, written as it is.
    Built(&'a RowShare),
}

/// The answer of `q` with the SQL path's buckets, up to its `source` value.
pub fn from_buckets(q: &SeriesQuery, series: &[Bucket]) -> SeriesBody {
    let mut w = SeriesWriter::new(q);
    for b in series {
        w.built(b);
    }
    w.finish()
}

/// Appends a share as `serde_json` prints it; a multiple of 1e-6 (as [`share_micros`] makes
/// them) takes the fast path of [`push_share_micros`].
fn push_share(out: &mut Vec<u8>, v: f64) {
    let micros = (v * 1e6).round();
    if micros / 1e6 == v {
        push_share_micros(out, micros);
    } else {
        let _ = CompactFormatter.write_f64(out, v);
    }
}

/// Appends the share `micros` / 10⁶ as `serde_json` prints it: `0.405186`, `1.0`, `0.0`. Shares
/// below 0.001 (which it prints in scientific notation) and anything but a whole number of
/// millionths in 0..=10⁶ go through `serde_json`'s own float formatter.
fn push_share_micros(out: &mut Vec<u8>, micros: f64) {
    if micros == 1e6 {
        out.extend_from_slice(b"1.0");
    } else if micros == 0.0 && micros.is_sign_positive() {
        out.extend_from_slice(b"0.0");
    } else if (1e3..1e6).contains(&micros) && micros.fract() == 0.0 {
        // "0." and the six digits without trailing zeros.
        let mut n = micros as u32;
        let mut digits = [b'0'; 6];
        for d in digits.iter_mut().rev() {
            *d = b'0' + (n % 10) as u8;
            n /= 10;
        }
        let len = 6 - digits.iter().rev().take_while(|d| **d == b'0').count();
        out.extend_from_slice(b"0.");
        out.extend_from_slice(&digits[..len]);
    } else {
        let _ = CompactFormatter.write_f64(out, micros / 1e6);
    }
}

/// The end of a series answer: the `source` object and the closing brace.
pub fn answer_tail(source: &Source) -> axum::body::Bytes {
    let mut tail = Vec::with_capacity(128);
    // Serialising plain strings into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut tail, source);
    tail.push(b'}');
    tail.into()
}

/// Appends `s` as a JSON string literal, escaped as `serde_json` escapes it.
pub fn push_json_str(out: &mut Vec<u8>, s: &str) {
    // Writing to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{rows_with_shares, SeriesResponse, Source};
    use crate::params::{self, View};

    fn query(raw: &str) -> SeriesQuery {
        params::series_query(View::SourceOfPlay, Some(raw)).unwrap()
    }

    /// The writer's bytes, closed with a `source`, equal serde's serialisation.
    fn assert_same(q: &SeriesQuery, buckets: &[Bucket]) {
        let source = Source {
            batch_complete_through: Some("2026-11-20".to_owned()),
            realtime_high_water: None,
        };
        let want = serde_json::to_vec(&SeriesResponse {
            from: fmt_second(q.from),
            to: fmt_second(q.to),
            granularity: q.granularity.as_str(),
            series: buckets,
            source: source.clone(),
        })
        .unwrap();
        let close = |body: SeriesBody| {
            let mut got = body.head.to_vec();
            serde_json::to_writer(&mut got, &source).unwrap();
            got.push(b'}');
            String::from_utf8(got).unwrap()
        };
        let want = String::from_utf8(want).unwrap();
        // Built buckets.
        assert_eq!(close(from_buckets(q, buckets)), want);
        // Bucket by bucket from times and escaped names.
        let escaped: Vec<Vec<Vec<u8>>> = buckets
            .iter()
            .map(|b| {
                b.rows
                    .iter()
                    .map(|r| {
                        let mut n = Vec::new();
                        push_json_str(&mut n, &r.row_type);
                        n
                    })
                    .collect()
            })
            .collect();
        let mut w = SeriesWriter::new(q);
        let step = q.granularity.step_ms();
        for (i, (b, names)) in buckets.iter().zip(&escaped).enumerate() {
            let rows = names
                .iter()
                .zip(&b.rows)
                .map(|(n, r)| (n.as_slice(), r.plays));
            w.bucket(q.lo.0 + i as i64 * step, b.plays, rows);
        }
        assert_eq!(close(w.finish()), want);
        // From buckets rendered beforehand (the replica's hourly path).
        let mut w = SeriesWriter::new(q);
        for (i, (b, names)) in buckets.iter().zip(&escaped).enumerate() {
            let rest = if b.rows.is_empty() {
                EMPTY_BUCKET_REST.into()
            } else {
                bucket_rest(
                    b.plays,
                    names
                        .iter()
                        .zip(&b.rows)
                        .map(|(n, r)| (n.as_slice(), r.plays)),
                )
            };
            w.bucket_rendered(q.lo.0 + i as i64 * step, &rest);
        }
        assert_eq!(close(w.finish()), want);
        assert_eq!(&*bucket_rest(0, []), EMPTY_BUCKET_REST);
    }

    fn buckets(q: &SeriesQuery, rows: impl Fn(usize) -> Vec<(String, i64)>) -> Vec<Bucket> {
        let step = q.granularity.step_ms();
        (0..q.bucket_count() as usize)
            .map(|i| {
                let (plays, rows) = rows_with_shares(rows(i));
                Bucket {
                    bucket: fmt_second(Ts(q.lo.0 + i as i64 * step)),
                    plays,
                    rows,
                }
            })
            .collect()
    }

    #[test]
    fn hourly_buckets_across_days_and_a_leap_day_equal_serde() {
        let q = query("from=2028-02-28T22:30:00%2B01:00&to=2028-03-01T02:00:00Z");
        let b = buckets(&q, |i| match i % 4 {
            0 => vec![],
            1 => vec![("continue_watching".into(), 7)],
            2 => vec![("a\"b\\é\u{1}".into(), 1), ("unattributed".into(), 999_999)],
            _ => vec![
                ("top_10".into(), 1),
                ("trending_now".into(), 3),
                ("x".into(), 1_000_000_000),
            ],
        });
        assert!(b.len() > 24);
        assert_same(&q, &b);
    }

    #[test]
    fn daily_buckets_and_tiny_shares_equal_serde() {
        let mut raw = String::from("from=1999-12-30T00:00:00Z&to=2000-01-03T00:00:00Z");
        raw.push_str("&granularity=day");
        let q = query(&raw);
        // Shares such as 1e-6 and 1.0 print as serde prints them.
        let b = buckets(&q, |i| {
            vec![
                ("big".into(), 999_999 * (i as i64 + 1)),
                ("small".into(), 1),
                ("zero".into(), 0),
            ]
        });
        assert_same(&q, &b);
    }

    #[test]
    fn every_share_prints_as_serde_prints_it() {
        let mut got = Vec::new();
        let mut check = |push: fn(&mut Vec<u8>, f64), arg: f64, v: f64| {
            got.clear();
            push(&mut got, arg);
            assert_eq!(
                String::from_utf8_lossy(&got),
                serde_json::to_string(&v).unwrap(),
                "{v:e}"
            );
        };
        for micros in 0..=1_000_000u32 {
            let micros = f64::from(micros);
            check(push_share_micros, micros, micros / 1e6);
            check(push_share, micros / 1e6, micros / 1e6);
        }
        for (plays, total) in [(1, 3), (2, 3), (1, 7), (5, 9_999_999), (123_457, 1_000_001)] {
            let micros = share_micros(plays, total);
            check(push_share_micros, micros, micros / 1e6);
        }
        for v in [-0.0, 0.1 + 0.2, 1.5, -0.25, 1e-7, 123.456] {
            check(push_share, v, v);
            // Not a whole number of millionths (or out of range): whatever serde prints for it.
            check(push_share_micros, v * 1e6, v * 1e6 / 1e6);
        }
    }

    #[test]
    fn an_empty_series_equals_serde() {
        let q = query("from=2026-11-21T00:00:00Z&to=2026-11-21T00:00:00.001Z");
        assert_same(&q, &[]);
    }
}
