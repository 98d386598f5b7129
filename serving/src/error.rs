//! Errors of the serving layer and their HTTP form: RFC 9457 `application/problem+json`.
//!
//! A [`Problem`] never carries internals (SQL, host names, stack traces): those go to the log,
//! the client gets one sentence saying what went wrong and what to do.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Where the problem types are documented (`type` member = this + `#` + anchor).
const PROBLEM_DOCS: &str = "https://github.com/playsource/playsource/blob/main/docs/serving.md";

/// Errors of the serving library (startup and database access).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database URL does not parse (the store's message, which never shows the password).
    #[error(transparent)]
    DatabaseUrl(playsource_store::Error),
    /// A query failed.
    #[error("the database query failed: {0}")]
    Database(#[from] sqlx::Error),
    /// The listen address could not be bound or served.
    #[error(
        "cannot listen on {addr} ({reason}); choose another --listen address or free the port"
    )]
    Listen {
        /// The address asked for.
        addr: String,
        /// What the OS said.
        reason: std::io::Error,
    },
}

/// An RFC 9457 problem detail, the body of every 4xx/5xx answer.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem (documented in docs/serving.md).
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the kind of problem.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong with this request, and what to do about it.
    pub detail: String,
    /// Seconds after which a retry may succeed (sent as `Retry-After` too).
    #[serde(skip)]
    pub retry_after: Option<u32>,
}

impl Problem {
    /// A problem of the given status, type anchor, title and detail.
    pub fn new(status: StatusCode, anchor: &str, title: &str, detail: impl Into<String>) -> Self {
        Problem {
            kind: format!("{PROBLEM_DOCS}#{anchor}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            retry_after: None,
        }
    }

    /// 400: a query parameter or path segment is wrong.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid-parameter",
            "Invalid request parameter",
            detail,
        )
    }

    /// 404: no such route.
    pub fn not_found(path: &str) -> Self {
        Problem::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "Not found",
            format!(
                "there is no resource at `{}`; see /openapi.json for the routes this server answers",
                clip(path)
            ),
        )
    }

    /// 503: the database cannot be reached (or is too slow) right now.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        let mut p = Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Service unavailable",
            detail,
        );
        p.retry_after = Some(1);
        p
    }

    /// 429: the server is computing as many distinct uncached answers as it allows (`max`).
    pub fn too_many_requests(max: usize) -> Self {
        let mut p = Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too-many-requests",
            "Too many requests",
            format!(
                "the server is already computing {max} uncached answers; retry in a moment, or ask for ranges that are already cached"
            ),
        );
        p.retry_after = Some(1);
        p
    }

    /// 500: a bug or a misconfiguration on the server side; details are in the server log.
    pub fn internal() -> Self {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal server error",
            "the server failed to answer this request; the details are in the server log, please report it",
        )
    }

    /// Maps a database error: unreachable or overloaded → 503, anything else → 500 (logged).
    pub fn from_db(e: &sqlx::Error) -> Self {
        let code = e.as_database_error().and_then(|d| d.code());
        if code.as_deref() == Some("42P01") {
            tracing::error!(error = %e, "the playsource schema is missing");
            return Problem::unavailable(
                "the database has no playsource schema yet; run `playsource init` against it",
            );
        }
        if is_unavailable(e) {
            tracing::warn!(error = %e, "database unavailable");
            Problem::unavailable(
                "the database is unreachable or too slow right now; retry in a moment",
            )
        } else {
            tracing::error!(error = %e, "database query failed");
            Problem::internal()
        }
    }
}

/// `?` on a database error in a handler: 503 when Postgres is unreachable or too slow, else a
/// 500 whose details are logged, never sent (see [`Problem::from_db`]).
impl From<sqlx::Error> for Problem {
    fn from(e: sqlx::Error) -> Self {
        Problem::from_db(&e)
    }
}

/// True when a database error means "not reachable / overloaded right now" rather than a bug.
/// The [`sqlx::Error`] of a failed store query, so a store read fails like a query of this
/// crate (the 503/500 decision reads the SQLSTATE). Store reads fail only with queries; any
/// other store error becomes a decode error (a 500).
pub fn from_store(e: playsource_store::Error) -> sqlx::Error {
    use playsource_store::SqlCause;
    e.into_sql_cause()
        .unwrap_or_else(|other| sqlx::Error::Decode(Box::new(other)))
}

pub fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => matches!(
            db.code().as_deref(),
            // query_canceled (statement_timeout), admin_shutdown, crash_shutdown,
            // cannot_connect_now, too_many_connections, connection exceptions.
            Some("57014" | "57P01" | "57P02" | "57P03" | "53300" | "08000" | "08003" | "08006")
        ),
        _ => false,
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_else(|_| b"{}".to_vec());
        let mut resp = (status, body).into_response();
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

/// Shortens user input quoted back in a message (at most 64 characters).
pub fn clip(s: &str) -> String {
    if s.chars().count() <= 64 {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(64).collect();
        t.push('…');
        t
    }
}
