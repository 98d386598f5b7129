//! `playsource audit`: compares the realtime and batch views of a day cell by cell (hour × country
//! × device × SoP × SoD × genre × new launch, and day × video × SoD), prints the first differing
//! cells, and exits 1 on drift that the stream's too-late events do not explain (0 otherwise).

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use playsource_domain::AttributionConfig;

use super::batch::parse_day;
use super::common::DbArgs;
use super::common::InputTopicArgs;

/// Flags of `playsource audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub topics: InputTopicArgs,
    /// The day to audit: YYYY-MM-DD, `yesterday` or `today` (UTC); it must be batch-complete.
    #[arg(long, value_name = "D")]
    pub date: String,
    /// Most differing cells to print (drift first); 0 prints them all.
    #[arg(long, value_name = "N", default_value_t = 200)]
    pub limit: usize,
}

/// Exit code of an audit that could not be done (1 is kept for drift).
const AUDIT_ERROR: u8 = 2;

/// Runs `playsource audit`: exit 0 when the views agree up to too-late events, 1 on drift, 2
/// when the audit could not be done (bad flags, unreachable database, day not batch-complete).
pub async fn run(args: AuditArgs) -> anyhow::Result<ExitCode> {
    match audit(&args).await {
        Ok(code) => Ok(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            Ok(ExitCode::from(AUDIT_ERROR))
        }
    }
}

async fn audit(args: &AuditArgs) -> anyhow::Result<ExitCode> {
    let day = parse_day("--date", &args.date)?;
    let pool = playsource_store::connect(&args.db.database_url).await?;
    let report = playsource_batch::audit_day(
        &pool,
        day,
        &args.topics.plays_topic,
        &args.topics.impressions_topic,
        &AttributionConfig::default(),
    )
    .await
    .with_context(|| format!("audit of {day} failed"))?;
    let limit = if args.limit == 0 {
        usize::MAX
    } else {
        args.limit
    };
    print!("{}", report.render_limited(limit));
    Ok(if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
