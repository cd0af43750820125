//! An external metrics backend (`query.backend`) with real stores: a VictoriaMetrics (Debian
//! `victoria-metrics`) and a Prometheus 2.42 (`prometheus`) hold series medic never stored;
//! medic's rules, anomaly rules, alert templates, playbooks and query API are answered by them,
//! and what the rules write reaches the store by remote write.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::support::*;

/// `text` in Prometheus's exposition format, imported into VictoriaMetrics.
async fn import(c: &reqwest::Client, vm: u16, text: String) {
    let r = c
        .post(format!("http://127.0.0.1:{vm}/api/v1/import/prometheus"))
        .body(text)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "import: {}", r.status());
}

async fn wait_healthy(c: &reqwest::Client, url: &str) {
    for _ in 0..150 {
        if c.get(url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} did not answer in 15 s");
}

fn write(dir: &Path, name: &str, text: &str) {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

const RULES: &str = r#"groups:
- name: disk
  interval: 1s
  rules:
  - record: host:disk_used:max
    expr: max by (host) (disk_used_ratio)
  - alert: DiskFull
    expr: disk_used_ratio > 0.9
    annotations:
      summary: 'fullest disk {{ with query "max(disk_used_ratio)" }}{{ . | first | value }}{{ end }}'
  - anomaly: DiskOdd
    expr: disk_used_ratio
    history: 5m
"#;

const PLAYBOOK: &str = r#"name: clean-disk
trigger:
  alert: '{alertname="DiskFull"}'
target: '{{ $labels.host }}'
collect:
  - name: used
    query: 'disk_used_ratio{host="{{ $labels.host }}"}'
diagnose:
  - cause: full
    when: 'used.value > 0.9'
    actions: [clean]
actions:
  clean:
    exec:
      command: [sh, -c, 'echo cleaned >> "$0"', LOG]
verify:
  query: 'disk_used_ratio{host="{{ $labels.host }}"} > 0'
  within: 30s
  interval: 500ms
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_playbooks_and_the_query_api_are_answered_by_victoria_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let c = client();
    let vm_port = free_port();
    let mut vm = victoria_metrics(&dir.path().join("vm"), vm_port);
    let vm_url = format!("http://127.0.0.1:{vm_port}");
    wait_healthy(&c, &format!("{vm_url}/health")).await;
    // Twenty minutes of a disk filling up on db1 and a quiet db2, only in VictoriaMetrics.
    let now = now_ms();
    let mut text = String::new();
    for t in (now - 10 * 60_000..now + 10 * 60_000).step_by(15_000) {
        text += &format!(
            "disk_used_ratio{{host=\"db1\"}} 0.97 {t}\ndisk_used_ratio{{host=\"db2\"}} 0.5 {t}\n"
        );
    }
    import(&c, vm_port, text).await;
    // Imported samples become searchable within a few seconds.
    for _ in 0..100 {
        let v = get_json(&c, &format!("{vm_url}/api/v1/query?query=disk_used_ratio")).await;
        if v["data"]["result"].as_array().is_some_and(|r| r.len() == 2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let log = dir.path().join("actions.log");
    write(dir.path(), "rules.yml", RULES);
    let playbook = PLAYBOOK.replace("LOG", &log.display().to_string());
    write(dir.path(), "playbooks/clean.yml", &playbook);
    write(
        dir.path(),
        "medic.yml",
        &format!(
            "scrape_configs: []\nglobal:\n  evaluation_interval: 1s\nrule_files: [rules.yml]\nheal:\n  playbooks: ['playbooks/*.yml']\nquery:\n  backend:\n    url: {vm_url}\n    headers: {{X-Scope-OrgID: team-a}}\nremote_write:\n  - url: {vm_url}/api/v1/write\n    name: vm\n    queue_config: {{batch_send_deadline: 500ms}}\n"
        ),
    );
    let m = Medic::start(
        &dir.path().join("data"),
        Some(&dir.path().join("medic.yml")),
        &[],
    );
    let started = std::time::Instant::now();

    // The alerting rule fires on db1 only, its annotation's query answered by the backend.
    let alert = eventually("DiskFull firing", &m, || async {
        let v = get_json(&c, &m.url("/api/v1/alerts")).await;
        v["data"]["alerts"]
            .as_array()?
            .iter()
            .find(|a| a["labels"]["alertname"] == "DiskFull" && a["state"] == "firing")
            .cloned()
    })
    .await;
    assert_eq!(alert["labels"]["host"], "db1", "{alert}");
    assert_eq!(
        alert["annotations"]["summary"], "fullest disk 0.97",
        "{alert}"
    );
    let all = get_json(&c, &m.url("/api/v1/alerts")).await;
    let disk_full = all["data"]["alerts"].as_array().unwrap().iter();
    assert_eq!(
        disk_full
            .filter(|a| a["labels"]["alertname"] == "DiskFull")
            .count(),
        1,
        "{all}"
    );

    // The playbook collects, decides and verifies through the backend.
    let e = crate::heal::finished(&c, &m, "clean-disk", Duration::from_secs(60)).await;
    assert_eq!(e["status"], "succeeded", "{e:#}");
    assert!(e["evidence"]["used"].to_string().contains("0.97"), "{e:#}");
    assert_eq!(std::fs::read_to_string(&log).unwrap().trim(), "cleaned");

    // The anomaly rule warmed its detectors from the backend's history (5 minutes at 1 s):
    // more points than medic's evaluations since it started could have given.
    let base = get_json(&c, &m.url("/api/v1/medic/anomalies/baseline?rule=DiskOdd")).await;
    let series = base["data"].as_array().expect("baseline list");
    assert_eq!(series.len(), 2, "{base}");
    let evaluations = started.elapsed().as_secs() + 1;
    assert!(
        series
            .iter()
            .all(|s| s["points"].as_u64().unwrap() >= evaluations + 100),
        "warmed from history ({evaluations} evaluations at most): {base}\n{}",
        m.stderr()
    );

    // The query API answers from the backend; medic's own store never held these series.
    let q = get_json(&c, &m.url("/api/v1/query?query=sort(disk_used_ratio)")).await;
    assert_eq!(q["data"]["result"][0]["metric"]["host"], "db2", "{q}");
    assert_eq!(q["data"]["result"][1]["value"][1], "0.97", "{q}");
    assert!(export(&c, &m.url(""), "disk_used_ratio").await.is_empty());
    let r = get_json(
        &c,
        &m.url(&format!(
            "/api/v1/query_range?query=disk_used_ratio{{host=\"db1\"}}&start={}&end={}&step=60",
            (now - 300_000) / 1000,
            now / 1000
        )),
    )
    .await;
    let points = r["data"]["result"][0]["values"].as_array().unwrap().len();
    assert!((5..=6).contains(&points), "{r}");
    let hosts = get_json(&c, &m.url("/api/v1/label/host/values")).await;
    assert_eq!(hosts["data"], serde_json::json!(["db1", "db2"]), "{hosts}");
    let s = get_json(&c, &m.url("/api/v1/series?match[]=disk_used_ratio")).await;
    assert_eq!(s["data"].as_array().unwrap().len(), 2, "{s}");

    // What the rules wrote went to the backend by remote write, and is read back from it.
    eventually(
        "the recording rule's series in VictoriaMetrics",
        &m,
        || async {
            let v = get_json(
                &c,
                &format!("{vm_url}/api/v1/query?query=host:disk_used:max"),
            )
            .await;
            (v["data"]["result"].as_array()?.len() == 2).then_some(())
        },
    )
    .await;
    let v = get_json(
        &c,
        &m.url("/api/v1/query?query=host:disk_used:max{host=\"db1\"}"),
    )
    .await;
    assert_eq!(v["data"]["result"][0]["value"][1], "0.97", "{v}");

    // A query the backend refuses comes back with its status and message.
    let r = c
        .get(m.url("/api/v1/query?query=nosuchfn(up)"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        422,
        "VictoriaMetrics answers 422 to an unknown function"
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], "error", "{body}");

    // The backend goes away: the API says so, and so do the rules.
    let _ = vm.kill();
    let _ = vm.wait();
    let r = c.get(m.url("/api/v1/query?query=up")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["errorType"], "unavailable", "{body}");
    let msg = body["error"].as_str().unwrap();
    assert!(
        msg.starts_with(&format!("query backend {vm_url}: ")),
        "{msg}"
    );
    eventually("a rule error naming the backend", &m, || async {
        let v = get_json(&c, &m.url("/api/v1/rules")).await;
        let err = v["data"]["groups"][0]["rules"][0]["lastError"]
            .as_str()?
            .to_string();
        err.contains(&format!("query backend {vm_url}"))
            .then_some(())
    })
    .await;
    let metrics = metrics_text(&c, &m).await;
    assert!(
        counter(
            &metrics,
            "medic_query_backend_requests_total{endpoint=\"/api/v1/query\",code=\"200\"}"
        ) > 10.0,
        "{metrics}"
    );
    assert!(
        counter(
            &metrics,
            "medic_query_backend_requests_total{endpoint=\"/api/v1/query\",code=\"0\"}"
        ) >= 1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_and_the_query_api_are_answered_by_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    let c = client();
    // Prometheus scrapes itself as job "prom-self"; medic scrapes nothing.
    let prom = Prometheus::start(
        dir.path(),
        |port| {
            format!("global: {{scrape_interval: 1s}}\nscrape_configs:\n  - job_name: prom-self\n    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n")
        },
        &[],
    );
    wait_healthy(&c, &format!("{}/-/ready", prom.url())).await;
    write(
        dir.path(),
        "rules.yml",
        "groups:\n- name: prom\n  interval: 1s\n  rules:\n  - alert: PrometheusSeen\n    expr: up{job=\"prom-self\"} == 1\n",
    );
    write(
        dir.path(),
        "medic.yml",
        &format!(
            "scrape_configs: []\nglobal:\n  evaluation_interval: 1s\nrule_files: [rules.yml]\nquery:\n  backend:\n    url: {}/\n",
            prom.url()
        ),
    );
    let m = Medic::start(
        &dir.path().join("data"),
        Some(&dir.path().join("medic.yml")),
        &[],
    );
    let alert = eventually("PrometheusSeen firing", &m, || async {
        let v = get_json(&c, &m.url("/api/v1/alerts")).await;
        v["data"]["alerts"].as_array()?.first().cloned()
    })
    .await;
    assert_eq!(alert["labels"]["job"], "prom-self", "{alert}");
    let q = get_json(&c, &m.url("/api/v1/query?query=up")).await;
    assert_eq!(q["data"]["result"][0]["metric"]["job"], "prom-self", "{q}");
    let names = get_json(&c, &m.url("/api/v1/labels")).await;
    assert!(
        names["data"].as_array().unwrap().contains(&"job".into()),
        "{names}"
    );
    assert!(export(&c, &m.url(""), "up").await.is_empty());
    // Prometheus's own error shape comes through unchanged.
    let r = c
        .get(m.url("/api/v1/query?query=up{"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["errorType"], "bad_data", "{body}");
}
