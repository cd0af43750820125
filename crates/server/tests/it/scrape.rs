//! Scrape loops against a real HTTP target whose output we change: staleness markers when a
//! series disappears, when a scrape fails, and when the target itself goes away.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::response::IntoResponse;
use medic_model::{is_stale_nan, Matcher, MemStorage, Queryable, Sample};
use medic_server::config::Config;
use medic_server::scrape::{ScrapeManager, ScrapeMetrics};

#[derive(Clone)]
struct Target {
    body: Arc<Mutex<(u16, String)>>,
}

async fn serve(t: Target) -> String {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let t = t.clone();
            async move {
                let (code, body) = t.body.lock().unwrap().clone();
                (StatusCode::from_u16(code).unwrap(), body).into_response()
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    addr
}

fn manager(cfg: &Config, store: &MemStorage) -> Arc<ScrapeManager> {
    Arc::new(
        ScrapeManager::new(
            Arc::new(store.clone()),
            &cfg.global,
            cfg.effective_scrape_configs("unused", false),
            ScrapeMetrics::default(),
        )
        .unwrap(),
    )
}

fn samples(store: &MemStorage, selector: &str) -> Vec<Sample> {
    let q = store.querier(0, i64::MAX).unwrap();
    let ms = medic_model::parse_selector(selector).unwrap();
    q.select(&ms)
        .unwrap()
        .flat_map(|s| s.unwrap().samples)
        .collect()
}

async fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staleness_markers_for_vanished_series_failed_scrapes_and_removed_targets() {
    let target = Target {
        body: Arc::new(Mutex::new((200, "a 1\nb 2\n".to_string()))),
    };
    let addr = serve(target.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let sd = dir.path().join("targets.json");
    std::fs::write(
        &sd,
        format!(r#"[{{"targets": ["{addr}"], "labels": {{"team": "x"}}}}]"#),
    )
    .unwrap();
    let cfg = Config::parse(
        &format!(
            "global: {{scrape_interval: 200ms, scrape_timeout: 200ms}}\nscrape_configs:\n  - job_name: t\n    file_sd_configs: [{{files: ['{}'], refresh_interval: 100ms}}]\n    metric_relabel_configs:\n      - {{source_labels: [__name__], regex: 'c', action: drop}}\n",
            sd.display()
        ),
        std::path::Path::new("test.yml"),
    )
    .unwrap();
    let store = MemStorage::new();
    let mgr = manager(&cfg, &store);
    mgr.start();

    wait_for("two scrapes of b", || samples(&store, "b").len() >= 2).await;
    let a = samples(&store, r#"a{team="x", job="t"}"#);
    assert!(!a.is_empty(), "target and file_sd labels are attached");
    assert!(samples(&store, "up").iter().all(|s| s.v == 1.0));

    // b disappears (and c, dropped by metric relabelling, never appears): b goes stale.
    target.body.lock().unwrap().1 = "a 1\nc 3\n".into();
    wait_for("b stale", || {
        samples(&store, "b")
            .last()
            .is_some_and(|s| is_stale_nan(s.v))
    })
    .await;
    assert!(samples(&store, "c").is_empty());
    assert!(!samples(&store, "a")
        .last()
        .is_some_and(|s| is_stale_nan(s.v)));

    // The target fails: up is 0 and a goes stale.
    target.body.lock().unwrap().0 = 500;
    wait_for("up = 0", || {
        samples(&store, "up").last().is_some_and(|s| s.v == 0.0)
    })
    .await;
    wait_for("a stale", || {
        samples(&store, "a")
            .last()
            .is_some_and(|s| is_stale_nan(s.v))
    })
    .await;
    let (active, _) = mgr.targets();
    let err = serde_json::to_value(&active[0]).unwrap()["lastError"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(err.contains("500"), "{err}");

    // It recovers, then is removed from the file: its report series go stale.
    target.body.lock().unwrap().0 = 200;
    wait_for("up = 1", || {
        samples(&store, "up").last().is_some_and(|s| s.v == 1.0)
    })
    .await;
    std::fs::write(&sd, "[]").unwrap();
    let f = std::fs::File::options().write(true).open(&sd).unwrap();
    f.set_modified(std::time::SystemTime::now() + Duration::from_secs(5))
        .unwrap();
    wait_for("up stale after removal", || {
        samples(&store, "up")
            .last()
            .is_some_and(|s| is_stale_nan(s.v))
    })
    .await;
    assert!(mgr.targets().0.is_empty());
    mgr.stop().await;

    let q = store.querier(0, i64::MAX).unwrap();
    let jobs = q
        .label_values(
            "job",
            &[Matcher::equal("__name__", "scrape_duration_seconds")],
        )
        .unwrap();
    assert_eq!(jobs, vec!["t"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_limit_fails_the_scrape_and_stores_nothing() {
    let target = Target {
        body: Arc::new(Mutex::new((200, "a 1\nb 2\nc 3\n".to_string()))),
    };
    let addr = serve(target).await;
    let cfg = Config::parse(
        &format!("global: {{scrape_interval: 200ms, scrape_timeout: 200ms}}\nscrape_configs:\n  - job_name: t\n    sample_limit: 2\n    static_configs: [{{targets: ['{addr}']}}]\n"),
        std::path::Path::new("test.yml"),
    )
    .unwrap();
    let store = MemStorage::new();
    let mgr = manager(&cfg, &store);
    mgr.start();
    wait_for("a scrape", || !samples(&store, "up").is_empty()).await;
    assert!(samples(&store, "up").iter().all(|s| s.v == 0.0));
    assert!(samples(&store, "a").is_empty());
    let (active, _) = mgr.targets();
    let t = serde_json::to_value(&active[0]).unwrap();
    assert_eq!(t["health"], "down");
    assert!(
        t["lastError"]
            .as_str()
            .unwrap()
            .contains("sample limit exceeded"),
        "{t}"
    );
}

/// A target that answers only to the expected `Authorization` header.
async fn serve_authenticated(expected: &'static str) -> String {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move |headers: axum::http::HeaderMap| async move {
            match headers.get("authorization").and_then(|v| v.to_str().ok()) {
                Some(v) if v == expected => (StatusCode::OK, "secret_metric 1\n").into_response(),
                _ => (StatusCode::UNAUTHORIZED, "no").into_response(),
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_and_bearer_token_file_are_sent() {
    // "user:pa55" in base64.
    let basic = serve_authenticated("Basic dXNlcjpwYTU1").await;
    let bearer = serve_authenticated("Bearer t0ken").await;
    let wrong = serve_authenticated("Bearer other").await;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "t0ken\n").unwrap();
    let cfg = Config::parse(
        &format!(
            concat!(
                "global: {{scrape_interval: 200ms, scrape_timeout: 200ms}}\n",
                "scrape_configs:\n",
                "  - job_name: basic\n",
                "    basic_auth: {{username: user, password: pa55}}\n",
                "    static_configs: [{{targets: ['{basic}']}}]\n",
                "  - job_name: bearer\n",
                "    authorization: {{credentials_file: '{token}'}}\n",
                "    static_configs: [{{targets: ['{bearer}']}}]\n",
                "  - job_name: wrong\n",
                "    bearer_token: nope\n",
                "    static_configs: [{{targets: ['{wrong}']}}]\n",
            ),
            basic = basic,
            bearer = bearer,
            wrong = wrong,
            token = token.display()
        ),
        std::path::Path::new("test.yml"),
    )
    .unwrap();
    let store = MemStorage::new();
    let mgr = manager(&cfg, &store);
    mgr.start();
    wait_for("all three scraped", || samples(&store, "up").len() >= 3).await;
    wait_for("both authenticated jobs stored", || {
        samples(&store, r#"secret_metric{job="basic"}"#).len()
            + samples(&store, r#"secret_metric{job="bearer"}"#).len()
            >= 2
            && !samples(&store, r#"secret_metric{job="basic"}"#).is_empty()
            && !samples(&store, r#"secret_metric{job="bearer"}"#).is_empty()
    })
    .await;
    assert!(samples(&store, r#"secret_metric{job="wrong"}"#).is_empty());
    assert!(samples(&store, r#"up{job="wrong"}"#)
        .iter()
        .all(|s| s.v == 0.0));
    let (active, _) = mgr.targets();
    let wrong_t = active
        .iter()
        .map(|t| serde_json::to_value(t).unwrap())
        .find(|t| t["scrapePool"] == "wrong")
        .unwrap();
    assert!(
        wrong_t["lastError"].as_str().unwrap().contains("401"),
        "{wrong_t}"
    );
    mgr.stop().await;
}
