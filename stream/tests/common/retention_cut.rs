//! Retention on the test's own tansu (fault_env's `Broker`, SQLite storage): tansu 0.6 cannot
//! delete records through the protocol (DeleteRecords drops the connection), but it answers
//! ListOffsets `earliest` with the smallest offset left in its `record` table, so deleting a
//! partition's oldest rows from the SQLite file (broker stopped, as retention would) raises the
//! partition's low watermark. Shared by `retention.rs` and `bootstrap.rs`.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Deletes the records of `topic` partition `partition` below offset `cut` from tansu's SQLite
/// file, as retention would; returns how many were deleted.
pub fn delete_below(db: &Path, topic: &str, partition: i32, cut: i64) -> i64 {
    const SCRIPT: &str = r#"
import sqlite3, sys
db, topic, part, cut = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
c = sqlite3.connect(db)
tp = c.execute("select tp.id from topition tp join topic t on tp.topic = t.id where t.name = ? and tp.partition = ?", (topic, part)).fetchone()[0]
c.execute("delete from header where topition = ? and offset_id < ?", (tp, cut))
n = c.execute("delete from record where topition = ? and offset_id < ?", (tp, cut)).rowcount
c.commit()
print(n)
"#;
    let python = std::env::var("PLAYSOURCE_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(&python)
        .args(["-c", SCRIPT])
        .arg(db)
        .args([topic, &partition.to_string(), &cut.to_string()])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python} (set PLAYSOURCE_PYTHON): {e}"));
    assert!(
        out.status.success(),
        "deleting records from tansu's SQLite file failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// The partition's (low, high) watermarks as the broker reports them.
pub fn watermarks(brokers: &str, topic: &str, partition: i32) -> (i64, i64) {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let c: BaseConsumer = playsource_kafka::client_config(brokers).create().unwrap();
    c.fetch_watermarks(topic, partition, Duration::from_secs(10))
        .unwrap()
}
