//! A scratch world for tests that run the binary end to end: a database of its own (dropped at
//! the end), uniquely named topics and a temporary archive, handed to `playsource` through the
//! environment fallbacks of docs/reference.md §6.
#![allow(clippy::unwrap_used, dead_code)] // test setup: a failed step should fail the test loudly

use std::process::{Command, Output};

use sqlx::{Connection, PgConnection};

pub const BIN: &str = env!("CARGO_BIN_EXE_playsource");

pub fn base_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/playsource".into())
}

pub struct Scratch {
    pub id: String,
    pub db: String,
    pub url: String,
    pub archive: tempfile::TempDir,
}

impl Scratch {
    /// A fresh scratch world named after `kind` (the database is created by `playsource init`).
    pub fn new(kind: &str) -> Scratch {
        let id = uuid::Uuid::new_v4().simple().to_string()[..10].to_owned();
        let db = format!("playsource_{kind}_{id}");
        let url = format!(
            "{}/{db}",
            base_url()
                .rsplit_once('/')
                .map(|(a, _)| a.to_owned())
                .unwrap()
        );
        Scratch {
            id,
            db,
            url,
            archive: tempfile::tempdir().unwrap(),
        }
    }

    /// The plays topic's name.
    pub fn plays_topic(&self) -> String {
        format!("t-plays-{}", self.id)
    }

    /// Runs `playsource ARGS` in this world to the end.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs `playsource ARGS` and fails the test, with its stderr, unless it succeeded.
    pub fn ok(&self, args: &[&str]) -> Output {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "playsource {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        o
    }

    /// `playsource ARGS` in this world.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .env("DATABASE_URL", &self.url)
            .env("PLAYSOURCE_ARCHIVE", self.archive.path())
            .env("PLAYSOURCE_IMPRESSIONS_TOPIC", format!("t-imp-{}", self.id))
            .env("PLAYSOURCE_PLAYS_TOPIC", self.plays_topic())
            .env("PLAYSOURCE_ENRICHED_TOPIC", format!("t-enr-{}", self.id))
            .env("PLAYSOURCE_DLQ_TOPIC", format!("t-dlq-{}", self.id));
        c
    }

    /// Drops the scratch database.
    pub async fn drop_db(&self) {
        let mut admin = PgConnection::connect(&base_url()).await.unwrap();
        sqlx::query(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.db))
            .execute(&mut admin)
            .await
            .unwrap();
    }
}

/// A row of an hourly view: hour (`YYYY-MM-DD HH`), country, device, sop_row, sod_row, genre,
/// new_launch, plays.
pub type HourlyRow = (String, String, String, String, String, String, bool, i64);

/// The non-zero rows of hourly view `table` (`rt_hourly` or `batch_hourly`) on `day`, sorted.
pub async fn hourly_rows(pool: &sqlx::PgPool, table: &str, day: &str) -> Vec<HourlyRow> {
    sqlx::query_as(&format!(
        "SELECT to_char(hour AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24'), country, device, sop_row, sod_row, genre, new_launch, plays
         FROM {table} WHERE hour >= $1::date AND hour < $1::date + 1 AND plays <> 0 ORDER BY 1, 2, 3, 4, 5, 6, 7"
    ))
    .bind(day)
    .fetch_all(pool)
    .await
    .unwrap()
}
