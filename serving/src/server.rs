//! The HTTP application (routes and tower layers) and serving it on a listener.

use std::future::Future;
use std::sync::Arc;

use axum::http::{header, HeaderValue};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;
use utoipa_axum::routes;

use crate::error::{Error, Problem};
use crate::state::AppState;
use crate::{api, conn, dashboard, health, metrics, middleware, openapi, scrape};

/// The whole HTTP application: API, health, metrics, OpenAPI, dashboard, with the tower layers
/// (tracing, metrics, problem rewriting, catch-panic, timeout, concurrency limit, body limit).
pub fn app(state: AppState) -> Router {
    let (router, doc) = openapi::router()
        .merge(api::router())
        .merge(health::router())
        .merge(dashboard::router())
        .routes(routes!(scrape::render))
        .split_for_parts();
    let doc_json = Arc::new(doc.to_pretty_json().unwrap_or_else(|_| "{}".to_owned()));
    let cfg = state.inner.config.clone();
    router
        .route(
            "/openapi.json",
            get(move || {
                let doc = Arc::clone(&doc_json);
                async move {
                    (
                        [(
                            header::CONTENT_TYPE,
                            HeaderValue::from_static("application/json"),
                        )],
                        (*doc).clone(),
                    )
                        .into_response()
                }
            }),
        )
        .fallback(middleware::not_found)
        .with_state(state)
        .layer(RequestBodyLimitLayer::new(cfg.max_body_bytes))
        .layer(GlobalConcurrencyLimitLayer::new(cfg.max_concurrency.max(1)))
        .layer(axum::middleware::from_fn_with_state(
            cfg.request_timeout,
            middleware::timeout,
        ))
        .layer(CatchPanicLayer::custom(
            |_: Box<dyn std::any::Any + Send>| {
                tracing::error!("a request handler panicked");
                Problem::internal().into_response()
            },
        ))
        .layer(axum::middleware::from_fn(middleware::problems))
        .layer(axum::middleware::from_fn(metrics::track))
        .layer(TraceLayer::new_for_http())
}

/// Binds `listen` and serves [`app`] until `shutdown` resolves, then finishes the requests in
/// flight (graceful shutdown).
pub async fn serve(
    listen: &str,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|reason| Error::Listen {
            addr: listen.to_owned(),
            reason,
        })?;
    serve_on(listener, state, shutdown).await
}

/// Serves [`app`] on a bound listener until `shutdown` resolves (graceful shutdown), with the
/// connection limits of the state's [`Config`] (see [`conn`]).
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    tracing::info!(%addr, "serving the playsource API; dashboard at http://{addr}/");
    let cfg = &state.inner.config;
    let limits = conn::ConnLimits {
        max_connections: cfg.max_connections,
        header_read_timeout: cfg.header_read_timeout,
        idle_timeout: cfg.idle_timeout.max(cfg.request_timeout),
    };
    conn::accept_loop(listener, app(state), limits, shutdown).await;
    Ok(())
}
