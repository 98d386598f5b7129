//! The dashboard in a real headless Chromium against a real server with data: the page fetches
//! both series and draws stacked areas and legends for the row types in the data.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use playsource_serving::{serve_on, AppState, Config};
use sqlx::PgPool;
use tokio::net::TcpListener;

const CHROMIUM: &str = "/usr/bin/chromium";

#[sqlx::test(migrations = "../migrations")]
async fn the_dashboard_draws_both_views_in_a_browser(pool: PgPool) {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing; run scripts/services.sh to install it"
    );
    insert_hourly(
        &pool,
        "rt_hourly",
        &[
            h(
                "2026-11-21T00:00:00Z",
                "continue_watching",
                "trending_now",
                30,
            ),
            h("2026-11-21T00:00:00Z", "my_list", "top_10", 10),
            h(
                "2026-11-21T01:00:00Z",
                "continue_watching",
                "trending_now",
                20,
            ),
            h("2026-11-21T02:00:00Z", "billboard", "unattributed", 5),
            Hourly {
                country: "FR",
                ..h("2026-11-21T02:00:00Z", "popular", "popular", 50)
            },
        ],
    )
    .await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_on(
        listener,
        AppState::new(pool.clone(), Config::default()),
        async move {
            let _ = stop_rx.await;
        },
    ));

    let dump = |url: String| async move {
        tokio::task::spawn_blocking(move || {
            let profile = tempfile::tempdir().unwrap();
            let out = Command::new(CHROMIUM)
                .args([
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-dev-shm-usage",
                    "--no-first-run",
                    "--virtual-time-budget=15000",
                    &format!("--user-data-dir={}", profile.path().display()),
                    "--dump-dom",
                    &url,
                ])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "chromium failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).into_owned()
        })
        .await
        .unwrap()
    };

    let url = format!(
        "http://{addr}/?from=2026-11-21T00:00:00Z&to=2026-11-21T03:00:00Z&granularity=hour"
    );
    let dom = dump(url).await;
    assert!(
        dom.contains(r#"data-state="ready""#),
        "the charts did not finish: {dom}"
    );
    // Source of Play: one area and one legend entry per row type of the data.
    for row in ["continue_watching", "my_list", "billboard", "popular"] {
        assert!(
            dom.contains(&format!(r#"data-row="{row}""#)),
            "{row} missing"
        );
    }
    // Source of Discovery rows, drawn in their own chart.
    let sod = &dom[dom.find(r#"id="sod-chart""#).unwrap()..];
    assert!(
        sod.contains(r#"class="area" d="M"#),
        "no area in the SoD chart"
    );
    for row in ["trending_now", "top_10", "unattributed", "popular"] {
        assert!(
            sod.contains(&format!(r#"data-row="{row}""#)),
            "SoD {row} missing"
        );
    }
    // The areas carry real geometry and the shares of the data.
    assert!(dom.matches(r#"<path class="area""#).count() >= 8);
    assert!(
        dom.contains("115 plays in 3 hour buckets"),
        "status line: {dom}"
    );

    // The country filter reaches the API: only FR plays remain.
    let dom = dump(format!(
        "http://{addr}/?from=2026-11-21T00:00:00Z&to=2026-11-21T03:00:00Z&country=FR"
    ))
    .await;
    assert!(dom.contains(r#"data-row="popular""#));
    assert!(!dom.contains(r#"data-row="continue_watching""#));

    // A bad range shows the API's sentence instead of a chart.
    let dom = dump(format!(
        "http://{addr}/?from=2026-11-22T00:00:00Z&to=2026-11-21T00:00:00Z"
    ))
    .await;
    assert!(dom.contains(r#"data-state="error""#), "{dom}");
    assert!(dom.contains("must be before"), "{dom}");

    let _ = stop_tx.send(());
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("graceful shutdown")
        .unwrap()
        .unwrap();
}
