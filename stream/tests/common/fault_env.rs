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

// -------------------------------------------------------------------------- own Postgres

/// A PostgreSQL server of the test's own: `initdb` into a temporary folder (trust auth), on a
/// free port of 127.0.0.1, so a test can restart it without disturbing anyone. As root the
/// server runs as the `postgres` system user (`runuser`), since Postgres refuses to run as root.
/// Binaries: `PLAYSOURCE_PG_BIN`, else the newest `/usr/lib/postgresql/*/bin` (Debian), else
/// `pg_config --bindir`. Stopped (immediate) when dropped.
pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    as_postgres: bool,
    pub port: u16,
}

impl Postgres {
    /// Creates and starts the server; panics with what is missing if it cannot.
    pub fn start() -> Postgres {
        let bin = pg_bin().expect(
            "no PostgreSQL server binaries (initdb, pg_ctl): install PostgreSQL (Debian: postgresql) or point PLAYSOURCE_PG_BIN at its bin folder",
        );
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        let dir = tempfile::tempdir().unwrap();
        if root {
            let st = Command::new("chown")
                .arg("postgres:")
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(
                st.success(),
                "cannot chown {} to the postgres system user (the server cannot run as root)",
                dir.path().display()
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let pg = Postgres {
            dir,
            bin,
            as_postgres: root,
            port,
        };
        let data = pg.data();
        pg.run(
            "initdb",
            &[
                "-D",
                &data,
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        let opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            pg.dir.path().display()
        );
        let log = pg.log();
        pg.run(
            "pg_ctl",
            &["-D", &data, "-l", &log, "-o", &opts, "-w", "start"],
        );
        pg
    }

    /// The URL of database `db` on this server.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Restarts the server (fast shutdown: open connections are cut) and waits until it
    /// accepts connections again.
    pub fn restart(&self) {
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-l",
                &self.log(),
                "-m",
                "fast",
                "-w",
                "restart",
            ],
        );
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn log(&self) -> String {
        self.dir.path().join("postgres.log").display().to_string()
    }

    /// Runs one of the server's programs (as the postgres user when root); panics on failure.
    fn run(&self, program: &str, args: &[&str]) {
        let exe = self.bin.join(program);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let out = cmd.args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}{}; server log: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.log()).unwrap_or_default()
        );
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let exe = self.bin.join("pg_ctl");
        let data = self.data();
        let args = ["-D", data.as_str(), "-m", "immediate", "-w", "stop"];
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let _ = cmd
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The folder of `initdb` and `pg_ctl` (see [`Postgres`]).
fn pg_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PLAYSOURCE_PG_BIN") {
        return Some(PathBuf::from(p));
    }
    let mut debian: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    debian.sort();
    if let Some((_, bin)) = debian.pop() {
        return Some(bin);
    }
    let out = Command::new("pg_config").arg("--bindir").output().ok()?;
    let bin = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    (out.status.success() && bin.join("initdb").is_file()).then_some(bin)
}
