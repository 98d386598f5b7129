//! Postgres down: the API answers 503 problem+json (never hangs, never 500), `/healthz` stays
//! 200, and the server recovers by itself when the database comes back.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use playsource_serving::{app, connect_lazy, AppState, Config, PoolConfig};
use sqlx::PgPool;
use tokio::net::{TcpListener, TcpStream};

fn pool_cfg() -> PoolConfig {
    PoolConfig {
        max_connections: 4,
        acquire_timeout: Duration::from_millis(800),
        statement_timeout: Duration::from_secs(5),
    }
}

#[tokio::test]
async fn a_dead_database_gives_503_problems() {
    // Port 1 on localhost: nothing listens there.
    let pool = connect_lazy("postgres://postgres@127.0.0.1:1/playsource", &pool_cfg()).unwrap();
    let app = app(AppState::new(pool, Config::default()));
    for uri in [
        "/v1/source-of-play?from=2026-11-21T00:00:00Z&to=2026-11-22T00:00:00Z",
        "/v1/source-of-discovery?from=2026-11-21T00:00:00Z&to=2026-11-22T00:00:00Z",
        "/v1/videos/1/discovery?from=2026-11-21T00:00:00Z&to=2026-11-22T00:00:00Z",
        "/v1/freshness",
        "/readyz",
    ] {
        let a = get(&app, uri).await;
        assert_problem(&a, 503, "");
        assert!(a.headers.get("retry-after").is_some(), "{uri}");
        let detail = a.json["detail"].as_str().unwrap();
        assert!(
            !detail.contains("127.0.0.1:1") && !detail.contains("Connection refused"),
            "{detail}"
        );
    }
    assert_eq!(get(&app, "/healthz").await.status, 200);
    // Bad input is still a 400, not a 503: validation comes first.
    let a = get(&app, "/v1/source-of-play?from=x&to=y").await;
    assert_eq!(a.status, 400);
}

#[test]
fn a_malformed_database_url_is_a_clear_error() {
    let e = connect_lazy("postgres://user:secret@[::1:5432/db", &pool_cfg()).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("database URL is not valid"), "{msg}");
    assert!(!msg.contains("secret"), "{msg}");
}

/// A TCP proxy to Postgres that can be switched off (dropping its connections) and on.
struct Switch {
    port: u16,
    up: Arc<AtomicBool>,
    conns: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Switch {
    async fn start() -> Switch {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let conns = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (up2, conns2) = (up.clone(), conns.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if !up2.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect("127.0.0.1:5432").await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                conns2.lock().unwrap().push(task);
            }
        });
        Switch { port, up, conns }
    }

    fn down(&self) {
        self.up.store(false, Ordering::SeqCst);
        for t in self.conns.lock().unwrap().drain(..) {
            t.abort();
        }
    }

    fn up(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn the_server_recovers_when_the_database_comes_back(pool: PgPool) {
    insert_hourly(
        &pool,
        "rt_hourly",
        &[h("2026-11-21T00:00:00Z", "a", "a", 2)],
    )
    .await;
    let db: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&pool)
        .await
        .unwrap();
    let switch = Switch::start().await;
    let url = format!("postgres://postgres@127.0.0.1:{}/{db}", switch.port);
    let app = app(AppState::new(
        connect_lazy(&url, &pool_cfg()).unwrap(),
        Config::default(),
    ));
    let uri = "/v1/source-of-play?from=2026-11-21T00:00:00Z&to=2026-11-21T01:00:00Z";
    let a = get(&app, uri).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json["series"][0]["plays"], 2);

    switch.down();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let a = get(&app, uri).await;
    assert_problem(&a, 503, "retry");
    assert_eq!(get(&app, "/readyz").await.status, 503);

    switch.up();
    let mut status = 0;
    for _ in 0..20 {
        let a = get(&app, uri).await;
        status = a.status.as_u16();
        if status == 200 {
            assert_eq!(a.json["series"][0]["plays"], 2);
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(status, 200, "the server did not recover");
    assert_eq!(get(&app, "/readyz").await.status, 200);
}

#[test]
fn a_database_url_of_another_scheme_is_a_clear_error() {
    let e = connect_lazy("mysql://root@localhost/db", &pool_cfg()).unwrap_err();
    assert!(e.to_string().contains("scheme is `mysql`"), "{e}");
    let e = connect_lazy("127.0.0.1:5432", &pool_cfg()).unwrap_err();
    assert!(e.to_string().contains("not postgres://"), "{e}");
}

#[sqlx::test(migrations = false)]
async fn a_database_without_the_schema_gives_a_503_saying_run_init(pool: PgPool) {
    let app = app(AppState::new(pool, Config::default()));
    let a = get(
        &app,
        "/v1/source-of-play?from=2026-11-21T00:00:00Z&to=2026-11-22T00:00:00Z",
    )
    .await;
    assert_problem(&a, 503, "playsource init");
    let a = get(&app, "/v1/freshness").await;
    assert_problem(&a, 503, "playsource init");
}

#[sqlx::test(migrations = "../migrations")]
async fn a_database_error_that_is_a_bug_is_a_500_problem_without_internals(pool: PgPool) {
    // A schema that does not match the server (a misapplied migration): every read of the
    // series fails with undefined_column, which retrying cannot fix.
    sqlx::query("ALTER TABLE rt_hourly RENAME COLUMN plays TO plays_secret_col")
        .execute(&pool)
        .await
        .unwrap();
    let app = app(AppState::new(
        pool,
        Config {
            memory_days: 0,
            ..Config::default()
        },
    ));
    let a = get(
        &app,
        "/v1/source-of-play?from=2026-11-21T00:00:00Z&to=2026-11-22T00:00:00Z",
    )
    .await;
    assert_problem(&a, 500, "server log");
    for leak in [
        "plays_secret_col",
        "rt_hourly",
        "SELECT",
        "column",
        "42703",
        "postgres",
    ] {
        assert!(!a.text.contains(leak), "{leak} leaked: {}", a.text);
    }
    assert!(a.headers.get("retry-after").is_none());
    // The server keeps answering what does not touch the broken table.
    assert_eq!(get(&app, "/healthz").await.status, 200);
    assert_eq!(get(&app, "/v1/freshness").await.status, 200);
}
