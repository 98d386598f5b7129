//! Helpers shared by the archive's integration tests.
#![allow(dead_code)]

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use playsource_domain::{Impression, MemberId, Play, Ts, VideoId};

/// 2026-11-21T00:00:00Z in ms.
pub const DAY0: i64 = 1_795_219_200_000;

pub fn impression(i: u64, ts: i64) -> Impression<'static> {
    Impression {
        event_id: Cow::Owned(format!("imp-{i:05}")),
        ts: Ts(ts),
        member_id: MemberId(1 + i % 7),
        video_id: VideoId(u64::MAX - i),
        page: Cow::Borrowed(if i % 5 == 0 { "search" } else { "home" }),
        row_type: Cow::Borrowed(if i % 5 == 0 { "search" } else { "top_picks" }),
        row_index: (i % 11) as u16,
        rank: (i % 40) as u16,
        country: Cow::Borrowed("BR"),
        device: Cow::Borrowed("tv"),
    }
}

pub fn play(i: u64, ts: i64) -> Play<'static> {
    Play {
        event_id: Cow::Owned(format!("play-{i:05}")),
        ts: Ts(ts),
        member_id: MemberId(1 + i % 7),
        video_id: VideoId(100 + i),
        country: Cow::Borrowed("US"),
        device: Cow::Borrowed("mobile"),
        session_id: (i % 2 == 0).then(|| Cow::Owned(format!("s-{i}"))),
    }
}

/// The Python interpreter with pyarrow: `$PLAYSOURCE_PYTHON`, else the workspace's
/// `.services/venv/bin/python` (created by `scripts/services.sh`).
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("PLAYSOURCE_PYTHON") {
        return PathBuf::from(p);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let p = root.join(".services/venv/bin/python");
    assert!(
        p.exists(),
        "no Python with pyarrow at {}: run scripts/services.sh or set PLAYSOURCE_PYTHON",
        p.display()
    );
    p
}

/// Runs a Python script with `args` and returns its stdout (panics with stderr on failure).
pub fn run_python(script: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(python())
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}
