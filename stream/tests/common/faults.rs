//! Fault-injection helpers (`stream/tests/faults.rs`): real stream processes
//! (`playsource-stream-worker`) that can be killed, paused and restarted, waiting on what they
//! hold and commit, and a producer that keeps producing and remembers where every message landed.
//! The checks are in `fault_check.rs`, the broker, filesystem and supervisor in `fault_env.rs`.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use playsource_kafka::Topics;
use rdkafka::producer::{FutureProducer, FutureRecord};
use sqlx::PgPool;

use crate::common::{Msgs, PARTITIONS};

pub const WORKER: &str = env!("CARGO_BIN_EXE_playsource-stream-worker");

/// `PLAYSOURCE_FAULTS_LONG=1`: the long variants (many faults, bigger workloads).
pub fn long() -> bool {
    std::env::var("PLAYSOURCE_FAULTS_LONG").is_ok_and(|v| v == "1")
}

/// `short` normally, `long` with `PLAYSOURCE_FAULTS_LONG=1`.
pub fn pick(short: usize, long_: usize) -> usize {
    if long() {
        long_
    } else {
        short
    }
}

/// The seed of the random fault points: `PLAYSOURCE_FAULTS_SEED`, else the clock (printed, so a
/// run can be repeated).
pub fn seed(test: &str) -> u64 {
    let seed = std::env::var("PLAYSOURCE_FAULTS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as u64
        });
    eprintln!("[{test}] seed {seed} (PLAYSOURCE_FAULTS_SEED={seed} repeats the fault points)");
    seed
}

/// The database URL of a `#[sqlx::test]` pool (its own database).
pub async fn pool_url(pool: &PgPool) -> String {
    let db: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(pool)
        .await
        .unwrap();
    let base = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/playsource".into());
    let server = base.split('?').next().unwrap_or(&base);
    let server = server.rsplit_once('/').map_or(server, |(s, _)| s);
    format!("{server}/{db}")
}

// ------------------------------------------------------------------------------------- logs

/// A folder for the workers' logs: deleted after a passing test, kept (and named) after a
/// failing one or when `PLAYSOURCE_KEEP_LOGS` is set.
pub struct Logs {
    pub dir: PathBuf,
    tmp: Option<tempfile::TempDir>,
}

impl Logs {
    pub fn new(test: &str) -> Logs {
        let tmp = tempfile::Builder::new()
            .prefix(&format!("faults-{test}-"))
            .tempdir()
            .unwrap();
        let dir = tmp.path().to_path_buf();
        if std::env::var_os("PLAYSOURCE_KEEP_LOGS").is_some() {
            eprintln!("[{test}] logs in {}", dir.display());
            return Logs {
                dir: tmp.keep(),
                tmp: None,
            };
        }
        Logs {
            dir,
            tmp: Some(tmp),
        }
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Logs {
    fn drop(&mut self) {
        if std::thread::panicking() {
            if let Some(t) = self.tmp.take() {
                eprintln!("logs of the failed test kept in {}", t.keep().display());
            }
        }
    }
}

// ------------------------------------------------------------------------------------ workers

/// How to start a stream worker.
#[derive(Clone, Debug)]
pub struct WorkerSpec {
    pub url: String,
    pub brokers: String,
    pub topics: Topics,
    pub group: String,
    pub archive: PathBuf,
    pub flush_ms: u64,
    pub checkpoint_secs: u64,
}

/// A running `playsource-stream-worker`, SIGKILLed when dropped.
pub struct Worker {
    child: Child,
    pub log: PathBuf,
}

impl WorkerSpec {
    pub fn spawn(&self, log: PathBuf) -> Worker {
        let child = Command::new(WORKER)
            .env("DATABASE_URL", &self.url)
            .env("KAFKA_BROKERS", &self.brokers)
            .env("IMPRESSIONS_TOPIC", &self.topics.impressions)
            .env("PLAYS_TOPIC", &self.topics.plays)
            .env("ENRICHED_TOPIC", &self.topics.enriched)
            .env("DLQ_TOPIC", &self.topics.dlq)
            .env("PLAYSOURCE_GROUP_ID", &self.group)
            .env("PLAYSOURCE_ARCHIVE", &self.archive)
            .env("PLAYSOURCE_FLUSH_INTERVAL_MS", self.flush_ms.to_string())
            .env(
                "PLAYSOURCE_CHECKPOINT_INTERVAL_SECS",
                self.checkpoint_secs.to_string(),
            )
            .env("RUST_LOG", "playsource_stream=debug")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Worker { child, log }
    }
}

/// Sends `sig` (`KILL`, `STOP`, `CONT`, `TERM`) to `pid` with kill(1).
pub fn signal(pid: u32, sig: &str) {
    let st = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(st.success(), "kill -{sig} {pid} failed");
}

impl Worker {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `kill -9`, then reaps it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn signal(&self, sig: &str) {
        signal(self.pid(), sig);
    }

    /// Its exit status, if it exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().unwrap()
    }

    /// The `error: ...` line the worker printed when it stopped (or the log's last line).
    pub fn error_line(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .rev()
            .find(|l| l.starts_with("error: "))
            .or_else(|| text.lines().last())
            .unwrap_or("")
            .to_owned()
    }

    /// Whether its log contains `needle`.
    pub fn logged(&self, needle: &str) -> bool {
        std::fs::read_to_string(&self.log).is_ok_and(|t| t.contains(needle))
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Partitions whose lease `pid`'s worker took last.
pub async fn held_by(pool: &PgPool, group: &str, pid: u32) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM stream_leases WHERE group_id = $1 AND owner LIKE $2")
        .bind(group)
        .bind(format!("%-{pid}-%"))
        .fetch_one(pool)
        .await
}

/// The lease epochs of the group, by partition.
pub async fn epochs(pool: &PgPool, group: &str) -> BTreeMap<i32, i64> {
    let rows: Vec<(i32, i64)> =
        sqlx::query_as("SELECT partition, epoch FROM stream_leases WHERE group_id = $1")
            .bind(group)
            .fetch_all(pool)
            .await
            .unwrap();
    rows.into_iter().collect()
}

/// Sum of the committed next offsets of the group (grows with every commit).
pub async fn committed_total(pool: &PgPool, group: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT COALESCE(SUM(next_offset), 0)::int8 FROM stream_offsets WHERE group_id = $1",
    )
    .bind(group)
    .fetch_one(pool)
    .await
}

/// Polls `cond` every 100 ms until it holds (Some(time it took)) or `limit` passed (None).
/// Errors of `cond` (e.g. Postgres restarting) count as "not yet".
pub async fn try_wait_for<F, Fut>(limit: Duration, mut cond: F) -> Result<Duration, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool, String>>,
{
    let start = Instant::now();
    let mut last_err = String::new();
    loop {
        match cond().await {
            Ok(true) => return Ok(start.elapsed()),
            Ok(false) => {}
            Err(e) => last_err = e,
        }
        if start.elapsed() > limit {
            return Err(last_err);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// [`try_wait_for`], panicking with `what` after `limit`.
pub async fn wait_for<F, Fut>(what: &str, limit: Duration, cond: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool, String>>,
{
    match try_wait_for(limit, cond).await {
        Ok(d) => d,
        Err(e) => panic!("timed out after {limit:?} waiting for {what} {e}"),
    }
}

// ----------------------------------------------------------------------------------- producing

/// Where every produced message landed: (partition, offset) per input topic (0 impressions,
/// 1 plays), as the broker acknowledged it.
#[derive(Clone, Debug, Default)]
pub struct Produced {
    pub at: [Vec<(i32, i64)>; 2],
    /// Chunks of the feed produced.
    pub chunks: usize,
    /// Messages sent again after a failed delivery.
    pub resent: usize,
}

impl Produced {
    pub fn events(&self) -> usize {
        self.at[0].len() + self.at[1].len()
    }

    /// The end (greatest offset + 1) of every (topic, partition) written to.
    pub fn ends(&self) -> BTreeMap<(usize, i32), i64> {
        let mut ends = BTreeMap::new();
        for (k, v) in self.at.iter().enumerate() {
            for (p, o) in v {
                let e = ends.entry((k, *p)).or_insert(0);
                *e = (*e).max(o + 1);
            }
        }
        ends
    }
}

/// Produces `msgs` to `topic` and waits for every delivery: where each one landed, or why not.
pub async fn produce_tracked(
    p: &FutureProducer,
    topic: &str,
    msgs: &[(String, Vec<u8>)],
) -> Vec<Result<(i32, i64), String>> {
    let mut futs = Vec::with_capacity(msgs.len());
    for (k, v) in msgs {
        let rec = FutureRecord::to(topic)
            .key(k.as_str())
            .payload(v.as_slice());
        futs.push(p.send_result(rec).map_err(|(e, _)| e).unwrap());
    }
    let mut at = Vec::with_capacity(msgs.len());
    for f in futs {
        at.push(match f.await.unwrap() {
            Ok(d) => Ok((d.partition, d.offset)),
            Err((e, _)) => Err(e.to_string()),
        });
    }
    at
}

/// Produces `msgs` until each was acknowledged once: a failed delivery is sent again with a new
/// producer (after a broker restart the old one may be refused). Returns how many were resent.
async fn produce_all(
    producer: &mut FutureProducer,
    brokers: &str,
    topic: &str,
    msgs: &[(String, Vec<u8>)],
    out: &Mutex<Produced>,
    k: usize,
) -> usize {
    let mut pending: Vec<(String, Vec<u8>)> = msgs.to_vec();
    let (mut attempts, mut resent) = (0, 0);
    while !pending.is_empty() {
        let res = produce_tracked(producer, topic, &pending).await;
        let mut failed = Vec::new();
        let mut why = String::new();
        for (m, r) in pending.into_iter().zip(res) {
            match r {
                Ok(at) => out.lock().unwrap().at[k].push(at),
                Err(e) => {
                    why = e;
                    failed.push(m);
                }
            }
        }
        if !failed.is_empty() {
            attempts += 1;
            assert!(attempts < 30, "producing to {topic} keeps failing: {why}");
            eprintln!(
                "[feed] {} messages to {topic} failed ({why}); sending them again",
                failed.len()
            );
            resent += failed.len();
            tokio::time::sleep(Duration::from_millis(500)).await;
            *producer = playsource_kafka::producer(brokers).unwrap();
        }
        pending = failed;
    }
    resent
}

/// A producer task feeding the workload in `chunks` steps, one every `every`, until done or
/// hurried (then the rest at once).
pub struct Feed {
    hurry: Arc<AtomicBool>,
    so_far: Arc<Mutex<Produced>>,
    pub chunks: usize,
    handle: tokio::task::JoinHandle<()>,
}

impl Feed {
    pub fn start(
        brokers: &str,
        topics: &Topics,
        imps: Msgs,
        plays: Msgs,
        chunks: usize,
        every: Duration,
    ) -> Feed {
        let hurry = Arc::new(AtomicBool::new(false));
        let so_far = Arc::new(Mutex::new(Produced::default()));
        let mut producer = playsource_kafka::producer(brokers).unwrap();
        let names = [topics.impressions.clone(), topics.plays.clone()];
        let (h, out, brokers) = (Arc::clone(&hurry), Arc::clone(&so_far), brokers.to_owned());
        let handle = tokio::spawn(async move {
            let msgs = [imps, plays];
            for c in 0..chunks {
                for k in 0..2 {
                    let n = msgs[k].len().div_ceil(chunks);
                    let part =
                        &msgs[k][(c * n).min(msgs[k].len())..((c + 1) * n).min(msgs[k].len())];
                    let resent =
                        produce_all(&mut producer, &brokers, &names[k], part, &out, k).await;
                    out.lock().unwrap().resent += resent;
                }
                out.lock().unwrap().chunks = c + 1;
                if !h.load(Ordering::SeqCst) {
                    tokio::time::sleep(every).await;
                }
            }
        });
        Feed {
            hurry,
            so_far,
            chunks,
            handle,
        }
    }

    /// What was produced (and acknowledged) so far.
    pub fn so_far(&self) -> Produced {
        self.so_far.lock().unwrap().clone()
    }

    /// Produces the rest without pausing and returns where everything landed.
    pub async fn finish(self) -> Produced {
        self.hurry.store(true, Ordering::SeqCst);
        self.handle.await.expect("the producer task failed");
        self.so_far.lock().unwrap().clone()
    }
}

// ------------------------------------------------------------------------------- waiting

/// Fails the test if `w` exited.
pub fn alive(w: &mut Worker) {
    if let Some(st) = w.exited() {
        panic!("worker {} exited ({st}): {}", w.pid(), w.error_line());
    }
}

/// Waits until `w` took at least `n` partition leases.
pub async fn wait_holds(
    pool: &PgPool,
    group: &str,
    w: &mut Worker,
    n: i64,
    limit: Duration,
) -> Duration {
    let pid = w.pid();
    wait_for(
        &format!("worker {pid} to hold {n} partitions"),
        limit,
        || {
            alive(w);
            let (pool, group) = (pool.clone(), group.to_owned());
            async move {
                held_by(&pool, &group, pid)
                    .await
                    .map(|h| h >= n)
                    .map_err(|e| e.to_string())
            }
        },
    )
    .await
}

/// Partitions whose lease `pid`'s worker holds.
pub async fn parts_of(pool: &PgPool, group: &str, pid: u32) -> Vec<i32> {
    sqlx::query_scalar(
        "SELECT partition FROM stream_leases WHERE group_id = $1 AND owner LIKE $2 ORDER BY 1",
    )
    .bind(group)
    .bind(format!("%-{pid}-%"))
    .fetch_all(pool)
    .await
    .unwrap()
}

/// Waits until the live `members` hold every partition between them and the first holds some.
pub async fn wait_spread(pool: &PgPool, group: &str, members: &mut [Worker], limit: Duration) {
    let pids: Vec<u32> = members.iter().map(Worker::pid).collect();
    wait_for("the members to share the partitions", limit, || {
        members.iter_mut().for_each(alive);
        let (pool, group, pids) = (pool.clone(), group.to_owned(), pids.clone());
        async move {
            let mut held = Vec::new();
            for pid in pids {
                held.push(
                    held_by(&pool, &group, pid)
                        .await
                        .map_err(|e| e.to_string())?,
                );
            }
            Ok(held[0] > 0 && held.iter().sum::<i64>() == i64::from(PARTITIONS))
        }
    })
    .await;
}

/// Waits until every partition in `parts` has a newer lease epoch than in `before`.
pub async fn wait_new_epochs(
    pool: &PgPool,
    group: &str,
    parts: &[i32],
    before: &BTreeMap<i32, i64>,
    limit: Duration,
) {
    wait_for("new lease epochs", limit, || {
        let (pool, group, parts, before) = (
            pool.clone(),
            group.to_owned(),
            parts.to_vec(),
            before.clone(),
        );
        async move {
            let now = epochs(&pool, &group).await;
            Ok(parts.iter().all(|p| now.get(p) > before.get(p)))
        }
    })
    .await;
}

/// Sum of the committed next offsets of `parts`.
pub async fn committed_of(pool: &PgPool, group: &str, parts: &[i32]) -> i64 {
    sqlx::query_scalar(
        "SELECT COALESCE(SUM(next_offset), 0)::int8 FROM stream_offsets WHERE group_id = $1 AND partition = ANY($2)",
    )
    .bind(group)
    .bind(parts)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// How long the broker keeps a member that stopped heartbeating: librdkafka's default
/// `session.timeout.ms` (45 s; the stream does not change it), plus a margin.
///
/// tansu 0.6.0 never hands the partitions of a member whose session expired to another member
/// (the next rebalance still assigns them to the dead one) — but a member that *joins* after the
/// expiry gets them. So the tests start a replacement only once this has passed since the kill.
pub const SESSION_EXPIRY: Duration = Duration::from_secs(48);

/// Durations as whole seconds joined by `/`.
pub fn secs(d: &[Duration]) -> String {
    let v: Vec<String> = d
        .iter()
        .map(|d| format!("{:.0}", d.as_secs_f64()))
        .collect();
    v.join("/")
}

/// Waits up to the session expiry (+ 20 s) for `b` to hold every partition; false if it did not.
pub async fn took_over(pool: &PgPool, group: &str, b: &mut Worker) -> bool {
    let pid = b.pid();
    try_wait_for(SESSION_EXPIRY + Duration::from_secs(20), || {
        alive(b);
        let (pool, group) = (pool.clone(), group.to_owned());
        async move {
            let n = held_by(&pool, &group, pid)
                .await
                .map_err(|e| e.to_string())?;
            Ok(n == i64::from(PARTITIONS))
        }
    })
    .await
    .is_ok()
}

pub const ORPHANED: &str = "the broker never gave the lost member's partitions to the partner, a replacement that joined later got them (tansu 0.6.0)";
