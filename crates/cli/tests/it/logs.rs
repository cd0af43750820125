//! Logs end to end against the real binary: real client libraries push (python-logging-loki's
//! JSON, the OpenTelemetry Python SDK's OTLP protobuf), Loki's query API answers with exactly
//! the lines sent after redaction, and `kill -9` during ingest loses no acknowledged line.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::support::*;

/// medic with no scrape jobs and `extra` (top-level YAML) in its config, data under `dir`.
fn start(dir: &std::path::Path, extra: &str) -> Medic {
    let cfg = dir.join("medic.yml");
    std::fs::write(&cfg, format!("scrape_configs: []\n{extra}")).unwrap();
    Medic::start(&dir.join("data"), Some(&cfg), &[])
}

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/send_logs.py");

fn send_with_python(kind: &str, url: &str, lines: &[&str]) {
    let mut child = Command::new("python3")
        .args([SCRIPT, kind, url])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 (Debian package python3) must be installed");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(lines.join("\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{kind} client failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every line of the streams a LogQL query returns, oldest first, with each stream's labels.
async fn query_lines(c: &reqwest::Client, medic: &Medic, query: &str) -> Vec<(Value, String)> {
    query_lines_limit(c, medic, query, 5000).await
}

async fn query_lines_limit(
    c: &reqwest::Client,
    medic: &Medic,
    query: &str,
    limit: usize,
) -> Vec<(Value, String)> {
    let now = now_ms() * 1_000_000;
    let r = c
        .get(medic.url("/loki/api/v1/query_range"))
        .query(&[
            ("query", query),
            // A day either side: BSD syslog timestamps are in the sender's local time.
            ("start", &(now - 86_400_000_000_000).to_string()),
            ("end", &(now + 86_400_000_000_000).to_string()),
            ("limit", &limit.to_string()),
            ("direction", "forward"),
        ])
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body: Value = r.json().await.unwrap_or_default();
    assert_eq!(status, 200, "{query}: {body}");
    assert_eq!(body["data"]["resultType"], "streams", "{body}");
    let mut out = Vec::new();
    for s in body["data"]["result"].as_array().unwrap() {
        for v in s["values"].as_array().unwrap() {
            out.push((
                v[0].as_str().unwrap().parse::<i64>().unwrap(),
                s["stream"].clone(),
                v[1].as_str().unwrap().to_string(),
            ));
        }
    }
    out.sort_by_key(|x| x.0);
    out.into_iter().map(|(_, l, s)| (l, s)).collect()
}

/// What the clients send, and what must come back: the secrets masked, nothing else changed.
const SENT: &[&str] = &[
    "info order 1001 placed",
    "warning payment retry for order 1001 card=4111 1111 1111 1111",
    "error login failed user=bob password=hunter2",
    "info 订单 1002 已支付 邮箱 carol@example.com",
    "error upstream said: Authorization: Bearer abc.def.ghijklmnop",
];
const STORED: &[&str] = &[
    "order 1001 placed",
    "payment retry for order 1001 card=[REDACTED:card_number]",
    "login failed user=bob password=[REDACTED:secret_kv]",
    "订单 1002 已支付 邮箱 [REDACTED:email]",
    "upstream said: Authorization: Bearer [REDACTED:bearer_token]",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_clients_push_and_loki_queries_return_exactly_the_lines() {
    let dir = tempfile::tempdir().unwrap();
    let medic = start(dir.path(), "");
    let c = client();

    send_with_python("loki", &medic.url("/loki/api/v1/push"), SENT);
    let got = query_lines(&c, &medic, r#"{app="pyloki"}"#).await;
    let lines: Vec<&str> = got.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(lines, STORED);
    // python-logging-loki labels each record with its level and logger.
    assert_eq!(
        got[2].0,
        serde_json::json!({"app": "pyloki", "env": "test", "logger": "shop.checkout", "severity": "error"})
    );

    send_with_python("otel", &medic.url("/v1/logs"), SENT);
    let got = query_lines(&c, &medic, r#"{service_name="checkout"}"#).await;
    let lines: Vec<&str> = got.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(lines, STORED);
    // Indexed resource attributes are labels; the rest is structured metadata, filterable.
    assert_eq!(got[0].0["deployment_environment"], "test");
    let errors = query_lines(
        &c,
        &medic,
        r#"{service_name="checkout"} | severity_text="ERROR" | host_name="web-7""#,
    )
    .await;
    let lines: Vec<&str> = errors.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(lines, [STORED[2], STORED[4]]);

    // A metric query over both sources.
    let r: Value = c
        .get(medic.url("/loki/api/v1/query"))
        .query(&[("query", r#"sum(count_over_time({env="test"} |= "failed" [1h])) + sum(count_over_time({service_name="checkout"} |= "failed" [1h]))"#)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["data"]["result"][0]["value"][1], "2", "{r}");
    // Label API.
    let labels = get_json(&c, &medic.url("/loki/api/v1/labels")).await;
    for l in ["app", "env", "logger", "service_name", "severity"] {
        assert!(
            labels["data"].as_array().unwrap().iter().any(|x| x == l),
            "{l} missing from {labels}"
        );
    }
    let values = get_json(&c, &medic.url("/loki/api/v1/label/severity/values")).await;
    assert_eq!(
        values["data"],
        serde_json::json!(["error", "info", "warning"])
    );
    // A malformed query: Loki's 400 with the position.
    let r = c
        .get(medic.url("/loki/api/v1/query_range"))
        .query(&[("query", r#"{app="pyloki"} |= "x" | json | unknown"#)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r
        .text()
        .await
        .unwrap()
        .starts_with("parse error at line 1, col 32:"));
    // The same from the terminal.
    let (ok, out, err) = medic_cli_at(
        &medic,
        &["logs", "query", r#"{app="pyloki"} |= "order""#, "--forward"],
    );
    assert!(ok, "{err}");
    let printed: Vec<&str> = out.lines().map(|l| l.split_once(' ').unwrap().1).collect();
    assert_eq!(printed, [STORED[0], STORED[1]]);
    let (ok, out, err) = medic_cli_at(&medic, &["logs", "labels", "severity"]);
    assert!(ok, "{err}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["error", "info", "warning"]
    );
    let (ok, _, err) = medic_cli_at(&medic, &["logs", "query", r#"{app="pyloki"} |= "#]);
    assert!(
        !ok && err.contains("parse error at line 1, col 19"),
        "{err}"
    );
    // Every secret counted by its detector.
    let m = metrics_text(&c, &medic).await;
    assert_eq!(
        counter(&m, "medic_logs_redactions_total{rule=\"card_number\"}"),
        2.0,
        "{m}"
    );
    assert_eq!(counter(&m, "medic_logs_entries_received_total"), 10.0);
}

fn push_body(batch: usize, now_ns: i64) -> String {
    let values: Vec<Value> = (0..50)
        .map(|j| {
            serde_json::json!([
                (now_ns + j as i64).to_string(),
                format!("batch {batch} line {j} level=info took=12ms")
            ])
        })
        .collect();
    serde_json::json!({"streams": [{"stream": {"job": "crash"}, "values": values}]}).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_log_ingest_loses_no_acknowledged_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("medic.yml");
    // A small head: flushes to parts (and WAL truncation) happen while the writer runs.
    std::fs::write(
        &config,
        "scrape_configs: []\nlogs:\n  head_max_bytes: 16KiB\n",
    )
    .unwrap();
    let addr = Arc::new(Mutex::new(String::new()));
    let acked = Arc::new(Mutex::new(Vec::<usize>::new()));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut medic = Medic::start(&data, Some(&config), &[]);
    *addr.lock().unwrap() = medic.url("");
    let writer = {
        let (addr, acked, done) = (addr.clone(), acked.clone(), done.clone());
        tokio::spawn(async move {
            let c = client();
            let mut k = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                let base = addr.lock().unwrap().clone();
                let r = c
                    .post(format!("{base}/loki/api/v1/push"))
                    .header("Content-Type", "application/json")
                    .body(push_body(k, now_ms() * 1_000_000))
                    .timeout(Duration::from_secs(5))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == 204 => {
                        acked.lock().unwrap().push(k);
                        k += 1;
                    }
                    _ => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        })
    };
    for round in 0..3 {
        // Let several flushes happen (every 5 s at most), then kill mid-stream.
        let target = (round + 1) * 60;
        for _ in 0..600 {
            if acked.lock().unwrap().len() >= target {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(5_500)).await;
        medic.kill9();
        medic = Medic::start(&data, Some(&config), &[]);
        *addr.lock().unwrap() = medic.url("");
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    writer.await.unwrap();
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 180,
        "only {} batches acknowledged",
        acked.len()
    );
    let c = client();
    let mut found = BTreeSet::new();
    let now = now_ms() * 1_000_000;
    // Read back batch by batch range in pages of the per-query limit.
    let mut start = now - 3_600_000_000_000;
    loop {
        let r: Value = c
            .get(medic.url("/loki/api/v1/query_range"))
            .query(&[
                ("query", r#"{job="crash"}"#),
                ("start", &start.to_string()),
                ("end", &(now + 60_000_000_000).to_string()),
                ("limit", "5000"),
                ("direction", "forward"),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let values = r["data"]["result"][0]["values"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for v in &values {
            found.insert(v[1].as_str().unwrap().to_string());
        }
        if values.len() < 5000 {
            break;
        }
        start = values.last().unwrap()[0]
            .as_str()
            .unwrap()
            .parse::<i64>()
            .unwrap()
            + 1;
    }
    let mut missing = Vec::new();
    for k in &acked {
        for j in 0..50 {
            let line = format!("batch {k} line {j} level=info took=12ms");
            if !found.contains(&line) {
                missing.push(line);
            }
        }
    }
    assert!(
        missing.is_empty(),
        "{} acknowledged lines lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    let m = metrics_text(&c, &medic).await;
    assert!(
        std::fs::read_dir(data.join("logs/parts")).unwrap().count() > 0,
        "no flush happened during the test"
    );
    drop(m);
}

const LOG_RULES: &str = r#"
groups:
  - name: app-logs
    interval: 1s
    rules:
      - alert: CheckoutErrors
        expr: sum by (service) (count_over_time({env="prod"} |= "ERROR" [1m])) > 2
        labels:
          severity: page
        annotations:
          summary: '{{ $labels.service }} logged {{ $value }} errors in a minute'
      - record: service:log_errors:count1m
        expr: sum by (service) (count_over_time({env="prod"} |= "ERROR" [1m]))
"#;

const LOG_PLAYBOOK: &str = r#"
name: log-errors
trigger:
  alert: '{alertname="CheckoutErrors"}'
target: '{{ $labels.service }}'
collect:
  - name: errors
    logs: '{env="prod", service="{{ $labels.service }}"} |= "ERROR"'
    range: 5m
    limit: 10
diagnose:
  - cause: payment_gateway
    when: 'errors.count >= 3 && errors.lines.exists(l, l.line.contains("gateway timeout"))'
    actions: [note]
actions:
  note:
    exec:
      command: [true]
verify:
  query: 'service:log_errors:count1m{service="checkout"} >= 3'
  within: 20s
  interval: 500ms
"#;

/// A log alert (a Loki ruler file) fires like any alert and starts a playbook whose `logs:`
/// collector brings the matching lines; the recording rule beside it writes to the TSDB (the
/// playbook's verification reads it back with PromQL).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_alert_starts_a_playbook_whose_evidence_holds_the_lines() {
    let dir = tempfile::tempdir().unwrap();
    let cap = Capture::start().await;
    std::fs::write(dir.path().join("log_rules.yml"), LOG_RULES).unwrap();
    std::fs::create_dir_all(dir.path().join("playbooks")).unwrap();
    std::fs::write(dir.path().join("playbooks/log.yml"), LOG_PLAYBOOK).unwrap();
    std::fs::write(
        dir.path().join("alertmanager.yml"),
        format!(
            "route:\n  receiver: hook\n  group_wait: 500ms\n  group_interval: 1s\nreceivers:\n  - name: hook\n    webhook_configs: [{{url: \"{}\"}}]\n",
            cap.url("/alerts")
        ),
    )
    .unwrap();
    let cfg = dir.path().join("medic.yml");
    std::fs::write(
        &cfg,
        "global:\n  evaluation_interval: 1s\nscrape_configs: []\nlogs:\n  rule_files: [log_rules.yml]\nalerting:\n  config_file: alertmanager.yml\nheal:\n  playbooks: ['playbooks/*.yml']\n  condition_interval: 1s\n",
    )
    .unwrap();
    let medic = Medic::start(&dir.path().join("data"), Some(&cfg), &[]);
    let c = client();
    let now = now_ms() * 1_000_000;
    let lines = [
        "INFO checkout started",
        "ERROR checkout order=7 gateway timeout after 30s",
        "ERROR checkout order=8 gateway timeout after 30s",
        "INFO checkout order=9 paid",
        "ERROR checkout order=10 gateway timeout after 30s password=swordfish",
    ];
    let values: Vec<Value> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| serde_json::json!([(now + i as i64 * 1_000_000).to_string(), l]))
        .collect();
    let body = serde_json::json!({"streams": [
        {"stream": {"env": "prod", "service": "checkout"}, "values": values},
        {"stream": {"env": "prod", "service": "search"}, "values": [[now.to_string(), "ERROR search index stale"]]},
    ]});
    let r = c
        .post(medic.url("/loki/api/v1/push"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);

    let e = crate::heal::finished(&c, &medic, "log-errors", Duration::from_secs(60)).await;
    assert_eq!(e["status"], "succeeded", "{e:#}");
    assert_eq!(e["target"], "checkout");
    assert_eq!(e["diagnosis"]["cause"], "payment_gateway");
    let ev = &e["evidence"]["errors"];
    assert_eq!(ev["count"], 3, "{ev:#}");
    let got: Vec<&str> = ev["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["line"].as_str().unwrap())
        .collect();
    // Newest first, redacted, only the alerting service's.
    assert_eq!(
        got,
        [
            "ERROR checkout order=10 gateway timeout after 30s password=[REDACTED:secret_kv]",
            "ERROR checkout order=8 gateway timeout after 30s",
            "ERROR checkout order=7 gateway timeout after 30s",
        ]
    );
    // The alert reached the receiver like any other, with its LogQL value.
    let sent = cap
        .wait_for_match(
            "/alerts",
            |v| v["alerts"][0]["labels"]["alertname"] == "CheckoutErrors",
            Duration::from_secs(20),
        )
        .await;
    assert_eq!(
        sent["alerts"][0]["annotations"]["summary"],
        "checkout logged 3 errors in a minute"
    );
    // The rule's API shows the LogQL query.
    let rules = get_json(&c, &medic.url("/api/v1/rules")).await;
    assert!(
        rules
            .to_string()
            .contains("count_over_time({env=\\\"prod\\\"} |= \\\"ERROR\\\" [1m])"),
        "{rules}"
    );
}

/// Debian's rsyslog forwards to medic: RFC 5424 over TCP (octet-counted) for facility local3,
/// the traditional BSD format over UDP for local4. `logger` (util-linux) sends to rsyslog.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsyslog_forwards_over_tcp_and_udp_and_queries_return_the_lines() {
    require_binary("/usr/sbin/rsyslogd", "rsyslog");
    require_binary("/usr/bin/logger", "bsdutils");
    let dir = tempfile::tempdir().unwrap();
    let (tcp, udp, rsyslog_in) = (free_port(), free_port(), free_port());
    let medic = start(
        dir.path(),
        &format!("logs:\n  syslog:\n    tcp: 127.0.0.1:{tcp}\n    udp: 127.0.0.1:{udp}\n    labels: {{env: test}}\n"),
    );
    let work = dir.path().join("rsyslog");
    std::fs::create_dir_all(&work).unwrap();
    let conf = work.join("rsyslog.conf");
    std::fs::write(
        &conf,
        format!(
            r#"global(workDirectory="{w}")
module(load="imtcp")
input(type="imtcp" port="{rsyslog_in}" address="127.0.0.1")
if $syslogfacility-text == 'local3' then {{
  action(type="omfwd" target="127.0.0.1" port="{tcp}" protocol="tcp" TCP_Framing="octet-counted" template="RSYSLOG_SyslogProtocol23Format")
}}
if $syslogfacility-text == 'local4' then {{
  action(type="omfwd" target="127.0.0.1" port="{udp}" protocol="udp" template="RSYSLOG_TraditionalForwardFormat")
}}
"#,
            w = work.display()
        ),
    )
    .unwrap();
    let mut rsyslog = Command::new("/usr/sbin/rsyslogd")
        .args(["-n", "-f"])
        .arg(&conf)
        .arg("-i")
        .arg(work.join("pid"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // rsyslog is listening once a connection to its port succeeds.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", rsyslog_in)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "rsyslogd did not listen"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let send = |prio: &str, msg: &str| {
        let st = Command::new("/usr/bin/logger")
            .args([
                "-n",
                "127.0.0.1",
                "-P",
                &rsyslog_in.to_string(),
                "-T",
                "--rfc3164",
                "-t",
                "payments",
                "-p",
                prio,
                msg,
            ])
            .status()
            .unwrap();
        assert!(st.success());
    };
    send("local3.err", "charge failed for card 4111 1111 1111 1111");
    send("local3.info", "charge ok id=42");
    send("local4.warning", "queue depth 900 token=abc123secret");
    let c = client();
    let want_tcp = [
        "charge failed for card [REDACTED:card_number]",
        "charge ok id=42",
    ];
    let want_udp = ["queue depth 900 token=[REDACTED:secret_kv]"];
    let got = {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let tcp_lines = query_lines(
                &c,
                &medic,
                r#"{job="syslog", app="payments", facility="local3"}"#,
            )
            .await;
            let udp_lines = query_lines(
                &c,
                &medic,
                r#"{job="syslog", app="payments", facility="local4"}"#,
            )
            .await;
            if tcp_lines.len() >= 2 && !udp_lines.is_empty() || std::time::Instant::now() > deadline
            {
                break (tcp_lines, udp_lines);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let _ = rsyslog.kill();
    let _ = rsyslog.wait();
    let tcp_lines: Vec<&str> = got.0.iter().map(|(_, l)| l.as_str()).collect();
    let udp_lines: Vec<&str> = got.1.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(tcp_lines, want_tcp, "{}", medic.stderr());
    assert_eq!(udp_lines, want_udp);
    // Severity from PRI, the configured label, the sending host.
    assert_eq!(got.0[0].0["severity"], "err");
    assert_eq!(got.0[1].0["severity"], "info");
    assert_eq!(got.1[0].0["severity"], "warning");
    assert_eq!(got.0[0].0["env"], "test");
    assert!(
        !got.0[0].0["host"].as_str().unwrap_or("").is_empty(),
        "{:?}",
        got.0[0].0
    );
}

/// A file written without pause, rotated by rename (logrotate's numbered generations) while
/// medic is killed with SIGKILL and restarted: every line arrives exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tailed_files_across_rotation_and_kill_9_lose_and_repeat_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    let cfg = dir.path().join("medic.yml");
    std::fs::write(
        &cfg,
        format!(
            "scrape_configs: []\nlogs:\n  max_entries: 100000\n  files_interval: 100ms\n  head_max_bytes: 8KiB\n  files:\n    - path: '{}/*.log'\n      labels: {{job: tailtest}}\n",
            app.display()
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let mut medic = Medic::start(&data, Some(&cfg), &[]);
    const TOTAL: usize = 3000;
    let writer = {
        let app = app.clone();
        std::thread::spawn(move || {
            use std::io::Write;
            let log = app.join("app.log");
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .unwrap();
            for i in 0..TOTAL {
                writeln!(f, "line {i:05} user=u{} took={}ms", i % 7, i % 100).unwrap();
                if i % 400 == 399 {
                    // logrotate: shift the numbered generations, then move the live file.
                    for g in (1..8).rev() {
                        let from = app.join(format!("app.log.{g}"));
                        if from.exists() {
                            std::fs::rename(&from, app.join(format!("app.log.{}", g + 1))).unwrap();
                        }
                    }
                    std::fs::rename(&log, app.join("app.log.1")).unwrap();
                    f = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&log)
                        .unwrap();
                }
                // About 4 s of writing: the kills and restarts below fall inside it.
                if i % 10 == 0 {
                    std::thread::sleep(Duration::from_millis(13));
                }
            }
        })
    };
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        medic.kill9();
        // Down long enough for two rotations (one every ~0.55 s) while nobody reads.
        tokio::time::sleep(Duration::from_millis(1200)).await;
        medic = Medic::start(&data, Some(&cfg), &[]);
    }
    writer.join().unwrap();
    let c = client();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let got = loop {
        let got = query_lines_limit(&c, &medic, r#"{job="tailtest"}"#, 100_000).await;
        if got.len() >= TOTAL || std::time::Instant::now() > deadline {
            break got;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for (_, l) in &got {
        *counts.entry(l.clone()).or_default() += 1;
    }
    let missing: Vec<usize> = (0..TOTAL)
        .filter(|i| {
            !counts
                .keys()
                .any(|k| k.starts_with(&format!("line {i:05} ")))
        })
        .collect();
    let repeated: Vec<(&String, &usize)> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        missing.is_empty(),
        "{} lines lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    assert!(
        repeated.is_empty(),
        "{} lines repeated, e.g. {:?}",
        repeated.len(),
        &repeated[..repeated.len().min(5)]
    );
    assert_eq!(got.len(), TOTAL);
}

/// Bad pushes get a 4xx that says what and where; a push with some bad entries stores the
/// rest and says how many were refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_pushes_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let medic = start(dir.path(), "logs:\n  max_line_bytes: 100\n");
    let c = client();
    let post = |ct: &'static str, body: Vec<u8>| {
        let c = c.clone();
        let url = medic.url("/loki/api/v1/push");
        async move {
            let r = c
                .post(url)
                .header("Content-Type", ct)
                .body(body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (s, t) = post(
        "application/json",
        br#"{"streams":[{"stream":{"a":"b"},"values":[["12x","line"]]}]}"#.to_vec(),
    )
    .await;
    assert_eq!(
        (s, t.trim()),
        (
            400,
            r#"streams[0].values[0][0]: timestamp "12x" is not an integer of nanoseconds"#
        )
    );
    let (s, t) = post(
        "application/json",
        br#"{"streams":[{"stream":{"a":1}}]}"#.to_vec(),
    )
    .await;
    assert_eq!(s, 400);
    assert!(t.starts_with("invalid JSON at streams[0].stream.a:"), "{t}");
    let (s, t) = post("application/x-protobuf", b"not snappy".to_vec()).await;
    assert_eq!(s, 400);
    assert!(t.starts_with("invalid snappy compression"), "{t}");
    let (s, t) = post("text/plain", b"x".to_vec()).await;
    assert_eq!(s, 415, "{t}");
    let now = now_ms() * 1_000_000;
    let body = serde_json::json!({"streams": [
        {"stream": {"app": "ok"}, "values": [[now.to_string(), "fine"], [(now + 1).to_string(), "x".repeat(101)]]},
        {"stream": {"bad-label": "v"}, "values": [[now.to_string(), "refused"]]},
        {"stream": {"app": "old"}, "values": [["1000000000000000000", "from 2001"]]},
    ]});
    let (s, t) = post("application/json", body.to_string().into_bytes()).await;
    assert_eq!(s, 400, "{t}");
    assert!(
        t.starts_with("3 of the pushed entries were refused:"),
        "{t}"
    );
    let got = query_lines(&c, &medic, r#"{app=~".+"}"#).await;
    assert_eq!(
        got.iter().map(|(_, l)| l.as_str()).collect::<Vec<_>>(),
        ["fine"]
    );
    let m = metrics_text(&c, &medic).await;
    assert_eq!(counter(&m, "medic_logs_entries_refused_total"), 3.0);
}

/// Reads one websocket text frame (the server does not mask its frames).
fn ws_frame(s: &mut std::net::TcpStream) -> String {
    use std::io::Read;
    let mut h = [0u8; 2];
    s.read_exact(&mut h).unwrap();
    assert_eq!(h[0] & 0x0f, 1, "a text frame");
    let len = match h[1] & 0x7f {
        126 => {
            let mut b = [0u8; 2];
            s.read_exact(&mut b).unwrap();
            u16::from_be_bytes(b) as usize
        }
        127 => {
            let mut b = [0u8; 8];
            s.read_exact(&mut b).unwrap();
            u64::from_be_bytes(b) as usize
        }
        n => n as usize,
    };
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).unwrap();
    String::from_utf8(body).unwrap()
}

/// `/loki/api/v1/tail` speaks websocket as Loki does: what is there, then what arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_streams_new_lines_over_a_websocket() {
    use std::io::{BufRead, Write};
    let dir = tempfile::tempdir().unwrap();
    let medic = start(dir.path(), "");
    let c = client();
    let push = |line: &'static str| {
        let c = c.clone();
        let url = medic.url("/loki/api/v1/push");
        async move {
            let now = now_ms() * 1_000_000;
            let body = serde_json::json!({"streams": [{"stream": {"app": "tailed"}, "values": [[now.to_string(), line]]}]});
            assert_eq!(c.post(url).json(&body).send().await.unwrap().status(), 204);
        }
    };
    push("before the tail").await;
    let mut s = std::net::TcpStream::connect(&medic.addr).unwrap();
    // Generous: a full test run on two cores once took more than 10 s to deliver a frame.
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let q = form_urlencoded::byte_serialize(br#"{app="tailed"} != "skip""#).collect::<String>();
    write!(
        s,
        "GET /loki/api/v1/tail?query={q} HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        medic.addr
    )
    .unwrap();
    let mut reader = std::io::BufReader::new(s.try_clone().unwrap());
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    assert!(status.starts_with("HTTP/1.1 101"), "{status}");
    loop {
        let mut l = String::new();
        reader.read_line(&mut l).unwrap();
        if l == "\r\n" {
            break;
        }
    }
    let first: Value = serde_json::from_str(&ws_frame(reader.get_mut())).unwrap();
    assert_eq!(first["streams"][0]["values"][0][1], "before the tail");
    assert_eq!(first["streams"][0]["stream"]["app"], "tailed");
    push("skip me").await;
    push("after the tail").await;
    let next: Value = serde_json::from_str(&ws_frame(reader.get_mut())).unwrap();
    assert_eq!(
        next["streams"][0]["values"][0][1], "after the tail",
        "{next}"
    );
    assert_eq!(next["streams"][0]["values"].as_array().unwrap().len(), 1);
}

/// Loki's snappy protobuf push with structured metadata, and OTLP/JSON, as the collectors
/// send them: stored, and queryable by label and by metadata.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protobuf_push_and_otlp_json_are_stored_with_their_metadata() {
    use medic_logs::ingest::loki::proto;
    let dir = tempfile::tempdir().unwrap();
    let medic = start(dir.path(), "");
    let c = client();
    let now = now_ms() * 1_000_000;
    let entry = |i: i64, line: &str, trace: &str| proto::EntryAdapter {
        timestamp: Some(proto::Timestamp {
            seconds: (now + i) / 1_000_000_000,
            nanos: ((now + i) % 1_000_000_000) as i32,
        }),
        line: line.into(),
        structured_metadata: vec![proto::LabelPair {
            name: "trace_id".into(),
            value: trace.into(),
        }],
    };
    let req = proto::PushRequest {
        streams: vec![proto::StreamAdapter {
            labels: r#"{app="alloy", namespace="shop"}"#.into(),
            entries: vec![
                entry(0, "GET /cart 200", "aaa"),
                entry(1, "GET /pay 502", "bbb"),
            ],
            hash: 0,
        }],
    };
    let body = snap::raw::Encoder::new()
        .compress_vec(&prost::Message::encode_to_vec(&req))
        .unwrap();
    let r = c
        .post(medic.url("/loki/api/v1/push"))
        .header("Content-Type", "application/x-protobuf")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
    let got = query_lines(&c, &medic, r#"{app="alloy"} | trace_id="bbb""#).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1, "GET /pay 502");
    assert_eq!(got[0].0["namespace"], "shop");

    let otlp = serde_json::json!({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "collector-json"}}]},
        "scopeLogs": [{"scope": {"name": "io.example"}, "logRecords": [{
            "timeUnixNano": now.to_string(),
            "severityText": "WARN",
            "body": {"stringValue": "disk 91% full"},
            "attributes": [{"key": "disk.device", "value": {"stringValue": "sda1"}}],
            "traceId": "5b8efff798038103d269b633813fc60c",
        }]}],
    }]});
    let r = c
        .post(medic.url("/otlp/v1/logs"))
        .json(&otlp)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let got = query_lines(&c, &medic, r#"{service_name="collector-json"} | disk_device="sda1" | severity_text="WARN" | scope_name="io.example""#).await;
    assert_eq!(
        got.iter().map(|(_, l)| l.as_str()).collect::<Vec<_>>(),
        ["disk 91% full"]
    );
    assert_eq!(got[0].0["trace_id"], "5b8efff798038103d269b633813fc60c");
}
