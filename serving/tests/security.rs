//! Security properties of the serving layer, checked against real Postgres:
//! - the serving role `playsource_reader` (migrations/0004) can read what the API needs and
//!   nothing else, and can change nothing: no INSERT/UPDATE/DELETE/TRUNCATE, no DDL, no sequence
//!   writes, no privilege or role changes, no server files (checked with `SET ROLE`, and with a
//!   real login for what `SET ROLE` cannot show);
//! - time limits: a query past the server-side `statement_timeout` is a 503 problem, even when
//!   the request timeout is longer; size limits: an oversized request line or header block is
//!   refused with a 4xx by the HTTP layer and the server keeps answering;
//! - the OpenAPI document states the input rules the handlers enforce.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use playsource_serving::{app, connect_lazy, serve_on, AppState, Config, PoolConfig};
use sqlx::{Connection, Executor, PgConnection, PgPool};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const READER: &str = "playsource_reader";
/// What the serving layer reads (migrations/0004): SELECT only.
const READABLE: [&str; 7] = [
    "catalog",
    "rt_hourly",
    "rt_video_daily",
    "batch_hourly",
    "batch_video_daily",
    "batch_days",
    "stream_offsets",
];

/// The SQLSTATE of a statement's failure, or `ok`.
async fn outcome(conn: &mut PgConnection, sql: &str) -> String {
    match conn.execute(sql).await {
        Ok(_) => "ok".into(),
        Err(e) => e
            .as_database_error()
            .and_then(|d| d.code())
            .map_or_else(|| format!("non-database error: {e}"), |c| c.into_owned()),
    }
}

fn assert_denied(sql: &str, code: &str) {
    assert_eq!(
        code, "42501",
        "`{sql}` as {READER}: expected insufficient_privilege"
    );
}

async fn tables(pool: &PgPool) -> Vec<(String, String)> {
    // Each table of the schema with one of its columns.
    sqlx::query_as(
        "SELECT c.table_name::text, min(c.column_name::text)
         FROM information_schema.columns c
         JOIN pg_tables t ON t.tablename = c.table_name AND t.schemaname = 'public'
         WHERE c.table_schema = 'public'
         GROUP BY 1 ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrations = "../migrations")]
async fn the_reader_role_can_change_no_table(pool: PgPool) {
    let tables = tables(&pool).await;
    assert!(tables.len() >= READABLE.len() + 3, "{tables:?}");
    let mut conn = pool.acquire().await.unwrap().detach();
    conn.execute(format!("SET ROLE {READER}").as_str())
        .await
        .unwrap();
    for (t, col) in &tables {
        // Identifiers from pg_catalog, never input.
        let writes = [
            format!("INSERT INTO {t} DEFAULT VALUES"),
            format!("INSERT INTO {t} SELECT * FROM {t}"),
            format!("UPDATE {t} SET {col} = {col}"),
            format!("DELETE FROM {t}"),
            format!("TRUNCATE {t}"),
            format!("COPY {t} FROM STDIN"),
            format!("ALTER TABLE {t} ADD COLUMN pwned int"),
            format!("ALTER TABLE {t} OWNER TO {READER}"),
            format!("ALTER TABLE {t} DISABLE TRIGGER ALL"),
            format!("DROP TABLE {t}"),
            format!("CREATE INDEX ON {t} ({col})"),
            format!("CREATE TRIGGER pwned BEFORE INSERT ON {t} EXECUTE FUNCTION pg_catalog.now()"),
            format!("SELECT * FROM {t} FOR UPDATE"),
        ];
        for sql in &writes {
            assert_denied(sql, &outcome(&mut conn, sql).await);
        }
        // A lock that would block the writers (LOCK only runs inside a transaction).
        conn.execute("BEGIN").await.unwrap();
        let lock = format!("LOCK TABLE {t} IN EXCLUSIVE MODE");
        assert_denied(&lock, &outcome(&mut conn, &lock).await);
        conn.execute("ROLLBACK").await.unwrap();
        let read = format!("SELECT count(*) FROM {t}");
        let expected = if READABLE.contains(&t.as_str()) {
            "ok"
        } else {
            "42501"
        };
        assert_eq!(outcome(&mut conn, &read).await, expected, "{read}");
    }
    for sql in [
        "CREATE TABLE public.pwned (x int)",
        "CREATE VIEW public.pwned AS SELECT 1",
        "CREATE SCHEMA pwned",
        "CREATE FUNCTION public.pwned() RETURNS int LANGUAGE sql AS 'SELECT 1'",
        "CREATE SEQUENCE public.pwned",
        "SELECT nextval('batch_generation')",
        "SELECT setval('batch_generation', 1)",
        "CREATE ROLE pwned",
        "ALTER ROLE playsource_reader SUPERUSER",
        "ALTER ROLE playsource_reader CREATEROLE",
        "GRANT pg_write_server_files TO playsource_reader",
        "DROP EXTENSION plpgsql",
        "SELECT pg_read_file('/etc/passwd')",
        "COPY (SELECT 1) TO '/tmp/playsource-pwned'",
        "COPY rt_hourly FROM PROGRAM 'true'",
    ] {
        assert_denied(sql, &outcome(&mut conn, sql).await);
    }
    // Grants are the owner's: a reader's GRANT gives nothing away (Postgres only warns).
    for t in READABLE {
        let _ = outcome(&mut conn, &format!("GRANT SELECT, INSERT ON {t} TO PUBLIC")).await;
    }
    conn.execute("RESET ROLE").await.unwrap();
    let leaked: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.role_table_grants
         WHERE table_schema = 'public' AND grantee IN ('PUBLIC', 'playsource_reader')
           AND privilege_type <> 'SELECT'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(leaked, 0, "the reader holds more than SELECT somewhere");
    let public: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.role_table_grants
         WHERE table_schema = 'public' AND grantee = 'PUBLIC'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(public, 0, "a reader's GRANT took effect");
    conn.close().await.unwrap();
}

#[sqlx::test(migrations = "../migrations")]
async fn a_reader_login_cannot_become_another_role(pool: PgPool) {
    let db: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&pool)
        .await
        .unwrap();
    let url = format!("postgres://{READER}@127.0.0.1:5432/{db}");
    let mut conn = PgConnection::connect(&url).await.unwrap();
    let (user, superuser): (String, bool) = sqlx::query_as(
        "SELECT current_user::text, rolsuper FROM pg_roles WHERE rolname = current_user",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!((user.as_str(), superuser), (READER, false));
    for sql in ["SET ROLE postgres", "SET SESSION AUTHORIZATION postgres"] {
        assert_denied(sql, &outcome(&mut conn, sql).await);
    }
    // Transactions the reader opens are read-only in effect: a write inside one still fails.
    conn.execute("BEGIN").await.unwrap();
    assert_denied(
        "UPDATE in a transaction",
        &outcome(&mut conn, "UPDATE batch_days SET plays = 0").await,
    );
    conn.execute("ROLLBACK").await.unwrap();
    // The reader may not read what the server does not need.
    assert_denied(
        "stream_leases",
        &outcome(&mut conn, "SELECT 1 FROM stream_leases").await,
    );
    conn.close().await.unwrap();
}

#[sqlx::test(migrations = "../migrations")]
async fn a_query_past_the_statement_timeout_is_a_503(pool: PgPool) {
    let db: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&pool)
        .await
        .unwrap();
    // The request may take 30 s, but Postgres cancels any statement after 300 ms.
    let served = connect_lazy(
        &format!("postgres://postgres@127.0.0.1:5432/{db}"),
        &PoolConfig {
            max_connections: 2,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_millis(300),
        },
    )
    .unwrap();
    let app = app(AppState::new(
        served.clone(),
        Config {
            request_timeout: Duration::from_secs(30),
            ..Config::default()
        },
    ));
    // Warm the freshness watcher (it reads batch_days), then hold a lock the series query needs.
    assert_eq!(get(&app, "/v1/freshness").await.status, 200);
    let mut blocker = pool.begin().await.unwrap();
    blocker
        .execute("LOCK TABLE rt_hourly IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let a = get(
        &app,
        "/v1/source-of-play?from=2026-11-21T00:00:00Z&to=2026-11-22T00:00:00Z",
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_problem(&a, 503, "too slow");
    assert!(a.headers.get("retry-after").is_some());
    blocker.rollback().await.unwrap();
    // And the server answers again once the lock is gone.
    let a = get(
        &app,
        "/v1/source-of-play?from=2026-11-21T00:00:00Z&to=2026-11-22T00:00:00Z",
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    served.close().await;
}

/// Sends raw bytes to the server and returns the status code of its answer (None if it closed
/// the connection without one).
async fn raw_status(addr: std::net::SocketAddr, request: &[u8]) -> Option<u16> {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    // The server may answer and close before reading everything: a failed write is fine.
    let _ = s.write_all(request).await;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf);
    text.split_whitespace().nth(1)?.parse().ok()
}

#[sqlx::test(migrations = "../migrations")]
async fn oversized_requests_are_refused_and_the_server_keeps_serving(pool: PgPool) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_on(listener, state(&pool), async {
        let _ = stopped.await;
    }));
    let ok = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    assert_eq!(raw_status(addr, ok).await, Some(200));
    let long_uri = format!(
        "GET /v1/freshness?x={} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "a".repeat(1 << 20)
    );
    let many_headers = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\n{}Connection: close\r\n\r\n",
        (0..2000)
            .map(|i| format!("X-H{i}: {}\r\n", "v".repeat(100)))
            .collect::<String>()
    );
    let big_body = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        1 << 20,
        "x".repeat(1 << 20)
    );
    // hyper refuses a request head over ~400 KB with 431; the body limit answers 413. (A
    // connection reset before the answer arrives is also a refusal.)
    for (what, req, code) in [
        ("1 MiB URI", long_uri, 431),
        ("200 KB of headers", many_headers, 431),
        ("1 MiB body", big_body, 413),
    ] {
        let status = raw_status(addr, req.as_bytes()).await;
        assert!(
            status.is_none_or(|s| s == code),
            "{what}: answered {status:?}"
        );
    }
    assert_eq!(
        raw_status(addr, ok).await,
        Some(200),
        "the server stopped answering"
    );
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

#[sqlx::test(migrations = "../migrations")]
async fn the_openapi_document_states_the_input_rules(pool: PgPool) {
    let doc = get(&router(&pool), "/openapi.json").await.json;
    let param = |path: &str, name: &str| -> serde_json::Value {
        doc["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{path} has no parameter {name}"))["schema"]
            .clone()
    };
    let id = param("/v1/videos/{video_id}/discovery", "video_id");
    assert_eq!(id["minimum"], 1);
    assert_eq!(id["maximum"].to_string(), "18446744073709551615");
    for path in ["/v1/source-of-play", "/v1/source-of-discovery"] {
        assert_eq!(param(path, "from")["format"], "date-time");
        assert_eq!(param(path, "granularity")["pattern"], "^(hour|day)$");
        assert_eq!(param(path, "country")["pattern"], "^[A-Z]{2}$");
        assert_eq!(param(path, "device")["pattern"], "^[a-z0-9_]{1,64}$");
        assert_eq!(param(path, "genre")["maxLength"], 256);
    }
    assert_eq!(
        param("/v1/source-of-discovery", "play_row")["pattern"],
        "^[a-z0-9_]{1,64}$"
    );
    // A genre of 256 characters (more bytes) is accepted, 257 is not.
    let app = router(&pool);
    let range = "from=2026-11-21T00:00:00Z&to=2026-11-21T01:00:00Z";
    let a = get(
        &app,
        &format!("/v1/source-of-play?{range}&genre={}", "%C3%A9".repeat(256)),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let a = get(
        &app,
        &format!("/v1/source-of-play?{range}&genre={}", "%C3%A9".repeat(257)),
    )
    .await;
    assert_problem(&a, 400, "256 characters");
}
