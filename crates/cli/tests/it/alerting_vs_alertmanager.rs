//! The same alertmanager.yml and the same alerts and silences, given to a real Alertmanager
//! 0.25 and to medic: both must route, group, inhibit and silence alike — the same webhook
//! messages to the same receivers, the same alert status through API v2.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::*;

const CONFIG: &str = r#"
global:
  resolve_timeout: 1m
route:
  receiver: team
  group_by: [alertname, cluster]
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 1h
  routes:
    - matchers: [severity="critical"]
      receiver: pager
      continue: true
    - matchers: [team="db"]
      receiver: db
      group_by: ['...']
receivers:
  - name: team
    webhook_configs: [{url: "HOOK/team"}]
  - name: pager
    webhook_configs: [{url: "HOOK/pager", send_resolved: false}]
  - name: db
    webhook_configs: [{url: "HOOK/db"}]
inhibit_rules:
  - source_matchers: [severity="critical"]
    target_matchers: [severity="warning"]
    equal: [cluster]
"#;

fn alert(labels: &[(&str, &str)], starts: &str, ends: Option<&str>) -> Value {
    let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
    let mut a = json!({
        "labels": labels,
        "annotations": {"summary": format!("{} is bad", labels["alertname"])},
        "startsAt": starts,
        "generatorURL": "http://prometheus.example/graph?g0.expr=up",
    });
    if let Some(e) = ends {
        a["endsAt"] = json!(e);
    }
    a
}

async fn post(c: &reqwest::Client, url: &str, body: &Value) {
    let r = c.post(url).json(body).send().await.unwrap();
    let status = r.status();
    assert!(
        status.is_success(),
        "{url}: {status} {}",
        r.text().await.unwrap()
    );
}

fn rfc3339(ms: i64) -> String {
    medic_model::format_rfc3339(ms)
}

/// The last message per group key for one receiver, without fields that name the sender.
fn last_per_group(msgs: &[Value]) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for m in msgs {
        let mut m = m.clone();
        m.as_object_mut().unwrap().remove("externalURL");
        out.insert(m["groupKey"].as_str().unwrap().to_string(), m);
    }
    out
}

/// Every alert (fingerprint and status) a receiver was ever told about.
fn ever_told(msgs: &[Value]) -> BTreeSet<(String, String)> {
    msgs.iter()
        .flat_map(|m| m["alerts"].as_array().unwrap().clone())
        .map(|a| {
            (
                a["labels"]["alertname"].as_str().unwrap().to_string()
                    + "/"
                    + a["labels"]["cluster"].as_str().unwrap_or(""),
                a["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// API v2 alerts by fingerprint: state, how many silences, inhibiting fingerprints, receivers.
async fn status(c: &reqwest::Client, url: &str) -> BTreeMap<String, Value> {
    let v = get_json(c, url).await;
    v.as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["fingerprint"].as_str().unwrap().to_string(),
                json!({
                    "labels": a["labels"],
                    "state": a["status"]["state"],
                    "silenced": a["status"]["silencedBy"].as_array().unwrap().len(),
                    "inhibitedBy": a["status"]["inhibitedBy"],
                    "receivers": a["receivers"],
                    "startsAt": a["startsAt"],
                }),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn medic_routes_groups_inhibits_and_silences_like_alertmanager() {
    let dir = tempfile::tempdir().unwrap();
    let hooks = Capture::start().await;
    let am = Alertmanager::start(dir.path(), &CONFIG.replace("HOOK", &hooks.url("/am")));
    let medic = medic_with_alerting(
        dir.path(),
        &CONFIG.replace("HOOK", &hooks.url("/medic")),
        "",
    );
    let c = client();
    let targets = [(am.url(""), "/am"), (medic.url(""), "/medic")];

    let now = medic_model::Clock::now_ms(&medic_model::SystemClock);
    let start = rfc3339(now - 10_000);
    let silence = json!({
        "matchers": [{"name": "alertname", "value": "Noise", "isRegex": false, "isEqual": true}],
        "startsAt": rfc3339(now - 1000), "endsAt": rfc3339(now + 3_600_000),
        "createdBy": "test", "comment": "known noisy",
    });
    let phase1 = json!([
        alert(
            &[
                ("alertname", "Down"),
                ("cluster", "eu"),
                ("severity", "critical"),
                ("instance", "a")
            ],
            &start,
            None
        ),
        alert(
            &[
                ("alertname", "Latency"),
                ("cluster", "eu"),
                ("severity", "warning"),
                ("instance", "a")
            ],
            &start,
            None
        ),
        alert(
            &[
                ("alertname", "Latency"),
                ("cluster", "us"),
                ("severity", "warning"),
                ("instance", "b")
            ],
            &start,
            None
        ),
        alert(
            &[
                ("alertname", "DiskFull"),
                ("cluster", "eu"),
                ("team", "db"),
                ("severity", "info"),
                ("instance", "db1")
            ],
            &start,
            None
        ),
        alert(
            &[("alertname", "Noise"), ("cluster", "eu"), ("instance", "c")],
            &start,
            None
        ),
    ]);
    for (base, _) in &targets {
        post(&c, &format!("{base}/api/v2/silences"), &silence).await;
        post(&c, &format!("{base}/api/v2/alerts"), &phase1).await;
    }
    for (_, p) in &targets {
        hooks
            .wait_for(&format!("{p}/pager"), 1, Duration::from_secs(20))
            .await;
        hooks
            .wait_for(&format!("{p}/team"), 1, Duration::from_secs(20))
            .await;
        hooks
            .wait_for(&format!("{p}/db"), 1, Duration::from_secs(20))
            .await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let s_am = status(&c, &am.url("/api/v2/alerts")).await;
    let s_medic = status(&c, &medic.url("/api/v2/alerts")).await;
    assert_eq!(
        s_medic, s_am,
        "API v2 alert status differs (left medic, right Alertmanager)"
    );

    // Phase 2: the critical alert resolves (its inhibition lifts) and another fires in us.
    let later = rfc3339(medic_model::Clock::now_ms(&medic_model::SystemClock));
    let phase2 = json!([
        alert(
            &[
                ("alertname", "Down"),
                ("cluster", "eu"),
                ("severity", "critical"),
                ("instance", "a")
            ],
            &start,
            Some(&later)
        ),
        alert(
            &[
                ("alertname", "Down"),
                ("cluster", "us"),
                ("severity", "critical"),
                ("instance", "x")
            ],
            &start,
            None
        ),
    ]);
    for (base, _) in &targets {
        post(&c, &format!("{base}/api/v2/alerts"), &phase2).await;
    }
    tokio::time::sleep(Duration::from_secs(7)).await;

    let s_am = status(&c, &am.url("/api/v2/alerts")).await;
    let s_medic = status(&c, &medic.url("/api/v2/alerts")).await;
    assert_eq!(
        s_medic, s_am,
        "API v2 alert status differs after phase 2 (left medic, right Alertmanager)"
    );
    for r in ["team", "pager", "db"] {
        let m = hooks.at(&format!("/medic/{r}"));
        let a = hooks.at(&format!("/am/{r}"));
        assert_eq!(
            last_per_group(&m),
            last_per_group(&a),
            "receiver {r}: last message per group differs (left medic, right Alertmanager)"
        );
        assert_eq!(
            ever_told(&m),
            ever_told(&a),
            "receiver {r}: alerts told differ"
        );
        for msg in &m {
            assert!(
                !msg.to_string().contains("\"Noise\""),
                "a silenced alert was sent: {msg:#}"
            );
        }
    }
    // What both must have done, written out by hand.
    let told = |r: &str| ever_told(&hooks.at(&format!("/medic/{r}")));
    let set = |xs: &[(&str, &str)]| -> BTreeSet<(String, String)> {
        xs.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    assert_eq!(
        told("pager"),
        set(&[("Down/eu", "firing"), ("Down/us", "firing")])
    );
    assert_eq!(told("db"), set(&[("DiskFull/eu", "firing")]));
    // Latency/eu reaches the team only once Down/eu resolved; Latency/us is inhibited by
    // Down/us afterwards but was told before.
    assert_eq!(
        told("team"),
        set(&[("Latency/eu", "firing"), ("Latency/us", "firing")])
    );

    let g_medic = get_json(&c, &medic.url("/api/v2/alerts/groups")).await;
    let g_am = get_json(&c, &am.url("/api/v2/alerts/groups")).await;
    let shape = |g: &Value| -> BTreeSet<String> {
        g.as_array()
            .unwrap()
            .iter()
            .map(|g| {
                let mut fps: Vec<&str> = g["alerts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a["fingerprint"].as_str().unwrap())
                    .collect();
                fps.sort();
                format!("{} {} {:?}", g["receiver"]["name"], g["labels"], fps)
            })
            .collect()
    };
    assert_eq!(shape(&g_medic), shape(&g_am), "alert groups differ");
}

const CONFIG_PARITY: &str = r#"
route:
  receiver: team
  group_by: [alertname]
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 1h
  routes:
    - match_re: {service: "foo|bar"}
      receiver: svc
      group_by: []
receivers:
  - name: team
    webhook_configs: [{url: "HOOK/team"}]
  - name: svc
    webhook_configs: [{url: "HOOK/svc", max_alerts: 3}]
"#;

/// What a migration from Alertmanager once changed: `group_by: []` inherits the parent's
/// grouping, `match_re` group keys are anchored (so PagerDuty/Opsgenie dedup keys stay), alerts
/// are ordered by job, then instance (missing last), then label set — which decides what
/// `max_alerts` keeps —, a batch with one invalid alert keeps the valid ones, an alert with only
/// `endsAt` starts then, and the API's shapes (`generatorURL` and `cluster.name` omitted when
/// empty, groups in order, receivers in config order).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migration_from_alertmanager_keeps_keys_order_and_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let hooks = Capture::start().await;
    let am = Alertmanager::start(
        dir.path(),
        &CONFIG_PARITY.replace("HOOK", &hooks.url("/am")),
    );
    let medic = medic_with_alerting(
        dir.path(),
        &CONFIG_PARITY.replace("HOOK", &hooks.url("/medic")),
        "",
    );
    let c = client();
    let now = medic_model::Clock::now_ms(&medic_model::SystemClock);
    let start = rfc3339(now - 10_000);
    let mut batch = vec![];
    for (name, job, inst) in [
        ("A", Some("web"), Some("b")),
        ("A", Some("web"), None),
        ("A", None, Some("a")),
        ("A", Some("api"), Some("z")),
        ("A", None, None),
        ("B", Some("web"), Some("a")),
    ] {
        let mut labels = vec![("alertname", name), ("service", "foo")];
        if let Some(j) = job {
            labels.push(("job", j));
        }
        if let Some(i) = inst {
            labels.push(("instance", i));
        }
        let mut a = alert(&labels, &start, None);
        if job.is_none() && inst.is_none() {
            a.as_object_mut().unwrap().remove("generatorURL");
        }
        batch.push(a);
    }
    // Invalid: an empty label name. Alertmanager answers 400 and keeps the others.
    batch.push(json!({"labels": {"alertname": "C", "": "x"}, "startsAt": start}));
    // Only an end: it starts then.
    let end = rfc3339(now + 3_600_000);
    batch.push(json!({"labels": {"alertname": "D", "service": "bar"}, "endsAt": end}));
    let batch = Value::Array(batch);
    for base in [am.url(""), medic.url("")] {
        let r = c
            .post(format!("{base}/api/v2/alerts"))
            .json(&batch)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400, "{base}");
    }
    for p in ["/am", "/medic"] {
        hooks
            .wait_for(&format!("{p}/svc"), 3, Duration::from_secs(20))
            .await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let m = last_per_group(&hooks.at("/medic/svc"));
    let a = last_per_group(&hooks.at("/am/svc"));
    assert_eq!(
        m.keys().collect::<Vec<_>>(),
        a.keys().collect::<Vec<_>>(),
        "group keys differ (left medic, right Alertmanager)"
    );
    assert_eq!(m.len(), 3, "one group per alertname: {:#?}", m.keys());
    assert!(
        m.keys().any(|k| k.contains(r#"service=~\"^(?:foo|bar)$\""#)
            || k.contains(r#"service=~"^(?:foo|bar)$""#)),
        "{:#?}",
        m.keys()
    );
    assert_eq!(m, a, "messages differ (left medic, right Alertmanager)");

    let s_am = status(&c, &am.url("/api/v2/alerts")).await;
    let s_medic = status(&c, &medic.url("/api/v2/alerts")).await;
    assert_eq!(
        s_medic, s_am,
        "API v2 alerts differ (left medic, right Alertmanager)"
    );
    let raw_medic = get_json(&c, &medic.url("/api/v2/alerts")).await;
    let raw_am = get_json(&c, &am.url("/api/v2/alerts")).await;
    let with_url = |v: &Value| {
        v.as_array()
            .unwrap()
            .iter()
            .filter(|a| a.get("generatorURL").is_some())
            .count()
    };
    assert_eq!(with_url(&raw_medic), with_url(&raw_am));
    let order = |g: &Value| -> Vec<String> {
        g.as_array()
            .unwrap()
            .iter()
            .map(|g| {
                let fps: Vec<&str> = g["alerts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a["fingerprint"].as_str().unwrap())
                    .collect();
                format!("{} {} {:?}", g["receiver"]["name"], g["labels"], fps)
            })
            .collect()
    };
    let g_medic = get_json(&c, &medic.url("/api/v2/alerts/groups")).await;
    let g_am = get_json(&c, &am.url("/api/v2/alerts/groups")).await;
    assert_eq!(
        order(&g_medic),
        order(&g_am),
        "groups or their order differ"
    );
    let st_medic = get_json(&c, &medic.url("/api/v2/status")).await;
    let st_am = get_json(&c, &am.url("/api/v2/status")).await;
    assert_eq!(
        st_medic["cluster"].get("name").is_some(),
        st_am["cluster"].get("name").is_some()
    );
    let r_medic = get_json(&c, &medic.url("/api/v2/receivers")).await;
    let r_am = get_json(&c, &am.url("/api/v2/receivers")).await;
    assert_eq!(r_medic, r_am, "receivers differ");
}
