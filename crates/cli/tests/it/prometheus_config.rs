//! A `prometheus.yml` as Prometheus users have it: it loads unchanged, its Alertmanagers get the
//! rules' alerts (a real Alertmanager 0.25), the blackbox exporter pattern works (a real
//! `prometheus-blackbox-exporter`), and HTTP and DNS service discovery find their targets.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::*;

/// The Debian package's own /etc/prometheus/prometheus.yml (comments trimmed), with `rule_files:`
/// left empty as it ships.
const DEBIAN_PROMETHEUS_YML: &str = r#"
global:
  scrape_interval:     15s
  evaluation_interval: 15s
  external_labels:
      monitor: 'example'
alerting:
  alertmanagers:
  - static_configs:
    - targets: ['localhost:9093']
rule_files:
scrape_configs:
  - job_name: 'prometheus'
    scrape_interval: 5s
    scrape_timeout: 5s
    static_configs:
      - targets: ['localhost:9090']
  - job_name: node
    static_configs:
      - targets: ['localhost:9100']
"#;

fn check_config(text: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("prometheus.yml");
    std::fs::write(&path, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_medic"))
        .args(["check", "config"])
        .arg(&path)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn a_prometheus_yml_loads_unchanged_and_what_medic_does_not_do_is_named() {
    let (ok, out) = check_config(DEBIAN_PROMETHEUS_YML);
    assert!(ok, "{out}");
    let more = r#"
scrape_configs:
  - job_name: sd
    http_sd_configs: [{url: "http://127.0.0.1:1/targets", refresh_interval: 1m}]
    dns_sd_configs: [{names: [localhost], type: A, port: 9100}]
    consul_sd_configs: [{server: "localhost:8500", services: [web]}]
    kubernetes_sd_configs: [{role: pod}]
    scrape_protocols: [PrometheusText0.0.4]
    follow_redirects: true
"#;
    let (ok, out) = check_config(more);
    assert!(ok, "{out}");
    // Prometheus's remote_write list: the stores medic sends to, with Prometheus's fields.
    let (ok, out) = check_config(
        "remote_write:\n  - url: http://thanos:19291/api/v1/receive\n    name: thanos\n    remote_timeout: 10s\n    headers: {X-Scope-OrgID: ops}\n    write_relabel_configs: [{source_labels: [__name__], regex: 'go_.*', action: drop}]\n    queue_config: {max_shards: 2, max_samples_per_send: 500, capacity: 10000}\n    metadata_config: {send: false}\n",
    );
    assert!(ok, "{out}");
    let (ok, out) =
        check_config("remote_write:\n  - url: http://a/\n    headers: {\"bad name\": x}\n");
    assert!(!ok && out.contains("remote_write[0].headers"), "{out}");
    let (ok, out) = check_config("remote_write:\n  - url: thanos:19291\n");
    assert!(!ok && out.contains("remote_write[0].url"), "{out}");
    let (ok, out) = check_config(
        "remote_write:\n  - url: http://a/\n    name: x\n  - url: http://b/\n    name: x\n",
    );
    assert!(
        !ok && out.contains("remote_write[1]: another destination"),
        "{out}"
    );
    // What medic does not do is refused with what to do instead.
    let (ok, out) = check_config("remote_read:\n  - url: http://x/read\n");
    assert!(
        !ok && out.contains("remote_read") && out.contains("query.backend"),
        "{out}"
    );
    // The query backend: the API's root, valid headers.
    let (ok, out) = check_config("query:\n  backend:\n    url: http://vm:8428/api/v1/query\n");
    assert!(
        !ok && out.contains("query.backend.url: give the API's root"),
        "{out}"
    );
    let (ok, out) = check_config("query:\n  backend:\n    url: vm:8428\n");
    assert!(!ok && out.contains("query.backend.url"), "{out}");
    let (ok, out) =
        check_config("query:\n  backend:\n    url: http://vm:8428\n    headers: {'a b': c}\n");
    assert!(!ok && out.contains("query.backend.headers"), "{out}");
    let (ok, out) = check_config(
        "query:\n  backend:\n    url: http://vm:8481/select/0/prometheus\n    timeout: 10s\n",
    );
    assert!(ok, "{out}");
    let (ok, out) = check_config(
        "scrape_configs:\n  - job_name: d\n    dns_sd_configs: [{names: [_x._tcp.example]}]\n",
    );
    assert!(!ok && out.contains("use type: A with port"), "{out}");
    // medic's own remote_write receiver settings still load.
    let (ok, out) = check_config("remote_write:\n  max_body_size: 1MiB\n");
    assert!(ok, "{out}");
}

/// `alerting.alertmanagers`: the rules' alerts reach a real Alertmanager too, with the external
/// labels and `alert_relabel_configs` applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_from_rules_reach_an_external_alertmanager() {
    let dir = tempfile::tempdir().unwrap();
    let am = Alertmanager::start(
        dir.path(),
        "route: {receiver: x, group_wait: 1s}\nreceivers: [{name: x}]\n",
    );
    std::fs::write(
        dir.path().join("rules.yml"),
        "groups:\n  - name: g\n    interval: 1s\n    rules:\n      - alert: AlwaysOn\n        expr: vector(1)\n        labels: {severity: page, team: drop-me}\n",
    )
    .unwrap();
    let config = dir.path().join("medic.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  external_labels: {{monitor: medic-test}}\nscrape_configs: []\nrule_files: [rules.yml]\nalerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:{}']\n  alert_relabel_configs:\n    - {{action: labeldrop, regex: team}}\n",
            am.port
        ),
    )
    .unwrap();
    let medic = Medic::start(&dir.path().join("data"), Some(&config), &[]);
    let c = client();
    let alert = eventually("the alert in the external Alertmanager", &medic, || {
        let c = c.clone();
        let url = am.url("/api/v2/alerts");
        async move {
            let v: Value = c.get(url).send().await.ok()?.json().await.ok()?;
            v.as_array()?
                .iter()
                .find(|a| a["labels"]["alertname"] == "AlwaysOn")
                .cloned()
        }
    })
    .await;
    assert_eq!(alert["labels"]["monitor"], "medic-test", "{alert:#}");
    assert_eq!(alert["labels"]["severity"], "page");
    assert!(
        alert["labels"].get("team").is_none(),
        "relabelled: {alert:#}"
    );
    let metrics = metrics_text(&c, &medic).await;
    assert!(
        metrics.contains("medic_notifications_sent_total{"),
        "{metrics}"
    );
}

/// The result of an instant query once it holds two series (within `eventually`'s time).
async fn two_results(c: &reqwest::Client, medic: &Medic, query: &str) -> Vec<Value> {
    eventually(&format!("two series from {query}"), medic, || {
        let c = c.clone();
        let url = medic.url("/api/v1/query");
        async move {
            let v: Value = c
                .post(url)
                .form(&[("query", query)])
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            let r = v["data"]["result"].as_array()?.clone();
            (r.len() == 2).then_some(r)
        }
    })
    .await
}

fn listen_arg() -> (u16, String) {
    let port = free_port();
    (port, format!("127.0.0.1:{port}"))
}

/// The blackbox pattern: URLs as targets, relabelled into `__param_target` with the exporter as
/// `__address__`. medic refused the URL targets before relabelling.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_blackbox_exporter_pattern_probes_urls() {
    require_binary(
        "/usr/bin/prometheus-blackbox-exporter",
        "prometheus-blackbox-exporter",
    );
    let dir = tempfile::tempdir().unwrap();
    let bb_port = free_port();
    std::fs::write(
        dir.path().join("blackbox.yml"),
        "modules:\n  http_2xx:\n    prober: http\n    timeout: 5s\n",
    )
    .unwrap();
    let mut bb = Command::new("/usr/bin/prometheus-blackbox-exporter")
        .arg(format!(
            "--config.file={}",
            dir.path().join("blackbox.yml").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{bb_port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (port, listen) = listen_arg();
    let config = dir.path().join("medic.yml");
    std::fs::write(
        &config,
        format!(
            r#"
scrape_configs:
  - job_name: blackbox
    scrape_interval: 1s
    scrape_timeout: 1s
    metrics_path: /probe
    params: {{module: [http_2xx]}}
    static_configs:
      - targets: ['http://127.0.0.1:{port}/-/healthy', 'http://127.0.0.1:{port}/no-such-page']
    relabel_configs:
      - {{source_labels: [__address__], target_label: __param_target}}
      - {{source_labels: [__param_target], target_label: instance}}
      - {{target_label: __address__, replacement: '127.0.0.1:{bb_port}'}}
"#
        ),
    )
    .unwrap();
    let medic = Medic::start(
        &dir.path().join("data"),
        Some(&config),
        &["--listen", &listen],
    );
    let c = client();
    let results = two_results(&c, &medic, "probe_success").await;
    let _ = bb.kill();
    let _ = bb.wait();
    let value = |suffix: &str| {
        results
            .iter()
            .find(|r| r["metric"]["instance"].as_str().unwrap().ends_with(suffix))
            .map(|r| r["value"][1].as_str().unwrap().to_string())
            .unwrap()
    };
    assert_eq!(value("/-/healthy"), "1");
    assert_eq!(value("/no-such-page"), "0");
}

/// HTTP SD (target groups from an endpoint) and DNS SD (`A` records with a port) find medic
/// itself; Prometheus's `__meta_*` labels are there for relabelling.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_and_dns_discovery_find_their_targets() {
    let dir = tempfile::tempdir().unwrap();
    let (port, listen) = listen_arg();
    let sd = dir.path().join("sd");
    std::fs::create_dir(&sd).unwrap();
    std::fs::write(
        sd.join("targets.json"),
        format!(r#"[{{"targets": ["127.0.0.1:{port}"], "labels": {{"team": "sre"}}}}]"#),
    )
    .unwrap();
    let http_port = free_port();
    let mut server = Command::new("python3")
        .args([
            "-m",
            "http.server",
            &http_port.to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .current_dir(&sd)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let config = dir.path().join("medic.yml");
    std::fs::write(
        &config,
        format!(
            r#"
scrape_configs:
  - job_name: by-http
    scrape_interval: 1s
    http_sd_configs: [{{url: "http://127.0.0.1:{http_port}/targets.json", refresh_interval: 1s}}]
    relabel_configs:
      - {{source_labels: [__meta_url], regex: '.*/(targets).json', target_label: source}}
  - job_name: by-dns
    scrape_interval: 1s
    dns_sd_configs: [{{names: [localhost], type: A, port: {port}, refresh_interval: 1s}}]
    relabel_configs:
      - {{source_labels: [__meta_dns_name], target_label: dns_name}}
"#
        ),
    )
    .unwrap();
    let medic = Medic::start(
        &dir.path().join("data"),
        Some(&config),
        &["--listen", &listen],
    );
    let c = client();
    let up = two_results(&c, &medic, "up == 1").await;
    let _ = server.kill();
    let _ = server.wait();
    let by = |job: &str| {
        up.iter()
            .find(|r| r["metric"]["job"] == job)
            .unwrap()
            .clone()
    };
    assert_eq!(by("by-http")["metric"]["team"], "sre");
    assert_eq!(by("by-http")["metric"]["source"], "targets");
    assert_eq!(by("by-dns")["metric"]["dns_name"], "localhost");
    assert_eq!(
        by("by-dns")["metric"]["instance"],
        format!("127.0.0.1:{port}")
    );
    tokio::time::sleep(Duration::from_millis(10)).await;
}

async fn api(c: &reqwest::Client, url: &str) -> Value {
    let r = c.get(url).send().await.unwrap();
    assert!(r.status().is_success(), "{url}: {}", r.status());
    r.json().await.unwrap()
}

/// What Grafana's Prometheus data source and other clients call besides queries: metric
/// metadata from the HELP/TYPE lines scrapes saw, exemplars (none), the status pages with
/// secrets masked — and `/federate`, scraped by a real Prometheus.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grafana_and_federation_endpoints_answer_like_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    let (port, listen) = listen_arg();
    let config = dir.path().join("medic.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  external_labels: {{dc: eu1}}\nscrape_configs:\n  - job_name: medic\n    scrape_interval: 1s\n    basic_auth: {{username: u, password: hunter2-secret}}\n    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n"
        ),
    )
    .unwrap();
    let medic = Medic::start(
        &dir.path().join("data"),
        Some(&config),
        &["--listen", &listen],
    );
    let c = client();
    let meta = eventually("metadata from the first scrape", &medic, || {
        let c = c.clone();
        let url = medic.url("/api/v1/metadata");
        async move {
            let v: Value = c.get(url).send().await.ok()?.json().await.ok()?;
            v["data"].get("medic_tsdb_head_series").cloned()
        }
    })
    .await;
    assert_eq!(meta[0]["type"], "gauge", "{meta:#}");
    assert!(!meta[0]["help"].as_str().unwrap().is_empty());
    let one = api(
        &c,
        &medic.url("/api/v1/metadata?metric=medic_tsdb_head_series"),
    )
    .await;
    assert_eq!(one["data"].as_object().unwrap().len(), 1);
    let tm = api(
        &c,
        &medic.url("/api/v1/targets/metadata?match_target=%7Bjob%3D%22medic%22%7D&metric=medic_tsdb_head_series"),
    )
    .await;
    assert_eq!(tm["data"][0]["target"]["job"], "medic", "{tm:#}");
    assert_eq!(tm["data"][0]["type"], "gauge");
    let ex = api(
        &c,
        &medic.url("/api/v1/query_exemplars?query=up&start=0&end=1"),
    )
    .await;
    assert_eq!(ex["data"], serde_json::json!([]));
    let cfg = api(&c, &medic.url("/api/v1/status/config")).await;
    let yaml = cfg["data"]["yaml"].as_str().unwrap();
    assert!(
        yaml.contains("job_name: medic") && !yaml.contains("hunter2"),
        "{yaml}"
    );
    let flags = api(&c, &medic.url("/api/v1/status/flags")).await;
    assert_eq!(flags["data"]["web.listen-address"], listen);
    let rt = api(&c, &medic.url("/api/v1/status/runtimeinfo")).await;
    assert!(rt["data"]["startTime"].as_str().unwrap().starts_with("20"));

    // A real Prometheus federates from medic.
    let prom = Prometheus::start(
        dir.path(),
        |_| {
            format!(
                "scrape_configs:\n  - job_name: federate\n    scrape_interval: 1s\n    honor_labels: true\n    metrics_path: /federate\n    params: {{'match[]': ['{{job=\"medic\"}}']}}\n    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n"
            )
        },
        &[],
    );
    let got = eventually("up from medic, federated into Prometheus", &medic, || {
        let c = c.clone();
        let url = format!("{}/api/v1/query", prom.url());
        async move {
            let v: Value = c
                .post(url)
                .form(&[("query", "up{job=\"medic\"}")])
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            v["data"]["result"].as_array()?.first().cloned()
        }
    })
    .await;
    assert_eq!(got["metric"]["dc"], "eu1", "external labels added: {got:#}");
    assert_eq!(got["value"][1], "1");
}
