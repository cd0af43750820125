//! Rules in the running server: evaluation on schedule, `/api/v1/rules` and `/api/v1/alerts`,
//! metrics, reloads that keep alert state (and keep the old rules when the new ones are
//! broken), and `for` state restored after a restart.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::support::*;

const RULES: &str = r#"groups:
- name: temps
  interval: 1s
  rules:
  - record: temp:max
    expr: max by (room) (temp)
  - alert: Hot
    expr: temp > 90
    labels: {severity: page}
    annotations:
      summary: '{{ $labels.room }} at {{ $value }} in {{ $externalLabels.site }}'
  - alert: SlowlyHot
    expr: temp > 90
    for: 20m
  - record: broken
    expr: temp + on() temp
"#;

fn write_config(dir: &Path, rules: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(dir.join("rules")).unwrap();
    std::fs::write(dir.join("rules/temps.yml"), rules).unwrap();
    let cfg = dir.join("medic.yml");
    std::fs::write(
        &cfg,
        "global:\n  external_labels: {site: lab}\nscrape_configs: []\nrule_files: ['rules/*.yml']\n",
    )
    .unwrap();
    cfg
}

async fn push_temps(c: &reqwest::Client, base: &str) {
    let t = now_ms();
    let series: Vec<TestSeries> = [("kitchen", 95.0), ("cellar", 12.0)]
        .iter()
        .map(|(room, v)| {
            (
                vec![
                    ("__name__".into(), "temp".into()),
                    ("room".into(), room.to_string()),
                ],
                vec![(t, *v)],
            )
        })
        .collect();
    let r = post_write(c, base, write_request(&series)).await.unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
}

fn rule<'a>(rules: &'a Value, name: &str) -> &'a Value {
    rules["data"]["groups"][0]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no rule {name} in {rules}"))
}

async fn metric(c: &reqwest::Client, medic: &Medic, name_and_labels: &str) -> Option<f64> {
    let text = c
        .get(medic.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.strip_prefix(' '))
        .map(|v| v.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_evaluates_rules_serves_them_and_reloads_without_losing_state() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), RULES);
    let data = dir.path().join("data");
    let medic = Medic::start(&data, Some(&cfg), &[]);
    let c = client();
    push_temps(&c, &medic.url("")).await;

    // Hot fires at once (no `for`); its annotation is expanded with the external label.
    let rules: Value = eventually("Hot to fire", &medic, || async {
        let r = get_json(&c, &medic.url("/api/v1/rules")).await;
        (rule(&r, "Hot")["state"] == "firing").then_some(r)
    })
    .await;
    let hot = rule(&rules, "Hot");
    assert_eq!(hot["type"], "alerting");
    assert_eq!(hot["health"], "ok");
    assert_eq!(hot["labels"]["severity"], "page");
    assert_eq!(hot["duration"], 0.0);
    let alert = &hot["alerts"][0];
    assert_eq!(alert["labels"]["room"], "kitchen");
    assert_eq!(alert["labels"]["alertname"], "Hot");
    assert_eq!(alert["annotations"]["summary"], "kitchen at 95 in lab");
    assert_eq!(alert["value"], "9.5e+01");
    assert!(alert["activeAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(rules["data"]["groups"][0]["interval"], 1.0);
    assert_eq!(rule(&rules, "temp:max")["type"], "recording");
    assert_eq!(rule(&rules, "SlowlyHot")["state"], "pending");

    // A rule whose query fails is reported and counted; the others keep evaluating.
    let broken = rule(&rules, "broken");
    assert_eq!(broken["health"], "err", "{broken}");
    assert!(
        broken["lastError"]
            .as_str()
            .unwrap()
            .contains("many-to-many"),
        "{broken}"
    );
    let group = r#"{rule_group="rules/temps.yml;temps"}"#;
    let base = dir.path().display().to_string();
    let group = group.replace("rules/", &format!("{base}/rules/"));
    let failures = metric(
        &c,
        &medic,
        &format!("medic_rule_evaluation_failures_total{group}"),
    )
    .await
    .expect("failures metric");
    assert!(failures >= 1.0);
    assert!(metric(
        &c,
        &medic,
        &format!("medic_rule_group_last_duration_seconds{group}")
    )
    .await
    .is_some());
    // The recording rule wrote its series.
    let q = get_json(&c, &medic.url("/api/v1/query?query=temp:max")).await;
    assert_eq!(q["data"]["result"].as_array().unwrap().len(), 2, "{q}");

    let alerts = get_json(&c, &medic.url("/api/v1/alerts")).await;
    let names: Vec<&str> = alerts["data"]["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["labels"]["alertname"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"Hot") && names.contains(&"SlowlyHot"),
        "{alerts}"
    );
    let active_at = alert["activeAt"].clone();

    // A broken rule file: the reload fails, says why, and the old rules keep running.
    std::fs::write(
        dir.path().join("rules/temps.yml"),
        format!("{RULES}  - alert: Bad\n    expr: temp >\n"),
    )
    .unwrap();
    let r = c.post(medic.url("/-/reload")).send().await.unwrap();
    assert_eq!(r.status(), 500);
    let body = r.text().await.unwrap();
    assert!(
        body.contains("temps.yml:17") && body.contains("\"Bad\""),
        "{body}"
    );
    assert_eq!(
        metric(&c, &medic, "medic_config_last_reload_successful").await,
        Some(0.0)
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let r = get_json(&c, &medic.url("/api/v1/rules")).await;
    assert_eq!(rule(&r, "Hot")["state"], "firing");
    assert!(medic.stderr().contains("previous rules keep running"));

    // A good file with a changed annotation, by SIGHUP: state carries over (same activeAt)
    // and the new annotation applies.
    std::fs::write(
        dir.path().join("rules/temps.yml"),
        RULES.replace("{{ $labels.room }} at", "{{ $labels.room | toUpper }} at"),
    )
    .unwrap();
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(medic.pid() as i32, libc::SIGHUP) };
    let r = eventually("the SIGHUP reload", &medic, || async {
        let r = get_json(&c, &medic.url("/api/v1/rules")).await;
        (rule(&r, "Hot")["alerts"][0]["annotations"]["summary"] == "KITCHEN at 95 in lab")
            .then_some(r)
    })
    .await;
    assert_eq!(rule(&r, "Hot")["alerts"][0]["activeAt"], active_at);
    assert_eq!(
        metric(&c, &medic, "medic_config_last_reload_successful").await,
        Some(1.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_alerts_keep_their_for_timer_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), RULES);
    let data = dir.path().join("data");
    let medic = Medic::start(&data, Some(&cfg), &[]);
    let c = client();
    push_temps(&c, &medic.url("")).await;
    let slowly = |r: &Value| rule(r, "SlowlyHot")["alerts"][0]["activeAt"].clone();
    let first: String = eventually("SlowlyHot to be pending", &medic, || async {
        let r = get_json(&c, &medic.url("/api/v1/rules")).await;
        slowly(&r).as_str().map(String::from)
    })
    .await;
    // Pending for a few seconds, so ALERTS_FOR_STATE holds its start.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let pending_for = now_ms() - medic_model::parse_rfc3339(&first).unwrap();
    assert!(medic.terminate().success());

    let medic = Medic::start(&data, Some(&cfg), &[]);
    push_temps(&c, &medic.url("")).await;
    let restarted = now_ms();
    let again: String = eventually("SlowlyHot to be pending again", &medic, || async {
        let r = get_json(&c, &medic.url("/api/v1/rules")).await;
        slowly(&r).as_str().map(String::from)
    })
    .await;
    let again = medic_model::parse_rfc3339(&again).unwrap();
    // Restored: the timer resumes with the time already waited (about `pending_for`), instead
    // of starting over at the restart.
    let waited = restarted - again;
    assert!(
        waited >= pending_for - 2000,
        "activeAt after restart is only {waited} ms before the restart; it had been pending {pending_for} ms"
    );
}
