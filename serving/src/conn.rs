//! The connection layer: the accept loop, with the defences a request-level layer cannot give.
//!
//! - **Connection cap**: at most [`ConnLimits::max_connections`] connections are open at once; a
//!   connection beyond the cap is closed as soon as it is accepted (counted in
//!   `playsource_serving_connections_rejected_total`), and the open ones keep being served.
//! - **Header-read timeout**: a client must send a whole request head within
//!   [`ConnLimits::header_read_timeout`] of the server starting to wait for it (also between
//!   keep-alive requests), else the connection is closed (hyper's `header_read_timeout`).
//!   A slowloris client dribbling a header a byte at a time cannot hold a connection longer.
//! - **Idle timeout**: a connection on which no byte moves either way for
//!   [`ConnLimits::idle_timeout`] is closed (a client that stops reading its answer, or stops
//!   sending a body). It is never shorter than the request timeout, so a slow answer being
//!   computed is not cut.
//!
//! Graceful shutdown: when the shutdown future resolves the loop stops accepting, asks every
//! connection to finish its request in flight and close, and returns once all are closed.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::time::{Instant, Sleep};

use crate::metrics as m;

/// Connection-level limits (see the module documentation).
#[derive(Clone, Copy, Debug)]
pub struct ConnLimits {
    /// Connections open at once; more are closed on accept.
    pub max_connections: usize,
    /// Time a client has to send a whole request head.
    pub header_read_timeout: Duration,
    /// Time without a byte moving either way after which a connection is closed.
    pub idle_timeout: Duration,
}

/// Accepts connections on `listener` and serves `app` on each until `shutdown` resolves, then
/// lets the connections finish their requests in flight and close.
pub async fn accept_loop(
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let cap = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let slots = Arc::new(Semaphore::new(cap));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            a = listener.accept() => a,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) if is_per_connection(&e) => continue,
            Err(e) => {
                // Out of file descriptors or the like: wait a little instead of spinning.
                tracing::error!(error = %e, "cannot accept a connection; retrying in 1 s");
                tokio::select! {
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            metrics::counter!(m::CONNECTIONS_REJECTED).increment(1);
            tracing::debug!("connection cap reached; a new connection is closed");
            drop(stream);
            continue;
        };
        let (app, mut stop) = (app.clone(), stop_rx.clone());
        tokio::spawn(async move {
            metrics::gauge!(m::CONNECTIONS_OPEN).increment(1.0);
            serve_connection(stream, app, limits, &mut stop).await;
            metrics::gauge!(m::CONNECTIONS_OPEN).decrement(1.0);
            drop(slot);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Every connection holds a slot until it is closed: all slots back means all closed.
    let _ = slots
        .acquire_many(u32::try_from(cap).unwrap_or(u32::MAX))
        .await;
}

/// Accept errors that concern one connection only (the loop goes on at once).
fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

async fn serve_connection(
    stream: TcpStream,
    app: Router,
    limits: ConnLimits,
    stop: &mut watch::Receiver<bool>,
) {
    let io = TokioIo::new(IdleTimeout::new(stream, limits.idle_timeout));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let conn = builder.serve_connection(io, TowerToHyperService::new(app));
    let mut conn = std::pin::pin!(conn);
    let stopping = async {
        // Err: the loop is gone, which also means stop.
        let _ = stop.wait_for(|s| *s).await;
    };
    let done = tokio::select! {
        r = conn.as_mut() => Some(r),
        () = stopping => None,
    };
    let result = match done {
        Some(r) => r,
        None => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        if e.is_timeout() {
            metrics::counter!(m::CONNECTIONS_CLOSED, "reason" => "header_timeout").increment(1);
            tracing::debug!("a client did not send its request head in time; connection closed");
        } else {
            tracing::debug!(error = %e, "connection ended with an error");
        }
    }
}

/// A stream that fails with `TimedOut` once no byte has moved either way for `limit` while
/// the server waits on it.
struct IdleTimeout<T> {
    inner: T,
    limit: Duration,
    deadline: Pin<Box<Sleep>>,
}

impl<T> IdleTimeout<T> {
    fn new(inner: T, limit: Duration) -> Self {
        IdleTimeout {
            inner,
            limit,
            deadline: Box::pin(tokio::time::sleep(limit)),
        }
    }

    fn progressed(&mut self) {
        self.deadline.as_mut().reset(Instant::now() + self.limit);
    }

    /// On `Pending`: whether the idle deadline has passed (then the connection is closed).
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        if self.deadline.as_mut().poll(cx).is_ready() {
            metrics::counter!(m::CONNECTIONS_CLOSED, "reason" => "idle").increment(1);
            tracing::debug!("a connection was idle too long; closed");
            true
        } else {
            false
        }
    }
}

fn idle_error() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "connection idle for too long")
}

impl<T: AsyncRead + Unpin> AsyncRead for IdleTimeout<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                this.progressed();
                Poll::Ready(r)
            }
            Poll::Pending if this.expired(cx) => Poll::Ready(Err(idle_error())),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for IdleTimeout<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Ready(r) => {
                this.progressed();
                Poll::Ready(r)
            }
            Poll::Pending if this.expired(cx) => Poll::Ready(Err(idle_error())),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(r) => {
                this.progressed();
                Poll::Ready(r)
            }
            Poll::Pending if this.expired(cx) => Poll::Ready(Err(idle_error())),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
