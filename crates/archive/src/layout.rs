//! Where archive files go: `<root>/<topic>/date=YYYY-MM-DD/hour=HH/<file>.parquet` (docs/reference.md §5).

use std::path::{Path, PathBuf};

use playsource_domain::{Day, Ts, DAY_MS, HOUR_MS};

use crate::error::Error;

/// The folder of the batch layer's enriched plays (the training set).
pub const ENRICHED_DIR: &str = "enriched_plays";
/// Extension of archive files.
pub const PARQUET_EXT: &str = "parquet";

/// The layout of one archive root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveLayout {
    root: PathBuf,
}

impl ArchiveLayout {
    /// The layout under `root` (e.g. `--archive`, default `./data/archive`).
    pub fn new(root: impl Into<PathBuf>) -> ArchiveLayout {
        ArchiveLayout { root: root.into() }
    }

    /// The archive root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<root>/<topic_dir>`: one topic's folder (named after the topic).
    pub fn topic_dir(&self, topic_dir: &str) -> PathBuf {
        self.root.join(topic_dir)
    }

    /// `<root>/<topic_dir>/date=YYYY-MM-DD`.
    pub fn day_dir(&self, topic_dir: &str, day: Day) -> PathBuf {
        self.topic_dir(topic_dir).join(date_segment(day))
    }

    /// `<root>/<topic_dir>/date=YYYY-MM-DD/hour=HH`.
    pub fn partition_dir(&self, topic_dir: &str, day: Day, hour: u32) -> PathBuf {
        self.day_dir(topic_dir, day).join(hour_segment(hour))
    }

    /// `<root>/<topic_dir>/date=YYYY-MM-DD/hour=HH/<file_stem>.parquet`.
    pub fn file_path(&self, topic_dir: &str, day: Day, hour: u32, file_stem: &str) -> PathBuf {
        self.partition_dir(topic_dir, day, hour)
            .join(format!("{file_stem}.{PARQUET_EXT}"))
    }

    /// `<root>/enriched_plays/date=YYYY-MM-DD`.
    pub fn enriched_dir(&self, day: Day) -> PathBuf {
        self.day_dir(ENRICHED_DIR, day)
    }
}

/// The UTC day and hour (0..=23) an event time falls in: its archive partition.
pub fn partition_of(ts: Ts) -> (Day, u32) {
    (ts.day(), (ts.0.rem_euclid(DAY_MS) / HOUR_MS) as u32)
}

/// `date=YYYY-MM-DD`.
pub fn date_segment(day: Day) -> String {
    format!("date={day}")
}

/// `hour=HH` (two digits).
pub fn hour_segment(hour: u32) -> String {
    format!("hour={hour:02}")
}

/// Parses a `date=YYYY-MM-DD` folder name.
pub fn parse_date_segment(name: &str) -> Option<Day> {
    name.strip_prefix("date=").and_then(|d| Day::parse(d).ok())
}

/// Parses an `hour=HH` folder name (one or two digits, 0..=23).
pub fn parse_hour_segment(name: &str) -> Option<u32> {
    let h = name.strip_prefix("hour=")?;
    if h.is_empty() || h.len() > 2 || !h.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    h.parse().ok().filter(|h| *h < 24)
}

/// Whether a file name is one readers should pick up: `*.parquet`, not hidden (`.`) and not
/// metadata (`_`), as Spark and pyarrow do.
pub fn is_data_file(name: &str) -> bool {
    !name.starts_with('.')
        && !name.starts_with('_')
        && name
            .rsplit_once('.')
            .is_some_and(|(stem, ext)| !stem.is_empty() && ext == PARQUET_EXT)
}

/// Checks that `name` is a topic name usable as a folder: 1..=249 of `[A-Za-z0-9._-]`, not `.`
/// or `..` (Kafka's own rule for topic names).
pub fn check_topic_dir(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::TopicDir { name: name.into() })
    }
}

/// Checks that `stem` can name an archive file that readers will not skip.
pub fn check_file_stem(stem: &str) -> Result<(), Error> {
    let ok = !stem.is_empty()
        && stem.len() <= 200
        && !stem.starts_with('.')
        && !stem.starts_with('_')
        && stem
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'='));
    if ok {
        Ok(())
    } else {
        Err(Error::FileStem { stem: stem.into() })
    }
}

/// The Kafka partition of a file the stream wrote: a flush's file
/// (`p<partition>-o<first>-<last>.parquet`, see the stream's archive sink) or an hour's compacted
/// file (`p<partition>.parquet`, see [`crate::compact`]); `None` for a file named otherwise
/// (written by another tool).
pub fn stream_file_partition(name: &str) -> Option<u32> {
    if let Some((p, _, _)) = stream_file_range(name) {
        return Some(p);
    }
    let p = name.strip_suffix(".parquet")?.strip_prefix('p')?;
    if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    p.parse().ok()
}

/// The partition and offset range of a flush's file, `p<partition>-o<first>-<last>.parquet`.
pub fn stream_file_range(name: &str) -> Option<(u32, i64, i64)> {
    let stem = name.strip_suffix(".parquet")?;
    let (p, rest) = stem.strip_prefix('p')?.split_once("-o")?;
    let (first, last) = rest.split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !(digits(p) && digits(first) && digits(last)) {
        return None;
    }
    Some((p.parse().ok()?, first.parse().ok()?, last.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hive_paths() {
        let l = ArchiveLayout::new("/data/archive");
        let day = Day::parse("2026-11-21").unwrap();
        assert_eq!(
            l.partition_dir("impressions", day, 7),
            PathBuf::from("/data/archive/impressions/date=2026-11-21/hour=07")
        );
        assert_eq!(
            l.file_path("plays", day, 23, "p3-o42"),
            PathBuf::from("/data/archive/plays/date=2026-11-21/hour=23/p3-o42.parquet")
        );
        assert_eq!(
            l.enriched_dir(day),
            PathBuf::from("/data/archive/enriched_plays/date=2026-11-21")
        );
    }

    #[test]
    fn partition_of_event_time() {
        let ts = Ts::parse_rfc3339("2026-11-21T23:59:59.999Z").unwrap();
        assert_eq!(partition_of(ts), (Day::parse("2026-11-21").unwrap(), 23));
        let next = Ts(ts.0 + 1);
        assert_eq!(partition_of(next), (Day::parse("2026-11-22").unwrap(), 0));
        let before_epoch = Ts::parse_rfc3339("1969-12-31T22:30:00Z").unwrap();
        assert_eq!(
            partition_of(before_epoch),
            (Day::parse("1969-12-31").unwrap(), 22)
        );
    }

    #[test]
    fn segments_round_trip() {
        let day = Day::parse("2026-01-05").unwrap();
        assert_eq!(parse_date_segment(&date_segment(day)), Some(day));
        assert_eq!(parse_hour_segment(&hour_segment(5)), Some(5));
        assert_eq!(parse_hour_segment("hour=5"), Some(5));
        assert_eq!(parse_hour_segment("hour=24"), None);
        assert_eq!(parse_hour_segment("hour=+1"), None);
        assert_eq!(parse_date_segment("date=2026-13-01"), None);
        assert_eq!(parse_date_segment("day=2026-01-01"), None);
    }

    #[test]
    fn data_files_skip_hidden_and_metadata() {
        assert!(is_data_file("part-00000.parquet"));
        assert!(!is_data_file(".part-00000.parquet.tmp"));
        assert!(!is_data_file(".part.parquet"));
        assert!(!is_data_file("_SUCCESS"));
        assert!(!is_data_file("_common_metadata.parquet"));
        assert!(!is_data_file("notes.txt"));
        assert!(!is_data_file(".parquet"));
    }

    #[test]
    fn stream_file_names_say_their_partition() {
        assert_eq!(stream_file_partition("p3-o42-97.parquet"), Some(3));
        assert_eq!(stream_file_partition("p12-o0-0.parquet"), Some(12));
        assert_eq!(stream_file_partition("p7.parquet"), Some(7));
        assert_eq!(stream_file_range("p3-o42-97.parquet"), Some((3, 42, 97)));
        assert_eq!(stream_file_range("p7.parquet"), None);
        for other in [
            "part-0.parquet",
            "p.parquet",
            "px.parquet",
            "p7.csv",
            "p3-o42.parquet",
            "p-o1-2.parquet",
            "p3-o4-x.parquet",
            "p3-o4-5.csv",
        ] {
            assert_eq!(stream_file_partition(other), None, "{other}");
        }
    }

    #[test]
    fn rejects_bad_names() {
        assert!(check_file_stem("p0-o123").is_ok());
        for bad in ["", ".hidden", "_meta", "a/b", "a b", &"x".repeat(201)] {
            let err = check_file_stem(bad).unwrap_err();
            assert!(matches!(err, Error::FileStem { .. }), "{bad:?}");
            assert!(err.to_string().contains("file stem"));
        }
        assert!(check_topic_dir("impressions").is_ok());
        assert!(check_topic_dir("my.topic-v2_x").is_ok());
        for bad in ["", ".", "..", "a/b", "../x", "a b"] {
            assert!(
                matches!(check_topic_dir(bad), Err(Error::TopicDir { .. })),
                "{bad:?}"
            );
        }
    }
}
