//! Serving under abuse (issue #15 item 8), against real Postgres and a real listener:
//! - a slowloris client (a request head sent a byte at a time, never finished) is disconnected
//!   after the header-read timeout, while other clients are served meanwhile;
//! - a connection on which no byte moves (a client that stops reading) is closed after the
//!   idle timeout;
//! - connections beyond the cap are closed on accept while the open ones keep working;
//! - `from` values differing by the millisecond (or second) that give the same buckets share one
//!   cache entry, and each answer still echoes its own `from`;
//! - more distinct uncached queries in flight than the bound get 429 problem+json with
//!   `Retry-After` (never a 5xx), and the ones in flight still answer 200;
//! - the result cache is weighted by bytes: an answer larger than the budget is not kept, and
//!   the bytes held stay within the budget.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use playsource_serving::{app, serve_on, AppState, Config};
use sqlx::PgPool;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Generous bound for "eventually" (a guard against hanging, not a speed assertion).
const GUARD: Duration = Duration::from_secs(30);

/// Starts a server on an ephemeral port; returns its address and a stop sender.
async fn start(
    state: AppState,
) -> (
    SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        serve_on(listener, state, async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    (addr, stop, server)
}

/// Sends one keep-alive GET on `s` and reads exactly its answer; `None` if the connection is
/// closed before an answer arrives.
async fn request_on(s: &mut TcpStream, path: &str) -> Option<(u16, String)> {
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
    s.write_all(req.as_bytes()).await.ok()?;
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let mut chunk = [0u8; 4096];
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some((
        status,
        String::from_utf8_lossy(&buf[head_end..head_end + len]).into_owned(),
    ))
}

/// One request on a fresh connection.
async fn fresh_request(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(addr).await.ok()?;
    request_on(&mut s, path).await
}

/// True once the peer has closed `s` (EOF or reset).
async fn closed_by_server(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 1024];
    loop {
        match s.read(&mut b).await {
            Ok(0) | Err(_) => return true,
            // An error answer (e.g. 408) before closing is fine: keep reading to the close.
            Ok(_) => continue,
        }
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn a_slowloris_client_is_disconnected_while_others_are_served(pool: PgPool) {
    let state = AppState::new(
        pool.clone(),
        Config {
            header_read_timeout: Duration::from_millis(800),
            ..Config::default()
        },
    );
    let (addr, stop, server) = start(state).await;

    let mut slow = TcpStream::connect(addr).await.unwrap();
    let (mut rd, mut wr) = slow.split();
    // Dribble a header that never ends, one byte at a time, while waiting for the close.
    let dribble = async {
        wr.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .unwrap();
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if wr.write_all(b"a").await.is_err() {
                // The server closed the connection.
                std::future::pending::<()>().await;
            }
        }
    };
    let closed = async {
        let mut b = [0u8; 1024];
        loop {
            match rd.read(&mut b).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    };
    let served_meanwhile = async {
        // Normal clients are answered while the slow one is connected.
        for _ in 0..3 {
            assert_eq!(
                fresh_request(addr, "/healthz").await.map(|a| a.0),
                Some(200)
            );
        }
    };
    let both = async {
        tokio::join!(served_meanwhile, async {
            tokio::select! {
                () = closed => {},
                () = dribble => {},
            }
        })
    };
    tokio::time::timeout(GUARD, both)
        .await
        .expect("the slowloris connection was never closed");

    let metrics = fresh_request(addr, "/metrics").await.unwrap();
    assert_eq!(metrics.0, 200);
    assert!(
        metrics.1.lines().any(|l| l
            .starts_with("playsource_serving_connections_closed_total{reason=\"header_timeout\"}")),
        "{}",
        metrics.1
    );
    drop(slow);

    // Between keep-alive requests too: a client that got its answer and then sends nothing is
    // closed after the header-read timeout (well before the 60 s idle timeout).
    let mut quiet = TcpStream::connect(addr).await.unwrap();
    assert_eq!(request_on(&mut quiet, "/healthz").await.unwrap().0, 200);
    assert!(tokio::time::timeout(GUARD, closed_by_server(&mut quiet))
        .await
        .expect("a silent keep-alive connection was never closed"));
    let _ = stop.send(());
    server.await.unwrap();
}

#[sqlx::test(migrations = "../migrations")]
async fn a_connection_on_which_nothing_moves_is_closed_after_the_idle_timeout(pool: PgPool) {
    let state = AppState::new(
        pool.clone(),
        Config {
            request_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(1),
            ..Config::default()
        },
    );
    let (addr, stop, server) = start(state).await;
    // A client that asks for many answers (pipelined) and never reads them: once the socket
    // buffers are full the server's writes make no progress, and after the idle timeout the
    // connection is closed.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut s = socket.connect(addr).await.unwrap();
    let pipelined = "GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n".repeat(2000);
    let _ = s.write_all(pipelined.as_bytes()).await;
    let closed = async {
        loop {
            let metrics = fresh_request(addr, "/metrics").await.unwrap().1;
            if metrics.lines().any(|l| {
                l.starts_with("playsource_serving_connections_closed_total{reason=\"idle\"}")
            }) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(GUARD, closed)
        .await
        .expect("the stalled connection was never closed");
    assert!(tokio::time::timeout(GUARD, closed_by_server(&mut s))
        .await
        .unwrap());
    let _ = stop.send(());
    server.await.unwrap();
}

#[sqlx::test(migrations = "../migrations")]
async fn connections_beyond_the_cap_are_closed_while_open_ones_work(pool: PgPool) {
    let state = AppState::new(
        pool.clone(),
        Config {
            max_connections: 2,
            ..Config::default()
        },
    );
    let (addr, stop, server) = start(state).await;
    let mut a = TcpStream::connect(addr).await.unwrap();
    let mut b = TcpStream::connect(addr).await.unwrap();
    assert_eq!(request_on(&mut a, "/healthz").await.unwrap().0, 200);
    assert_eq!(request_on(&mut b, "/healthz").await.unwrap().0, 200);

    // A third connection is accepted by the kernel and closed by the server unanswered.
    let mut c = TcpStream::connect(addr).await.unwrap();
    let third = tokio::time::timeout(GUARD, request_on(&mut c, "/healthz"))
        .await
        .unwrap();
    assert_eq!(third, None, "a connection beyond the cap was served");
    assert!(tokio::time::timeout(GUARD, closed_by_server(&mut c))
        .await
        .unwrap());

    // The open ones keep working.
    assert_eq!(request_on(&mut a, "/healthz").await.unwrap().0, 200);
    assert_eq!(request_on(&mut b, "/v1/freshness").await.unwrap().0, 200);

    // Once one closes, a new connection is served again (after the server sees the close).
    drop(a);
    let again = async {
        loop {
            if let Some((status, _)) = fresh_request(addr, "/healthz").await {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    assert_eq!(tokio::time::timeout(GUARD, again).await.unwrap(), 200);

    let metrics = request_on(&mut b, "/metrics").await.unwrap().1;
    let rejected: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("playsource_serving_connections_rejected_total "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(rejected >= 1.0, "{metrics}");
    drop(b);
    let _ = stop.send(());
    server.await.unwrap();
}

#[sqlx::test(migrations = "../migrations")]
async fn from_values_differing_by_milliseconds_share_one_cache_entry(pool: PgPool) {
    insert_hourly(
        &pool,
        "batch_hourly",
        &[
            h("2026-11-21T00:00:00Z", "continue_watching", "search", 7),
            h("2026-11-21T05:00:00Z", "top_10", "search", 3),
        ],
    )
    .await;
    complete_day(&pool, "2026-11-21").await;
    let state = state(&pool);
    let app = app(state.clone());
    let mut first: Option<Answer> = None;
    for i in 1..=20 {
        // All of these ask for the buckets 2026-11-21T00:00 .. 23:00.
        let from = format!("2026-11-20T23:{i:02}:{i:02}.{i:03}Z");
        let a = get(
            &app,
            &format!("/v1/source-of-play?from={from}&to=2026-11-22T00:00:00Z"),
        )
        .await;
        assert_eq!(a.status, 200, "{}", a.text);
        // Each answer echoes its own `from` (to the second) ...
        assert_eq!(a.json["from"], format!("2026-11-20T23:{i:02}:{i:02}Z"));
        assert_eq!(a.json["to"], "2026-11-22T00:00:00Z");
        // ... and is otherwise byte for byte the first one.
        if let Some(f) = &first {
            let own = format!("\"from\":\"2026-11-20T23:{i:02}:{i:02}Z\"");
            let theirs = format!("\"from\":\"{}\"", f.json["from"].as_str().unwrap());
            assert_eq!(a.text.replace(&own, &theirs), f.text);
        } else {
            assert_eq!(a.json["series"].as_array().unwrap().len(), 24);
            assert_eq!(a.json["series"][0]["plays"], 7);
            first = Some(a);
        }
    }
    assert_eq!(state.cache_stats(), (19, 1), "(hits, misses)");
}

/// Waits until `n` statements of this database wait for a lock.
async fn wait_for_blocked(pool: &PgPool, n: i64) {
    let poll = async {
        loop {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity \
                  WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .fetch_one(pool)
            .await
            .unwrap();
            if waiting >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(GUARD, poll)
        .await
        .expect("the requests never reached the database");
}

#[sqlx::test(migrations = "../migrations")]
async fn distinct_uncached_queries_beyond_the_bound_get_429_never_5xx(pool: PgPool) {
    let state = AppState::new(
        pool.clone(),
        Config {
            max_uncached: 2,
            // No replica: every uncached series is read by SQL (so it can be held in flight).
            memory_days: 0,
            request_timeout: Duration::from_secs(120),
            ..Config::default()
        },
    );
    let app = app(state);
    // Warm the freshness reading (it does not read rt_hourly anyway).
    assert_eq!(get(&app, "/v1/freshness").await.status, 200);

    // Hold rt_hourly: the series statements (which read it) wait in Postgres.
    let mut lock = pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE rt_hourly IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    let uri = |h: u32| {
        format!(
            "/v1/source-of-play?from=2026-11-21T{h:02}:00:00Z&to=2026-11-21T{:02}:00:00Z",
            h + 1
        )
    };
    let in_flight: Vec<_> = (0..2)
        .map(|h| {
            let (app, uri) = (app.clone(), uri(h));
            tokio::spawn(async move { get(&app, &uri).await })
        })
        .collect();
    wait_for_blocked(&pool, 2).await;

    // Two distinct uncached queries are in flight: a third distinct one is shed, also a
    // per-video one and a daily series.
    for shed in [
        uri(5),
        "/v1/source-of-discovery?from=2026-11-01T00:00:00Z&to=2026-11-03T00:00:00Z&granularity=day"
            .to_owned(),
        "/v1/videos/42/discovery?from=2026-11-01T00:00:00Z&to=2026-11-03T00:00:00Z".to_owned(),
    ] {
        let a = get(&app, &shed).await;
        assert_problem(&a, 429, "retry");
        assert_eq!(a.headers["retry-after"], "1", "{shed}");
        assert!(a.json["type"]
            .as_str()
            .unwrap()
            .ends_with("#too-many-requests"));
    }
    // What needs no computation is still served.
    assert_eq!(get(&app, "/healthz").await.status, 200);

    lock.rollback().await.unwrap();
    for t in in_flight {
        let a = t.await.unwrap();
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(a.json["series"].as_array().unwrap().len(), 1);
    }
    // The slots are free again.
    assert_eq!(get(&app, &uri(5)).await.status, 200);
    let metrics = get(&app, "/metrics").await.text;
    assert!(
        metrics
            .lines()
            .any(|l| l == "playsource_serving_queries_shed_total 3"),
        "{metrics}"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn the_cache_is_weighted_by_bytes(pool: PgPool) {
    let days: Vec<String> = (1..=12).map(|d| format!("2026-11-{d:02}")).collect();
    for d in &days {
        let hour = format!("{d}T03:00:00Z");
        insert_hourly(&pool, "batch_hourly", &[h(&hour, "top_10", "search", 2)]).await;
        complete_day(&pool, d).await;
    }
    const BUDGET: u64 = 8 * 1024;
    let state = AppState::new(
        pool.clone(),
        Config {
            cache_bytes: BUDGET,
            ..Config::default()
        },
    );
    let app = app(state.clone());

    // Ten days of hours (240 buckets, > 8 KiB of JSON) is more than the whole budget: served,
    // never kept.
    let big = "/v1/source-of-play?from=2026-11-01T00:00:00Z&to=2026-11-11T00:00:00Z";
    let a = get(&app, big).await;
    assert_eq!(a.status, 200);
    assert!(a.text.len() as u64 > BUDGET, "{}", a.text.len());
    assert!(state.cache_bytes().await <= BUDGET);
    assert_eq!(get(&app, big).await.text, a.text);
    assert_eq!(
        state.cache_stats(),
        (0, 2),
        "the oversized answer was cached"
    );

    // One day (24 buckets, ~1.3 KB) fits: the second ask is a hit.
    let small = "/v1/source-of-play?from=2026-11-12T00:00:00Z&to=2026-11-13T00:00:00Z";
    assert_eq!(get(&app, small).await.status, 200);
    state.cache_bytes().await;
    assert_eq!(get(&app, small).await.status, 200);
    assert_eq!(state.cache_stats(), (1, 3));

    // Twelve distinct one-day answers weigh more than the budget: the bytes held stay within it.
    for d in 1..=12 {
        let uri = format!(
            "/v1/source-of-discovery?from=2026-11-{d:02}T00:00:00Z&to=2026-11-{:02}T00:00:00Z",
            d + 1
        );
        assert_eq!(get(&app, &uri).await.status, 200);
    }
    let held = state.cache_bytes().await;
    assert!(held > 0 && held <= BUDGET, "{held} bytes held");
}
