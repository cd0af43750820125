//! Scraping in the protobuf exposition format from a real target: a Prometheus 2.42 (Debian
//! package `prometheus`) serves its own `/metrics` through client_golang, which speaks it. One
//! medic job asks for `PrometheusProto`, another for the default text formats; both must store
//! the same series — with the float formatting of Prometheus's protobuf parser for `le` and
//! `quantile` (`1.0`, where text says `1`), which shows which format each job really got.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::support::*;

/// The series of a job as `name{labels}` strings, `job` left out and `le`/`quantile` values
/// normalized to numbers (the two formats write them differently).
async fn series_of(c: &reqwest::Client, medic: &Medic, job: &str) -> (BTreeSet<String>, usize) {
    let j = get_json(
        c,
        &medic.url(&format!(
            "/api/v1/series?match[]={{job=%22{job}%22,__name__!~%22scrape_.*|up%22}}"
        )),
    )
    .await;
    let mut raw_le_1 = 0;
    let mut out = BTreeSet::new();
    for s in j["data"].as_array().unwrap() {
        let mut labels: Vec<String> = Vec::new();
        for (k, v) in s.as_object().unwrap() {
            let v = v.as_str().unwrap();
            if k == "job" {
                continue;
            }
            if (k == "le" || k == "quantile") && v == "1.0" {
                raw_le_1 += 1;
            }
            let v = if k == "le" || k == "quantile" {
                v.parse::<f64>().map(|f| f.to_string()).unwrap_or(v.into())
            } else {
                v.to_string()
            };
            labels.push(format!("{k}={v}"));
        }
        out.insert(labels.join(","));
    }
    (out, raw_le_1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protobuf_scrape_of_a_real_target_stores_what_the_text_scrape_stores() {
    require_binary("/usr/bin/prometheus", "prometheus");
    let dir = tempfile::tempdir().unwrap();
    let prometheus = Prometheus::start(
        dir.path(),
        |_| "global: {scrape_interval: 1m}\n".into(),
        &[],
    );
    let target = prometheus.url().trim_start_matches("http://").to_string();
    let config = dir.path().join("medic.yml");
    std::fs::write(
        &config,
        format!(
            "global: {{scrape_interval: 1s, scrape_timeout: 1s}}\nscrape_configs:\n  \
             - job_name: proto\n    scrape_protocols: [PrometheusProto, PrometheusText0.0.4]\n    \
             static_configs: [{{targets: ['{target}']}}]\n  \
             - job_name: text\n    static_configs: [{{targets: ['{target}']}}]\n"
        ),
    )
    .unwrap();
    let medic = Medic::start(&dir.path().join("data"), Some(&config), &[]);
    let c = client();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let t = get_json(&c, &medic.url("/api/v1/targets")).await;
        let all = t["data"]["activeTargets"].as_array().unwrap().clone();
        if all.len() == 2 && all.iter().all(|x| x["health"] == "up") {
            break;
        }
        assert!(Instant::now() < deadline, "targets never up: {t}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Two scrapes each, so both jobs have seen the target's metrics settle.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (proto, proto_le_1) = series_of(&c, &medic, "proto").await;
    let (text, text_le_1) = series_of(&c, &medic, "text").await;
    assert!(
        proto.len() > 100,
        "{} series from the protobuf scrape",
        proto.len()
    );
    assert!(
        proto_le_1 > 0,
        "no le=\"1.0\": the protobuf format was not used"
    );
    assert_eq!(text_le_1, 0, "the text scrape writes le=\"1\"");
    // Series that come and go between scrapes (a handler first called meanwhile) may differ;
    // nothing else may.
    let only_proto: Vec<_> = proto.difference(&text).collect();
    let only_text: Vec<_> = text.difference(&proto).collect();
    assert!(
        only_proto.len() + only_text.len() <= 5,
        "only in the protobuf scrape: {only_proto:#?}\nonly in the text scrape: {only_text:#?}"
    );
}
