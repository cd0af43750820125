//! PromQL against a real Prometheus (Debian package `prometheus`): the same data remote-written
//! into both, the same golden-signal queries, the same answers (relative tolerance 1e-6); and
//! `promtool query …` pointed at medic.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::*;

/// 1 h of node- and HTTP-service-like data at 15 s, ending `end_ms`. Each instance scrapes at
/// its own offset within the 15 s, as real targets do, so no sample sits exactly on a window
/// boundary: there Prometheus 2.42 (closed windows `[t-r, t]`, the Debian package) and 3.x
/// (left-open `(t-r, t]`, which medic implements) legitimately differ.
fn dataset(end_ms: i64) -> Vec<TestSeries> {
    let mut out = Vec::new();
    let base_start = end_ms - 3_600_000;
    let mut seed = 7u64;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % 1000) as f64 / 1000.0
    };
    let l = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    for (k, inst) in ["a:9100", "b:9100", "c:9100"].iter().enumerate() {
        let inst = *inst;
        let start = base_start + 1_237 + 4_111 * k as i64;
        for status in ["200", "500"] {
            for job in ["api", "web"] {
                let mut v = 0.0;
                let mut samples = Vec::new();
                let mut t = start;
                while t <= end_ms {
                    v += (if status == "200" { 40.0 } else { 2.0 }) * (0.5 + rnd());
                    v = v.round();
                    if t == start + 1_800_000 && inst == "b:9100" {
                        v = 3.0; // a counter reset
                    }
                    samples.push((t, v));
                    t += 15_000;
                }
                out.push((
                    l(&[
                        ("__name__", "http_requests_total"),
                        ("instance", inst),
                        ("job", job),
                        ("status", status),
                    ]),
                    samples,
                ));
            }
        }
        for le in ["0.1", "0.5", "1", "+Inf"] {
            let share = match le {
                "0.1" => 0.5,
                "0.5" => 0.8,
                "1" => 0.95,
                _ => 1.0,
            };
            let mut v = 0.0;
            let mut samples = Vec::new();
            let mut t = start;
            while t <= end_ms {
                v += (30.0 * share * (0.8 + 0.4 * rnd())).round();
                samples.push((t, v));
                t += 15_000;
            }
            out.push((
                l(&[
                    ("__name__", "http_request_duration_seconds_bucket"),
                    ("instance", inst),
                    ("job", "api"),
                    ("le", le),
                ]),
                samples,
            ));
        }
        let mut samples = Vec::new();
        let mut fs = Vec::new();
        let mut mem = Vec::new();
        let mut t = start;
        let mut avail = 5e10;
        while t <= end_ms {
            samples.push((t, (1.0 + rnd() * 2.0 * 100.0).round() / 100.0));
            avail -= 1e6 * (1.0 + rnd());
            fs.push((t, avail.round()));
            mem.push((t, (4e9 + 1e9 * rnd()).round()));
            t += 15_000;
        }
        out.push((
            l(&[
                ("__name__", "node_load1"),
                ("instance", inst),
                ("job", "node"),
            ]),
            samples,
        ));
        out.push((
            l(&[
                ("__name__", "node_filesystem_avail_bytes"),
                ("instance", inst),
                ("job", "node"),
                ("mountpoint", "/"),
            ]),
            fs,
        ));
        out.push((
            l(&[
                ("__name__", "node_memory_MemAvailable_bytes"),
                ("instance", inst),
                ("job", "node"),
            ]),
            mem,
        ));
        out.push((
            l(&[
                ("__name__", "node_memory_MemTotal_bytes"),
                ("instance", inst),
                ("job", "node"),
            ]),
            vec![(start, 8e9), (end_ms, 8e9)],
        ));
    }
    out
}

const QUERIES: &[&str] = &[
    "rate(http_requests_total[5m])",
    "sum by (job) (rate(http_requests_total[5m]))",
    "sum without (instance) (increase(http_requests_total[10m]))",
    "histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))",
    "histogram_quantile(0.5, sum by (le, instance) (rate(http_request_duration_seconds_bucket[5m])))",
    "topk(3, rate(http_requests_total[5m]))",
    "avg_over_time(node_load1[10m])",
    "max_over_time(node_load1[10m]) - min_over_time(node_load1[10m])",
    "predict_linear(node_filesystem_avail_bytes[30m], 3600)",
    "deriv(node_filesystem_avail_bytes[15m])",
    "rate(http_requests_total[5m] offset 10m)",
    "max_over_time(rate(http_requests_total[1m])[10m:1m])",
    "sum(rate(http_requests_total{status=~\"5..\"}[5m])) / sum(rate(http_requests_total[5m]))",
    "sum by (instance) (rate(http_requests_total{status=\"500\"}[5m])) / ignoring(status) group_left sum by (instance) (rate(http_requests_total[5m]))",
    "100 * node_memory_MemAvailable_bytes / on(instance, job) node_memory_MemTotal_bytes",
    "count by (job) (http_requests_total) > 2",
    "irate(http_requests_total[1m])",
    "resets(http_requests_total[30m])",
    "quantile(0.9, node_load1)",
    "stddev by (job) (rate(http_requests_total[5m]))",
];

fn almost_equal(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-6 * a.abs().max(b.abs())
}

type Points = BTreeMap<String, Vec<(i64, f64)>>;

/// Series → points from a Prometheus API response (vector or matrix).
fn points(j: &serde_json::Value) -> Points {
    let mut out = Points::new();
    for r in j["data"]["result"].as_array().unwrap_or(&Vec::new()) {
        let mut labels: Vec<(String, String)> = r["metric"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
            .collect();
        labels.sort();
        let key = format!("{labels:?}");
        let pts: Vec<&serde_json::Value> = match r.get("values") {
            Some(v) => v.as_array().unwrap().iter().collect(),
            None => vec![&r["value"]],
        };
        out.insert(
            key,
            pts.iter()
                .map(|p| {
                    (
                        (p[0].as_f64().unwrap() * 1000.0).round() as i64,
                        p[1].as_str().unwrap().parse::<f64>().unwrap(),
                    )
                })
                .collect(),
        );
    }
    out
}

/// For `topk`, which of two series whose values agree within the tolerance gets picked is not
/// part of the contract (Prometheus 2.42 and 3.x round rates differently in the last bits):
/// compare each step's selected values instead of series identity.
fn diff_topk(query: &str, ours: &Points, theirs: &Points) -> Option<String> {
    let by_time = |p: &Points| {
        let mut m: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
        for pts in p.values() {
            for (t, v) in pts {
                m.entry(*t).or_default().push(*v);
            }
        }
        for v in m.values_mut() {
            v.sort_by(|a, b| b.partial_cmp(a).unwrap());
        }
        m
    };
    let (a, b) = (by_time(ours), by_time(theirs));
    if a.keys().collect::<Vec<_>>() != b.keys().collect::<Vec<_>>() {
        return Some(format!("{query}: steps differ"));
    }
    for (t, x) in &a {
        let y = &b[t];
        if x.len() != y.len() || x.iter().zip(y).any(|(p, q)| !almost_equal(*p, *q)) {
            return Some(format!("{query} @{t}: medic {x:?}, prometheus {y:?}"));
        }
    }
    None
}

fn diff(query: &str, ours: &Points, theirs: &Points) -> Option<String> {
    if query.starts_with("topk(") {
        return diff_topk(query, ours, theirs);
    }
    if ours.keys().collect::<Vec<_>>() != theirs.keys().collect::<Vec<_>>() {
        return Some(format!(
            "{query}: series differ:\n medic {:?}\n prometheus {:?}",
            ours.keys().collect::<Vec<_>>(),
            theirs.keys().collect::<Vec<_>>()
        ));
    }
    for (k, a) in ours {
        let b = &theirs[k];
        if a.len() != b.len()
            || a.iter()
                .zip(b)
                .any(|(x, y)| x.0 != y.0 || !almost_equal(x.1, y.1))
        {
            return Some(format!(
                "{query}: {k}\n medic      {a:?}\n prometheus {b:?}"
            ));
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_results_match_a_real_prometheus() {
    require_binary("/usr/bin/prometheus", "prometheus");
    let dir = tempfile::tempdir().unwrap();
    let medic_cfg = dir.path().join("medic.yml");
    std::fs::write(&medic_cfg, "scrape_configs: []\n").unwrap();
    let medic = Medic::start(&dir.path().join("medic-data"), Some(&medic_cfg), &[]);
    let prometheus = Prometheus::start(
        dir.path(),
        |_| "global: {scrape_interval: 15s}\n".to_string(),
        &["--web.enable-remote-write-receiver"],
    );
    let prom = prometheus.url();
    let c = client();
    let deadline = Instant::now() + Duration::from_secs(60);
    while c
        .get(format!("{prom}/-/ready"))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
        != 200
    {
        assert!(Instant::now() < deadline, "prometheus did not become ready");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Align to the minute so evaluation times sit between samples the same way for both.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let end = now - now % 60_000 - 120_000;
    let body = write_request(&dataset(end));
    for base in [medic.url(""), prom.clone()] {
        let r = post_write(&c, &base, body.clone()).await.unwrap();
        assert!(
            r.status().is_success(),
            "{base}: {} {}",
            r.status(),
            r.text().await.unwrap_or_default()
        );
    }

    let mut failures = Vec::new();
    for q in QUERIES {
        // Evaluation times off the minute grid, so subquery points never sit on a window
        // boundary either (2.42 and 3.x differ exactly there).
        for t in [end - 1_000_007, end - 293_000, end - 7_000] {
            let time = format!("{}", t as f64 / 1000.0);
            let get = |base: String| {
                let c = c.clone();
                let time = time.clone();
                async move {
                    c.get(format!("{base}/api/v1/query"))
                        .query(&[("query", *q), ("time", time.as_str())])
                        .send()
                        .await
                        .unwrap()
                        .json::<serde_json::Value>()
                        .await
                        .unwrap()
                }
            };
            let (a, b) = (get(medic.url("")).await, get(prom.clone()).await);
            assert_eq!(b["status"], "success", "prometheus rejected {q}: {b}");
            if a["status"] != "success" {
                failures.push(format!("{q}: medic answered {a}"));
                continue;
            }
            if let Some(d) = diff(q, &points(&a), &points(&b)) {
                failures.push(format!("instant @{t}: {d}"));
            }
        }
        let (start, stop) = (
            (end - 1_793_000) as f64 / 1000.0,
            (end - 7_000) as f64 / 1000.0,
        );
        let get = |base: String| {
            let c = c.clone();
            async move {
                c.get(format!("{base}/api/v1/query_range"))
                    .query(&[
                        ("query", *q),
                        ("start", &start.to_string()),
                        ("end", &stop.to_string()),
                        ("step", "60"),
                    ])
                    .send()
                    .await
                    .unwrap()
                    .json::<serde_json::Value>()
                    .await
                    .unwrap()
            }
        };
        let (a, b) = (get(medic.url("")).await, get(prom.clone()).await);
        if let Some(d) = diff(q, &points(&a), &points(&b)) {
            failures.push(format!("range: {d}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} differences:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn promtool(args: &[&str]) -> (bool, String) {
    let out = Command::new("/usr/bin/promtool")
        .args(args)
        .output()
        .expect("run promtool");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promtool_queries_work_against_medic() {
    require_binary("/usr/bin/promtool", "prometheus");
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("medic.yml");
    std::fs::write(&cfg, "scrape_configs: []\n").unwrap();
    let medic = Medic::start(&dir.path().join("data"), Some(&cfg), &[]);
    let t0 = 1_700_000_000_000i64;
    let series = |job: &str, f: f64| -> TestSeries {
        (
            vec![
                ("__name__".into(), "demo_requests_total".into()),
                ("job".into(), job.into()),
            ],
            (0..20).map(|i| (t0 + i * 15_000, f * i as f64)).collect(),
        )
    };
    let body = write_request(&[series("api", 30.0), series("web", 15.0)]);
    assert_eq!(
        post_write(&client(), &medic.url(""), body)
            .await
            .unwrap()
            .status()
            .as_u16(),
        204
    );
    let url = medic.url("");
    let at = format!("{}", (t0 + 285_000) / 1000);

    let (ok, out) = promtool(&[
        "query",
        "instant",
        "--time",
        &at,
        &url,
        "sum by (job) (rate(demo_requests_total[1m]))",
    ]);
    assert!(ok, "{out}");
    let value = |job: &str| -> f64 {
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("{{job=\"{job}\"}} => ")))
            .unwrap_or_else(|| panic!("{out}"));
        line.split(" => ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(
        almost_equal(value("api"), 2.0) && almost_equal(value("web"), 1.0),
        "{out}"
    );

    let (start, end) = (
        format!("{}", (t0 + 120_000) / 1000),
        format!("{}", (t0 + 180_000) / 1000),
    );
    let (ok, out) = promtool(&[
        "query",
        "range",
        "--start",
        &start,
        "--end",
        &end,
        "--step",
        "30s",
        &url,
        "demo_requests_total{job=\"web\"}",
    ]);
    assert!(ok, "{out}");
    assert!(
        out.contains("120 @[1700000120]") && out.contains("180 @[1700000180]"),
        "{out}"
    );

    let (ok, out) = promtool(&[
        "query",
        "series",
        "--match",
        "demo_requests_total",
        "--start",
        &start,
        "--end",
        &end,
        &url,
    ]);
    assert!(ok, "{out}");
    assert_eq!(
        out.lines()
            .filter(|l| l.contains("demo_requests_total"))
            .count(),
        2,
        "{out}"
    );

    let (ok, out) = promtool(&[
        "query", "labels", "--start", &start, "--end", &end, &url, "job",
    ]);
    assert!(ok, "{out}");
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["api", "web"],
        "{out}"
    );

    // A syntax error: promtool reports medic's bad_data error and exits non-zero.
    let (ok, out) = promtool(&["query", "instant", &url, "sum(demo_requests_total"]);
    assert!(!ok);
    assert!(out.contains("bad_data"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_api_errors_have_prometheus_types_and_codes() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("medic.yml");
    std::fs::write(&cfg, "scrape_configs: []\n").unwrap();
    let medic = Medic::start(&dir.path().join("data"), Some(&cfg), &[]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let t0 = now - 600_000;
    let s = |name: &str| -> TestSeries {
        (
            vec![("__name__".into(), name.into()), ("job".into(), "x".into())],
            (0..40).map(|i| (t0 + i * 15_000, i as f64)).collect(),
        )
    };
    let body = write_request(&[s("demo_a"), s("demo_b")]);
    assert_eq!(
        post_write(&client(), &medic.url(""), body)
            .await
            .unwrap()
            .status()
            .as_u16(),
        204
    );
    let c = client();
    let get = |path: &str, params: Vec<(&'static str, String)>| {
        let c = c.clone();
        let url = medic.url(path);
        async move {
            let r = c.get(url).query(&params).send().await.unwrap();
            let code = r.status().as_u16();
            (code, r.json::<serde_json::Value>().await.unwrap())
        }
    };
    let (code, j) = get(
        "/api/v1/query",
        vec![("query", "sum(rate(demo_a[5m])".into())],
    )
    .await;
    assert_eq!(
        (code, j["errorType"].as_str()),
        (400, Some("bad_data")),
        "{j}"
    );
    assert!(j["error"].as_str().unwrap().contains("parenthes"), "{j}");
    // Where, as Prometheus says it: line:column.
    assert_eq!(
        j["error"],
        "invalid parameter \"query\": 1:4: parse error: unclosed left parenthesis"
    );
    let (code, j) = get(
        "/api/v1/query",
        vec![("query", "sum(rate(demo_a[5m])) by".into())],
    )
    .await;
    assert_eq!(code, 400);
    assert_eq!(
        j["error"],
        "invalid parameter \"query\": 1:25: parse error: unexpected end of input after \"by\"",
        "{j}"
    );
    let (code, j) = get(
        "/api/v1/query",
        vec![("query", "{__name__=~\"demo_.*\"} * 2".into())],
    )
    .await;
    assert_eq!(
        (code, j["errorType"].as_str()),
        (422, Some("execution")),
        "{j}"
    );
    assert!(
        j["error"].as_str().unwrap().contains("same labelset"),
        "{j}"
    );
    let (code, j) = get(
        "/api/v1/query",
        vec![("query", "nosuchfunction(demo_a)".into())],
    )
    .await;
    assert_eq!(code, 400, "{j}");
    let (code, j) = get(
        "/api/v1/query_range",
        vec![
            ("query", "count_over_time(demo_a[1h:1s])".into()),
            ("start", format!("{}", (now - 20_000_000) / 1000)),
            ("end", format!("{}", now / 1000)),
            ("step", "1s".into()),
        ],
    )
    .await;
    assert_eq!(
        (code, j["errorType"].as_str()),
        (400, Some("bad_data")),
        "over 11,000 points: {j}"
    );
    let (code, j) = get(
        "/api/v1/query_range",
        vec![
            ("query", "count_over_time(demo_a[1h:1s])".into()),
            ("start", format!("{}", (now - 3_000_000) / 1000)),
            ("end", format!("{}", now / 1000)),
            ("step", "1s".into()),
            ("timeout", "1ms".into()),
        ],
    )
    .await;
    assert_eq!(
        (code, j["errorType"].as_str()),
        (503, Some("timeout")),
        "{j}"
    );
    // And the shapes of a good answer.
    let (code, j) = get(
        "/api/v1/query",
        vec![
            ("query", "demo_a".into()),
            ("time", format!("{}", (t0 + 150_000) as f64 / 1000.0)),
        ],
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(j["data"]["resultType"], "vector");
    assert_eq!(j["data"]["result"][0]["value"][1], "10", "{j}");
    let (_, j) = get("/api/v1/query", vec![("query", "1 / 0".into())]).await;
    assert_eq!(j["data"]["result"][1], "+Inf", "{j}");
    let (_, j) = get("/api/v1/status/buildinfo", vec![]).await;
    assert_eq!(j["status"], "success");
    let (_, j) = get(
        "/api/v1/format_query",
        vec![("query", "sum(rate(demo_a[5m]))by(job)".into())],
    )
    .await;
    assert_eq!(j["data"], "sum by (job) (rate(demo_a[5m]))", "{j}");
}

#[test]
fn promql_test_command_reports_failures_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.test");
    std::fs::write(
        &good,
        "load 1m\n  m{a=\"1\"} 0+1x10\n\neval instant at 5m m\n  m{a=\"1\"} 5\n",
    )
    .unwrap();
    let bad = dir.path().join("bad.test");
    std::fs::write(
        &bad,
        "load 1m\n  m{a=\"1\"} 0+1x10\n\neval instant at 5m m\n  m{a=\"1\"} 6\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_medic"))
        .args(["promql", "test"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).ends_with("1 passed, 0 failed\n"));
    let out = Command::new(env!("CARGO_BIN_EXE_medic"))
        .args(["promql", "test"])
        .arg(&good)
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("bad.test:4 m"), "{text}");
    assert!(text.contains("expected 6, got 5"), "{text}");
    assert!(text.ends_with("1 passed, 1 failed\n"), "{text}");
}
