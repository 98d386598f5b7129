//! Catalog loading against a real Postgres (a fresh database per test).

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::io::Write;
use std::path::PathBuf;

use playsource_domain::{Day, Kind, VideoId};
use playsource_store::{catalog, Error};
use sqlx::PgPool;

const HEADER: &str = "video_id,title,genre,kind,launch_date\n";

fn csv_file(body: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.csv");
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(HEADER.as_bytes()).unwrap();
    f.write_all(body.as_bytes()).unwrap();
    (dir, path)
}

async fn count(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM catalog")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrations = "../../migrations")]
async fn loads_a_good_file(pool: PgPool) {
    let (_d, path) = csv_file(
        "3,\"Stranger, Things\",drama,show,2016-07-15\n1,Glass Onion,comedy,movie,2022-12-23\n2,Pilot,drama,episode,2016-07-15\n",
    );
    assert_eq!(catalog::load_csv(&pool, &path).await.unwrap(), 3);
    let all = catalog::fetch_all(&pool).await.unwrap();
    let ids: Vec<u64> = all.iter().map(|v| v.video_id.0).collect();
    assert_eq!(ids, [1, 2, 3], "ordered by id");
    let st = &all[2];
    assert_eq!(st.title, "Stranger, Things");
    assert_eq!(st.genre, "drama");
    assert_eq!(st.kind, Kind::Show);
    assert_eq!(st.launch_date, Day::parse("2016-07-15").unwrap());
    assert_eq!(all[1].kind, Kind::Episode);
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_bad_row_loads_nothing(pool: PgPool) {
    let (_d, good) = csv_file("1,A,drama,movie,2020-01-01\n");
    catalog::load_csv(&pool, &good).await.unwrap();

    // Row 2 would update video 1, row 4 is bad: neither may land.
    let (_d2, bad) = csv_file("1,A changed,comedy,movie,2020-01-01\n2,B,drama,show,2021-01-01\n3,C,drama,film,2021-01-01\n");
    let err = catalog::load_csv(&pool, &bad).await.unwrap_err();
    match &err {
        Error::Csv { cause, .. } => assert_eq!((cause.line, cause.column), (4, "kind")),
        other => panic!("expected a CSV error, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("catalog.csv"), "{msg}");
    assert!(msg.contains("line 4"), "{msg}");
    assert!(msg.contains("`kind`"), "{msg}");
    assert!(!msg.contains('\n'), "one sentence: {msg}");

    assert_eq!(count(&pool).await, 1);
    let all = catalog::fetch_all(&pool).await.unwrap();
    assert_eq!(
        (all[0].title.as_str(), all[0].genre.as_str()),
        ("A", "drama")
    );
}

#[sqlx::test(migrations = "../../migrations")]
async fn reload_upserts_and_keeps_other_videos(pool: PgPool) {
    let (_d, first) = csv_file("1,A,drama,movie,2020-01-01\n2,B,drama,show,2021-01-01\n");
    catalog::load_csv(&pool, &first).await.unwrap();
    let stamp = |id: i64| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, chrono::DateTime<chrono::Utc>>(
                "SELECT updated_at FROM catalog WHERE video_id = $1::numeric",
            )
            .bind(id.to_string())
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    let (b_before, v_before) = (stamp(2).await, catalog::version(&pool).await.unwrap());

    // Loading the same file again changes nothing.
    catalog::load_csv(&pool, &first).await.unwrap();
    assert_eq!(catalog::version(&pool).await.unwrap(), v_before);

    let (_d2, second) =
        csv_file("1,A (director's cut),thriller,movie,2020-02-01\n3,C,kids,episode,2022-05-05\n");
    assert_eq!(catalog::load_csv(&pool, &second).await.unwrap(), 2);
    let all = catalog::fetch_all(&pool).await.unwrap();
    assert_eq!(
        all.len(),
        3,
        "video 2 is not in the second file and is kept"
    );
    assert_eq!(all[0].title, "A (director's cut)");
    assert_eq!(all[0].genre, "thriller");
    assert_eq!(all[0].launch_date, Day::parse("2020-02-01").unwrap());
    assert_eq!(all[2].kind, Kind::Episode);
    assert_eq!(
        stamp(2).await,
        b_before,
        "an unchanged row keeps its updated_at"
    );
    assert_ne!(catalog::version(&pool).await.unwrap(), v_before);
}

#[sqlx::test(migrations = "../../migrations")]
async fn huge_video_ids_round_trip(pool: PgPool) {
    let (_d, path) = csv_file(
        "18446744073709551615,Max,drama,movie,2020-01-01\n9223372036854775808,Above i64,drama,movie,2020-01-01\n",
    );
    catalog::load_csv(&pool, &path).await.unwrap();
    let ids: Vec<u64> = catalog::fetch_all(&pool)
        .await
        .unwrap()
        .iter()
        .map(|v| v.video_id.0)
        .collect();
    assert_eq!(ids, [9_223_372_036_854_775_808, u64::MAX]);
    let stored: String = sqlx::query_scalar("SELECT max(video_id)::text FROM catalog")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, "18446744073709551615");
}

#[sqlx::test(migrations = "../../migrations")]
async fn many_rows_load_in_one_go(pool: PgPool) {
    // More rows than one UNNEST statement takes, so several statements share the transaction.
    let mut body = String::new();
    for id in 1..=120_000u64 {
        body.push_str(&format!(
            "{id},Title {id},genre{},movie,2024-01-01\n",
            id % 7
        ));
    }
    let (_d, path) = csv_file(&body);
    assert_eq!(catalog::load_csv(&pool, &path).await.unwrap(), 120_000);
    assert_eq!(count(&pool).await, 120_000);
    let all = catalog::fetch_all(&pool).await.unwrap();
    assert_eq!(all[119_999].video_id, VideoId(120_000));
    assert_eq!(all[119_999].genre, format!("genre{}", 120_000 % 7));
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_missing_file_is_a_clear_error(pool: PgPool) {
    let err = catalog::load_csv(&pool, std::path::Path::new("/nonexistent/catalog.csv"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ReadFile { .. }), "{err:?}");
    assert!(
        err.to_string().contains("/nonexistent/catalog.csv"),
        "{err}"
    );
    assert_eq!(count(&pool).await, 0);
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_bad_header_is_rejected(pool: PgPool) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.csv");
    std::fs::write(&path, "id,name\n1,A\n").unwrap();
    let err = catalog::load_csv(&pool, &path).await.unwrap_err();
    assert!(err.to_string().contains("line 1"), "{err}");
    assert_eq!(count(&pool).await, 0);
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_nul_character_loads_nothing(pool: PgPool) {
    let (_d, path) = csv_file("1,A,drama,movie,2020-01-01\n2,B\0,drama,movie,2020-01-01\n");
    let err = catalog::load_csv(&pool, &path).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::NulInText {
                video_id: 2,
                field: "title"
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("video 2"), "{err}");
    assert_eq!(count(&pool).await, 0);
}

#[sqlx::test(migrations = "../../migrations")]
async fn an_over_long_genre_loads_nothing_and_names_file_line_field_and_limit(pool: PgPool) {
    let (_d, path) = csv_file(&format!(
        "1,A,drama,movie,2020-01-01\n2,B,{},show,2020-01-01\n",
        "g".repeat(10_000)
    ));
    let err = catalog::load_csv(&pool, &path).await.unwrap_err();
    let msg = err.to_string();
    for part in ["catalog.csv", "line 3", "`genre`", "limit of 256 bytes"] {
        assert!(msg.contains(part), "{part}: {msg}");
    }
    assert_eq!(count(&pool).await, 0);
    assert!(catalog::list_versions(&pool).await.unwrap().is_empty());
}

#[sqlx::test(migrations = "../../migrations")]
async fn loads_record_versions_by_effective_time(pool: PgPool) {
    use playsource_domain::Ts;
    let (_d, v1) = csv_file("1,A,drama,movie,2020-01-01\n2,B,comedy,show,2020-01-01\n");
    let (_d2, v2) = csv_file("1,A,horror,movie,2020-01-01\n2,B,comedy,show,2020-01-01\n");
    let rows1 = catalog::read_csv(&v1).unwrap();
    let rows2 = catalog::read_csv(&v2).unwrap();
    let t = chrono::DateTime::parse_from_rfc3339("2026-11-21T12:00:00Z")
        .unwrap()
        .to_utc();
    // The first version applies from the beginning of time, whatever the flag says.
    let first = catalog::load_version(&pool, &rows1, Some(t), "v1")
        .await
        .unwrap();
    assert_eq!(
        (first.version, first.effective_from, first.changed),
        (Some(1), None, 2)
    );
    // Only the changed video is stored in version 2.
    let second = catalog::load_version(&pool, &rows2, Some(t), "v2")
        .await
        .unwrap();
    assert_eq!((second.version, second.changed), (Some(2), 1));
    // Identical to the version in effect then: nothing recorded; before t it is a change.
    let same = catalog::load_version(&pool, &rows2, Some(t), "v2")
        .await
        .unwrap();
    assert_eq!(same.version, None);
    let c = catalog::fetch_catalog(&pool).await.unwrap();
    let at = |s: &str| {
        Ts(chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .timestamp_millis())
    };
    assert_eq!(
        c.enrich(VideoId(1), at("2026-11-21T11:59:59.999Z")).genre,
        "drama"
    );
    assert_eq!(
        c.enrich(VideoId(1), at("2026-11-21T12:00:00Z")).genre,
        "horror"
    );
    assert_eq!(
        c.enrich(VideoId(2), at("2026-11-21T12:00:00Z")).genre,
        "comedy"
    );
    let versions = catalog::list_versions(&pool).await.unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[1].1, "v2");
    // The latest loaded values are in the `catalog` table too.
    let all = catalog::fetch_all(&pool).await.unwrap();
    assert_eq!(all[0].genre, "horror");
}
