//! A scratch world for tests that run the binary end to end: a database of its own (dropped at
//! the end), uniquely named topics and a temporary archive, handed to `playsource` through the
//! environment fallbacks of contract §6.
#![allow(clippy::unwrap_used, dead_code)] // test setup: a failed step should fail the test loudly

use std::process::Command;

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
