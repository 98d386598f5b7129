//! Writes a workload's messages as newline-delimited JSON files, one per input topic: the exact
//! value bytes `gen` would produce to Kafka, one message per line, in delivery order
//! (redeliveries and malformed messages included, as configured). Other tools read them in place
//! of the topics, e.g. the Flink peer of the benchmarks.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::message::{Counts, Topic};
use crate::progress::Progress;
use crate::traffic::Traffic;

/// The impressions file's name inside the output folder.
pub const IMPRESSIONS_FILE: &str = "impressions.ndjson";
/// The plays file's name inside the output folder.
pub const PLAYS_FILE: &str = "plays.ndjson";

/// What was written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NdjsonReport {
    /// Every message generated.
    pub counts: Counts,
    /// Lines (messages) of the impressions file.
    pub impression_lines: u64,
    /// Lines (messages) of the plays file.
    pub play_lines: u64,
    /// Bytes written over both files.
    pub bytes: u64,
    /// The two files, impressions first.
    pub files: [PathBuf; 2],
}

/// One output file, written aside (`<name>.tmp`) until [`Output::commit`] renames it.
struct Output {
    path: PathBuf,
    tmp: PathBuf,
    out: BufWriter<File>,
    lines: u64,
    bytes: u64,
}

impl Output {
    fn create(dir: &Path, name: &str) -> Result<Output, Error> {
        let path = dir.join(name);
        let tmp = dir.join(format!("{name}.tmp"));
        let file = File::create(&tmp).map_err(|e| write_error(&tmp, &e))?;
        Ok(Output {
            path,
            tmp,
            out: BufWriter::with_capacity(1 << 20, file),
            lines: 0,
            bytes: 0,
        })
    }

    fn push(&mut self, payload: &[u8]) -> Result<(), Error> {
        if payload.contains(&b'\n') {
            // JSON escapes line breaks, so only raw bytes could hold one; they would split a line.
            return Err(Error::Ndjson {
                path: self.path.clone(),
                message: "a message value holds a line break, so it cannot be one line".into(),
            });
        }
        self.out
            .write_all(payload)
            .and_then(|()| self.out.write_all(b"\n"))
            .map_err(|e| write_error(&self.tmp, &e))?;
        self.lines += 1;
        self.bytes += payload.len() as u64 + 1;
        Ok(())
    }

    /// Flushes the file to disk and renames it into place.
    fn commit(self) -> Result<(u64, u64, PathBuf), Error> {
        let file = self
            .out
            .into_inner()
            .map_err(|e| write_error(&self.tmp, e.error()))?;
        file.sync_all().map_err(|e| write_error(&self.tmp, &e))?;
        drop(file);
        std::fs::rename(&self.tmp, &self.path).map_err(|e| write_error(&self.path, &e))?;
        Ok((self.lines, self.bytes, self.path))
    }
}

fn write_error(path: &Path, e: &std::io::Error) -> Error {
    Error::Ndjson {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Writes every message of `traffic` to `dir/impressions.ndjson` and `dir/plays.ndjson`
/// (creating `dir`), each value followed by a line break, in the order Kafka would have received
/// them. Both files are written aside and renamed into place at the end, so a reader never sees a
/// partial file under the final name.
pub fn write_ndjson(
    traffic: Traffic,
    dir: &Path,
    progress: Option<&Progress>,
) -> Result<NdjsonReport, Error> {
    std::fs::create_dir_all(dir).map_err(|e| write_error(dir, &e))?;
    let mut imps = Output::create(dir, IMPRESSIONS_FILE)?;
    let mut plays = Output::create(dir, PLAYS_FILE)?;
    let mut traffic = traffic;
    for msg in traffic.by_ref() {
        match msg.topic {
            Topic::Impressions => imps.push(&msg.payload)?,
            Topic::Plays => plays.push(&msg.payload)?,
        }
        if let Some(p) = progress {
            p.on_message(&msg);
        }
    }
    let (impression_lines, imp_bytes, imp_path) = imps.commit()?;
    let (play_lines, play_bytes, play_path) = plays.commit()?;
    Ok(NdjsonReport {
        counts: traffic.counts().clone(),
        impression_lines,
        play_lines,
        bytes: imp_bytes + play_bytes,
        files: [imp_path, play_path],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::GenConfig;
    use crate::Workload;

    #[test]
    fn files_hold_the_kafka_values_in_order() {
        let cfg = GenConfig {
            members: 50,
            videos: 100,
            events: Some(3_000),
            malformed_share: 0.01,
            ..Default::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let report = write_ndjson(Traffic::new(&cfg).unwrap(), dir.path(), None).unwrap();
        let w = Workload::generate(&cfg).unwrap();
        assert_eq!(report.counts, w.counts);
        for (topic, name, lines) in [
            (
                Topic::Impressions,
                IMPRESSIONS_FILE,
                report.impression_lines,
            ),
            (Topic::Plays, PLAYS_FILE, report.play_lines),
        ] {
            let mut expected = Vec::new();
            for m in w.messages.iter().filter(|m| m.topic == topic) {
                expected.extend_from_slice(&m.payload);
                expected.push(b'\n');
            }
            let got = std::fs::read(dir.path().join(name)).unwrap();
            assert!(got == expected, "{name} differs from the Kafka values");
            assert_eq!(lines, got.iter().filter(|&&b| b == b'\n').count() as u64);
        }
        assert_eq!(
            report.impression_lines + report.play_lines,
            w.counts.messages()
        );
        assert!(!dir.path().join("plays.ndjson.tmp").exists());
    }

    #[test]
    fn unwritable_folder_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        std::fs::write(&file, b"x").unwrap();
        let cfg = GenConfig {
            members: 5,
            videos: 10,
            events: Some(10),
            ..Default::default()
        };
        let err = write_ndjson(Traffic::new(&cfg).unwrap(), &file.join("out"), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("a-file") && err.contains("writable"), "{err}");
    }
}
