//! The query API in the real binary: the range-query result cache (a repeated dashboard query
//! is answered from the cache, and a sample written into the cached past — out of order, over
//! remote write — shows at once: the answer always equals one computed with `nocache=1`), and
//! queries whose client went away stop instead of running on.

use crate::support::*;

async fn range(
    c: &reqwest::Client,
    medic: &Medic,
    q: &str,
    start: i64,
    end: i64,
    extra: &str,
) -> serde_json::Value {
    let url = medic.url(&format!(
        "/api/v1/query_range?query={}&start={}&end={}&step=60{extra}",
        urlencode(q),
        start / 1000,
        end / 1000
    ));
    let v = get_json(c, &url).await;
    assert_eq!(v["status"], "success", "{v}");
    v["data"]["result"].clone()
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn metric(c: &reqwest::Client, medic: &Medic, series: &str) -> f64 {
    let text = c
        .get(medic.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    counter(&text, series)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_range_query_is_cached_and_a_late_sample_shows_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("medic.yml");
    std::fs::write(&config, "storage:\n  out_of_order_window: 30m\n").unwrap();
    let medic = Medic::start(&dir.path().join("data"), Some(&config), &[]);
    let c = client();
    let base = medic.url("");
    let now = now_ms() / 60_000 * 60_000;
    // One sample every 15 s for 50 minutes, with a hole from 30 to 29 minutes ago.
    let samples: Vec<(i64, f64)> = (0..200)
        .map(|i| (now - 50 * 60_000 + i * 15_000, 1.0))
        .filter(|&(t, _)| !(now - 30 * 60_000 < t && t < now - 29 * 60_000))
        .collect();
    let labels = vec![
        ("__name__".to_string(), "cache_probe".to_string()),
        ("job".to_string(), "probe".to_string()),
    ];
    let r = post_write(&c, &base, write_request(&[(labels.clone(), samples)]))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);

    let q = "max_over_time(cache_probe[2m])";
    let (start, end) = (now - 45 * 60_000, now - 10 * 60_000);
    let first = range(&c, &medic, q, start, end, "").await;
    let again = range(&c, &medic, q, start, end, "").await;
    assert_eq!(first, again);
    let hits = r#"medic_query_cache_requests_total{result="hit"}"#;
    assert_eq!(metric(&c, &medic, hits).await, 1.0, "the repeat was a hit");
    let values = |r: &serde_json::Value| -> Vec<f64> {
        r[0]["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p[1].as_str().unwrap().parse().unwrap())
            .collect()
    };
    assert!(values(&first).iter().all(|&v| v == 1.0), "{first}");

    // A sample into the hole, out of order: the cached steps after it are recomputed.
    let late = write_request(&[(labels, vec![(now - 29 * 60_000 - 30_000, 100.0)])]);
    let r = post_write(&c, &base, late).await.unwrap();
    assert_eq!(r.status().as_u16(), 204, "{}", r.text().await.unwrap());
    let after = range(&c, &medic, q, start, end, "").await;
    let fresh = range(&c, &medic, q, start, end, "&nocache=1").await;
    assert_eq!(after, fresh);
    assert_eq!(
        values(&after).iter().filter(|&&v| v == 100.0).count(),
        2,
        "the late sample shows for the two steps its 2m window covers: {after}"
    );
    let invalidated = metric(&c, &medic, "medic_query_cache_invalidations_total").await;
    assert!(invalidated >= 1.0, "{invalidated}");
    assert_eq!(
        metric(
            &c,
            &medic,
            r#"medic_query_cache_requests_total{result="bypass"}"#
        )
        .await,
        1.0
    );
}

/// A client that gives up on a long query (a timeout in Grafana, a closed tab) no longer leaves
/// medic computing it until the query timeout: the query stops at its next check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_whose_client_went_away_stops() {
    let dir = tempfile::tempdir().unwrap();
    let medic = Medic::start(&dir.path().join("data"), None, &[]);
    let c = client();
    let now = now_ms();
    let series: Vec<TestSeries> = (0..20)
        .map(|i| {
            let labels = vec![
                ("__name__".to_string(), "busy_total".to_string()),
                ("i".to_string(), i.to_string()),
            ];
            (
                labels,
                (0..240)
                    .map(|k| (now - 3_600_000 + k * 15_000, k as f64))
                    .collect(),
            )
        })
        .collect();
    let r = post_write(&c, &medic.url(""), write_request(&series))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let cancelled = "medic_query_cancelled_total";
    assert_eq!(metric(&c, &medic, cancelled).await, 0.0);
    // Millions of subquery steps: minutes of work, checked every 1,024 steps.
    let q = "max_over_time(sum(rate(busy_total[1m]))[30d:1s])";
    let impatient = reqwest::Client::builder()
        .no_proxy()
        .timeout(std::time::Duration::from_millis(500))
        .build()
        .unwrap();
    let url = medic.url(&format!(
        "/api/v1/query?query={}&time={}",
        urlencode(q),
        now / 1000
    ));
    let e = impatient.get(&url).send().await.unwrap_err();
    assert!(e.is_timeout(), "{e}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while metric(&c, &medic, cancelled).await < 1.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the abandoned query was not stopped within 10 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// A selection over `query.max_samples` is refused with Prometheus's message; the store stops
/// decoding at the limit instead of loading everything first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_selection_over_the_sample_limit_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("medic.yml");
    std::fs::write(&config, "query:\n  max_samples: 1000\n").unwrap();
    let medic = Medic::start(&dir.path().join("data"), Some(&config), &[]);
    let c = client();
    let now = now_ms() / 1000 * 1000;
    let series: Vec<TestSeries> = (0..10)
        .map(|i| {
            let labels = vec![
                ("__name__".to_string(), "many".to_string()),
                ("i".to_string(), i.to_string()),
            ];
            (
                labels,
                (0..200)
                    .map(|k| (now - 3_000_000 + k * 15_000, 1.0))
                    .collect(),
            )
        })
        .collect();
    let r = post_write(&c, &medic.url(""), write_request(&series))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let url = |q: &str| {
        medic.url(&format!(
            "/api/v1/query?query={}&time={}",
            urlencode(q),
            now / 1000
        ))
    };
    let r = c
        .get(url("count_over_time(many[1h])"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 422);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("too many samples")
            && body["error"].as_str().unwrap().contains("1000"),
        "{body}"
    );
    // Under the limit the same data answers.
    let v = get_json(&c, &url(r#"count_over_time(many{i="3"}[1h])"#)).await;
    assert_eq!(v["data"]["result"][0]["value"][1], "200", "{v}");
}

/// Warnings and infos reach the query API as Prometheus writes them (`infos` next to `data`),
/// and a range query that noted one is not kept by the result cache: asked again, it is
/// computed again and carries its info again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn annotations_reach_the_api_and_are_never_served_stale_from_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let medic = Medic::start(&dir.path().join("data"), None, &[]);
    let c = client();
    let now = now_ms() / 60_000 * 60_000;
    let samples: Vec<(i64, f64)> = (0..200)
        .map(|i| (now - 50 * 60_000 + i * 15_000, i as f64))
        .collect();
    let series = |name: &str| {
        vec![
            ("__name__".to_string(), name.to_string()),
            ("job".to_string(), "probe".to_string()),
        ]
    };
    let body = write_request(&[
        (series("probe_load"), samples.clone()),
        (series("probe_requests_total"), samples),
    ]);
    let r = post_write(&c, &medic.url(""), body).await.unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let info = "PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: \"probe_load\"";
    let (start, end) = ((now - 45 * 60_000) / 1000, (now - 10 * 60_000) / 1000);
    let ask = |q: &str| {
        medic.url(&format!(
            "/api/v1/query_range?query={}&start={start}&end={end}&step=60",
            urlencode(q)
        ))
    };
    for _ in 0..2 {
        let v = get_json(&c, &ask("rate(probe_load[5m])")).await;
        assert_eq!(v["status"], "success", "{v}");
        assert_eq!(v["infos"], serde_json::json!([info]), "{v}");
        assert!(v.get("warnings").is_none(), "{v}");
        assert!(!v["data"]["result"].as_array().unwrap().is_empty(), "{v}");
    }
    let hits = r#"medic_query_cache_requests_total{result="hit"}"#;
    assert_eq!(
        metric(&c, &medic, hits).await,
        0.0,
        "nothing annotated was kept"
    );
    // A counter's rate notes nothing; repeated, it is a hit.
    for _ in 0..2 {
        let v = get_json(&c, &ask("rate(probe_requests_total[5m])")).await;
        assert!(
            v.get("infos").is_none() && v.get("warnings").is_none(),
            "{v}"
        );
    }
    assert_eq!(metric(&c, &medic, hits).await, 1.0);
    let instant = medic.url(&format!(
        "/api/v1/query?query={}&time={end}",
        urlencode("histogram_quantile(1.5, rate(probe_load[5m]))")
    ));
    let v = get_json(&c, &instant).await;
    assert_eq!(v["status"], "success", "{v}");
    assert_eq!(
        v["warnings"],
        serde_json::json!([
            "PromQL warning: bucket label \"le\" is missing or has a malformed value of \"\"",
            "PromQL warning: quantile value should be between 0 and 1, got 1.5"
        ]),
        "{v}"
    );
    assert_eq!(v["infos"], serde_json::json!([info]), "{v}");
}
