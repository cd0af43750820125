//! The audit log, end to end: state-changing requests (refusals included) and the heal
//! engine's decisions and actions are recorded with secrets masked; `medic audit verify` finds
//! a row changed or removed directly in the database.

use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::*;

const PLAYBOOK: &str = r#"
name: say
trigger:
  alert: '{alertname="Down"}'
target: '{{ $labels.instance }}'
actions:
  say:
    exec:
      command: ['true']
verify:
  alert_resolved: true
  within: 1s
  interval: 200ms
"#;

fn medic(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_medic"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

async fn audit_rows(c: &reqwest::Client, m: &Medic, want: usize) -> Vec<Value> {
    for _ in 0..100 {
        let v = get_json(c, &m.url("/api/v1/medic/audit?limit=1000")).await;
        let rows = v["data"].as_array().cloned().unwrap_or_default();
        if rows.len() >= want {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("fewer than {want} audit entries");
}

#[tokio::test]
async fn requests_and_repairs_are_audited_and_tampering_is_found() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("say.yml"), PLAYBOOK).unwrap();
    let config = dir.path().join("medic.yml");
    std::fs::write(&config, "heal:\n  playbooks: ['say.yml']\n").unwrap();
    let data = dir.path().join("data");
    let m = Medic::start(&data, Some(&config), &[]);
    let c = client();
    let now = medic_model::format_rfc3339(medic_model::Clock::now_ms(&medic_model::SystemClock));
    let silence = json!({
        "matchers": [{"name": "alertname", "value": "Down", "isRegex": false}],
        "startsAt": now, "endsAt": "2099-01-01T00:00:00Z",
        "createdBy": "alice", "comment": "db upgrade"
    });
    let r = c
        .post(m.url("/api/v2/silences"))
        .json(&silence)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A cross-site form post: refused, and on the record.
    let r = c
        .post(m.url("/api/v2/silences"))
        .header("content-type", "text/plain")
        .body(silence.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    // A query sent as a form POST is a read, not audited.
    let r = c
        .post(m.url("/api/v1/query"))
        .form(&[("query", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A secret in a request never reaches the log.
    let r = c
        .post(m.url("/api/v1/medic/heal/trigger"))
        .json(
            &json!({"playbook": "say", "labels": {"alertname": "Down", "instance": "web-1"},
                      "by": "bob", "token": "s3cr3t-value"}),
        )
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert!(status.is_success() || status == 400, "{status} {body}");
    if status == 400 {
        // Unknown fields are refused; trigger again without it so the repair runs.
        let r = c
            .post(m.url("/api/v1/medic/heal/trigger"))
            .json(&json!({"playbook": "say", "labels": {"alertname": "Down", "instance": "web-1"}, "by": "bob"}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }
    // The repair runs, fails its verification and escalates: heal's own entries.
    let mut rows = Vec::new();
    for _ in 0..100 {
        rows = audit_rows(&c, &m, 3).await;
        if rows.iter().any(|r| r["action"] == "heal.finished") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let text = serde_json::to_string(&rows).unwrap();
    assert!(!text.contains("s3cr3t-value"), "{text}");
    assert!(!text.contains("/api/v1/query"), "{text}");
    let find = |action: &str, result: &str| {
        rows.iter()
            .find(|r| r["action"] == action && r["result"] == result)
            .unwrap_or_else(|| panic!("no {action} → {result} in {text}"))
    };
    let ok = find("POST /api/v2/silences", "200");
    assert_eq!(ok["actor"], "anonymous");
    assert!(
        ok["source"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{ok}"
    );
    assert!(
        ok["detail"].as_str().unwrap().contains("db upgrade"),
        "{ok}"
    );
    let refused = find("POST /api/v2/silences", "415")["seq"]
        .as_i64()
        .unwrap();
    let action = rows
        .iter()
        .find(|r| r["action"] == "heal.action")
        .unwrap_or_else(|| panic!("no heal.action in {text}"));
    assert_eq!(action["actor"], "heal");
    assert_eq!(action["target"], "say web-1");
    assert!(
        action["result"].as_str().unwrap().starts_with("ok"),
        "{action}"
    );
    assert!(rows.iter().any(|r| r["action"] == "heal.started"));

    // The CLI lists and verifies through the API.
    let url = format!("http://{}", m.addr);
    let (ok, out) = medic(&["audit", "--url", &url, "--action", "POST"]);
    assert!(ok && out.contains("POST /api/v2/silences"), "{out}");
    let (ok, out) = medic(&["audit", "verify", "--url", &url]);
    assert!(ok && out.contains("intact"), "{out}");
    m.terminate();

    // Changed in the database: found; changed back: intact again; a row removed: found.
    let db = data.join("audit.db");
    let file = db.to_str().unwrap();
    let sql = |q: &str| {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute(q, []).unwrap()
    };
    assert_eq!(
        sql(&format!(
            "UPDATE audit SET result = '200' WHERE seq = {refused}"
        )),
        1
    );
    let (ok, out) = medic(&["audit", "verify", "--file", file]);
    assert!(
        !ok && out.contains("BROKEN") && out.contains("changed"),
        "{out}"
    );
    sql(&format!(
        "UPDATE audit SET result = '415' WHERE seq = {refused}"
    ));
    let (ok, out) = medic(&["audit", "verify", "--file", file]);
    assert!(ok, "{out}");
    assert_eq!(sql("DELETE FROM audit WHERE seq = 2"), 1);
    let (ok, out) = medic(&["audit", "verify", "--file", file]);
    assert!(!ok && out.contains("missing"), "{out}");
}
