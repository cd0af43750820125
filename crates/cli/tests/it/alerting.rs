//! The alert manager in the real binary: receivers' exact payloads against real HTTP servers,
//! a receiver that is down, state across `kill -9`, bad input, and Prometheus and amtool as
//! clients.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::*;

async fn post_alerts(c: &reqwest::Client, m: &Medic, body: Value) -> reqwest::Response {
    c.post(m.url("/api/v2/alerts"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

const RECEIVERS: &str = r#"
route:
  receiver: hook
  group_by: [alertname]
  group_wait: 500ms
  group_interval: 1s
  routes:
    - matchers: [channel="slack"]
      receiver: slack
    - matchers: [channel="pd"]
      receiver: pd
    - matchers: [channel="broken"]
      receiver: broken
      continue: true
    - matchers: [channel="broken"]
      receiver: hook
receivers:
  - name: hook
    webhook_configs: [{url: "CAP/hook", max_alerts: 1}]
  - name: slack
    slack_configs:
      - api_url: "CAP/slack"
        channel: '#ops'
        title: '{{ .CommonLabels.alertname }} on {{ .CommonLabels.instance }}'
        text: '{{ range .Alerts }}{{ .Annotations.summary }}{{ end }}'
        send_resolved: true
  - name: pd
    pagerduty_configs:
      - url: "CAP/pd"
        routing_key: secret-key
        severity: '{{ .CommonLabels.severity }}'
        details: {instance: '{{ .CommonLabels.instance }}'}
  - name: broken
    webhook_configs: [{url: "CAP/broken"}]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receivers_get_exact_payloads_and_a_dead_one_blocks_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cap = Capture::start().await;
    cap.set_status("/broken", 503);
    let medic = medic_with_alerting(dir.path(), &RECEIVERS.replace("CAP", &cap.url("")), "");
    let c = client();
    let start = medic_model::format_rfc3339(now_ms() - 60_000);
    let mk = |name: &str, channel: &str, instance: &str| {
        json!({
            "labels": {"alertname": name, "channel": channel, "instance": instance, "severity": "critical"},
            "annotations": {"summary": format!("{name} on {instance}")},
            "startsAt": start,
            "generatorURL": "http://prom/graph",
        })
    };
    let r = post_alerts(
        &c,
        &medic,
        json!([
            mk("Two", "hook", "a"),
            mk("Two", "hook", "b"),
            mk("Chat", "slack", "web-1"),
            mk("Page", "pd", "db-1"),
            mk("Dead", "broken", "x"),
        ]),
    )
    .await;
    assert_eq!(r.status(), 200);

    // Webhook: Alertmanager's payload, cut to max_alerts with the rest counted.
    // The "Dead" group reaches the hook too; which comes first is not fixed.
    let two = cap
        .wait_for_match(
            "/hook",
            |m| m["groupLabels"]["alertname"] == "Two",
            Duration::from_secs(20),
        )
        .await;
    assert_eq!(two["alerts"].as_array().unwrap().len(), 1);
    assert_eq!(two["truncatedAlerts"], 1);
    assert_eq!(two["version"], "4");
    assert_eq!(two["groupKey"], "{}:{alertname=\"Two\"}");
    assert_eq!(two["status"], "firing");
    assert_eq!(two["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
    // The same instant; like Alertmanager (RFC 3339 with nanoseconds), trailing zeros of the
    // fraction are dropped, so compare times, not strings.
    assert_eq!(
        two["alerts"][0]["startsAt"]
            .as_str()
            .and_then(medic_model::parse_rfc3339),
        medic_model::parse_rfc3339(&start)
    );

    // Slack: the configured templates, Alertmanager's attachment layout.
    let slack = cap.wait_for("/slack", 1, Duration::from_secs(20)).await;
    let want = json!({
        "channel": "#ops",
        "username": "medic",
        "attachments": [{
            "title": "Chat on web-1",
            "title_link": format!("{}/api/v2/alerts/groups?receiver=slack", medic.url("")),
            "text": "Chat on web-1",
            "fallback": format!(
                "[FIRING:1] Chat (slack web-1 critical) | {}/api/v2/alerts/groups?receiver=slack",
                medic.url("")
            ),
            "color": "danger",
            "mrkdwn_in": ["fallback", "pretext", "text"],
        }]
    });
    assert_eq!(slack[0], want);

    // PagerDuty Events API v2: dedup key is the SHA-256 of the group key.
    let pd = cap.wait_for("/pd", 1, Duration::from_secs(20)).await;
    let key = medic_alert::notify::group_key_hash("{}/{channel=\"pd\"}:{alertname=\"Page\"}");
    assert_eq!(pd[0]["routing_key"], "secret-key");
    assert_eq!(pd[0]["event_action"], "trigger");
    assert_eq!(pd[0]["dedup_key"], json!(key));
    assert_eq!(
        pd[0]["payload"]["summary"],
        "[FIRING:1] Page (pd db-1 critical)"
    );
    assert_eq!(pd[0]["payload"]["severity"], "critical");
    assert_eq!(pd[0]["payload"]["source"], "medic");
    assert_eq!(
        pd[0]["payload"]["custom_details"],
        json!({"instance": "db-1"})
    );
    assert_eq!(pd[0]["client"], "medic");

    // The dead receiver is retried while the same alert reached the hook route at once.
    cap.wait_for_match(
        "/hook",
        |m| m["groupLabels"]["alertname"] == "Dead",
        Duration::from_secs(20),
    )
    .await;
    let tries = cap.wait_for("/broken", 2, Duration::from_secs(20)).await;
    assert!(tries.len() >= 2, "retries: {}", tries.len());
    // group_interval (1s) bounds the retries; then the failure is recorded.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let m = c
            .get(medic.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if m.contains("medic_alert_notifications_failed_total{receiver=\"broken\",integration=\"webhook\",reason=\"5xx\"}") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no recorded failure:\n{m}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let h = get_json(
        &c,
        &medic.url("/api/v1/medic/alerts/history?kind=notify_failed"),
    )
    .await;
    let failed = h["data"].as_array().unwrap();
    assert!(!failed.is_empty());
    assert!(
        failed[0]["detail"].as_str().unwrap().contains("503"),
        "{failed:?}"
    );
    assert!(
        !failed[0]["detail"].as_str().unwrap().contains("broken"),
        "URL path leaked: {failed:?}"
    );

    // Resolution reaches Slack (send_resolved) with the resolved colour.
    let ended = medic_model::format_rfc3339(now_ms());
    let mut resolved = mk("Chat", "slack", "web-1");
    resolved["endsAt"] = json!(ended);
    assert_eq!(
        post_alerts(&c, &medic, json!([resolved])).await.status(),
        200
    );
    let slack = cap.wait_for("/slack", 2, Duration::from_secs(20)).await;
    assert_eq!(slack[1]["attachments"][0]["color"], "good");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silences_acks_and_the_notification_log_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let cap = Capture::start().await;
    let am = format!(
        "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 200ms\n  group_interval: 500ms\n  repeat_interval: 1h\nreceivers:\n  - name: hook\n    webhook_configs: [{{url: \"{}\"}}]\n",
        cap.url("/hook")
    );
    let medic = medic_with_alerting(dir.path(), &am, "");
    let c = client();
    let start = medic_model::format_rfc3339(now_ms() - 60_000);
    let firing = |name: &str| json!({"labels": {"alertname": name}, "startsAt": start});
    assert_eq!(
        post_alerts(&c, &medic, json!([firing("Sent")]))
            .await
            .status(),
        200
    );
    cap.wait_for("/hook", 1, Duration::from_secs(20)).await;
    let sil = c
        .post(medic.url("/api/v2/silences"))
        .json(&json!({
            "matchers": [{"name": "alertname", "value": "Muted", "isRegex": false}],
            "startsAt": medic_model::format_rfc3339(now_ms()),
            "endsAt": medic_model::format_rfc3339(now_ms() + 3_600_000),
            "createdBy": "ops", "comment": "known",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(sil.status(), 200);
    let sil_id = sil.json::<Value>().await.unwrap()["silenceID"]
        .as_str()
        .unwrap()
        .to_string();
    let groups = get_json(&c, &medic.url("/api/v1/medic/alerts/groups")).await;
    let gid = groups["data"][0]["id"].as_str().unwrap().to_string();
    let ack = c
        .post(medic.url("/api/v1/medic/alerts/ack"))
        .json(&json!({"group": gid, "author": "alice", "comment": "looking", "duration": "2h"}))
        .send()
        .await
        .unwrap();
    assert_eq!(ack.status(), 200, "{}", ack.text().await.unwrap());
    medic.kill9();

    let medic = Medic::start(
        &dir.path().join("data"),
        Some(&dir.path().join("medic.yml")),
        &[],
    );
    // Prometheus re-sends; nothing already sent goes out again.
    assert_eq!(
        post_alerts(&c, &medic, json!([firing("Sent"), firing("Muted")]))
            .await
            .status(),
        200
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        cap.at("/hook").len(),
        1,
        "re-sent after restart: {:#?}",
        cap.at("/hook")
    );
    let s = get_json(&c, &medic.url(&format!("/api/v2/silence/{sil_id}"))).await;
    assert_eq!(s["status"]["state"], "active");
    let groups = get_json(&c, &medic.url("/api/v1/medic/alerts/groups")).await;
    let acked = groups["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["id"] == json!(gid))
        .unwrap();
    assert_eq!(acked["ack"]["author"], "alice");
    let alerts = get_json(&c, &medic.url("/api/v2/alerts?filter=alertname=\"Muted\"")).await;
    assert_eq!(alerts[0]["status"]["silencedBy"], json!([sil_id]));
    // History kept the whole story.
    let h = get_json(
        &c,
        &medic.url("/api/v1/medic/alerts/history?filter=alertname=\"Sent\""),
    )
    .await;
    let kinds: Vec<&str> = h["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"firing") && kinds.contains(&"notified") && kinds.contains(&"acked"),
        "{kinds:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_alerts_and_bad_configs_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let am = "route:\n  receiver: a\nreceivers:\n  - name: a\n";
    let medic = medic_with_alerting(dir.path(), am, "");
    let c = client();
    for (body, want) in [
        (
            json!([{"labels": {"alertname": "ok"}}, {"labels": {}}]),
            "at least one label",
        ),
        (
            json!([{"labels": {"alertname": "ok"}}, {"labels": {"0bad": "x"}}]),
            "invalid label name",
        ),
        (
            json!([{"labels": {"a": "b"}, "startsAt": "yesterday"}]),
            "startsAt",
        ),
        (json!({"labels": {"a": "b"}}), "invalid alerts JSON"),
        (
            json!([{"labels": {"a": "b"}, "startsAt": "2024-01-02T00:00:00Z", "endsAt": "2024-01-01T00:00:00Z"}]),
            "start time must be before end time",
        ),
    ] {
        let r = post_alerts(&c, &medic, body.clone()).await;
        assert_eq!(r.status(), 400, "{body}");
        let msg: Value = r.json().await.unwrap();
        assert!(msg.as_str().unwrap().contains(want), "{body}: {msg}");
    }
    // As Alertmanager: the valid alert of a batch with invalid ones is stored (Prometheus does
    // not retry a 400, so refusing the whole batch would lose it); the invalid ones are not.
    let held = get_json(&c, &medic.url("/api/v2/alerts")).await;
    let names: Vec<&str> = held
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["labels"]["alertname"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(names, ["ok"], "{held}");
    let r = c.post(medic.url("/api/v2/silences")).json(&json!({
        "matchers": [{"name": "a", "value": ".*", "isRegex": true}],
        "startsAt": medic_model::format_rfc3339(now_ms()), "endsAt": medic_model::format_rfc3339(now_ms() + 60_000),
        "createdBy": "x", "comment": "y"})).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("must not match the empty string"));

    // A broken alertmanager.yml at reload keeps the old one and says where.
    std::fs::write(
        dir.path().join("alertmanager.yml"),
        "route:\n  receiver: nobody\nreceivers:\n  - name: a\n",
    )
    .unwrap();
    let r = c.post(medic.url("/-/reload")).send().await.unwrap();
    assert_eq!(r.status(), 500);
    let text = r.text().await.unwrap();
    assert!(
        text.contains("alertmanager.yml") && text.contains("undefined receiver \"nobody\""),
        "{text}"
    );
    let recv = get_json(&c, &medic.url("/api/v2/receivers")).await;
    assert_eq!(recv, json!([{"name": "a"}]));
    // A good one is taken.
    std::fs::write(
        dir.path().join("alertmanager.yml"),
        "route:\n  receiver: b\nreceivers:\n  - name: b\n",
    )
    .unwrap();
    assert_eq!(
        c.post(medic.url("/-/reload"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        get_json(&c, &medic.url("/api/v2/receivers")).await,
        json!([{"name": "b"}])
    );
}

fn amtool(url: &str, args: &[&str]) -> String {
    require_binary("/usr/bin/amtool", "prometheus-alertmanager");
    let out = std::process::Command::new("/usr/bin/amtool")
        .arg(format!("--alertmanager.url={url}"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "amtool {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amtool_works_against_medic() {
    let dir = tempfile::tempdir().unwrap();
    let medic = medic_with_alerting(
        dir.path(),
        "route:\n  receiver: a\n  routes:\n    - matchers: [team=\"db\"]\n      receiver: db\nreceivers:\n  - name: a\n  - name: db\n    webhook_configs: [{url: \"http://127.0.0.1:9/hook?token=abc123\"}]\n",
        "",
    );
    let url = medic.url("");
    let c = client();
    // `amtool config routes` reads the configuration through /api/v2/status and parses it: the
    // webhook URL must still be a URL (Alertmanager 0.25 shows it), with its key masked.
    let routes = amtool(&url, &["config", "routes", "show"]);
    assert!(
        routes.contains("db") && routes.contains("team=\"db\""),
        "{routes}"
    );
    let test = amtool(&url, &["config", "routes", "test", "team=db"]);
    assert_eq!(test.trim(), "db", "{test}");
    let config = amtool(&url, &["config", "show"]);
    assert!(!config.contains("abc123"), "{config}");
    amtool(
        &url,
        &[
            "alert",
            "add",
            "DiskFull",
            "instance=db1",
            "severity=page",
            "--annotation=summary=disk full",
        ],
    );
    amtool(&url, &["alert", "add", "DiskFull", "instance=db2"]);
    let q = amtool(&url, &["alert", "query", "instance=db1"]);
    assert!(
        q.contains("DiskFull") && q.contains("disk full") && q.contains("active"),
        "{q}"
    );
    let id = amtool(
        &url,
        &[
            "silence",
            "add",
            "instance=db1",
            "--comment=replacing disk",
            "--author=ops",
            "--duration=2h",
        ],
    );
    let id = id.trim();
    assert_eq!(id.len(), 36, "{id}");
    let q = amtool(&url, &["silence", "query", "-o", "json"]);
    let v: Value = serde_json::from_str(&q).unwrap();
    assert_eq!(v[0]["id"], json!(id));
    assert_eq!(v[0]["createdBy"], "ops");
    assert_eq!(v[0]["matchers"][0]["name"], "instance");
    // The silenced alert is hidden from the default query, shown with --silenced.
    let q = amtool(&url, &["alert", "query"]);
    assert!(!q.contains("db1") || !q.contains("active"), "{q}");
    let q = amtool(&url, &["alert", "query", "--silenced", "-o", "json"]);
    let v: Value = serde_json::from_str(&q).unwrap();
    let db1 = v
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["labels"]["instance"] == "db1")
        .unwrap();
    assert_eq!(db1["status"]["state"], "suppressed");
    amtool(&url, &["silence", "expire", id]);
    let s = get_json(&c, &medic.url(&format!("/api/v2/silence/{id}"))).await;
    assert_eq!(s["status"]["state"], "expired");
    let q = amtool(&url, &["silence", "query", "--expired", "-q"]);
    assert_eq!(q.trim(), id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_sends_its_alerts_to_medic() {
    let dir = tempfile::tempdir().unwrap();
    let cap = Capture::start().await;
    let am = format!(
        "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 1s\nreceivers:\n  - name: hook\n    webhook_configs: [{{url: \"{}\"}}]\n",
        cap.url("/hook")
    );
    let medic = medic_with_alerting(dir.path(), &am, "");
    std::fs::write(
        dir.path().join("prom-rules.yml"),
        "groups:\n- name: g\n  interval: 1s\n  rules:\n  - alert: AlwaysFiring\n    expr: vector(42)\n    labels: {severity: page}\n    annotations: {summary: 'value {{ $value }}'}\n",
    )
    .unwrap();
    let medic_addr = medic.addr.clone();
    let rules = dir.path().join("prom-rules.yml");
    let _prom = Prometheus::start(
        dir.path(),
        |_| {
            format!(
                "global: {{evaluation_interval: 1s, external_labels: {{cluster: lab}}}}\nrule_files: ['{}']\nalerting:\n  alertmanagers:\n  - api_version: v2\n    static_configs: [{{targets: ['{medic_addr}']}}]\n",
                rules.display()
            )
        },
        // The first send happens before Prometheus has discovered its alertmanagers (and is
        // dropped); resend soon rather than after the default minute.
        &["--rules.alert.resend-delay=1s"],
    );
    let got = cap.wait_for("/hook", 1, Duration::from_secs(60)).await;
    let a = &got[0]["alerts"][0];
    assert_eq!(
        a["labels"],
        json!({"alertname": "AlwaysFiring", "severity": "page", "cluster": "lab"})
    );
    assert_eq!(a["annotations"]["summary"], "value 42");
    assert_eq!(a["status"], "firing");
    assert!(
        a["generatorURL"]
            .as_str()
            .unwrap()
            .contains("/graph?g0.expr="),
        "{a}"
    );
    assert_eq!(got[0]["groupKey"], "{}:{alertname=\"AlwaysFiring\"}");
}

fn medic_cli(url: &str, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_medic"))
        .args(args)
        .env("MEDIC_URL", url)
        .env("USER", "tester")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_lists_silences_and_acknowledges() {
    let dir = tempfile::tempdir().unwrap();
    let am = "route:\n  receiver: a\n  group_by: [alertname]\n  group_wait: 100ms\nreceivers:\n  - name: a\n";
    let medic = medic_with_alerting(dir.path(), am, "");
    let url = medic.url("");
    let c = client();
    let start = medic_model::format_rfc3339(now_ms() - 60_000);
    post_alerts(&c, &medic, json!([
        {"labels": {"alertname": "DbDown", "instance": "db1"}, "annotations": {"summary": "db1 is down"}, "startsAt": start},
        {"labels": {"alertname": "DbDown", "instance": "db2"}, "startsAt": start},
    ]))
    .await;

    let (ok, out, _) = medic_cli(&url, &["alerts"]);
    assert!(ok);
    assert!(out.starts_with("ALERT"), "{out}");
    assert!(
        out.contains("DbDown") && out.contains("instance=db1") && out.contains("db1 is down"),
        "{out}"
    );

    let (ok, id, err) = medic_cli(
        &url,
        &[
            "silence",
            "add",
            "instance=db2",
            "-c",
            "rebuilding",
            "-d",
            "30m",
        ],
    );
    assert!(ok, "{err}");
    let id = id.trim().to_string();
    let (_, out, _) = medic_cli(&url, &["alerts"]);
    assert!(
        !out.contains("instance=db2"),
        "silenced alert listed: {out}"
    );
    let (_, out, _) = medic_cli(&url, &["alerts", "--silenced", "--format", "json"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2);
    let (_, out, _) = medic_cli(&url, &["silence", "list"]);
    assert!(
        out.contains(&id)
            && out.contains("instance=\"db2\"")
            && out.contains("tester")
            && out.contains("rebuilding"),
        "{out}"
    );

    let (ok, out, _) = medic_cli(&url, &["alerts", "groups", "--format", "json"]);
    assert!(ok);
    let groups: Value = serde_json::from_str(&out).unwrap();
    let gid = groups[0]["id"].as_str().unwrap().to_string();
    let (ok, out, err) = medic_cli(
        &url,
        &["ack", &gid[..6], "-c", "restoring from backup", "-d", "1h"],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("acknowledged {}:{alertname=\"DbDown\"}"),
        "{out}"
    );
    let (_, out, _) = medic_cli(&url, &["alerts", "groups"]);
    assert!(out.contains("tester until"), "{out}");
    let (_, out, _) = medic_cli(&url, &["alerts", "history", "--kind", "acked"]);
    assert!(
        out.contains("acked") && out.contains("restoring from backup"),
        "{out}"
    );

    // Errors: exit 1 with the server's reason or the local one.
    let (ok, _, err) = medic_cli(&url, &["ack", "ffffffffffff", "-c", "x"]);
    assert!(!ok && err.contains("no alert group"), "{err}");
    let (ok, _, err) = medic_cli(&url, &["silence", "add", "instance=\"db", "-c", "x"]);
    assert!(!ok && err.contains("unescaped double quote"), "{err}");
    let (ok, _, err) = medic_cli(&url, &["silence", "expire", "no-such-id"]);
    assert!(!ok && err.contains("404"), "{err}");

    // A silence that expires when what it silenced resolves (Alertmanager #1057).
    let (ok, eor, err) = medic_cli(
        &url,
        &[
            "silence",
            "add",
            "alertname=Flaky",
            "-c",
            "until it clears",
            "--expire-on-resolve",
        ],
    );
    assert!(ok, "{err}");
    let eor = eor.trim().to_string();
    let flaky = |ends: Option<String>| {
        let mut a = json!({"labels": {"alertname": "Flaky"}, "startsAt": start});
        if let Some(e) = ends {
            a["endsAt"] = json!(e);
        }
        json!([a])
    };
    assert_eq!(post_alerts(&c, &medic, flaky(None)).await.status(), 200);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let s = get_json(&c, &medic.url(&format!("/api/v2/silence/{eor}"))).await;
    assert_eq!(
        s["status"]["state"], "active",
        "expired while its alert fires"
    );
    assert_eq!(s["expireOnResolve"], true);
    let now_s = medic_model::format_rfc3339(now_ms());
    assert_eq!(
        post_alerts(&c, &medic, flaky(Some(now_s))).await.status(),
        200
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let s = get_json(&c, &medic.url(&format!("/api/v2/silence/{eor}"))).await;
        if s["status"]["state"] == "expired" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not expired after its alert resolved: {s}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let (ok, out, _) = medic_cli(&url, &["silence", "expire", &id]);
    assert!(ok && out.contains("expired"));
    let (_, out, _) = medic_cli(&url, &["silence", "list"]);
    assert!(!out.contains(&id), "{out}");
    let (_, out, _) = medic_cli(&url, &["silence", "list", "--expired"]);
    assert!(out.contains(&id), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_reaches_a_real_smtp_server() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpServer::start(dir.path());
    let am = format!(
        r#"global:
  smtp_smarthost: 127.0.0.1:{}
  smtp_from: medic@example.org
  smtp_require_tls: false
route:
  receiver: mail
  group_by: [alertname]
  group_wait: 100ms
receivers:
  - name: mail
    email_configs:
      - to: oncall@example.org, lead@example.org
        headers: {{X-Team: storage, X-Owner: '{{{{ .CommonLabels.owner }}}}'}}
"#,
        smtp.port
    );
    let medic = medic_with_alerting(dir.path(), &am, "");
    let c = client();
    post_alerts(&c, &medic, json!([{
        "labels": {"alertname": "DiskFull", "instance": "db1", "owner": "ops\r\nBcc: evil@example.org"},
        "annotations": {"summary": "disk 97% full", "description": "<b>bold</b>", "runbook_url": "https://runbooks.example/disk"},
        "startsAt": medic_model::format_rfc3339(now_ms() - 60_000),
    }]))
    .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mail = loop {
        let m: String = std::fs::read_dir(smtp.mbox.join("new"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
            .collect();
        if m.contains("</html>") {
            break m;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no mail arrived; medic log:\n{}",
            medic.stderr()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // A label value cannot add a header (or a recipient): CR LF is encoded, not passed on;
    // and it cannot add markup to the HTML part.
    let headers = mail.split("\n\n").next().unwrap();
    assert!(!headers.contains("\nBcc:"), "header injected:\n{mail}");
    let html = mail.split("Content-Type: text/html").nth(1).unwrap();
    assert!(
        html.contains("&lt;b&gt;bold&lt;/b&gt;") && !html.contains("<b>bold</b>"),
        "{mail}"
    );
    assert!(
        !mail.contains("X-RcptTo: oncall@example.org, lead@example.org, evil"),
        "{mail}"
    );
    for want in [
        "From: medic@example.org",
        "To: oncall@example.org, lead@example.org",
        // The subject carries the owner label's CR LF, so it is RFC 2047-encoded.
        "Subject: [FIRING:1] DiskFull (db1 =?utf-8?b?",
        "X-Team: storage",
        "Message-ID: <",
        "Content-Type: multipart/alternative",
        "Content-Type: text/plain",
        "Content-Type: text/html",
        "disk 97% full",
        "Runbook: https://runbooks.example/disk",
    ] {
        assert!(mail.contains(want), "missing {want:?} in:\n{mail}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacknowledged_groups_escalate_in_the_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let cap = Capture::start().await;
    let am = format!(
        "route:\n  receiver: oncall\n  group_by: [alertname]\n  group_wait: 200ms\n  group_interval: 500ms\nreceivers:\n  - name: oncall\n    webhook_configs: [{{url: \"{}\"}}]\n  - name: lead\n    webhook_configs: [{{url: \"{}\"}}]\n",
        cap.url("/oncall"),
        cap.url("/lead")
    );
    let escalations = "  escalations:\n    - name: critical\n      matchers: ['severity=\"critical\"']\n      steps: [{after: 3s, receiver: lead}]\n";
    let medic = medic_with_alerting(dir.path(), &am, escalations);
    let c = client();
    let start = medic_model::format_rfc3339(now_ms());
    let alert = |name: &str, sev: &str| json!({"labels": {"alertname": name, "severity": sev}, "startsAt": start});
    post_alerts(
        &c,
        &medic,
        json!([alert("DbDown", "critical"), alert("Disk", "warning")]),
    )
    .await;
    cap.wait_for("/oncall", 2, Duration::from_secs(20)).await;
    // The warning group does not match the policy; the critical one reaches the lead after
    // 3 s without an acknowledgement.
    let lead = cap.wait_for("/lead", 1, Duration::from_secs(20)).await;
    assert_eq!(lead[0]["groupLabels"], json!({"alertname": "DbDown"}));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        cap.at("/lead").len(),
        1,
        "escalated twice: {:#?}",
        cap.at("/lead")
    );
    let h = get_json(
        &c,
        &medic.url("/api/v1/medic/alerts/history?kind=escalated"),
    )
    .await;
    assert_eq!(h["data"][0]["receiver"], "lead/webhook[0]");
    assert!(h["data"][0]["detail"]
        .as_str()
        .unwrap()
        .contains("escalation policy critical"));

    // An acknowledged critical group does not escalate.
    let fresh = medic_model::format_rfc3339(now_ms());
    post_alerts(
        &c,
        &medic,
        json!([{"labels": {"alertname": "CacheDown", "severity": "critical"}, "startsAt": fresh}]),
    )
    .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let gid = loop {
        let g = get_json(
            &c,
            &medic.url("/api/v1/medic/alerts/groups?filter=alertname=\"CacheDown\""),
        )
        .await;
        if let Some(id) = g["data"][0]["id"].as_str() {
            break id.to_string();
        }
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let r = c
        .post(medic.url("/api/v1/medic/alerts/ack"))
        .json(&json!({"group": gid, "author": "bob", "comment": "mine"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        cap.at("/lead")
            .iter()
            .all(|m| m["groupLabels"]["alertname"] != "CacheDown"),
        "an acknowledged group escalated"
    );
}
