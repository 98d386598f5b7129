//! Fault-injection environment (`stream/tests/faults.rs`): a supervisor that restarts a worker
//! that exited, a tansu broker of the test's own, and a tiny filesystem for the archive.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sqlx::PgPool;

use crate::common::PARTITIONS;
use crate::faults::{committed_total, held_by, signal, wait_for, Logs, Worker, WorkerSpec};

// ------------------------------------------------------------------------------- supervision

/// A worker restarted whenever it exits, like a process supervisor would: `delay` after the exit
/// was noticed (at least a second); remembers why it stopped.
pub struct Supervised {
    spec: WorkerSpec,
    logs: PathBuf,
    name: String,
    pub worker: Worker,
    /// The `error: ...` line of every exit.
    pub exits: Vec<String>,
    /// How long after an exit the worker is started again.
    pub delay: Duration,
    last_start: Instant,
    exited_at: Option<Instant>,
}

impl Supervised {
    pub fn start(spec: WorkerSpec, logs: &Logs, name: &str) -> Supervised {
        let worker = spec.spawn(logs.file(&format!("{name}-0.log")));
        Supervised {
            spec,
            logs: logs.dir.clone(),
            name: name.to_owned(),
            worker,
            exits: Vec::new(),
            delay: Duration::from_secs(1),
            last_start: Instant::now(),
            exited_at: None,
        }
    }

    /// Restarts the worker if it exited (and the delay passed); true if it did.
    pub fn check(&mut self) -> bool {
        let Some(status) = self.worker.exited() else {
            return false;
        };
        let at = *self.exited_at.get_or_insert_with(|| {
            eprintln!(
                "[{}] worker exited ({status}: {}); restarting it in {:?}",
                self.name,
                self.worker.error_line(),
                self.delay
            );
            Instant::now()
        });
        if at.elapsed() < self.delay || self.last_start.elapsed() < Duration::from_secs(1) {
            return false;
        }
        let line = self.worker.error_line();
        let why = line.strip_prefix("error: ").unwrap_or(&line);
        // The error's first clause (what failed), without the advice after `;`.
        let why = why.split("; ").next().unwrap_or(why);
        self.exits.push(format!("{status}: {why}"));
        let log = self
            .logs
            .join(format!("{}-{}.log", self.name, self.exits.len()));
        self.worker = self.spec.spawn(log);
        self.last_start = Instant::now();
        self.exited_at = None;
        true
    }

    /// How often it exited and the distinct reasons, for the report.
    pub fn summary(&self) -> String {
        if self.exits.is_empty() {
            return "the stream never exited".into();
        }
        let mut r = self.exits.clone();
        r.sort();
        r.dedup();
        format!(
            "the stream exited {} time(s), restarted by the test: {}",
            self.exits.len(),
            r.join(" / ")
        )
    }
}

// ------------------------------------------------------------------------------ own broker

/// The tansu binary: `PLAYSOURCE_TANSU`, else `tansu` on PATH, else `~/.cargo/bin/tansu`.
pub fn tansu_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PLAYSOURCE_TANSU") {
        return Some(PathBuf::from(p));
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("tansu"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let home = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin/tansu"));
    on_path.into_iter().chain(home).find(|p| p.is_file())
}

/// A tansu broker of the test's own: SQLite storage in a temporary folder (so a restart keeps
/// the data) on a free port.
pub struct Broker {
    dir: tempfile::TempDir,
    bin: PathBuf,
    log: PathBuf,
    pub port: u16,
    child: Option<Child>,
}

impl Broker {
    pub async fn start(bin: PathBuf, logs: &Logs) -> Broker {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut b = Broker {
            dir: tempfile::tempdir().unwrap(),
            bin,
            log: logs.file("tansu.log"),
            port,
            child: None,
        };
        b.restart().await;
        b
    }

    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Starts it (again) on the same port and data file and waits until it answers.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "the broker is running");
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(&self.bin)
            .current_dir(self.dir.path())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            // Relative: tansu resolves the path against its working directory.
            .args(["--storage-engine", "sqlite://tansu.db"])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let brokers = self.brokers();
        wait_for("the broker to answer", Duration::from_secs(60), || {
            let b = brokers.clone();
            async move {
                tokio::task::spawn_blocking(move || {
                    use rdkafka::consumer::{BaseConsumer, Consumer};
                    let c: BaseConsumer = playsource_kafka::client_config(&b)
                        .set("log_level", "0")
                        .create()
                        .map_err(|e| e.to_string())?;
                    c.fetch_metadata(None, Duration::from_secs(2))
                        .map(|md| !md.brokers().is_empty())
                        .map_err(|e| e.to_string())
                })
                .await
                .unwrap()
            }
        })
        .await;
    }

    /// Stops it with SIGTERM (SIGKILL after 15 s).
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        signal(child.id(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(15);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

// ---------------------------------------------------------------------- a tiny filesystem

/// A tmpfs of `size` mounted on a temporary folder (needs root); unmounted when dropped.
pub struct Tmpfs {
    pub dir: tempfile::TempDir,
}

impl Tmpfs {
    /// None when it cannot be mounted (not root, or no mount permission in this container).
    pub fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Tmpfs { dir })
    }

    /// `mount -o remount,OPTS`, retried for 10 s (a read-only remount fails while a file is open
    /// for writing).
    pub fn remount(&self, opts: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let out = Command::new("mount")
                .args(["-o", &format!("remount,{opts}")])
                .arg(self.dir.path())
                .output()
                .unwrap();
            if out.status.success() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "remount,{opts} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Waits until a supervised worker holds every partition and committed something.
pub async fn wait_live(pool: &PgPool, group: &str, sup: &mut Supervised, limit: Duration) {
    wait_for("the stream to go live", limit, || {
        sup.check();
        let (pool, group, pid) = (pool.clone(), group.to_owned(), sup.worker.pid());
        async move {
            let held = held_by(&pool, &group, pid)
                .await
                .map_err(|e| e.to_string())?;
            let total = committed_total(&pool, &group)
                .await
                .map_err(|e| e.to_string())?;
            Ok(held == i64::from(PARTITIONS) && total > 0)
        }
    })
    .await;
}

/// The major version of the local Postgres cluster (`/etc/postgresql/VERSION`).
pub fn pg_version() -> String {
    let mut v: Vec<String> = std::fs::read_dir("/etc/postgresql")
        .expect("no /etc/postgresql: the Postgres restart scenario needs a local Debian cluster")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v.pop().expect("no cluster in /etc/postgresql")
}
