//! Incidents in the real binary: alert groups open them at the policy's level and join them
//! by service, people move them through the CLI, receivers hear of them, wrong requests get
//! errors that say what is wrong, and they survive `kill -9` — including a group that resolved
//! while medic was down.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::*;

const AM: &str = "route:\n  receiver: alerts\n  group_by: [alertname, service]\n  group_wait: 200ms\n  group_interval: 1s\nreceivers:\n  - name: alerts\n  - name: pager\n    webhook_configs: [{url: 'PAGER'}]\n";

async fn post_alerts(c: &reqwest::Client, m: &Medic, body: Value) {
    let r = c
        .post(m.url("/api/v2/alerts"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

fn alert(name: &str, service: &str, severity: &str, ends: Option<i64>) -> Value {
    let mut a = json!({
        "labels": {"alertname": name, "service": service, "severity": severity, "instance": format!("{service}-1")},
        "startsAt": medic_model::format_rfc3339(now_ms() - 1000),
    });
    if let Some(e) = ends {
        a["endsAt"] = json!(medic_model::format_rfc3339(e));
    }
    a
}

async fn incidents(c: &reqwest::Client, m: &Medic) -> Vec<Value> {
    get_json(c, &m.url("/api/v1/medic/incidents")).await["data"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn incident(c: &reqwest::Client, m: &Medic, id: u64) -> Value {
    get_json(c, &m.url(&format!("/api/v1/medic/incidents/{id}"))).await["data"].clone()
}

fn cli(m: &Medic, args: &[&str]) -> (bool, String, String) {
    medic_cli_at(m, args)
}

fn kinds(inc: &Value) -> Vec<String> {
    inc["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incidents_open_join_move_through_the_cli_and_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let cap = Capture::start().await;
    let am = AM.replace("PAGER", &cap.url("/pager"));
    let m = medic_with_alerting(dir.path(), &am, "incidents:\n  receivers: [pager]\n");
    let c = client();

    // A critical alert of checkout opens a P1; a warning of checkout joins it; one of search
    // opens its own P2; an info alert opens nothing.
    post_alerts(
        &c,
        &m,
        json!([alert("HighErrors", "checkout", "critical", None)]),
    )
    .await;
    let first = eventually("the P1 incident", &m, || async {
        incidents(&c, &m)
            .await
            .into_iter()
            .find(|i| i["level"] == "P1")
    })
    .await;
    assert_eq!(first["status"], "triggered");
    assert_eq!(first["key"], json!([["service", "checkout"]]));
    assert_eq!(first["title"], "HighErrors");
    let id = first["id"].as_u64().unwrap();
    post_alerts(
        &c,
        &m,
        json!([
            alert("SlowRequests", "checkout", "warning", None),
            alert("SearchDown", "search", "warning", None),
            alert("DiskInfo", "batch", "info", None),
        ]),
    )
    .await;
    let all = eventually("three groups seen", &m, || async {
        let all = incidents(&c, &m).await;
        let joined = incident(&c, &m, id).await["groups"]
            .as_object()
            .is_some_and(|g| g.len() == 2);
        (all.len() == 2 && joined).then_some(all)
    })
    .await;
    assert_eq!(all[0]["level"], "P2", "newest first: {all:#?}");
    assert_eq!(all[0]["title"], "SearchDown");
    // The pager heard of both openings, as MedicIncident alerts.
    let opened = cap
        .wait_for_match(
            "/pager",
            |b| b["alerts"][0]["labels"]["incident"] == json!(id.to_string()),
            Duration::from_secs(10),
        )
        .await;
    let a = &opened["alerts"][0];
    assert_eq!(a["labels"]["alertname"], "MedicIncident");
    assert_eq!(a["labels"]["medic_event"], "opened");
    assert_eq!(a["labels"]["level"], "P1");
    assert_eq!(a["labels"]["service"], "checkout");

    // People, through the CLI.
    let (ok, out, err) = cli(&m, &["incident", "ack", &id.to_string(), "-m", "on it"]);
    assert!(ok, "{err}");
    assert!(out.contains("is acknowledged"), "{out}");
    let (ok, _, err) = cli(&m, &["incident", "assign", &id.to_string(), "alice"]);
    assert!(ok, "{err}");
    let (ok, _, err) = cli(
        &m,
        &["incident", "comment", &id.to_string(), "rolled back 1.4.2"],
    );
    assert!(ok, "{err}");
    let (ok, out, _) = cli(&m, &["incident", "list"]);
    assert!(
        ok && out.contains("acknowledged") && out.contains("alice"),
        "{out}"
    );
    let (ok, out, _) = cli(&m, &["incident", "show", &id.to_string()]);
    assert!(
        ok && out.contains("rolled back 1.4.2") && out.contains("on it"),
        "{out}"
    );

    // Wrong requests: errors that say what.
    let (ok, _, err) = cli(&m, &["incident", "close", &id.to_string()]);
    assert!(!ok);
    assert!(
        err.contains("409")
            && err.contains(&format!(
                "incident {id} is acknowledged: cannot close it; resolve it first"
            )),
        "{err}"
    );
    let (ok, _, err) = cli(&m, &["incident", "ack", "999"]);
    assert!(
        !ok && err.contains("404") && err.contains("no incident 999"),
        "{err}"
    );
    let r = c
        .post(m.url(&format!("/api/v1/medic/incidents/{id}/explode")))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("unknown incident action \\\"explode\\\""));
    let r = c
        .post(m.url("/api/v1/medic/incidents"))
        .json(&json!({"title": "x", "level": "P9"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let text = r.text().await.unwrap();
    assert!(
        text.contains("unknown variant `P9`") && text.contains("line 1 column"),
        "{text}"
    );
    let r = c
        .get(m.url("/api/v1/medic/incidents?status=open"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("status: \\\"open\\\" is not a status"));

    // kill -9 right after an acknowledged change.
    let search = all[0]["id"].as_u64().unwrap();
    let (ok, _, err) = cli(&m, &["incident", "comment", &id.to_string(), "last words"]);
    assert!(ok, "{err}");
    m.kill9();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let m = medic_with_alerting(dir.path(), &am, "incidents:\n  receivers: [pager]\n");
    let inc = incident(&c, &m, id).await;
    assert_eq!(inc["status"], "acknowledged");
    // The search alert's sender says it resolved: the restarted medic, which saw the group
    // firing only before the kill, resolves its incident.
    post_alerts(
        &c,
        &m,
        json!([alert(
            "SearchDown",
            "search",
            "warning",
            Some(now_ms() - 100)
        )]),
    )
    .await;
    assert_eq!(inc["assignee"], "alice");
    let k = kinds(&inc);
    assert_eq!(k.iter().filter(|k| *k == "comment").count(), 3, "{k:?}");
    assert_eq!(
        inc["timeline"].as_array().unwrap().last().unwrap()["detail"],
        "last words"
    );
    let resolved = eventually(
        "the search incident resolved after the restart",
        &m,
        || async {
            let i = incident(&c, &m, search).await;
            (i["status"] == "resolved").then_some(i)
        },
    )
    .await;
    assert!(kinds(&resolved).contains(&"alert_resolved".to_string()));
    // Figures: acknowledged within the minute, resolved not yet for the checkout one.
    let f = &inc["figures"];
    assert!(f["time_to_acknowledge"].as_i64().unwrap() < 60_000, "{f}");
    assert!(f["time_to_resolve"].is_null());
    // Resolve and close through the CLI; the report holds the timeline.
    let (ok, _, err) = cli(
        &m,
        &[
            "incident",
            "resolve",
            &id.to_string(),
            "-m",
            "fixed by rollback",
        ],
    );
    assert!(ok, "{err}");
    let (ok, _, err) = cli(&m, &["incident", "close", &id.to_string()]);
    assert!(ok, "{err}");
    let (ok, md, err) = cli(&m, &["incident", "report", &id.to_string()]);
    assert!(ok, "{err}");
    assert!(
        md.starts_with(&format!("# Incident #{id} (P1): HighErrors")),
        "{md}"
    );
    for want in [
        "## Timeline",
        "rolled back 1.4.2",
        "fixed by rollback",
        "## Action items",
        "HighErrors",
    ] {
        assert!(md.contains(want), "{want} missing:\n{md}");
    }
    // medic's own metrics.
    let metrics = c
        .get(m.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        counter(&metrics, "medic_incidents{status=\"closed\",level=\"P1\"}"),
        1.0,
        "{metrics}"
    );
}

const SHOP_RULES: &str = r#"
groups:
  - name: shop
    interval: 1s
    rules:
      - alert: ShopErrors
        expr: app_error_ratio > 0.5
        labels: {severity: critical, service: shop}
        annotations: {summary: the shop answers with errors}
"#;

/// The `<svg>…</svg>` elements of an HTML text, each parsed as XML.
fn svgs(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(a) = rest.find("<svg ") {
        let b = rest[a..].find("</svg>").expect("an svg element is closed") + a + 6;
        out.push(rest[a..b].to_string());
        rest = &rest[b..];
    }
    out
}

/// The whole story with real parts: a real service gets a bad deploy, its alert opens a P1
/// incident, medic's playbook finds the deploy, rolls it back and verifies the fix before any
/// person acknowledges, so the incident is auto-mitigated; the alert resolves and so does the
/// incident. Its report holds the timeline, the repair's evidence and a chart of the error
/// ratio with the fault, alert, repair and fix marked, which Chromium renders.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_service_repaired_by_medic_is_an_auto_mitigated_incident_with_a_report() {
    use crate::heal::{app, finished, medic, playbook, wait_up, APP};
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("app");
    let port = free_port();
    app("start", &state, port, &[]);
    let cap = Capture::start().await;
    let s = state.display();
    let pb = playbook(
        "shop-rollback",
        "ShopErrors",
        &format!(
            "collect:\n  - name: deployed\n    exec:\n      command: [python3, {APP}, status, '{s}', '{port}']\ndiagnose:\n  - cause: bad_deploy\n    when: 'deployed.json.previous != \"\"'\n    actions: [rollback]\nactions:\n  rollback:\n    exec:\n      command: [python3, {APP}, rollback, '{s}', '{port}']\nverify:\n  query: 'app_error_ratio == 0'\n  after: 1s\n  within: 20s\n  interval: 500ms\n"
        ),
    );
    let m = medic(
        dir.path(),
        &cap,
        Some(port),
        SHOP_RULES,
        &[("rollback", pb)],
    );
    let c = client();
    wait_up(&c, &m).await;
    // Some healthy time before the fault, for the chart.
    tokio::time::sleep(Duration::from_secs(3)).await;
    app("deploy", &state, port, &["bad"]);
    let e = finished(&c, &m, "shop-rollback", Duration::from_secs(60)).await;
    assert_eq!(e["status"], "succeeded", "{e:#}");
    // Resolved, and the repair's verification (which may end after the alert resolved) read.
    let inc = eventually("the incident resolved and mitigated", &m, || async {
        incidents(&c, &m)
            .await
            .into_iter()
            .find(|i| i["status"] == "resolved" && !i["mitigated_at"].is_null())
    })
    .await;
    let id = inc["id"].as_u64().unwrap();
    let inc = incident(&c, &m, id).await;
    assert_eq!(inc["level"], "P1", "critical opens a P1: {inc:#}");
    assert_eq!(inc["key"], json!([["service", "shop"]]));
    assert_eq!(inc["auto_mitigated"], true, "{inc:#}");
    assert!(inc["acknowledged_at"].is_null());
    assert_eq!(inc["executions"], json!([e["id"]]));
    let k = kinds(&inc);
    let pos = |kind: &str| {
        k.iter()
            .position(|x| x == kind)
            .unwrap_or_else(|| panic!("no {kind} in {k:?}"))
    };
    assert!(pos("opened") < pos("repair"));
    assert!(pos("repair") < pos("mitigated"));
    // The rollback fixes it at once, so the alert may resolve before the verification ends:
    // both orders are the truth of a run.
    assert!(pos("opened") < pos("resolved"));
    let repair_lines: Vec<&str> = inc["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "repair")
        .map(|e| e["detail"].as_str().unwrap())
        .collect();
    assert!(
        repair_lines
            .iter()
            .any(|l| l.contains("action rollback succeeded"))
            && repair_lines.iter().any(|l| l.contains("verify")),
        "{repair_lines:#?}"
    );
    let f = &inc["figures"];
    assert!(f["time_to_acknowledge"].is_null());
    assert!(f["time_to_mitigate"].as_i64().unwrap() <= f["time_to_resolve"].as_i64().unwrap());

    // The report, both ways.
    let md = c
        .get(m.url(&format!("/api/v1/medic/incidents/{id}/report")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for want in [
        "auto-mitigated",
        "## Timeline",
        "## Repairs",
        "shop-rollback on 127.0.0.1",
        "bad\\_deploy",
        "\"version\": \"bad\"",
        "## Key series",
        "data:image/svg+xml;base64,",
        "## Action items",
    ] {
        assert!(md.contains(want), "{want:?} missing from:\n{md}");
    }
    let html = c
        .get(m.url(&format!("/api/v1/medic/incidents/{id}/report?format=html")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let charts = svgs(&html);
    assert_eq!(charts.len(), 1, "one alert, one chart");
    let doc = roxmltree::Document::parse(&charts[0]).expect("the chart is well-formed SVG");
    let with_class = |c: &str| {
        doc.descendants()
            .filter(|n| n.attribute("class") == Some(c))
            .count()
    };
    assert!(with_class("series") >= 1);
    assert_eq!(with_class("threshold"), 1, "the rule's 0.5");
    let marks: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .collect();
    for want in ["fault", "alert", "repair: rollback", "verified", "resolved"] {
        assert!(marks.contains(&want), "marker {want} missing: {marks:?}");
    }
    let file = dir.path().join("report.html");
    std::fs::write(&file, &html).unwrap();
    let png = dir.path().join("report.png");
    let drawn = render_in_chromium(file.to_str().unwrap(), &png);
    assert_eq!(drawn["errors"], json!([]), "{drawn}");
    assert_eq!(drawn["requests"], json!([]), "self-contained: {drawn}");
    let svg = &drawn["svgs"][0];
    assert!(svg["width"].as_f64().unwrap() >= 700.0, "{drawn}");
    assert!(
        svg["series"].as_u64().unwrap() >= 1 && svg["visible_lines"].as_u64().unwrap() > 5,
        "{drawn}"
    );
    assert!(
        std::fs::metadata(&png).unwrap().len() > 20_000,
        "a screenshot with something in it"
    );
    // Kept for people to look at when the test runs in CI.
    let _ = std::fs::copy(&png, std::env::temp_dir().join("medic-incident-report.png"));
}
