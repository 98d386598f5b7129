//! The catalog CSV parser (`playsource catalog load`, docs/reference.md §2) on hostile files: arbitrary
//! bytes and hostile rows never panic and every error names a line and a column with a short
//! message; files written by a CSV library (any quoting, LF or CRLF, a byte-order mark, quoted
//! line breaks) read back exactly; a bad row is reported on the line it starts on.

use playsource_domain::catalog::{parse_csv, CsvError, Kind, VideoMeta, CSV_COLUMNS};
use playsource_domain::{Day, VideoId};
use proptest::prelude::*;

use super::MAX_RULE;

/// Every column a CSV error may name.
const CSV_ERROR_COLUMNS: [&str; 7] = [
    "(header)",
    "(row)",
    "video_id",
    "title",
    "genre",
    "kind",
    "launch_date",
];
const HEADER: &str = "video_id,title,genre,kind,launch_date";

/// Parses `bytes` and checks the invariants of the outcome.
fn parse_checked(bytes: &[u8]) -> Result<Vec<VideoMeta>, CsvError> {
    let out = parse_csv(bytes);
    match &out {
        Ok(rows) => {
            let mut ids: Vec<VideoId> = rows.iter().map(|r| r.video_id).collect();
            ids.sort();
            ids.dedup();
            assert_eq!(ids.len(), rows.len(), "duplicate ids accepted");
            for r in rows {
                assert!(r.video_id.0 >= 1);
                for s in [&r.title, &r.genre] {
                    assert!(!s.is_empty() && s.trim() == s.as_str(), "{s:?}");
                }
            }
        }
        Err(e) => {
            assert!(CSV_ERROR_COLUMNS.contains(&e.column), "{e}");
            assert!(e.line >= 1, "{e}");
            assert!(!e.message.is_empty());
            assert!(
                e.message.len() <= MAX_RULE,
                "{} bytes: {}",
                e.message.len(),
                &e.message[..200]
            );
        }
    }
    out
}

/// Catalog fields that stress a CSV reader: separators, quotes, line breaks, BOMs, long values.
fn csv_text() -> BoxedStrategy<String> {
    prop_oneof![
        "\\PC{0,20}",
        "[a-z ,\"\r\n\t]{0,12}",
        prop::sample::select(vec![
            "\u{feff}",
            "\"",
            "\"\"",
            "a\r\nb",
            "a\rb",
            "#x",
            "\u{0}",
            "ｆｏｏ"
        ])
        .prop_map(str::to_owned),
    ]
    .boxed()
}

fn video() -> impl Strategy<Value = VideoMeta> {
    (
        1..=u64::MAX,
        csv_text(),
        csv_text(),
        prop::sample::select(vec![Kind::Movie, Kind::Episode, Kind::Show]),
        // Years 0001 ..= 9999.
        -719_162i32..=2_932_896,
    )
        .prop_filter_map(
            "title and genre must not be blank",
            |(id, t, g, kind, day)| {
                let (title, genre) = (t.trim().to_owned(), g.trim().to_owned());
                (!title.is_empty() && !genre.is_empty()).then_some(VideoMeta {
                    video_id: VideoId(id),
                    title,
                    genre,
                    kind,
                    launch_date: Day(day),
                })
            },
        )
}

fn write_csv(rows: &[VideoMeta], crlf: bool, quote: csv::QuoteStyle, bom: bool) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new()
        .terminator(if crlf {
            csv::Terminator::CRLF
        } else {
            csv::Terminator::Any(b'\n')
        })
        .quote_style(quote)
        .from_writer(Vec::new());
    w.write_record(CSV_COLUMNS).unwrap();
    for r in rows {
        let (id, day) = (r.video_id.0.to_string(), r.launch_date.to_string());
        w.write_record([id.as_str(), &r.title, &r.genre, r.kind.as_str(), &day])
            .unwrap();
    }
    let body = w.into_inner().unwrap();
    if bom {
        [b"\xef\xbb\xbf".as_slice(), &body].concat()
    } else {
        body
    }
}

fn quote_style() -> impl Strategy<Value = csv::QuoteStyle> {
    prop::sample::select(vec![
        csv::QuoteStyle::Necessary,
        csv::QuoteStyle::Always,
        csv::QuoteStyle::NonNumeric,
    ])
}

proptest! {
    #[test]
    fn csv_arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = parse_checked(&bytes);
        let with_header = [HEADER.as_bytes(), b"\n", &bytes].concat();
        let _ = parse_checked(&with_header);
    }

    #[test]
    fn csv_hostile_rows_never_panic(
        rows in prop::collection::vec(prop::collection::vec(
            prop_oneof![csv_text(), "[0-9]{1,25}", Just("2026-02-30".to_owned()), Just("movie".to_owned())],
            0..8,
        ), 0..6),
        sep in prop::sample::select(vec![",", "\",\"", ";", "\t"]),
        eol in prop::sample::select(vec!["\n", "\r\n", "\r", ""]),
    ) {
        let mut text = format!("{HEADER}\n");
        for r in &rows {
            text.push_str(&r.join(sep));
            text.push_str(eol);
        }
        let _ = parse_checked(text.as_bytes());
    }

    #[test]
    fn csv_written_by_a_csv_library_reads_back_exactly(
        rows in prop::collection::btree_map(any::<u64>(), video(), 0..12),
        crlf in any::<bool>(),
        quote in quote_style(),
        bom in any::<bool>(),
    ) {
        let rows: Vec<VideoMeta> = rows.into_values().fold(Vec::new(), |mut acc, v| {
            if !acc.iter().any(|a: &VideoMeta| a.video_id == v.video_id) {
                acc.push(v);
            }
            acc
        });
        let bytes = write_csv(&rows, crlf, quote, bom);
        prop_assert_eq!(parse_checked(&bytes).unwrap(), rows);
    }

    #[test]
    fn a_bad_row_is_reported_on_its_own_line(
        rows in prop::collection::vec(video(), 1..8),
        at in any::<prop::sample::Index>(),
        crlf in any::<bool>(),
        quote in quote_style(),
    ) {
        let mut rows = rows;
        for (i, r) in rows.iter_mut().enumerate() {
            r.video_id = VideoId(i as u64 + 1);
        }
        let bad = at.index(rows.len());
        rows[bad].video_id = VideoId(bad as u64 + 1_000);
        let bytes = write_csv(&rows, crlf, quote, false);
        // Break that row's kind after writing: find the row by its id.
        let text = String::from_utf8(bytes).unwrap();
        let marker = if matches!(quote, csv::QuoteStyle::Always) { format!("\"{}\",", bad + 1_000) } else { format!("{},", bad + 1_000) };
        let start = text.find(&format!("\n{marker}")).unwrap() + 1;
        let text = format!("{}{}", &text[..start], text[start..].replacen(",\"movie\",", ",\"film\",", 1).replacen(",movie,", ",film,", 1).replacen(",\"episode\",", ",\"film\",", 1).replacen(",episode,", ",film,", 1).replacen(",\"show\",", ",\"film\",", 1).replacen(",show,", ",film,", 1));
        let err = parse_checked(text.as_bytes()).unwrap_err();
        // The line the record starts on: one more than the line breaks before it.
        let line = 1 + text[..start].matches('\n').count() as u64;
        prop_assert_eq!((err.line, err.column), (line, "kind"), "{}", err);
    }
}

#[test]
fn csv_bom_crlf_quotes_and_blank_lines() {
    let text = "\u{feff}video_id,title,genre,kind,launch_date\r\n\
                1,\"Stranger, \"\"Things\"\"\r\nPart 2\",drama,show,2016-07-15\r\n\
                \r\n\
                2, Glass Onion ,comedy,movie,2022-12-23\r\n";
    let rows = parse_checked(text.as_bytes()).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].title, "Stranger, \"Things\"\r\nPart 2");
    assert_eq!(rows[1].title, "Glass Onion");
    // A quoted header works too.
    let quoted =
        "\"video_id\",\"title\",\"genre\",\"kind\",\"launch_date\"\n1,A,b,movie,2020-01-01\n";
    assert_eq!(parse_checked(quoted.as_bytes()).unwrap().len(), 1);
    // The line of a bad row counts the lines of the quoted title before it, with CRLF.
    let bad = text.replace("comedy,movie", "comedy,film");
    let err = parse_checked(bad.as_bytes()).unwrap_err();
    assert_eq!((err.line, err.column), (5, "kind"), "{err}");
}

#[test]
fn csv_bad_values_name_line_and_column_with_a_short_message() {
    let long = "9".repeat(1 << 20);
    let cases: &[(&str, &str)] = &[
        ("18446744073709551616,a,b,movie,2020-01-01", "video_id"),
        ("-1,a,b,movie,2020-01-01", "video_id"),
        ("1e3,a,b,movie,2020-01-01", "video_id"),
        ("NaN,a,b,movie,2020-01-01", "video_id"),
        ("１,a,b,movie,2020-01-01", "video_id"),
        (&format!("{long},a,b,movie,2020-01-01"), "video_id"),
        ("1,\"  \",b,movie,2020-01-01", "title"),
        ("1,a,b,Movie,2020-01-01", "kind"),
        (&format!("1,a,b,{long},2020-01-01"), "kind"),
        ("1,a,b,movie,2020-1-1x", "launch_date"),
        (&format!("1,a,b,movie,{long}"), "launch_date"),
        ("1,a,b,movie,2020-01-01,extra", "(row)"),
        ("1,\"a,b,movie,2020-01-01", "(row)"), // unterminated quote swallows the rest: 2 fields
        (
            "1,a\u{0}b,c,movie,2020-01-01\n1,a,b,movie,2020-01-01",
            "video_id",
        ),
    ];
    for (row, column) in cases {
        let err = parse_checked(format!("{HEADER}\n{row}\n").as_bytes()).unwrap_err();
        assert_eq!(
            err.column,
            *column,
            "{}",
            &err.to_string()[..err.to_string().len().min(300)]
        );
        assert!(
            err.to_string().len() < 400,
            "{} bytes",
            err.to_string().len()
        );
    }
    // Invalid UTF-8 in a row names the row.
    let err =
        parse_checked(&[HEADER.as_bytes(), b"\n1,\xff,b,movie,2020-01-01\n"].concat()).unwrap_err();
    assert_eq!((err.line, err.column), (2, "(row)"), "{err}");
    // A 1 MiB header is reported briefly.
    let err = parse_checked(format!("{long}\n").as_bytes()).unwrap_err();
    assert_eq!(err.column, "(header)");
    assert!(err.to_string().len() < 400);
}

#[test]
fn csv_over_long_title_and_genre_are_rejected_with_field_line_and_limit() {
    use playsource_domain::catalog::{MAX_GENRE_BYTES, MAX_TITLE_BYTES};
    let ok = "1,A,drama,movie,2020-01-01\n";
    // At the limit: accepted (multi-byte characters count in bytes).
    let at_limit = format!(
        "{HEADER}\n{ok}2,{},{},show,2020-01-01\n",
        "t".repeat(MAX_TITLE_BYTES),
        "é".repeat(MAX_GENRE_BYTES / 2)
    );
    let rows = parse_checked(at_limit.as_bytes()).unwrap();
    assert_eq!(rows[1].genre.len(), MAX_GENRE_BYTES);
    for (row, column, limit) in [
        (
            format!(
                "2,\"{}\",drama,show,2020-01-01\n",
                "t".repeat(MAX_TITLE_BYTES + 1)
            ),
            "title",
            MAX_TITLE_BYTES,
        ),
        (
            format!(
                "2,B,{},show,2020-01-01\n",
                "é".repeat(MAX_GENRE_BYTES / 2 + 1)
            ),
            "genre",
            MAX_GENRE_BYTES,
        ),
        (
            format!("2,B,{},show,2020-01-01\n", "g".repeat(1 << 20)),
            "genre",
            MAX_GENRE_BYTES,
        ),
    ] {
        let err = parse_checked(format!("{HEADER}\n{ok}{row}").as_bytes()).unwrap_err();
        assert_eq!((err.line, err.column), (3, column), "{err}");
        assert!(
            err.message.contains(&format!("limit of {limit} bytes")),
            "{err}"
        );
    }
}
