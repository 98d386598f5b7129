//! schemathesis against the real server: `scripts/schemathesis.sh` runs `playsource serve` (this
//! build) over a scratch database with batch and realtime data, and fuzzes every operation of
//! `/openapi.json` with `--checks all` (no 5xx, answers as documented). Bounded to 60 cases per
//! operation and phase with a fixed seed (a few seconds of fuzzing); set `SCHEMATHESIS_SEED` to
//! explore other cases.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_playsource");

fn python() -> PathBuf {
    std::env::var_os("PLAYSOURCE_PYTHON").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.services/venv/bin/python"),
        PathBuf::from,
    )
}

#[test]
fn the_api_survives_schemathesis_and_matches_its_openapi_document() {
    let py = python();
    let st = py.with_file_name("schemathesis");
    let installed = Command::new(&st)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        installed,
        "schemathesis is not installed next to {} ({} is missing): run scripts/services.sh, which \
         installs it into the venv, or set PLAYSOURCE_PYTHON to a Python whose venv has it",
        py.display(),
        st.display()
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/schemathesis.sh");
    let seed = std::env::var("SCHEMATHESIS_SEED").unwrap_or_else(|_| "20261121".into());
    let out = Command::new("bash")
        .arg(&script)
        .env("PLAYSOURCE_BIN", BIN)
        .env("PLAYSOURCE_PYTHON", &py)
        .env("SCHEMATHESIS_MAX_EXAMPLES", "60")
        .env("SCHEMATHESIS_SEED", &seed)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "scripts/schemathesis.sh failed (seed {seed}):\n{stdout}\n{stderr}"
    );
    // It really tested every operation of the document and found nothing.
    assert!(stdout.contains("No issues found"), "{stdout}");
    let field = |name: &str| {
        stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .map(str::trim)
            .unwrap_or_else(|| panic!("no `{name}` line in:\n{stdout}"))
            .to_owned()
    };
    let (selected, tested) = (field("Selected:"), field("Tested:"));
    let total = selected.split('/').nth(1).unwrap();
    assert_eq!(tested, total, "untested operations:\n{stdout}");
    assert!(tested.parse::<u32>().unwrap() >= 8, "{stdout}");
}
