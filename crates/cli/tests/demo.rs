//! `playsource demo` end to end on real Postgres and a real broker: it initialises, back-fills
//! history through the batch layer, serves merged views with live data flowing through the
//! stream, and stops cleanly on Ctrl-C (SIGINT).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod scratch;

use scratch::Scratch;

fn get(addr: &str, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let code = out.split_whitespace().nth(1)?.parse().ok()?;
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Some((code, body))
}

#[tokio::test]
async fn demo_backfills_serves_live_data_and_stops_on_ctrl_c() {
    let world = Scratch::new("demo");
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    // The stream's metrics on a port of their own: other tests start streams on the default.
    let stream_metrics = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let mut child = world
        .command(&[
            "demo",
            "--listen",
            &addr,
            "--stream-metrics-listen",
            &stream_metrics,
            "--history-days",
            "2",
            "--members",
            "300",
            "--rate",
            "300",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // History is batch-complete through yesterday, and the stream's live data shows up.
    let yesterday = (chrono::Utc::now().date_naive() - chrono::Days::new(1))
        .format("%Y-%m-%d")
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut fresh = String::new();
    while Instant::now() < deadline {
        if let Some((200, body)) = get(&addr, "/v1/freshness") {
            fresh = body;
            let v: serde_json::Value = serde_json::from_str(&fresh).unwrap_or_default();
            if v["batch_complete_through"] == yesterday.as_str()
                && v["realtime_high_water"].is_string()
            {
                break;
            }
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "demo exited early: {:?}",
            child.wait_with_output()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let v: serde_json::Value = serde_json::from_str(&fresh).unwrap_or_default();
    assert_eq!(v["batch_complete_through"], yesterday.as_str(), "{fresh}");
    assert!(v["realtime_high_water"].is_string(), "{fresh}");

    // The merged view over the history has plays; the dashboard is served.
    let from =
        (chrono::Utc::now().date_naive() - chrono::Days::new(2)).format("%Y-%m-%dT00:00:00Z");
    let to = chrono::Utc::now().date_naive().format("%Y-%m-%dT00:00:00Z");
    let (code, body) = get(
        &addr,
        &format!("/v1/source-of-play?from={from}&to={to}&granularity=day"),
    )
    .unwrap();
    assert_eq!(code, 200, "{body}");
    let series: serde_json::Value = serde_json::from_str(&body).unwrap();
    let plays: u64 = series["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["plays"].as_u64().unwrap())
        .sum();
    assert!(plays > 0, "{body}");
    assert_eq!(get(&addr, "/").map(|r| r.0), Some(200));

    // Both long-running layers export Prometheus metrics; the stream's lag comes from
    // librdkafka's statistics, every 5 s.
    let (code, served) = get(&addr, "/metrics").unwrap();
    assert_eq!(code, 200);
    assert!(
        served.contains("playsource_http_requests_total"),
        "{served}"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut scraped = String::new();
    while Instant::now() < deadline {
        scraped = get(&stream_metrics, "/metrics")
            .map(|r| r.1)
            .unwrap_or_default();
        // The stream registers its counters at start (at 0): wait for live plays to be looked up.
        if scraped.contains("playsource_stream_lag_messages{")
            && scraped.contains("playsource_stream_consumed_total")
            && counter(&scraped, "playsource_stream_catalog_lookups_total", "hit") > 0.0
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        scraped.contains("playsource_stream_consumed_total"),
        "{scraped}"
    );
    assert!(
        scraped.contains("playsource_stream_lag_messages{"),
        "{scraped}"
    );
    // The live traffic's catalog was loaded before the stream started: its plays find their
    // titles (the generator leaves about 2 % of played titles out of the catalog on purpose).
    let lookups =
        |outcome: &str| counter(&scraped, "playsource_stream_catalog_lookups_total", outcome);
    let (hit, miss) = (lookups("hit"), lookups("miss"));
    assert!(
        hit > 0.0 && miss <= 0.2 * (hit + miss),
        "live plays must find the loaded catalog: {hit} hits, {miss} misses"
    );

    // Ctrl-C stops everything cleanly.
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("playsource demo: stopped."), "{err}");
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("http://{addr}/")));
    assert!(get(&addr, "/healthz").is_none(), "the server stopped");

    world.drop_db().await;
}

/// The value of counter `name` with `outcome="..."` in a Prometheus text scrape (0 if absent).
fn counter(scraped: &str, name: &str, outcome: &str) -> f64 {
    scraped
        .lines()
        .find(|l| l.starts_with(name) && l.contains(&format!("outcome=\"{outcome}\"")))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}
