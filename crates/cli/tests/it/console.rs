//! The web console in a real browser: Debian's chromium driven by playwright-core
//! (`crates/cli/tests/browser/console.mjs`) against the real binary, with a real rule firing
//! and a repair waiting for approval. Signs in, sees the alert, approves the repair and sees it
//! verified, silences the alert from its page, opens the playbooks and status pages, runs a
//! range query and sees the graph; every
//! page is screenshotted (under the target directory's `console/`), checked by axe-core and
//! walked with the keyboard; no page logs an error.

use std::path::Path;

use serde_json::{json, Value};

use crate::support::*;

const RULES: &str = r#"groups:
- name: disk
  interval: 1s
  rules:
  - alert: DiskFull
    expr: vector(0.97)
    labels: {instance: db1, severity: critical}
    annotations: {summary: 'disk on db1 is {{ $value }} full'}
  - anomaly: DiskOdd
    expr: vector(0.97)
    history: 0s
"#;

const PLAYBOOK: &str = r#"name: clean-disk
trigger:
  alert: '{alertname="DiskFull"}'
target: '{{ $labels.instance }}'
collect:
  - name: used
    query: 'vector(0.97)'
diagnose:
  - cause: full
    when: 'used.value > 0.9'
    actions: [clean]
actions:
  clean:
    approval: always
    exec:
      command: ['true']
verify:
  exec:
    command: ['true']
  within: 10s
  interval: 200ms
"#;

fn start(dir: &Path) -> Medic {
    std::fs::write(dir.join("rules.yml"), RULES).unwrap();
    std::fs::write(dir.join("clean.yml"), PLAYBOOK).unwrap();
    let hash = bcrypt::hash("alice-pw", 4).unwrap();
    let cfg = dir.join("medic.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  evaluation_interval: 1s\nrule_files: [rules.yml]\nheal:\n  playbooks: ['clean.yml']\nauth:\n  users:\n    alice: {{password_hash: '{hash}', role: sre}}\n    vic: {{password_hash: '{hash}', role: viewer}}\n"
        ),
    )
    .unwrap();
    Medic::start(&dir.join("data"), Some(&cfg), &[])
}

/// Runs console.mjs; its report.
fn walk(base: &str, out: &Path) -> Value {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "/usr/bin/chromium is missing: install the Debian package chromium (scripts/test.sh does)"
    );
    for package in ["playwright-core", "axe-core"] {
        assert!(
            dir.join("node_modules").join(package).exists(),
            "{package} is missing: run `npm ci --prefix crates/cli/tests/browser` (scripts/test.sh does)"
        );
    }
    let run = std::process::Command::new("node")
        .arg(dir.join("console.mjs"))
        .args([base, "alice", "alice-pw"])
        .arg(out)
        .output()
        .expect("node is missing: install the Debian package nodejs");
    assert!(
        run.status.success(),
        "console.mjs failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    serde_json::from_slice(&run.stdout).expect("console.mjs prints JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_in_approves_a_repair_silences_an_alert_and_graphs_a_query() {
    let dir = tempfile::tempdir().unwrap();
    let m = start(dir.path());
    let c = client();
    let auth = |r: reqwest::RequestBuilder| r.basic_auth("alice", Some("alice-pw"));
    // The repair waits for a person before the browser opens.
    eventually("an execution awaiting approval", &m, || async {
        let r = auth(c.get(m.url("/api/v1/medic/heal/executions")))
            .send()
            .await
            .ok()?;
        let v: Value = r.json().await.ok()?;
        v["data"]
            .as_array()?
            .iter()
            .any(|e| e["status"] == "awaiting_approval")
            .then_some(())
    })
    .await;
    // A thousand more alerts, for the list's responsiveness.
    let bulk: Vec<Value> = (0..1000)
        .map(|i| json!({"labels": {"alertname": "Bulk", "instance": format!("host-{i:04}")}}))
        .collect();
    let r = auth(c.post(m.url("/api/v2/alerts")))
        .json(&bulk)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // A log line, for the Logs page.
    let ns = (now_ms() * 1_000_000).to_string();
    let push = json!({"streams": [{"stream": {"job": "app"}, "values": [[ns, "disk usage at 97% on db1"]]}]});
    let r = auth(c.post(m.url("/loki/api/v1/push")))
        .json(&push)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
    // An incident opened by hand, for its page.
    let r = auth(c.post(m.url("/api/v1/medic/incidents")))
        .json(
            &json!({"title": "Disk cleanup on db1", "level": "P2", "labels": {"instance": "db1"}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());

    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console");
    std::fs::create_dir_all(&out).unwrap();
    let base = m.url("");
    let report = tokio::task::spawn_blocking(move || walk(&base, &out))
        .await
        .unwrap();
    eprintln!("console report: {report:#}");
    assert!(
        report["failure"].is_null(),
        "{}\nmedic:\n{}",
        report["failure"],
        m.stderr()
    );
    assert_eq!(report["errors"], json!([]), "console errors");
    for (page, violations) in report["axe"].as_object().unwrap() {
        let serious: Vec<&Value> = violations
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
            .collect();
        assert!(serious.is_empty(), "{page}: {serious:#?}");
    }
    for (page, unreached) in report["keyboard"].as_object().unwrap() {
        assert_eq!(unreached, &json!([]), "{page}: controls Tab never reached");
    }
    assert_eq!(report["screenshots"].as_array().unwrap().len(), 20);
    assert_eq!(report["silenced"], "1 alert");
    // A viewer is offered nothing it may not do.
    assert_eq!(
        report["viewer"],
        json!({"silence": 0, "ack": 0, "approve": 0, "pause": 0, "run": 0})
    );
    let first = &report["firstLoad"];
    assert!(first["bytes"].as_u64().unwrap() < 300 * 1024, "{first}");
    assert!(first["ms"].as_u64().unwrap() < 3_000, "{first}");
    assert!(report["overviewFiring"]
        .as_str()
        .unwrap()
        .contains("critical"));
    assert!(report["silenceMatchers"]
        .as_str()
        .unwrap()
        .contains("alertname=\"DiskFull\""));
    assert!(report["graphLines"].as_u64().unwrap() >= 1);
    assert_eq!(
        report["queryNotes"],
        serde_json::json!(["PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: \"ALERTS\""]),
        "the query page shows PromQL's info"
    );
    assert_eq!(report["thousand"]["rows"], 1001);

    // What the browser did, as the API records it.
    let ex = get_authed(
        &c,
        &m,
        "/api/v1/medic/heal/executions?playbook=clean-disk&target=db1",
    )
    .await;
    let e = &ex["data"][0];
    assert_eq!(e["status"], "succeeded", "{e:#}");
    assert_eq!(e["decision"]["by"], "alice", "{e:#}");
    // The run by hand, started from the playbooks page, waits for its approval.
    let ex = get_authed(
        &c,
        &m,
        "/api/v1/medic/heal/executions?playbook=clean-disk&target=db2",
    )
    .await;
    assert_eq!(ex["data"][0]["status"], "awaiting_approval", "{ex:#}");
    assert_eq!(ex["data"][0]["trigger"]["by"], "alice", "{ex:#}");
    let inc = get_authed(&c, &m, "/api/v1/medic/incidents").await;
    let commented = get_authed(
        &c,
        &m,
        &format!("/api/v1/medic/incidents/{}", inc["data"][0]["id"]),
    )
    .await;
    assert!(
        commented.to_string().contains("cleaning the disk"),
        "{commented:#}"
    );
    let silences = get_authed(&c, &m, "/api/v2/silences").await;
    assert_eq!(silences[0]["createdBy"], "alice", "{silences}");
    assert_eq!(silences[0]["status"]["state"], "active");
    // The page itself: public, embedded, with a policy that allows no inline or foreign code.
    let page = c.get(m.url("/console/")).send().await.unwrap();
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    let root = c.get(m.url("/")).send().await.unwrap();
    assert!(root.url().path().starts_with("/console/"));
}

async fn get_authed(c: &reqwest::Client, m: &Medic, path: &str) -> Value {
    c.get(m.url(path))
        .basic_auth("alice", Some("alice-pw"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}
