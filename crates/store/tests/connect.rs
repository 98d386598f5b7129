//! Connecting and migrating against a real Postgres.

#![allow(clippy::unwrap_used)] // tests may unwrap

use playsource_store::Error;

fn base_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/playsource".into())
}

/// The same server with another database name.
fn url_with_db(db: &str) -> String {
    let base = base_url();
    let (server, _) = base.rsplit_once('/').unwrap();
    format!("{server}/{db}")
}

#[tokio::test]
async fn unreachable_server_names_host_and_port_but_no_password() {
    let err = playsource_store::connect("postgres://alice:s3cret@127.0.0.1:1/playsource")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("127.0.0.1:1/playsource"), "{msg}");
    assert!(msg.contains("DATABASE_URL"), "says what to do: {msg}");
    assert!(!msg.contains("s3cret"), "{msg}");
}

#[tokio::test]
async fn a_bad_url_is_a_clear_error() {
    let err = playsource_store::connect("mysql:/nope").await.unwrap_err();
    assert!(matches!(err, Error::BadUrl { .. }), "{err:?}");
    assert!(err.to_string().contains("--database-url"), "{err}");
}

#[tokio::test]
async fn a_missing_database_is_reported_then_created_and_migrated() {
    let name = format!("playsource_store_{}", std::process::id());
    let url = url_with_db(&name);
    let err = playsource_store::connect(&url).await.unwrap_err();
    assert!(matches!(err, Error::NoDatabase { .. }), "{err:?}");
    assert!(err.to_string().contains(&name), "{err}");

    assert!(playsource_store::create_database_if_missing(&url)
        .await
        .unwrap());
    assert!(!playsource_store::create_database_if_missing(&url)
        .await
        .unwrap());
    let pool = playsource_store::connect(&url).await.unwrap();
    playsource_store::migrate(&pool).await.unwrap();
    playsource_store::migrate(&pool).await.unwrap(); // idempotent
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables WHERE table_name IN ('catalog', 'rt_hourly', 'batch_days')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(tables, 3);
    pool.close().await;

    let admin = playsource_store::connect(&base_url()).await.unwrap();
    sqlx::query(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
        .execute(&admin)
        .await
        .unwrap();
}
