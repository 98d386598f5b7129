//! Cross-cutting request handling: per-request timeout, the 404 fallback, and turning every
//! non-problem error response (from axum or tower layers) into `application/problem+json`.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::{clip, Problem, PROBLEM_JSON};

/// Middleware: answers 503 when a request takes longer than the configured timeout.
pub async fn timeout(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => Problem::unavailable(format!(
            "the request took longer than {} s; ask for a shorter range or retry",
            limit.as_secs_f64()
        ))
        .into_response(),
    }
}

/// The fallback for unknown routes: 404 problem.
pub async fn not_found(uri: Uri) -> Response {
    Problem::not_found(uri.path()).into_response()
}

/// Middleware: any 4xx/5xx that is not already a problem (405 from the router, 413 from the body
/// limit, axum extractor rejections) is rewritten as one, keeping its status and headers.
pub async fn problems(req: Request, next: Next) -> Response {
    // Shared, not copied: only an error answer reads them.
    let method = req.method().clone();
    let uri = req.uri().clone();
    let path = uri.path();
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let is_problem = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    if is_problem {
        return resp;
    }
    let problem = match status {
        StatusCode::NOT_FOUND => Problem::not_found(path),
        StatusCode::METHOD_NOT_ALLOWED => Problem::new(
            status,
            "method-not-allowed",
            "Method not allowed",
            format!(
                "{} is not allowed on `{}`; this API answers GET",
                clip(method.as_str()),
                clip(path)
            ),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => Problem::new(
            status,
            "payload-too-large",
            "Payload too large",
            "the request body is too large; this API takes no request body",
        ),
        s if s.is_client_error() => Problem::new(
            s,
            "bad-request",
            s.canonical_reason().unwrap_or("Bad request"),
            format!(
                "the request to `{}` is malformed: {}",
                clip(path),
                s.canonical_reason().unwrap_or("bad request")
            ),
        ),
        StatusCode::SERVICE_UNAVAILABLE => {
            Problem::unavailable("the server cannot answer right now; retry in a moment")
        }
        _ => Problem::internal(),
    };
    let (mut parts, _) = resp.into_parts();
    let mut fresh = problem.into_response();
    // Keep headers such as Allow; take the new body's type and length.
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::CONTENT_TYPE);
    for (k, v) in fresh.headers_mut().drain() {
        if let Some(k) = k {
            parts.headers.insert(k, v);
        }
    }
    Response::from_parts(parts, fresh.into_body())
}
