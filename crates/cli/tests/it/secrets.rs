//! Secrets never leave medic: a known value in every secret field of medic.yml, the
//! Alertmanager configuration and a playbook; every declared GET route read, the error paths
//! driven (failing scrapes, notifications, forwarding and actions, a failed reload, wrong
//! credentials); no secret in any response, in the log or in the audit log.

use std::time::Duration;

use reqwest::Method;

use crate::support::*;

const SECRETS: &[&str] = &[
    "ROOT_PASSWORD_S3CR3T",
    "WRONG_TOKEN_S3CR3T",
    "SCRAPE_PASSWORD_S3CR3T",
    "SCRAPE_BEARER_S3CR3T",
    "FWD_PASSWORD_S3CR3T",
    "SMTP_PASSWORD_S3CR3T",
    "SLACK_URL_S3CR3T",
    "PROXY_PASSWORD_S3CR3T",
    "WEBHOOK_QUERY_S3CR3T",
    "WEBHOOK_PATH_S3CR3T",
    "EMAIL_HEADER_S3CR3T",
    "PD_ROUTING_S3CR3T",
    "EXEC_ENV_S3CR3T",
    "ACTION_HEADER_S3CR3T",
    "FILE_SECRET_S3CR3T",
    "RELOAD_URL_S3CR3T",
];

const ALERTMANAGER: &str = r#"
global:
  smtp_smarthost: 127.0.0.1:1
  smtp_from: medic@example.com
  smtp_auth_username: medic
  smtp_auth_password: SMTP_PASSWORD_S3CR3T
  slack_api_url: http://127.0.0.1:1/services/T0/B0/SLACK_URL_S3CR3T
  http_config:
    proxy_url: http://proxyuser:PROXY_PASSWORD_S3CR3T@127.0.0.1:1
route:
  receiver: all
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1m
receivers:
  - name: all
    webhook_configs:
      - url: http://127.0.0.1:1/hook/WEBHOOK_PATH_S3CR3T?token=WEBHOOK_QUERY_S3CR3T
    slack_configs:
      - channel: '#ops'
    email_configs:
      - to: ops@example.com
        headers: {X-Api-Key: EMAIL_HEADER_S3CR3T}
    pagerduty_configs:
      - routing_key: PD_ROUTING_S3CR3T
        url: http://127.0.0.1:1/pd
"#;

const PLAYBOOK: &str = r#"
name: leaky
trigger:
  alert: '{alertname="Always"}'
target: x
actions:
  act:
    exec:
      command: ['false']
      env: {PGPASSWORD: EXEC_ENV_S3CR3T, FROM_FILE: {file: pg-secret}}
  call:
    http:
      url: http://127.0.0.1:1/restart
      headers: {Authorization: 'Bearer ACTION_HEADER_S3CR3T'}
diagnose:
  - cause: any
    when: 'true'
    actions: [call, act]
verify:
  exec:
    command: ['false']
  within: 300ms
  interval: 100ms
"#;

fn medic_yml(hash: &str) -> String {
    format!(
        r#"
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
scrape_configs:
  - job_name: basic
    basic_auth: {{username: u, password: SCRAPE_PASSWORD_S3CR3T}}
    static_configs: [{{targets: ['127.0.0.1:1']}}]
  - job_name: bearer
    authorization: {{credentials: SCRAPE_BEARER_S3CR3T}}
    static_configs: [{{targets: ['127.0.0.1:1']}}]
rule_files: [rules.yml]
alerting:
  config_file: alertmanager.yml
  alertmanagers:
    - basic_auth: {{username: u, password: FWD_PASSWORD_S3CR3T}}
      static_configs: [{{targets: ['127.0.0.1:1']}}]
heal:
  playbooks: [leaky.yml]
auth:
  users:
    root: {{password_hash: '{hash}', role: admin}}
"#
    )
}

fn leaks(text: &str) -> Vec<&'static str> {
    SECRETS
        .iter()
        .copied()
        .filter(|s| text.contains(s))
        .collect()
}

#[tokio::test]
async fn no_secret_reaches_a_response_the_log_or_the_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("alertmanager.yml"), ALERTMANAGER).unwrap();
    std::fs::write(d.join("leaky.yml"), PLAYBOOK).unwrap();
    std::fs::write(d.join("pg-secret"), "FILE_SECRET_S3CR3T\n").unwrap();
    std::fs::write(
        d.join("rules.yml"),
        "groups:\n  - name: g\n    rules:\n      - alert: Always\n        expr: vector(1)\n",
    )
    .unwrap();
    let cfg = d.join("medic.yml");
    let hash = bcrypt::hash("ROOT_PASSWORD_S3CR3T", 4).unwrap();
    std::fs::write(&cfg, medic_yml(&hash)).unwrap();
    let m = Medic::start(&d.join("data"), Some(&cfg), &[]);
    let c = client();
    let as_root = |method: Method, path: &str| {
        c.request(method, m.url(path))
            .basic_auth("root", Some("ROOT_PASSWORD_S3CR3T"))
    };

    // Let scrapes, notifications, forwarding and the playbook fail a few times.
    let mut finished = false;
    for _ in 0..100 {
        let v: serde_json::Value = as_root(Method::GET, "/api/v1/medic/heal/executions")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if v["data"]
            .as_array()
            .is_some_and(|a| a.iter().any(|e| e["finished_at"].is_number()))
        {
            finished = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(finished, "the playbook never finished:\n{}", m.stderr());
    tokio::time::sleep(Duration::from_secs(3)).await;

    // Wrong credentials, and a reload whose error would quote a URL with a secret in it.
    for auth in [
        "Bearer WRONG_TOKEN_S3CR3T",
        "Basic cm9vdDpXUk9OR19UT0tFTl9TM0NSM1Q=",
    ] {
        let r = c
            .get(m.url("/api/v1/alerts"))
            .header("authorization", auth)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    std::fs::write(
        d.join("alertmanager.yml"),
        ALERTMANAGER.replace(
            "url: http://127.0.0.1:1/pd",
            "url: 'http://u:RELOAD_URL_S3CR3T@[::1'",
        ),
    )
    .unwrap();
    let r = as_root(Method::POST, "/-/reload").send().await.unwrap();
    let reload = r.text().await.unwrap();
    assert!(!reload.is_empty());

    let mut failures = Vec::new();
    let mut seen = 0;
    for (path, method, _) in medic_server::http::declared_routes() {
        if method != Method::GET || path.contains("{name}") && !path.contains("label") {
            continue;
        }
        let path = path
            .replace("{id}", "x")
            .replace("{name}", "job")
            .replace("{group}", "x");
        let body = as_root(Method::GET, &path)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        seen += 1;
        let found = leaks(&body);
        if !found.is_empty() {
            failures.push(format!("GET {path}: {found:?}"));
        }
    }
    assert!(seen > 30, "{seen} GET routes");
    // The record of one execution, the audit log in full, the reload's answer, the log.
    let audit = as_root(Method::GET, "/api/v1/medic/audit?limit=5000")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(audit.contains("heal."), "{audit}");
    for (what, text) in [
        ("the audit log", audit),
        ("the reload's answer", reload),
        ("the log", m.stderr()),
    ] {
        let found = leaks(&text);
        if !found.is_empty() {
            failures.push(format!("{what}: {found:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "secrets leaked:\n{}",
        failures.join("\n")
    );
    // The failures did happen (so the paths that could leak were taken).
    let log = m.stderr();
    for sign in ["sending alerts to Alertmanager failed", "reload"] {
        assert!(log.contains(sign), "no {sign:?} in the log:\n{log}");
    }
    let metrics = as_root(Method::GET, "/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("medic_alert_notification_requests_failed_total"),
        "no failed notification:\n{metrics}"
    );
    let up: serde_json::Value = as_root(
        Method::GET,
        "/api/v1/query?query=up%7Bjob%3D~%22basic%7Cbearer%22%7D",
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(
        up["data"]["result"].as_array().map(Vec::len),
        Some(2),
        "{up}"
    );
}
