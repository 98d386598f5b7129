//! `playsource demo`: everything on local defaults. It initialises the database and topics,
//! generates a sample catalog and a few days of history straight into the archive, runs the
//! nightly batch over them, then runs live traffic, the stream and the server together and prints
//! the dashboard URL. Ctrl-C stops all of it cleanly.
//!
//! Each step is this same binary run as a child process with the step's subcommand, so the demo
//! does exactly what a user would type.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use tokio::process::{Child, Command};

use super::common::{ArchiveArgs, DbArgs, KafkaArgs};

/// Flags of `playsource demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub archive: ArchiveArgs,
    /// Address the HTTP API and dashboard listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Address the stream's Prometheus metrics (`/metrics`) listen on.
    #[arg(
        long,
        env = "PLAYSOURCE_METRICS_LISTEN",
        default_value = "127.0.0.1:9464"
    )]
    pub stream_metrics_listen: String,
    /// Days of history generated into the archive and recomputed by the batch layer.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=30))]
    pub history_days: u32,
    /// Members in the generated history.
    #[arg(long, default_value_t = 3000)]
    pub members: u64,
    /// Live traffic, in events per second; the default keeps event time close to the clock.
    #[arg(long, default_value_t = 120)]
    pub rate: u64,
    /// Seed of the generated traffic.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

/// Runs `playsource demo` until Ctrl-C.
pub async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let exe = std::env::current_exe()
        .context("cannot find the playsource binary to run the demo's steps")?;
    let env = Env::of(&args);
    let archive = args.archive.local_dir("demo")?;
    std::fs::create_dir_all(&archive).with_context(|| {
        format!(
            "cannot create the archive folder {}; pass a writable --archive",
            archive.display()
        )
    })?;
    let catalog = archive.join("demo-catalog.csv");
    let today = chrono::Utc::now().date_naive();
    let first = today - chrono::Days::new(u64::from(args.history_days));
    let yesterday = today - chrono::Days::new(1);

    step(
        &exe,
        &env,
        "initialising the database and topics",
        &["init"],
    )
    .await?;
    let (members, seed, days) = (
        args.members.to_string(),
        args.seed.to_string(),
        args.history_days.to_string(),
    );
    let first_s = first.format("%Y-%m-%d").to_string();
    let catalog_s = catalog.display().to_string();
    step(
        &exe,
        &env,
        "generating the history into the archive",
        &[
            "gen",
            "--to",
            "archive",
            "--seed",
            &seed,
            "--members",
            &members,
            "--start",
            &first_s,
            "--days",
            &days,
            "--catalog-out",
            &catalog_s,
        ],
    )
    .await?;
    step(
        &exe,
        &env,
        "loading the sample catalog",
        &["catalog", "load", &catalog_s],
    )
    .await?;
    let yesterday_s = yesterday.format("%Y-%m-%d").to_string();
    step(
        &exe,
        &env,
        "running the nightly batch over the history",
        &[
            "batch",
            "--from",
            &first_s,
            "--to",
            &yesterday_s,
            "--no-progress",
        ],
    )
    .await?;

    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let live_seed = (args.seed + 1).to_string();
    let rate = args.rate.to_string();
    // The live traffic is a new world (its own titles): its catalog is loaded before the stream
    // starts, so live plays find their genres from the first one.
    let live_catalog = archive.join("demo-live-catalog.csv");
    let _ = std::fs::remove_file(&live_catalog);
    let live_catalog_s = live_catalog.display().to_string();
    let mut children = vec![spawn(
        &exe,
        &env,
        "live traffic",
        &[
            "gen",
            "--to",
            "kafka",
            "--seed",
            &live_seed,
            "--members",
            "200000",
            "--start",
            &now,
            "--days",
            "1",
            "--rate",
            &rate,
            "--catalog-out",
            &live_catalog_s,
        ],
    )?];
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while !live_catalog.exists() {
        if let Ok(Some(status)) = children[0].1.try_wait() {
            stop_all(&mut children).await;
            bail!("the demo's live traffic stopped before writing its catalog ({status}); its error is printed above");
        }
        if std::time::Instant::now() > deadline {
            stop_all(&mut children).await;
            bail!(
                "the demo's live traffic wrote no catalog to {} within 2 minutes; check that the archive directory is writable",
                live_catalog.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    step(
        &exe,
        &env,
        "loading the live traffic's catalog",
        // Effective from the live traffic's start: its first plays precede this load.
        &["catalog", "load", &live_catalog_s, "--effective-from", &now],
    )
    .await?;
    children.push(spawn(
        &exe,
        &env,
        "stream",
        &["stream", "--metrics-listen", &args.stream_metrics_listen],
    )?);
    children.push(spawn(
        &exe,
        &env,
        "serve",
        &["serve", "--listen", &args.listen],
    )?);
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!("playsource demo is running: dashboard at http://{}/ (API under /v1, metrics at /metrics; the stream's at http://{}/metrics). Press Ctrl-C to stop.", args.listen, args.stream_metrics_listen);

    let outcome = tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("cannot listen for Ctrl-C").map(|()| None),
        r = first_exit(&mut children) => Ok(Some(r)),
    };
    stop_all(&mut children).await;
    match outcome? {
        None => {
            eprintln!("playsource demo: stopped.");
            Ok(ExitCode::SUCCESS)
        }
        Some((name, status)) if name == "live traffic" && status.success() => Ok(ExitCode::SUCCESS),
        Some((name, status)) => bail!(
            "the demo's {name} process stopped unexpectedly ({status}); its error is printed above"
        ),
    }
}

/// The environment every step runs with: the demo's own flags, as the env fallbacks of docs/reference.md §6.
struct Env(Vec<(&'static str, String)>);

impl Env {
    fn of(a: &DemoArgs) -> Env {
        Env(vec![
            ("DATABASE_URL", a.db.database_url.clone()),
            ("KAFKA_BROKERS", a.kafka.brokers.clone()),
            (
                "PLAYSOURCE_ARCHIVE",
                a.archive.archive.display().to_string(),
            ),
            (
                "PLAYSOURCE_IMPRESSIONS_TOPIC",
                a.kafka.inputs.impressions_topic.clone(),
            ),
            ("PLAYSOURCE_PLAYS_TOPIC", a.kafka.inputs.plays_topic.clone()),
            ("PLAYSOURCE_ENRICHED_TOPIC", a.kafka.enriched_topic.clone()),
            ("PLAYSOURCE_DLQ_TOPIC", a.kafka.dlq_topic.clone()),
        ])
    }

    fn command(&self, exe: &Path, argv: &[&str]) -> Command {
        let mut c = Command::new(exe);
        c.args(argv)
            .envs(self.0.iter().map(|(k, v)| (*k, v.as_str())))
            .kill_on_drop(true);
        c
    }
}

async fn step(exe: &Path, env: &Env, what: &str, argv: &[&str]) -> anyhow::Result<()> {
    eprintln!("playsource demo: {what} (playsource {})", argv.join(" "));
    let status = env
        .command(exe, argv)
        .status()
        .await
        .with_context(|| format!("cannot start `playsource {}`", argv[0]))?;
    if !status.success() {
        bail!(
            "the demo step `playsource {}` failed ({status}); its error is printed above",
            argv.join(" ")
        );
    }
    Ok(())
}

fn spawn(
    exe: &Path,
    env: &Env,
    name: &'static str,
    argv: &[&str],
) -> anyhow::Result<(&'static str, Child)> {
    eprintln!(
        "playsource demo: starting {name} (playsource {})",
        argv.join(" ")
    );
    let child = env
        .command(exe, argv)
        .spawn()
        .with_context(|| format!("cannot start the demo's {name}"))?;
    Ok((name, child))
}

async fn first_exit(
    children: &mut [(&'static str, Child)],
) -> (&'static str, std::process::ExitStatus) {
    loop {
        for (name, child) in children.iter_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                return (name, status);
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Asks every child to stop (SIGTERM, so the stream flushes and the server drains), then kills
/// what is still running after ten seconds.
async fn stop_all(children: &mut [(&'static str, Child)]) {
    for (_, child) in children.iter() {
        if let Some(pid) = child.id() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status()
                .await;
        }
    }
    for (name, child) in children.iter_mut() {
        if tokio::time::timeout(Duration::from_secs(10), child.wait())
            .await
            .is_err()
        {
            eprintln!("playsource demo: {name} did not stop in time; killing it");
            let _ = child.kill().await;
        }
    }
}
