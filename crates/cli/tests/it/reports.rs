//! Reports in the real binary: 30 days of stored data (an outage, an SLO's error ratio, a
//! latency series) and alerts and incidents of the day; a monthly-style report over them whose
//! figures the test computes itself and checks against PromQL; delivered as an HTML e-mail to a
//! real SMTP server (aiosmtpd); and a scheduled report that runs on its own.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::*;

const STEP: i64 = 300_000;
const POINTS: i64 = 30 * 288;
/// The outage: six hours of `up == 0` and a 5% error ratio, ten days in.
const OUTAGE: std::ops::Range<i64> = 10 * 288..10 * 288 + 72;

fn cli(m: &Medic, args: &[&str]) -> (bool, String, String) {
    medic_cli_at(m, args)
}

fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// 30 days at 5-minute steps, ending at `end`, written oldest first in daily slices.
async fn write_history(c: &reqwest::Client, m: &Medic, end: i64) {
    let t = |i: i64| end - (POINTS - i) * STEP;
    let sloth = [
        ("sloth_id", "shop-availability"),
        ("sloth_service", "shop"),
        ("sloth_slo", "availability"),
    ];
    for day in 0..30 {
        let range = day * 288 + 1..=(day + 1) * 288;
        let series = |name: &str, extra: &[(&str, &str)], f: &dyn Fn(i64) -> f64| -> TestSeries {
            let mut l = labels(extra);
            l.push(("__name__".into(), name.into()));
            (l, range.clone().map(|i| (t(i), f(i))).collect())
        };
        let body = write_request(&[
            series("up", &[("job", "shop"), ("instance", "shop-1")], &|i| {
                if OUTAGE.contains(&i) {
                    0.0
                } else {
                    1.0
                }
            }),
            series(
                "up",
                &[("job", "search"), ("instance", "search-1")],
                &|_| 1.0,
            ),
            series("slo:sli_error:ratio_rate5m", &sloth, &|i| {
                if OUTAGE.contains(&i) {
                    0.05
                } else {
                    0.0005
                }
            }),
            series("slo:objective:ratio", &sloth, &|_| 0.999),
            series("slo:time_period:days", &sloth, &|_| 30.0),
            series("latency_p95_seconds", &[("job", "shop")], &|i| {
                0.2 + (i % 10) as f64 * 0.01
            }),
        ]);
        let r = post_write(c, &m.url(""), body).await.unwrap();
        assert_eq!(r.status(), 204, "day {day}: {}", r.text().await.unwrap());
    }
}

async fn promql(c: &reqwest::Client, m: &Medic, q: &str) -> f64 {
    let url = format!(
        "{}?query={}",
        m.url("/api/v1/query"),
        form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>()
    );
    let v = get_json(c, &url).await;
    v["data"]["result"][0]["value"][1]
        .as_str()
        .unwrap_or_else(|| panic!("{q}: {v}"))
        .parse()
        .unwrap()
}

fn close(a: &Value, want: f64) -> bool {
    a.as_f64()
        .is_some_and(|x| (x - want).abs() <= 1e-9_f64.max(want.abs() * 1e-9))
}

/// The HTML part of a raw e-mail, decoded by Python's `email` package.
fn html_part(raw: &str) -> String {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import email,sys\nm=email.message_from_string(sys.stdin.read())\nfor p in m.walk():\n  if p.get_content_type()=='text/html': sys.stdout.write(p.get_payload(decode=True).decode())",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut ch| {
            use std::io::Write;
            ch.stdin.take().unwrap().write_all(raw.as_bytes())?;
            ch.wait_with_output()
        })
        .unwrap();
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_monthly_report_over_30_days_matches_promql_and_arrives_as_html_mail() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpServer::start(dir.path());
    let hooks = Capture::start().await;
    let am = format!(
        "global:\n  smtp_smarthost: 127.0.0.1:{}\n  smtp_from: medic@example.org\n  smtp_require_tls: false\nroute:\n  receiver: none\n  group_by: [alertname]\n  group_wait: 100ms\nreceivers:\n  - name: none\n  - name: mail\n    email_configs: [{{to: sre@example.org}}]\n    webhook_configs: [{{url: '{}'}}]\n",
        smtp.port,
        hooks.url("/report")
    );
    // Retention (15d by default) would drop the first half of the history.
    let reports = "storage:\n  retention: 60d\nreports:\n  - name: monthly\n    title: Monthly SLA report\n    schedule: '0 8 1 * *'\n    timezone: Asia/Shanghai\n    period: month\n    receivers: [mail]\n    series:\n      - {name: p95 latency, query: 'latency_p95_seconds', unit: s}\n  - name: every-minute\n    schedule: '* * * * *'\n    period: day\n    receivers: [mail]\n";
    let m = medic_with_alerting(dir.path(), &am, reports);
    let c = client();
    let end = now_ms() / STEP * STEP;
    write_history(&c, &m, end).await;
    // Asked while the store is still cutting the backfill into blocks, every answer is whole.
    for _ in 0..50 {
        assert_eq!(
            promql(&c, &m, "count_over_time(up{job=\"shop\"}[30d])").await,
            POINTS as f64
        );
    }
    // Alerts of today: two critical, one warning (one of each resolved); an incident acked.
    let at = |ms: i64| medic_model::format_rfc3339(ms);
    let post = |body: Value| {
        let c = c.clone();
        let url = m.url("/api/v2/alerts");
        async move {
            let r = c.post(url).json(&body).send().await.unwrap();
            assert_eq!(r.status(), 200);
        }
    };
    post(json!([
        {"labels": {"alertname": "ShopDown", "service": "shop", "severity": "critical"}, "startsAt": at(now_ms() - 60_000)},
        {"labels": {"alertname": "ShopSlow", "service": "shop", "severity": "warning"}, "startsAt": at(now_ms() - 60_000)},
        {"labels": {"alertname": "SearchDown", "service": "search", "severity": "critical"}, "startsAt": at(now_ms() - 60_000)},
    ]))
    .await;
    let inc = eventually("two incidents", &m, || async {
        let v = get_json(&c, &m.url("/api/v1/medic/incidents")).await;
        let all = v["data"].as_array().cloned().unwrap_or_default();
        (all.len() == 2).then_some(all)
    })
    .await;
    let id = inc[0]["id"].to_string();
    let (ok, _, err) = cli(&m, &["incident", "ack", &id]);
    assert!(ok, "{err}");
    post(json!([
        {"labels": {"alertname": "SearchDown", "service": "search", "severity": "critical"}, "startsAt": at(now_ms() - 60_000), "endsAt": at(now_ms() - 1000)},
    ]))
    .await;

    // The figures, as JSON.
    let (ok, out, err) = cli(
        &m,
        &[
            "report", "generate", "--period", "30d", "--name", "monthly", "--format", "json",
        ],
    );
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let f = &v["data"]["figures"];
    assert_eq!(f["title"], "Monthly SLA report");
    // What the test wrote: 72 of 8,640 points down; the error ratio 0.05 there, 0.0005 else.
    let n = POINTS as f64;
    let outage = (OUTAGE.end - OUTAGE.start) as f64;
    let availability = (n - outage) / n;
    let ratio = (outage * 0.05 + (n - outage) * 0.0005) / n;
    let shop = f["availability"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["job"] == "shop")
        .unwrap();
    assert!(
        close(&shop["ratio"], availability),
        "{shop} vs {availability}"
    );
    let search = f["availability"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["job"] == "search")
        .unwrap();
    assert!(close(&search["ratio"], 1.0), "{search}");
    // ... and what PromQL says, asked by the test.
    let pq = promql(&c, &m, "avg_over_time(up{job=\"shop\"}[30d])").await;
    assert!(close(&shop["ratio"], pq), "{shop} vs PromQL {pq}");
    let slo = &f["slos"][0];
    assert_eq!(slo["id"], "shop-availability");
    assert!(
        close(&slo["attainment"], 1.0 - ratio),
        "{slo} vs {}",
        1.0 - ratio
    );
    let pq = promql(&c, &m, "1 - avg_over_time(slo:sli_error:ratio_rate5m[30d])").await;
    assert!(close(&slo["attainment"], pq), "{slo} vs PromQL {pq}");
    // Budget: the mean ratio over 30 days against a 0.1% budget of a 30-day period.
    assert!(close(&slo["budget_spent"], ratio / 0.001), "{slo}");
    assert_eq!(slo["met"], json!(1.0 - ratio >= 0.999), "{slo}");
    let lat = &f["series"][0];
    assert_eq!(lat["name"], "p95 latency");
    assert!(close(&lat["min"], 0.2) && close(&lat["max"], 0.29), "{lat}");
    let pq = promql(&c, &m, "max_over_time(latency_p95_seconds[30d])").await;
    assert!(close(&lat["max"], pq), "{lat} vs PromQL {pq}");
    // Alerts, incidents.
    assert_eq!(f["alerts"]["fired"], 3, "{}", f["alerts"]);
    assert_eq!(
        f["alerts"]["by_severity"],
        json!({"critical": 2, "warning": 1})
    );
    assert_eq!(f["incidents"]["opened"], 2);
    assert_eq!(f["incidents"]["by_level"], json!({"P1": 2}));
    assert!(
        f["incidents"]["mtta_ms"].as_i64().unwrap() < 60_000,
        "{}",
        f["incidents"]
    );
    assert_eq!(f["repairs"]["executions"], 0);

    // As HTML mail, delivered.
    let (ok, _, err) = cli(
        &m,
        &[
            "report",
            "generate",
            "--period",
            "30d",
            "--name",
            "monthly",
            "--format",
            "html",
            "--deliver",
            "-o",
            dir.path().join("r.html").to_str().unwrap(),
        ],
    );
    assert!(ok, "{err}");
    let mail = eventually("the report's mail", &m, || async {
        smtp.messages()
            .into_iter()
            .find(|m| m.contains("Subject: Monthly SLA report"))
    })
    .await;
    assert!(mail.contains("To: sre@example.org"), "{mail}");
    let html = html_part(&mail);
    let want = format!("{:.3}%", availability * 100.0);
    for s in [
        "<h2>SLO attainment</h2>",
        "shop-availability",
        &want,
        "<svg xmlns",
        "Availability by job",
        "p95 latency",
    ] {
        assert!(
            html.contains(s),
            "{s:?} missing from the mailed HTML:\n{html}"
        );
    }
    // The same receiver's webhook got it as JSON.
    let hook = hooks
        .wait_for_match(
            "/report",
            |b| b["kind"] == "report" && b["title"] == "Monthly SLA report",
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(hook["title"], "Monthly SLA report");
    assert!(hook["html"]
        .as_str()
        .unwrap()
        .contains("<h2>SLO attainment</h2>"));
    assert!(hook["markdown"]
        .as_str()
        .unwrap()
        .starts_with("# Monthly SLA report"));
    let stored = std::fs::read_to_string(dir.path().join("r.html")).unwrap();
    assert_eq!(
        stored.trim(),
        html.trim(),
        "the file and the mail hold the same report"
    );
    let png = dir.path().join("report.png");
    let drawn = render_in_chromium(dir.path().join("r.html").to_str().unwrap(), &png);
    assert_eq!(drawn["errors"], json!([]), "{drawn}");
    assert!(drawn["svgs"].as_array().unwrap().len() >= 3, "{drawn}");
    assert!(
        drawn["svgs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["visible_lines"].as_u64().unwrap() > 3),
        "{drawn}"
    );
    let _ = std::fs::copy(&png, std::env::temp_dir().join("medic-monthly-report.png"));

    // Listed and stored; bad input named.
    let (ok, out, _) = cli(&m, &["report", "list"]);
    assert!(
        ok && out.contains("monthly") && out.contains("0 8 1 * *"),
        "{out}"
    );
    let (ok, _, err) = cli(&m, &["report", "generate", "--period", "2026-13"]);
    assert!(!ok && err.contains("period \"2026-13\""), "{err}");
    let (ok, _, err) = cli(
        &m,
        &["report", "generate", "--period", "7d", "--name", "weekly"],
    );
    assert!(
        !ok && err.contains("404") && err.contains("no report named \"weekly\""),
        "{err}"
    );

    // The every-minute report runs by itself at the next minute and mails yesterday's report.
    let deadline = std::time::Instant::now() + Duration::from_secs(100);
    loop {
        if smtp
            .messages()
            .iter()
            .any(|m| m.contains("Subject: every-minute:"))
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the scheduled report never came; log:\n{}",
            m.stderr()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
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
        counter(
            &metrics,
            "medic_reports_generated_total{report=\"every-minute\"}"
        ) >= 1.0,
        "{metrics}"
    );
}
