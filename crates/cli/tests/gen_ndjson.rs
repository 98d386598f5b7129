//! `playsource gen --to ndjson` as a user runs it: the files hold one docs/reference.md §1 message per
//! line, as many as gen says it generated, and the flags that make no sense are one-sentence
//! errors. Needs no service.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

use playsource_domain::{decode_impression, decode_play};

const BIN: &str = env!("CARGO_BIN_EXE_playsource");

fn gen(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("gen")
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The number after `word` in `s` (`"... 12 plays ..."` with word `plays` gives 12).
fn count_before(s: &str, word: &str) -> u64 {
    let words: Vec<&str> = s.split([' ', ',', '(', ')', ';']).collect();
    let at = words.iter().position(|w| *w == word).unwrap();
    words[at - 1].parse().unwrap()
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn ndjson_files_parse_and_match_the_counts() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("workload");
    let catalog = out_dir.join("catalog.csv");
    let args = [
        "--to",
        "ndjson",
        "--out",
        out_dir.to_str().unwrap(),
        "--catalog-out",
        catalog.to_str().unwrap(),
        "--members",
        "300",
        "--videos",
        "200",
        "--start",
        "2026-11-01",
        "--days",
        "2",
        "--events",
        "20000",
        "--duplicate-share",
        "0.01",
    ];
    let out = gen(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("impressions.ndjson"), "{stdout}");

    let imps = lines(&out_dir.join("impressions.ndjson"));
    let plays = lines(&out_dir.join("plays.ndjson"));
    assert_eq!(imps.len() as u64, count_before(&stdout, "impression"));
    assert_eq!(plays.len() as u64, count_before(&stdout, "play"));
    // Every line is a valid message (no malformed share asked for), duplicates included.
    let mut ids = std::collections::HashSet::new();
    for l in &imps {
        ids.insert(
            decode_impression(l.as_bytes())
                .unwrap()
                .event_id
                .into_owned(),
        );
    }
    for l in &plays {
        ids.insert(decode_play(l.as_bytes()).unwrap().event_id.into_owned());
    }
    let generated = count_before(&stdout, "impressions") + count_before(&stdout, "plays");
    let duplicates = count_before(&stdout, "duplicates");
    assert_eq!(ids.len() as u64, generated, "one distinct id per event");
    assert_eq!((imps.len() + plays.len()) as u64, generated + duplicates);
    assert!(duplicates > 0 && !plays.is_empty());
    let csv = std::fs::read(&catalog).unwrap();
    assert_eq!(
        playsource_domain::catalog::parse_csv(&csv[..])
            .unwrap()
            .len(),
        200
    );

    // The same flags write the same bytes.
    let first = std::fs::read(out_dir.join("plays.ndjson")).unwrap();
    let out = gen(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(first == std::fs::read(out_dir.join("plays.ndjson")).unwrap());
    assert!(!out_dir.join("plays.ndjson.tmp").exists());
}

#[test]
fn ndjson_flag_mistakes_are_one_sentence() {
    for (args, needle) in [
        (&["--to", "ndjson"][..], "needs --out DIR"),
        (
            &["--to", "archive", "--out", "x"][..],
            "--out is the folder",
        ),
        (
            &["--to", "ndjson", "--out", "x", "--rate", "10"][..],
            "--rate",
        ),
    ] {
        let out = gen(args);
        assert!(!out.status.success(), "{args:?}");
        let stderr = text(&out.stderr);
        assert!(
            stderr.starts_with("error: ") && stderr.contains(needle),
            "{args:?}: {stderr}"
        );
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    }
}
