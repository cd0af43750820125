//! Bad input from outside gets a clear error and stores nothing that was rejected.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

fn labels(name: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v = vec![("__name__".to_string(), name.to_string())];
    v.extend(extra.iter().map(|(a, b)| (a.to_string(), b.to_string())));
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_write_rejects_what_is_bad_and_keeps_what_is_good() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("medic.yml");
    std::fs::write(
        &config,
        "scrape_configs: []\nremote_write:\n  max_body_size: 64KiB\n",
    )
    .unwrap();
    let medic = Medic::start(&dir.path().join("data"), Some(&config), &[]);
    let c = client();
    let base = medic.url("");

    // A body that is not snappy: 400, says so, stores nothing.
    let r = post_write(&c, &base, b"\xff\xfe this is not snappy".to_vec())
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.text().await.unwrap().contains("snappy"));
    // Snappy, but not protobuf.
    let junk = snap::raw::Encoder::new()
        .compress_vec(&[0xffu8; 64])
        .unwrap();
    let r = post_write(&c, &base, junk).await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.text().await.unwrap().contains("protobuf"));
    // Over the configured limit: 413.
    let big: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let r = post_write(&c, &base, big).await.unwrap();
    assert_eq!(r.status().as_u16(), 413);

    // A good series first, then a mixed batch.
    let t = 1_700_000_000_000i64;
    let ok = write_request(&[(
        labels("good", &[("k", "v")]),
        vec![(t, 1.0), (t + 1000, 2.0)],
    )]);
    assert_eq!(
        post_write(&c, &base, ok).await.unwrap().status().as_u16(),
        204
    );
    let long = "x".repeat(5000);
    let many: Vec<(String, String)> = (0..70)
        .map(|i| (format!("l{i}"), "v".to_string()))
        .collect();
    let mut many_labels = labels("many", &[]);
    many_labels.extend(many);
    let mixed = write_request(&[
        (
            labels("good", &[("k", "v")]),
            vec![(t + 1000, 7.0), (t + 500, 9.0), (t + 2000, 3.0)],
        ),
        (labels("bad-name", &[]), vec![(t, 1.0)]),
        (labels("long", &[("v", &long)]), vec![(t, 1.0)]),
        (many_labels, vec![(t, 1.0)]),
        (labels("fine", &[]), vec![(t, 5.0)]),
    ]);
    let r = post_write(&c, &base, mixed).await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let msg = r.text().await.unwrap();
    assert!(
        msg.len() < 2000,
        "examples are truncated: {} bytes",
        msg.len()
    );
    for reason in [
        "out_of_order: 1",
        "duplicate_timestamp: 1",
        "invalid_labels: 1",
        "label_too_long: 1",
        "too_many_labels: 1",
        "stored 2 samples",
    ] {
        assert!(
            msg.contains(reason),
            "response should mention {reason:?}: {msg}"
        );
    }
    let good = export(&c, &base, "good").await;
    assert_eq!(good[0].timestamps, vec![t, t + 1000, t + 2000]);
    assert_eq!(
        good[0].values[1].as_f64(),
        Some(2.0),
        "the duplicate did not overwrite"
    );
    assert_eq!(export(&c, &base, "fine").await.len(), 1);
    assert!(export(&c, &base, "long").await.is_empty());

    // Rejections are counted by reason on /metrics.
    let metrics = c
        .get(medic.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for reason in [
        "out_of_order",
        "invalid_labels",
        "too_many_labels",
        "label_too_long",
        "duplicate_timestamp",
    ] {
        let line = format!("medic_tsdb_samples_rejected_total{{reason=\"{reason}\"}} 1");
        assert!(metrics.contains(&line), "missing {line}");
    }

    // Bad selectors and times on the index APIs: 400 with Prometheus's error shape.
    let r = c
        .get(medic.url("/api/v1/series"))
        .query(&[("match[]", "up{job=")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let j: serde_json::Value = r.json().await.unwrap();
    assert_eq!(j["errorType"], "bad_data");
    assert!(j["error"].as_str().unwrap().contains("position"), "{j}");
    let r = c.get(medic.url("/api/v1/series")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let r = c
        .get(medic.url("/api/v1/labels"))
        .query(&[("start", "yesterday")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let r = c
        .get(medic.url("/api/v1/label/bad-name/values"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
}

/// Serves `body` with `content_type` to every request, counting requests.
async fn serve_fixed(
    body: &'static str,
    content_type: &'static str,
) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    (addr, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_serving_garbage_is_down_with_the_line_and_stores_nothing() {
    let (garbage, _g) = serve_fixed(
        "ok_metric 1\nok_metric{a=\"1\"} 2\n<html>not metrics</html>\n",
        "text/plain; version=0.0.4",
    )
    .await;
    let (good, _h) = serve_fixed(
        "# TYPE demo_up gauge\ndemo_up{x=\"1\"} 1\n",
        "text/plain; version=0.0.4",
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("medic.yml");
    std::fs::write(
        &config,
        format!(
            "global: {{scrape_interval: 1s, scrape_timeout: 1s}}\nscrape_configs:\n  - job_name: garbage\n    static_configs: [{{targets: ['{garbage}']}}]\n  - job_name: good\n    static_configs: [{{targets: ['{good}']}}]\n"
        ),
    )
    .unwrap();
    let medic = Medic::start(&dir.path().join("data"), Some(&config), &[]);
    let c = client();
    let deadline = Instant::now() + Duration::from_secs(20);
    let targets = loop {
        let t = get_json(&c, &medic.url("/api/v1/targets")).await;
        let all = t["data"]["activeTargets"].as_array().unwrap().clone();
        if all.len() == 2 && all.iter().all(|x| x["health"] != "unknown") {
            break all;
        }
        assert!(Instant::now() < deadline, "targets never scraped: {t}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let bad = targets
        .iter()
        .find(|t| t["scrapePool"] == "garbage")
        .unwrap();
    assert_eq!(bad["health"], "down");
    let err = bad["lastError"].as_str().unwrap();
    assert!(
        err.contains("line 3"),
        "lastError should name the line: {err}"
    );
    let ok = targets.iter().find(|t| t["scrapePool"] == "good").unwrap();
    assert_eq!(ok["health"], "up", "{ok}");

    // Nothing from the garbage scrape is stored (not even its valid first lines); `up` is 0.
    assert!(export(&c, &medic.url(""), "ok_metric").await.is_empty());
    let up = export(&c, &medic.url(""), "up{job=\"garbage\"}").await;
    assert!(up[0].values.iter().all(|v| v.as_f64() == Some(0.0)));
    let up = export(&c, &medic.url(""), "up{job=\"good\"}").await;
    assert!(up[0].values.iter().all(|v| v.as_f64() == Some(1.0)));
    assert_eq!(
        export(&c, &medic.url(""), "demo_up").await[0].metric["instance"],
        good
    );
}

#[test]
fn config_errors_name_the_file_and_field_and_exit_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yml");
    std::fs::write(&bad, "storage:\n  retention: 5 days\n").unwrap();
    for args in [vec!["check", "config"], vec!["run", "--config"]] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_medic"))
            .args(&args)
            .arg(&bad)
            .args(
                ["--data", dir.path().join("d").to_str().unwrap()]
                    .iter()
                    .filter(|_| args[0] == "run"),
            )
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("bad.yml") && err.contains("storage.retention") && err.contains("line 2"),
            "{err}"
        );
    }
}

#[test]
fn sigterm_shuts_down_cleanly_and_data_survives() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let medic = Medic::start(&data, None, &[]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let base = medic.url("");
    rt.block_on(async {
        let body = write_request(&[(labels("kept", &[]), vec![(1_700_000_000_000, 42.0)])]);
        assert_eq!(
            post_write(&client(), &base, body)
                .await
                .unwrap()
                .status()
                .as_u16(),
            204
        );
    });
    assert!(medic.terminate().success());
    let medic = Medic::start(&data, None, &[]);
    let got = rt.block_on(export(&client(), &medic.url(""), "kept"));
    assert_eq!(got[0].values[0].as_f64(), Some(42.0));
    assert!(medic.stderr().contains("storage closed"));
}
