//! Identities end to end, against the real binary: tokens made, used, listed, expired and
//! revoked through the CLI (shown once, kept as hashes, surviving a restart); custom roles; a
//! developer's scope bounding acks, silences and triggers; an alert from an identity without
//! the trigger permission never running an action, and the refusal in the audit log.

use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::*;

const PLAYBOOK: &str = r#"
name: say
trigger:
  alert: '{alertname="Down"}'
  sources: [rules, anomaly, api]
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

fn config(dir: &std::path::Path) -> std::path::PathBuf {
    std::fs::write(dir.join("say.yml"), PLAYBOOK).unwrap();
    let hash = |pw: &str| bcrypt::hash(pw, 4).unwrap();
    let cfg = format!(
        "heal:\n  playbooks: ['say.yml']\nauth:\n  roles:\n    lead: {{permissions: [read, heal_decide]}}\n  users:\n    root: {{password_hash: '{}', role: admin}}\n    dev: {{password_hash: '{}', role: developer, scope: '{{service=\"checkout\"}}'}}\n    sre: {{password_hash: '{}', role: sre}}\n",
        hash("root-pw"),
        hash("dev-pw"),
        hash("sre-pw"),
    );
    let path = dir.join("medic.yml");
    std::fs::write(&path, cfg).unwrap();
    path
}

/// `medic <args> --url <base> --user root:root-pw`: (success, stdout, stderr).
fn medic_as_root(base: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_medic"))
        .args(args)
        .args(["--url", base, "--user", "root:root-pw"])
        .env_remove("MEDIC_USER")
        .env_remove("MEDIC_TOKEN")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

async fn status_with_token(c: &reqwest::Client, url: &str, token: &str) -> u16 {
    c.get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn tokens_are_made_shown_once_expired_revoked_and_kept_as_hashes() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let data = dir.path().join("data");
    let m = Medic::start(&data, Some(&cfg), &[]);
    let base = format!("http://{}", m.addr);
    let c = client();
    let alerts = m.url("/api/v1/alerts");

    let (ok, ci, err) = medic_as_root(
        &base,
        &[
            "token",
            "create",
            "ci",
            "--role",
            "lead",
            "--expires-in",
            "1h",
        ],
    );
    assert!(ok, "{err}");
    assert!(ci.starts_with("medic_") && !ci.contains(' '), "{ci}");
    assert!(err.contains("shown this once"), "{err}");
    assert_eq!(status_with_token(&c, &alerts, &ci).await, 200);
    // The custom role grants read and decisions, not triggers.
    let r = c
        .post(m.url("/api/v1/medic/heal/trigger"))
        .bearer_auth(&ci)
        .json(&json!({"playbook": "say"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    let (ok, short, _) = medic_as_root(
        &base,
        &[
            "token",
            "create",
            "short",
            "--role",
            "viewer",
            "--expires-in",
            "1s",
        ],
    );
    assert!(ok);
    let (ok, _, err) = medic_as_root(&base, &["token", "create", "d", "--role", "developer"]);
    assert!(!ok && err.contains("needs a scope"), "{err}");
    let (ok, _, err) = medic_as_root(&base, &["token", "create", "ci", "--role", "viewer"]);
    assert!(
        !ok && err.contains("409") && err.contains("exists already"),
        "{err}"
    );
    // Only an admin makes tokens.
    let r = c
        .post(m.url("/api/v1/medic/tokens"))
        .bearer_auth(&ci)
        .json(&json!({"name": "x", "role": "admin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(status_with_token(&c, &alerts, &short).await, 401, "expired");

    let (ok, list, err) = medic_as_root(&base, &["token", "list"]);
    assert!(ok, "{err}");
    assert!(list.contains("ci") && list.contains("lead"), "{list}");
    assert!(list.contains("expired"), "{list}");
    let (_, json_list, _) = medic_as_root(&base, &["token", "list", "--format", "json"]);
    for secret in [&ci, &short] {
        assert!(!json_list.contains(secret.as_str()), "a token in the list");
    }
    let db = std::fs::read(data.join("auth.db")).unwrap();
    assert!(
        !db.windows(ci.len()).any(|w| w == ci.as_bytes()),
        "the token itself is in auth.db"
    );

    // A restart keeps it; a revocation ends it at once.
    drop(m);
    let m = Medic::start(&data, Some(&cfg), &[]);
    let base = format!("http://{}", m.addr);
    let alerts = m.url("/api/v1/alerts");
    assert_eq!(status_with_token(&c, &alerts, &ci).await, 200);
    let (ok, out, err) = medic_as_root(&base, &["token", "revoke", "ci"]);
    assert!(ok && out.contains("revoked ci"), "{out}{err}");
    assert_eq!(status_with_token(&c, &alerts, &ci).await, 401);

    // The audit log has who made and revoked it, never the token.
    let audit = c
        .get(m.url("/api/v1/medic/audit?action=POST%20/api/v1/medic/tokens&limit=100"))
        .basic_auth("root", Some("root-pw"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(audit.contains("\"actor\":\"root\""), "{audit}");
    assert!(!audit.contains(&ci), "a token in the audit log");
}

/// GET `path` as the user `user` (password `<user>-pw`), as JSON.
async fn get_as(c: &reqwest::Client, m: &Medic, path: &str, user: &str) -> Value {
    c.get(m.url(path))
        .basic_auth(user, Some(format!("{user}-pw")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn post(c: &reqwest::Client, m: &Medic, path: &str, user: &str, body: Value) -> u16 {
    c.post(m.url(path))
        .basic_auth(user, Some(format!("{user}-pw")))
        .json(&body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_developer_acts_only_inside_its_scope_and_ingest_alerts_start_no_repair() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let m = Medic::start(&dir.path().join("data"), Some(&cfg), &[]);
    let c = client();
    let (ok, ingest, err) = medic_as_root(
        &format!("http://{}", m.addr),
        &["token", "create", "pusher", "--role", "ingest"],
    );
    assert!(ok, "{err}");

    // An alert from the ingest identity: routed and stored, but no repair starts.
    let alert = |instance: &str, service: &str| json!([{"labels": {"alertname": "Down", "instance": instance, "service": service}}]);
    let r = c
        .post(m.url("/api/v2/alerts"))
        .bearer_auth(&ingest)
        .json(&alert("web-1", "payments"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The same alert from an identity that may trigger: repaired (the positive control).
    assert_eq!(
        post(&c, &m, "/api/v2/alerts", "sre", alert("web-2", "checkout")).await,
        200
    );
    let mut executions = Vec::new();
    for _ in 0..100 {
        let v: Value = get_as(&c, &m, "/api/v1/medic/heal/executions", "sre").await;
        executions = v["data"].as_array().cloned().unwrap_or_default();
        if !executions.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let targets: Vec<&str> = executions
        .iter()
        .filter_map(|e| e["target"].as_str())
        .collect();
    assert_eq!(targets, ["web-2"], "{executions:?}");
    let refused: Value = get_as(
        &c,
        &m,
        "/api/v1/medic/audit?action=heal.trigger_refused",
        "sre",
    )
    .await;
    let rows = refused["data"].as_array().unwrap();
    assert!(
        rows.iter()
            .any(|r| r["actor"] == "pusher" && r["detail"].to_string().contains("web-1")),
        "{rows:?}"
    );

    // The developer (scope service="checkout"): a trigger, a silence and an ack outside its
    // scope are refused; inside, they go through.
    let trigger = |service: &str| json!({"playbook": "say", "by": "mallory", "labels": {"alertname": "Down", "instance": "web-9", "service": service}});
    assert_eq!(
        post(
            &c,
            &m,
            "/api/v1/medic/heal/trigger",
            "dev",
            trigger("payments")
        )
        .await,
        403
    );
    assert_eq!(
        post(
            &c,
            &m,
            "/api/v1/medic/heal/trigger",
            "dev",
            trigger("checkout")
        )
        .await,
        200
    );
    // The journal names the authenticated caller, whatever the body claims.
    let v: Value = get_as(&c, &m, "/api/v1/medic/heal/executions?target=web-9", "sre").await;
    let text = v["data"].to_string();
    assert!(
        text.contains("\"dev\"") && !text.contains("mallory"),
        "{text}"
    );
    let now = medic_model::format_rfc3339(medic_model::Clock::now_ms(&medic_model::SystemClock));
    let silence = |service: &str| {
        json!({"matchers": [{"name": "service", "value": service, "isRegex": false}],
               "startsAt": now, "endsAt": "2099-01-01T00:00:00Z", "createdBy": "dev", "comment": "x"})
    };
    assert_eq!(
        post(&c, &m, "/api/v2/silences", "dev", silence("payments")).await,
        403
    );
    assert_eq!(
        post(&c, &m, "/api/v2/silences", "dev", silence("checkout")).await,
        200
    );
    let groups: Value = get_as(&c, &m, "/api/v1/medic/alerts/groups", "dev").await;
    let key_of = |service: &str| {
        groups["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["alerts"].to_string().contains(service))
            .map(|g| g["groupKey"].as_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("no group with {service}: {groups}"))
    };
    let ack = |key: String| json!({"group": key, "author": "dev", "comment": "mine"});
    assert_eq!(
        post(
            &c,
            &m,
            "/api/v1/medic/alerts/ack",
            "dev",
            ack(key_of("payments"))
        )
        .await,
        403
    );
}
