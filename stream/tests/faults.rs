//! Fault injection (issue #7): real stream processes (`playsource-stream-worker`) are killed,
//! paused, starved of disk, and cut off from the broker or Postgres while a producer keeps
//! producing; afterwards the realtime view must equal the reference over everything produced and
//! the archive must hold every produced message exactly once.
//!
//! Short variants run by default (a few faults, small workloads); `PLAYSOURCE_FAULTS_LONG=1` runs
//! the long ones (`scripts/faults.sh`). The Postgres restart restarts a server of the test's own
//! (initdb into a temporary folder), so it runs everywhere and disturbs nobody. No scenario
//! skips itself: one whose tool is missing (tansu, PostgreSQL's initdb, tmpfs mounts as root)
//! fails saying what it needs. Every scenario prints a `FAULT-RESULT` line (and appends it to
//! `$PLAYSOURCE_FAULTS_RESULTS`). `PLAYSOURCE_FAULTS_SEED` repeats the random fault points;
//! `PLAYSOURCE_KEEP_LOGS` keeps the workers' logs.
#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/fault_check.rs"]
mod fault_check;
#[path = "common/fault_env.rs"]
mod fault_env;
#[path = "common/faults.rs"]
mod faults;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use fault_check::*;
use fault_env::*;
use faults::*;
use playsource_domain::Ts;
use playsource_kafka::Topics;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sqlx::PgPool;

/// One scenario's topics, workload, logs and worker configuration.
struct World {
    t: Topics,
    w: Workload,
    logs: Logs,
    spec: WorkerSpec,
}

impl World {
    async fn new(
        pool: &PgPool,
        test: &str,
        brokers: &str,
        sessions: usize,
        seed: u64,
        archive: &Path,
        logs: Logs,
    ) -> World {
        let t = topics(test);
        create_topics_on(brokers, &t).await;
        let hours = 2 + (sessions / 300) as i64;
        let start = Ts::parse_rfc3339("2026-11-21T06:00:00Z").unwrap();
        let w = workload(seed, sessions, start, hours);
        load_catalog(pool, &w.catalog).await;
        let spec = WorkerSpec {
            url: pool_url(pool).await,
            brokers: brokers.to_owned(),
            topics: t.clone(),
            group: format!("g-{}", t.plays),
            archive: archive.to_path_buf(),
            flush_ms: 150,
            checkpoint_secs: 2,
        };
        World { t, w, logs, spec }
    }

    /// Starts producing the workload: `chunks` steps, one every `every`.
    fn feed(&self, chunks: usize, every: Duration) -> Feed {
        Feed::start(
            &self.spec.brokers,
            &self.t,
            imp_msgs(&self.w.impressions),
            play_msgs(&self.w.plays),
            chunks,
            every,
        )
    }

    fn group(&self) -> &str {
        &self.spec.group
    }

    /// Waits until the group committed everything in `produced`; `check` runs every poll (to
    /// fail on a dead worker, or to restart it).
    async fn wait_caught_up(
        &self,
        pool: &PgPool,
        produced: &Produced,
        limit: Duration,
        mut check: impl FnMut(),
    ) -> Duration {
        wait_for("the stream to commit everything produced", limit, || {
            check();
            let (pool, group, t, p) = (
                pool.clone(),
                self.group().to_owned(),
                self.t.clone(),
                produced.clone(),
            );
            async move { caught_up(&pool, &group, &t, &p).await }
        })
        .await
    }

    /// Compares the archive and the views with what was produced, reports, asserts exactness.
    async fn finish(
        &self,
        pool: &PgPool,
        produced: &Produced,
        scenario: &str,
        runs: usize,
        started: Instant,
        notes: &str,
    ) {
        let s = &self.spec;
        let o = outcome(pool, &self.w, &s.archive, &self.t, produced).await;
        report_and_assert(pool, scenario, runs, &o, started, notes).await;
    }
}

/// 1. SIGKILL at random points (replay, live, mid-flush) while a producer keeps producing.
#[sqlx::test(migrations = "../migrations")]
async fn sigkill_at_random_points_during_live_ingestion(pool: PgPool) {
    let started = Instant::now();
    let kills = pick(3, 20);
    let mut rng = ChaCha8Rng::seed_from_u64(seed("sigkill"));
    let archive = tempfile::tempdir().unwrap();
    let logs = Logs::new("sigkill");
    let mut wd = World::new(
        &pool,
        "fkill",
        BROKERS,
        250 * kills,
        rng.gen(),
        archive.path(),
        logs,
    )
    .await;
    // A restart comes once the killed member's session expired (see SESSION_EXPIRY); the
    // producer goes on meanwhile, so every restart starts with a backlog.
    let feed = wd.feed(kills * 50, Duration::from_secs(1));
    let (mut waits, mut points) = (Vec::new(), Vec::new());
    let mut killed_at: Option<Instant> = None;
    for r in 0..=kills {
        if let Some(k) = killed_at {
            tokio::time::sleep(SESSION_EXPIRY.saturating_sub(k.elapsed())).await;
        }
        wd.spec.checkpoint_secs = if rng.gen_bool(0.5) { 0 } else { 3600 };
        let mut w = wd.spec.spawn(wd.logs.file(&format!("worker-{r}.log")));
        let n = i64::from(PARTITIONS);
        waits.push(wait_holds(&pool, wd.group(), &mut w, n, Duration::from_secs(120)).await);
        if r == kills {
            let produced = feed.finish().await;
            wd.wait_caught_up(&pool, &produced, Duration::from_secs(400), || alive(&mut w))
                .await;
            drop(w);
            let notes = format!(
                "killed {} ms after taking the partitions (replay, live or mid-flush); restarted {} s after each kill; the restarts took the partitions after {} s",
                points.iter().map(u64::to_string).collect::<Vec<_>>().join("/"),
                SESSION_EXPIRY.as_secs(),
                secs(&waits)
            );
            return wd
                .finish(&pool, &produced, "sigkill", kills, started, &notes)
                .await;
        }
        let point = rng.gen_range(0..3000);
        tokio::time::sleep(Duration::from_millis(point)).await;
        alive(&mut w);
        w.kill9();
        killed_at = Some(Instant::now());
        points.push(point);
    }
}

/// 2. The broker (tansu with SQLite storage, on a port of its own) restarts mid-run.
#[sqlx::test(migrations = "../migrations")]
async fn broker_restart_mid_run(pool: PgPool) {
    let bin = tansu_bin().expect(
        "no tansu binary: this scenario starts a broker of its own; install tansu (cargo install tansu) or set PLAYSOURCE_TANSU",
    );
    let started = Instant::now();
    let restarts = pick(1, 5);
    let mut rng = ChaCha8Rng::seed_from_u64(seed("broker"));
    let archive = tempfile::tempdir().unwrap();
    let logs = Logs::new("broker");
    let mut broker = Broker::start(bin, &logs).await;
    let brokers = broker.brokers();
    let wd = World::new(
        &pool,
        "fbroker",
        &brokers,
        300 * restarts,
        rng.gen(),
        archive.path(),
        logs,
    )
    .await;
    let feed = wd.feed(120 * restarts, Duration::from_millis(500));
    let mut sup = Supervised::start(wd.spec.clone(), &wd.logs, "worker");
    // Should the worker exit anyway, the test restarts it (once its session expired, see
    // SESSION_EXPIRY) to check what was lost, and then fails.
    sup.delay = SESSION_EXPIRY;
    wait_live(&pool, wd.group(), &mut sup, Duration::from_secs(120)).await;
    let mut resumed = Vec::new();
    for _ in 0..restarts {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(500..4000))).await;
        broker.stop().await;
        let down = Instant::now() + Duration::from_millis(rng.gen_range(2000..8000));
        while Instant::now() < down {
            sup.check();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        broker.restart().await;
        let t0 = Instant::now();
        // Let the producer deliver what it held while the broker was down, then wait until
        // the stream committed everything produced up to now.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let target = feed.so_far();
        wd.wait_caught_up(&pool, &target, Duration::from_secs(240), || {
            sup.check();
        })
        .await;
        resumed.push(t0.elapsed());
    }
    let produced = feed.finish().await;
    wd.wait_caught_up(&pool, &produced, Duration::from_secs(300), || {
        sup.check();
    })
    .await;
    let exits = sup.summary();
    let exited = sup.exits.len();
    drop(sup);
    broker.stop().await;
    let notes = format!("{exits}; caught up {} s after each restart", secs(&resumed));
    wd.finish(
        &pool,
        &produced,
        "broker-restart",
        restarts,
        started,
        &notes,
    )
    .await;
    assert_eq!(
        exited, 0,
        "the stream must ride through broker restarts by itself: {exits}"
    );
}

/// 3. Postgres restarts mid-run: a server of the test's own (see [`Postgres`]), so it always
/// runs and disturbs nobody. The stream retries with backoff and goes on by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_mid_run() {
    let pg = Postgres::start();
    let admin = PgPool::connect(&pg.url("postgres")).await.unwrap();
    sqlx::query("CREATE DATABASE playsource")
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(8)
        .connect(&pg.url("playsource"))
        .await
        .unwrap();
    playsource_store::MIGRATOR.run(&pool).await.unwrap();
    let started = Instant::now();
    let restarts = pick(1, 3);
    let mut rng = ChaCha8Rng::seed_from_u64(seed("postgres"));
    let archive = tempfile::tempdir().unwrap();
    let logs = Logs::new("postgres");
    let mut wd = World::new(
        &pool,
        "fpg",
        BROKERS,
        300 * restarts,
        rng.gen(),
        archive.path(),
        logs,
    )
    .await;
    wd.spec.url = pg.url("playsource");
    let feed = wd.feed(120 * restarts, Duration::from_millis(500));
    let mut sup = Supervised::start(wd.spec.clone(), &wd.logs, "worker");
    wait_live(&pool, wd.group(), &mut sup, Duration::from_secs(120)).await;
    let mut resumed = Vec::new();
    for _ in 0..restarts {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(500..4000))).await;
        let up_since = pg_started(&pg).await;
        tokio::task::block_in_place(|| pg.restart());
        assert!(
            pg_started(&pg).await > up_since,
            "the test's Postgres server did not restart"
        );
        let t0 = Instant::now();
        let target = feed.so_far();
        wd.wait_caught_up(&pool, &target, Duration::from_secs(240), || {
            sup.check();
        })
        .await;
        resumed.push(t0.elapsed());
    }
    let produced = feed.finish().await;
    wd.wait_caught_up(&pool, &produced, Duration::from_secs(300), || {
        sup.check();
    })
    .await;
    let exits = sup.summary();
    let exited = sup.exits.len();
    drop(sup);
    let notes = format!("{exits}; caught up {} s after each restart", secs(&resumed));
    wd.finish(
        &pool,
        &produced,
        "postgres-restart",
        restarts,
        started,
        &notes,
    )
    .await;
    assert_eq!(
        exited, 0,
        "the stream must ride through a Postgres restart by itself: {exits}"
    );
}

/// When the server at `pg` started (a fresh connection, so it sees a restart).
async fn pg_started(pg: &Postgres) -> String {
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(&pg.url("playsource"))
        .await
        .unwrap();
    sqlx::query_scalar("SELECT to_char(pg_postmaster_start_time(), 'YYYY-MM-DD HH24:MI:SS.US')")
        .fetch_one(&mut c)
        .await
        .unwrap()
}

/// 4a. Two members in one group; one is killed. Its partitions must go on with their state: to
/// the partner after the session timeout (Kafka's semantics), else to a replacement member.
#[sqlx::test(migrations = "../migrations")]
async fn group_member_killed_partner_takes_over(pool: PgPool) {
    let started = Instant::now();
    let rounds = pick(1, 4);
    let mut rng = ChaCha8Rng::seed_from_u64(seed("group"));
    let archive = tempfile::tempdir().unwrap();
    let logs = Logs::new("group");
    let wd = World::new(
        &pool,
        "fgroup",
        BROKERS,
        400 * rounds,
        rng.gen(),
        archive.path(),
        logs,
    )
    .await;
    let feed = wd.feed(80 * rounds, Duration::from_secs(1));
    let b = wd.spec.spawn(wd.logs.file("b.log"));
    let a = wd.spec.spawn(wd.logs.file("a-0.log"));
    let mut m = vec![a, b];
    let (mut took, mut orphaned) = (Vec::new(), 0);
    for r in 0..rounds {
        wait_spread(&pool, wd.group(), &mut m, Duration::from_secs(240)).await;
        let theirs = parts_of(&pool, wd.group(), m[0].pid()).await;
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..3000))).await;
        alive(&mut m[0]);
        let before = epochs(&pool, wd.group()).await;
        m[0].kill9();
        let killed = Instant::now();
        if took_over(&pool, wd.group(), &mut m[1]).await {
            took.push(killed.elapsed());
        } else {
            orphaned += 1;
            eprintln!("[group] {ORPHANED}");
        }
        m[0] = wd.spec.spawn(wd.logs.file(&format!("a-{}.log", r + 1)));
        wait_new_epochs(
            &pool,
            wd.group(),
            &theirs,
            &before,
            Duration::from_secs(120),
        )
        .await;
    }
    let produced = feed.finish().await;
    wd.wait_caught_up(&pool, &produced, Duration::from_secs(300), || {
        m.iter_mut().for_each(alive)
    })
    .await;
    drop(m);
    let notes = if orphaned == 0 {
        format!("the partner took over {} s after each kill", secs(&took))
    } else {
        format!("{orphaned} of {rounds} kills: {ORPHANED}")
    };
    wd.finish(
        &pool,
        &produced,
        "group-member-kill",
        rounds,
        started,
        &notes,
    )
    .await;
}

const FENCED_LOG: &str = "another owner holds this partition";

/// 4b. A member paused with SIGSTOP (holding uncommitted work) loses its partitions to another
/// member; after SIGCONT its flush is fenced and it counts nothing twice.
#[sqlx::test(migrations = "../migrations")]
async fn paused_zombie_is_fenced_and_counts_nothing_twice(pool: PgPool) {
    let started = Instant::now();
    let rounds = pick(1, 3);
    let mut rng = ChaCha8Rng::seed_from_u64(seed("zombie"));
    let archive = tempfile::tempdir().unwrap();
    let logs = Logs::new("zombie");
    let wd = World::new(
        &pool,
        "fzombie",
        BROKERS,
        400 * rounds,
        rng.gen(),
        archive.path(),
        logs,
    )
    .await;
    let feed = wd.feed(240 * rounds, Duration::from_millis(500));
    // The zombie flushes every 3 s, so it holds uncommitted results when it is paused.
    let mut slow = wd.spec.clone();
    slow.flush_ms = 3000;
    let b = wd.spec.spawn(wd.logs.file("b.log"));
    let a = slow.spawn(wd.logs.file("a.log"));
    // m[0] is the zombie-to-be; after SIGCONT it rejoins the group and is paused again next round.
    let mut m = vec![a, b];
    let (mut fenced, mut orphaned) = (0, 0);
    for r in 0..rounds {
        wait_spread(&pool, wd.group(), &mut m, Duration::from_secs(240)).await;
        let mine = parts_of(&pool, wd.group(), m[0].pid()).await;
        // Pause it only once each of its partitions is live and committed (not in the middle of
        // taking a partition, where a blocking broker call would time out on SIGCONT).
        let mut c0 = Vec::new();
        for p in &mine {
            c0.push(committed_of(&pool, wd.group(), &[*p]).await);
        }
        let g = wd.group().to_owned();
        wait_for(
            "the zombie-to-be to commit on each of its partitions",
            Duration::from_secs(60),
            || {
                alive(&mut m[0]);
                let (pool, g, mine, c0) = (pool.clone(), g.clone(), mine.clone(), c0.clone());
                async move {
                    for (p, c) in mine.iter().zip(c0) {
                        if committed_of(&pool, &g, &[*p]).await <= c {
                            return Ok(false);
                        }
                    }
                    Ok(true)
                }
            },
        )
        .await;
        tokio::time::sleep(Duration::from_millis(rng.gen_range(500..2500))).await;
        let before = epochs(&pool, wd.group()).await;
        m[0].signal("STOP");
        if !took_over(&pool, wd.group(), &mut m[1]).await {
            orphaned += 1;
            eprintln!("[zombie] {ORPHANED}");
            m.push(wd.spec.spawn(wd.logs.file(&format!("c-{r}.log"))));
        }
        wait_new_epochs(&pool, wd.group(), &mine, &before, Duration::from_secs(120)).await;
        let seen = std::fs::read_to_string(&m[0].log)
            .unwrap()
            .matches(FENCED_LOG)
            .count();
        m[0].signal("CONT");
        let log = m[0].log.clone();
        wait_for(
            "the zombie's flush to be fenced",
            Duration::from_secs(60),
            || {
                // Exiting instead would also commit nothing, but it is not what is tested here.
                alive(&mut m[0]);
                let log = log.clone();
                async move {
                    let text = std::fs::read_to_string(&log).unwrap_or_default();
                    Ok(text.matches(FENCED_LOG).count() > seen)
                }
            },
        )
        .await;
        fenced = std::fs::read_to_string(&m[0].log)
            .unwrap()
            .matches(FENCED_LOG)
            .count();
    }
    let produced = feed.finish().await;
    wd.wait_caught_up(&pool, &produced, Duration::from_secs(300), || {
        m.iter_mut().for_each(alive)
    })
    .await;
    drop(m);
    let mut notes = format!(
        "the zombie's flush was fenced after each SIGCONT ({fenced} partition flushes refused)"
    );
    if orphaned > 0 {
        notes += &format!("; {orphaned} of {rounds} pauses: {ORPHANED}");
    }
    wd.finish(&pool, &produced, "zombie-sigstop", rounds, started, &notes)
        .await;
}

/// 5. The archive's filesystem fills up, then turns read-only: the stream stops with an error
/// naming the archive, commits no offset of an event it could not archive, and after the fix a
/// restart leaves views and archive exact.
#[sqlx::test(migrations = "../migrations")]
async fn archive_disk_full_and_read_only(pool: PgPool) {
    let fs = Tmpfs::mount("192k").expect(
        "cannot mount a tmpfs: this scenario fills a tiny filesystem, which needs root and mount permission; run it as root (CI does) or leave it out with -E 'not test(archive_disk_full)'",
    );
    let started = Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(seed("disk"));
    let logs = Logs::new("disk");
    let wd = World::new(&pool, "fdisk", BROKERS, 600, rng.gen(), fs.dir.path(), logs).await;
    let feed = wd.feed(200, Duration::from_millis(250));
    let mut errors = Vec::new();
    for (phase, (fault, fix)) in [("", "size=64m"), ("ro", "rw")].into_iter().enumerate() {
        let mut w = wd.spec.spawn(wd.logs.file(&format!("worker-{phase}.log")));
        if !fault.is_empty() {
            wait_holds(
                &pool,
                wd.group(),
                &mut w,
                i64::from(PARTITIONS),
                Duration::from_secs(120),
            )
            .await;
            tokio::time::sleep(Duration::from_millis(rng.gen_range(500..3000))).await;
            fs.remount(fault);
        }
        let pid = w.pid();
        let failed_after = wait_for(
            &format!("worker {pid} to stop on the archive fault"),
            Duration::from_secs(120),
            || {
                let exited = w.exited();
                async move { Ok(exited.is_some()) }
            },
        )
        .await;
        let status = w.exited().unwrap();
        let error = w.error_line();
        assert!(
            !status.success(),
            "the worker exits non-zero on an archive fault: {error}"
        );
        assert!(
            error.contains("archive") || error.contains("staging"),
            "the error names the archive: {error}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        let so_far = feed.so_far();
        let missing =
            committed_not_archived(&pool, wd.group(), &wd.t, fs.dir.path(), &so_far).await;
        if !missing.is_empty() {
            // Keep the evidence: the tmpfs goes away with the test.
            let copy = wd.logs.file("archive-copy");
            let _ = std::process::Command::new("cp")
                .arg("-a")
                .arg(fs.dir.path())
                .arg(&copy)
                .status();
            let staged: Vec<(String, i64)> = sqlx::query_as(
                "SELECT staged_path, rows FROM stream_archive_staged WHERE group_id = $1",
            )
            .bind(wd.group())
            .fetch_all(&pool)
            .await
            .unwrap();
            panic!(
                "phase {phase}: offsets were committed for events that were not archived (topic, partition, offset, committed next offset): {missing:?}; committed staged files: {staged:?}; archive copied to {}",
                copy.display()
            );
        }
        eprintln!("[disk] phase {phase}: stopped after {failed_after:?}: {error}");
        // The OS's reason, e.g. "No space left on device (os error 28)".
        let reason = error.rsplit(": ").next().unwrap_or(&error);
        errors.push(reason.split(';').next().unwrap_or(reason).to_owned());
        fs.remount(fix);
    }
    let produced = feed.finish().await;
    let mut w = wd.spec.spawn(wd.logs.file("worker-fixed.log"));
    wd.wait_caught_up(&pool, &produced, Duration::from_secs(300), || alive(&mut w))
        .await;
    drop(w);
    let notes = format!(
        "the stream stopped with an error naming the archive file and: {}; nothing committed unarchived",
        errors.join(", then ")
    );
    wd.finish(
        &pool,
        &produced,
        "archive-full-then-read-only",
        2,
        started,
        &notes,
    )
    .await;
}
