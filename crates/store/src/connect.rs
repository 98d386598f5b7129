//! Connecting to Postgres with errors that say where and what to do.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions as _, Connection, PgConnection, PgPool};

use crate::Error;

/// SQLSTATE `invalid_catalog_name`: the database does not exist.
const NO_SUCH_DATABASE: &str = "3D000";
/// SQLSTATE `duplicate_database`.
const DUPLICATE_DATABASE: &str = "42P04";

/// Pool settings.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// Most connections the pool opens.
    pub max_connections: u32,
    /// How long to wait for the first connection (and, later, for a free pooled one).
    pub acquire_timeout: Duration,
    /// `application_name` shown in `pg_stat_activity`.
    pub application_name: String,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(10),
            application_name: "playsource".into(),
        }
    }
}

/// Settings of a pool that connects on first use ([`connect_lazy`]).
#[derive(Clone, Debug)]
pub struct LazyOptions {
    /// Most connections held.
    pub max_connections: u32,
    /// How long a caller waits for a connection.
    pub acquire_timeout: Duration,
    /// Server-side `statement_timeout` of every connection (`None`: the server's default).
    pub statement_timeout: Option<Duration>,
    /// `application_name` shown in `pg_stat_activity`.
    pub application_name: String,
}

/// Connects a pool to `url` with default settings. The first connection is made eagerly, so an
/// unreachable server, a bad password or a missing database is reported here, in one sentence
/// naming `host:port/database` (never the password).
pub async fn connect(url: &str) -> Result<PgPool, Error> {
    connect_with(url, &ConnectOptions::default()).await
}

/// [`connect`] with explicit pool settings.
pub async fn connect_with(url: &str, options: &ConnectOptions) -> Result<PgPool, Error> {
    let opts = parse(url)?.application_name(&options.application_name);
    // One direct connection first: the pool would retry a refused connection until its timeout
    // and then report only "pool timed out", losing the reason.
    let conn = first_connection(&opts, options.acquire_timeout).await?;
    conn.close().await.ok();
    PgPoolOptions::new()
        .max_connections(options.max_connections)
        .acquire_timeout(options.acquire_timeout)
        .connect_with(opts.clone())
        .await
        .map_err(|cause| Error::Connect {
            target: target(&opts),
            cause,
        })
}

/// A pool that connects on first use (and tests each connection before handing it out), so a
/// server can start while Postgres is down and recover by itself when it comes back. Only a
/// malformed URL fails here, with [`Error::BadUrl`] (never showing the password).
pub fn connect_lazy(url: &str, options: &LazyOptions) -> Result<PgPool, Error> {
    let mut opts = parse(url)?.application_name(&options.application_name);
    if let Some(t) = options.statement_timeout {
        opts = opts.options([("statement_timeout", format!("{}ms", t.as_millis()))]);
    }
    Ok(PgPoolOptions::new()
        .max_connections(options.max_connections.max(1))
        .acquire_timeout(options.acquire_timeout)
        .test_before_acquire(true)
        .connect_lazy_with(opts))
}

/// Creates the database named in `url` if it does not exist (connecting to the server's
/// `postgres` database to do so). Returns whether it was created.
pub async fn create_database_if_missing(url: &str) -> Result<bool, Error> {
    let opts = parse(url)?;
    let Some(name) = opts.get_database().map(str::to_owned) else {
        return Ok(false);
    };
    let timeout = ConnectOptions::default().acquire_timeout;
    match first_connection(&opts, timeout).await {
        Ok(conn) => {
            conn.close().await.ok();
            return Ok(false);
        }
        Err(Error::NoDatabase { .. }) => {}
        Err(e) => return Err(e),
    }
    let admin = opts.clone().database("postgres");
    let mut conn = first_connection(&admin, timeout).await?;
    let quoted = format!("\"{}\"", name.replace('"', "\"\""));
    let created = match sqlx::query(&format!("CREATE DATABASE {quoted}"))
        .execute(&mut conn)
        .await
    {
        Ok(_) => true,
        Err(e) if db_code(&e).as_deref() == Some(DUPLICATE_DATABASE) => false,
        Err(cause) => {
            return Err(Error::Query {
                what: "creating the database",
                cause,
            })
        }
    };
    conn.close().await.ok();
    if created {
        tracing::info!(database = %name, server = %server(&opts), "created the database");
    }
    Ok(created)
}

/// `host:port/database` of a URL, without user or password (for messages and logs).
pub fn target_of(url: &str) -> Result<String, Error> {
    parse(url).map(|o| target(&o))
}

fn parse(url: &str) -> Result<PgConnectOptions, Error> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        let scheme = url.split_once("://").map_or("none", |(s, _)| s);
        return Err(Error::BadUrl {
            message: format!(
                "its scheme is `{}`, not postgres:// or postgresql://",
                clip(scheme)
            ),
        });
    }
    PgConnectOptions::from_str(url).map_err(|e| Error::BadUrl {
        message: redact(&e.to_string(), url),
    })
}

/// `s` cut to 64 characters (a scheme quoted back from a garbled URL).
fn clip(s: &str) -> String {
    if s.chars().count() <= 64 {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(64).collect();
        t.push('…');
        t
    }
}

/// Removes the password of `url` from a message that may quote the URL.
pub fn redact(msg: &str, url: &str) -> String {
    match url
        .split_once("://")
        .and_then(|(_, rest)| rest.rsplit_once('@'))
    {
        Some((userinfo, _)) => match userinfo.split_once(':') {
            Some((_, pw)) if !pw.is_empty() => msg.replace(pw, "***"),
            _ => msg.to_owned(),
        },
        None => msg.to_owned(),
    }
}

async fn first_connection(
    opts: &PgConnectOptions,
    timeout: Duration,
) -> Result<PgConnection, Error> {
    let attempt = tokio::time::timeout(timeout, opts.connect()).await;
    let cause = match attempt {
        Ok(Ok(conn)) => return Ok(conn),
        Ok(Err(e)) => e,
        Err(_) => sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no answer within {}s", timeout.as_secs()),
        )),
    };
    if db_code(&cause).as_deref() == Some(NO_SUCH_DATABASE) {
        return Err(Error::NoDatabase {
            database: opts.get_database().unwrap_or("").to_owned(),
            server: server(opts),
        });
    }
    Err(Error::Connect {
        target: target(opts),
        cause,
    })
}

fn db_code(e: &sqlx::Error) -> Option<String> {
    e.as_database_error()
        .and_then(|d| d.code())
        .map(|c| c.into_owned())
}

fn server(o: &PgConnectOptions) -> String {
    match o.get_socket() {
        Some(dir) => dir.display().to_string(),
        None => format!("{}:{}", o.get_host(), o.get_port()),
    }
}

fn target(o: &PgConnectOptions) -> String {
    format!(
        "{}/{}",
        server(o),
        o.get_database().unwrap_or(o.get_username())
    )
}

#[cfg(test)]
mod tests {
    use super::{redact, target_of};

    #[test]
    fn target_hides_credentials() {
        assert_eq!(
            target_of("postgres://u:secret@db:5432/x?sslmode=disable").ok(),
            Some("db:5432/x".to_owned())
        );
        assert_eq!(
            target_of("postgres://db/x").ok(),
            Some("db:5432/x".to_owned())
        );
    }

    #[test]
    fn redact_hides_the_password_in_a_message() {
        let url = "postgres://u:secret@db:5432/x";
        assert_eq!(
            redact("bad url postgres://u:secret@db", url),
            "bad url postgres://u:***@db"
        );
        assert_eq!(redact("no password", "postgres://u@db/x"), "no password");
    }
}
