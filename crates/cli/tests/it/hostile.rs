//! Hostile and careless input against the real binary: a sample from the future, queries nested
//! to overflow a stack, subqueries that would exhaust memory, YAML nested to hang the parser.
//! Each once crashed medic, hung it or lost data; each now gets a clear error.

use std::time::{Duration, Instant};

use crate::support::*;

fn series(name: &str) -> Vec<(String, String)> {
    vec![
        ("__name__".to_string(), name.to_string()),
        ("job".to_string(), "probe".to_string()),
    ]
}

/// One sample 15 days ahead once made retention delete every block and then refused every
/// normal write as too old, also after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sample_from_the_future_is_refused_and_history_stays() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let medic = Medic::start(&data, None, &[]);
    let c = client();
    let base = medic.url("");
    let now = now_ms() / 1000 * 1000;
    let history: Vec<(i64, f64)> = (0..120)
        .map(|i| (now - 3_600_000 + i * 15_000, 1.0))
        .collect();
    let r = post_write(&c, &base, write_request(&[(series("history"), history)]))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let r = c
        .post(medic.url("/api/v1/admin/tsdb/flush"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());

    let stats = get_json(&c, &medic.url("/api/v1/status/tsdb")).await;
    assert_eq!(
        stats["data"]["headStats"]["minTime"].as_i64(),
        Some(i64::MAX),
        "an empty head reports MaxInt64, as Prometheus does: {stats}"
    );

    let future = write_request(&[(series("future"), vec![(now + 15 * 86_400_000, 1.0)])]);
    let r = post_write(&c, &base, future).await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let msg = r.text().await.unwrap();
    assert!(msg.contains("too far in the future"), "{msg}");

    // Normal writes go on, history stays, and the head's minTime is a real timestamp.
    let r = post_write(
        &c,
        &base,
        write_request(&[(series("now"), vec![(now, 2.0)])]),
    )
    .await
    .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let stats = get_json(&c, &medic.url("/api/v1/status/tsdb")).await;
    assert_eq!(
        stats["data"]["headStats"]["minTime"].as_i64(),
        Some(now),
        "{stats}"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let got = export(&c, &base, "history").await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].timestamps.len(), 120, "history kept");
    let metrics = metrics_text(&c, &medic).await;
    assert!(
        metrics.contains("reason=\"too_far_in_future\"} 1"),
        "counted by reason"
    );
}

fn nest(open: &str, close: &str, n: usize, inner: &str) -> String {
    format!("{}{inner}{}", open.repeat(n), close.repeat(n))
}

/// Each of these overflowed the stack and aborted the process (and every repair with it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_queries_get_an_answer_or_a_400_and_medic_lives() {
    let dir = tempfile::tempdir().unwrap();
    let medic = Medic::start(&dir.path().join("data"), None, &[]);
    let c = client();
    let query = |q: String| {
        let c = c.clone();
        let url = medic.url("/api/v1/query");
        async move {
            let r = c.post(url).form(&[("query", q)]).send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<serde_json::Value>().await.unwrap())
        }
    };
    // Deep but within the limit: answered, as Prometheus answers them.
    for q in [
        nest("abs(", ")", 1150, "vector(1)"),
        nest("sum(", ")", 1600, "vector(1)"),
        format!("{}vector(1)", "-".repeat(2000)),
        format!("vector(1){}", " + vector(1)".repeat(2000)),
    ] {
        let (status, body) = query(q).await;
        assert_eq!(status, 200, "{body}");
    }
    // Beyond the limit: a 400 that says why.
    for q in [
        format!("vector(1){}", " or vector(1)".repeat(3800)),
        nest("(", ")", 33_000, "1"),
        nest("abs(", ")", 5000, "vector(1)"),
    ] {
        let (status, body) = query(q).await;
        assert_eq!(status, 400, "{body}");
        let e = body["error"].as_str().unwrap();
        assert!(e.contains("nested") && e.contains("limit is 2048"), "{e}");
    }
    let r = c.get(medic.url("/-/healthy")).send().await.unwrap();
    assert!(r.status().is_success(), "medic is still up");
}

/// `sum_over_time(vector(1)[399d:1s])` once passed 6 GiB in 40 s: subquery points were not
/// counted against the sample limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_subqueries_are_refused_by_the_sample_limit() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("medic.yml");
    std::fs::write(
        &config,
        "scrape_configs: []\nquery:\n  max_samples: 5000000\n",
    )
    .unwrap();
    let medic = Medic::start(&dir.path().join("data"), Some(&config), &[]);
    let c = client();
    let started = Instant::now();
    for q in [
        "sum_over_time(vector(1)[399d:1s])",
        "max_over_time((vector(1) + 0)[90d:1s])",
    ] {
        let r = c
            .post(medic.url("/api/v1/query"))
            .form(&[("query", q)])
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(status, 422, "{q}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains("too many samples"),
            "{body}"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(60));
    let pid = medic.pid();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let hwm_kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .parse()
        .unwrap();
    assert!(hwm_kb < 1024 * 1024, "peak RSS {hwm_kb} kB");
}

/// Deeply nested YAML took quadratic time (40,000 levels: 3.8 s), hanging `check config`.
#[test]
fn deeply_nested_yaml_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "medic.yml",
            format!(
                "scrape_configs: {}1{}\n",
                "[".repeat(100_000),
                "]".repeat(100_000)
            ),
        ),
        (
            "medic.yml",
            format!("scrape_configs:\n{}x\n", "- ".repeat(100_000)),
        ),
    ];
    for (name, text) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let started = Instant::now();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_medic"))
            .args(["check", "config"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "took {:?}",
            started.elapsed()
        );
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("nested deeper than"), "{err}");
        assert!(err.contains("line "), "{err}");
    }
}

/// While the WAL replays, `/-/healthy` answers 200 and `/-/ready` 503 (as Prometheus does); the
/// listener used to open only after the replay, so supervisors saw a dead process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_but_not_ready_while_the_wal_replays() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let medic = Medic::start(&data, None, &[]);
    let c = client();
    let base = medic.url("");
    let now = now_ms();
    // 200,000 series: their replay takes long enough to be seen.
    for k in 0..20 {
        let series: Vec<_> = (0..10_000)
            .map(|i| {
                let labels = vec![
                    ("__name__".to_string(), "replay_me".to_string()),
                    ("i".to_string(), format!("{k}-{i}")),
                ];
                (labels, vec![(now, 1.0)])
            })
            .collect();
        let r = post_write(&c, &base, write_request(&series)).await.unwrap();
        assert_eq!(r.status().as_u16(), 204);
    }
    medic.kill9();

    let port = free_port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_medic"))
        .args(["run", "--listen", &format!("127.0.0.1:{port}"), "--data"])
        .arg(&data)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = |p: &str| format!("http://127.0.0.1:{port}{p}");
    let quick = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let status = |u: String| {
        let quick = quick.clone();
        async move { quick.get(u).send().await.ok().map(|r| r.status().as_u16()) }
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen_starting = false;
    loop {
        assert!(Instant::now() < deadline, "medic never became ready");
        // The query first: start-up only moves forward, so a query answered before a 503 from
        // /-/ready was answered while starting too.
        let query = status(url("/api/v1/query?query=1")).await;
        let ready = status(url("/-/ready")).await;
        if ready == Some(200) {
            break;
        }
        if ready == Some(503) {
            assert_eq!(status(url("/-/healthy")).await, Some(200));
            assert_eq!(query, Some(503));
            seen_starting = true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        seen_starting,
        "never saw healthy-but-not-ready during the replay"
    );
}

/// A web page can POST `text/plain` to any origin without a preflight; medic once accepted it,
/// so any page an operator visited could approve a repair or add a silence. JSON APIs now
/// answer 415 to anything but `application/json`, as Alertmanager does, and store nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_text_plain_posts_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let medic = medic_with_alerting(
        dir.path(),
        "route: {receiver: a}\nreceivers: [{name: a}]\n",
        "",
    );
    let c = client();
    let alerts = r#"[{"labels": {"alertname": "Forged"}}]"#;
    for (path, body) in [
        ("/api/v2/alerts", alerts),
        (
            "/api/v2/silences",
            r#"{"matchers": [], "createdBy": "x", "comment": "y"}"#,
        ),
        (
            "/api/v1/medic/heal/executions/x/approve",
            r#"{"by": "evil"}"#,
        ),
        (
            "/api/v1/medic/alerts/ack",
            r#"{"group": "x", "author": "evil"}"#,
        ),
    ] {
        let r = c
            .post(medic.url(path))
            .header("Content-Type", "text/plain")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 415, "{path}");
    }
    let held = get_json(&c, &medic.url("/api/v2/alerts")).await;
    assert_eq!(held, serde_json::json!([]));
    // The same with the right type goes through.
    let r = c
        .post(medic.url("/api/v2/alerts"))
        .header("Content-Type", "application/json; charset=utf-8")
        .body(alerts)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

/// The soft open-files limit (often 1,024) is raised to the hard one at start, as Go programs
/// do; with 1,100 idle connections `/-/ready` once timed out.
#[test]
fn the_open_files_soft_limit_is_raised_at_start() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_medic"));
    cmd.args(["run", "--listen", "127.0.0.1:0", "--data"])
        .arg(dir.path().join("data"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    // SAFETY: setrlimit in the child before exec, on its own limits.
    unsafe {
        cmd.pre_exec(|| {
            let mut l = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut l);
            l.rlim_cur = 1024.min(l.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &l);
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    assert!(line.starts_with("medic listening"), "{line}");
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", child.id())).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let row = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let nums: Vec<u64> = row
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert_eq!(nums[0], nums[1], "soft = hard: {row}");
}

/// Anyone who reaches medic's port can start and approve repairs (there is no authentication
/// yet), so an address other hosts can reach is refused unless the operator says the network is
/// trusted.
#[test]
fn listening_beyond_loopback_needs_an_explicit_flag() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_medic"))
        .args(["run", "--listen", &format!("0.0.0.0:{port}"), "--data"])
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--allow-unauthenticated-remote-access"),
        "{err}"
    );
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_medic"))
        .args(["run", "--allow-unauthenticated-remote-access", "--listen"])
        .arg(format!("0.0.0.0:{port}"))
        .arg("--data")
        .arg(dir.path().join("data"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(line.starts_with("medic listening"), "{line}");
}

/// A 12 MB remote-write body once cost ≈ 780 MiB and concurrent requests were unbounded. Bytes
/// in flight now come from a budget; a request that finds it spent gets 503 with `Retry-After`
/// (Prometheus retries), counted — and nothing acknowledged is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_write_bytes_in_flight_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("medic.yml");
    std::fs::write(
        &config,
        "scrape_configs: []\nremote_write:\n  max_inflight_bytes: 8MiB\n",
    )
    .unwrap();
    let medic = Medic::start(&dir.path().join("data"), Some(&config), &[]);
    let c = client();
    let base = medic.url("");
    let now = now_ms();
    let body = |k: usize| {
        let series: Vec<_> = (0..10_000)
            .map(|i| {
                let labels = vec![
                    ("__name__".to_string(), "inflight".to_string()),
                    ("k".to_string(), k.to_string()),
                    ("i".to_string(), i.to_string()),
                ];
                (labels, vec![(now, i as f64)])
            })
            .collect();
        write_request(&series)
    };
    let mut saw_503 = false;
    let mut stored = std::collections::BTreeSet::new();
    for round in 0..20 {
        let sends: Vec<_> = (0..6)
            .filter(|k| !stored.contains(k))
            .map(|k| {
                let (c, base, b) = (c.clone(), base.clone(), body(k));
                tokio::spawn(async move { (k, post_write(&c, &base, b).await.unwrap()) })
            })
            .collect();
        for s in sends {
            let (k, r) = s.await.unwrap();
            match r.status().as_u16() {
                204 => {
                    stored.insert(k);
                }
                503 => {
                    assert_eq!(r.headers()["retry-after"], "1");
                    saw_503 = true;
                }
                other => panic!("round {round}: {other} {}", r.text().await.unwrap()),
            }
        }
        if stored.len() == 6 && saw_503 {
            break;
        }
    }
    assert!(saw_503, "concurrent bodies over the budget were refused");
    assert_eq!(stored.len(), 6, "every body was stored once retried");
    let metrics = metrics_text(&c, &medic).await;
    assert!(
        metrics.contains("medic_http_refused_total{reason=\"remote_write_inflight\"}"),
        "counted"
    );
    let r = c
        .post(medic.url("/api/v1/query"))
        .form(&[("query", "count(inflight)")])
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["data"]["result"][0]["value"][1], "60000", "{v}");
}

#[tokio::test]
async fn cross_origin_writes_from_a_browser_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let medic = medic_with_alerting(
        dir.path(),
        "route: {receiver: a}\nreceivers: [{name: a}]\n",
        "",
    );
    let c = client();
    let alerts = r#"[{"labels": {"alertname": "Forged"}}]"#;
    let post = |origin: Option<&str>, site: Option<&str>| {
        let mut r = c
            .post(medic.url("/api/v2/alerts"))
            .header("Content-Type", "application/json")
            .body(alerts);
        if let Some(o) = origin {
            r = r.header("Origin", o);
        }
        if let Some(s) = site {
            r = r.header("Sec-Fetch-Site", s);
        }
        r.send()
    };
    for (origin, site) in [
        (Some("http://evil.example"), None),
        (Some("null"), None),
        (None, Some("cross-site")),
    ] {
        let r = post(origin, site).await.unwrap();
        assert_eq!(r.status().as_u16(), 403, "{origin:?} {site:?}");
        assert!(r.text().await.unwrap().contains("refused"));
    }
    assert_eq!(
        get_json(&c, &medic.url("/api/v2/alerts")).await,
        serde_json::json!([])
    );
    // The server's own origin (its console, later) and clients without one go through.
    let own = format!("http://{}", medic.addr);
    assert_eq!(
        post(Some(&own), Some("same-origin"))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(post(None, None).await.unwrap().status(), 200);
    // Reads are not affected.
    let r = c
        .get(medic.url("/api/v2/alerts"))
        .header("Origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// DNS rebinding: a page on another site whose name is made to resolve to 127.0.0.1 sends
/// `Host: its-own-name`. Without authentication medic answers only to its own names (loopback,
/// the listen address, `external_url`, `server.allowed_hosts`); health checks to any.
#[tokio::test]
async fn a_rebound_host_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("medic.yml");
    std::fs::write(&cfg, "server:\n  allowed_hosts: ['medic.internal']\n").unwrap();
    let m = Medic::start(&dir.path().join("data"), Some(&cfg), &[]);
    let c = client();
    let port = m.addr.rsplit(':').next().unwrap().to_string();
    let status = |host: String, path: &'static str| {
        let c = c.clone();
        let url = m.url(path);
        async move {
            c.get(url)
                .header("host", host)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(
        status(format!("rebind.evil.example:{port}"), "/api/v1/alerts").await,
        403
    );
    assert_eq!(
        status(format!("rebind.evil.example:{port}"), "/-/healthy").await,
        200
    );
    for ok in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("medic.internal:{port}"),
    ] {
        assert_eq!(status(ok.clone(), "/api/v1/alerts").await, 200, "{ok}");
    }
    let metrics = c
        .get(m.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("medic_http_refused_total{reason=\"host\"} 1"),
        "{metrics}"
    );
}
