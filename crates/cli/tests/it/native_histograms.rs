//! Native-histogram PromQL against a real Prometheus 2.42 (Debian package `prometheus`, started
//! with `--enable-feature=native-histograms`): the same histograms — two schemas, negative
//! buckets, a zero bucket and a counter reset — remote-written, in the same request body, into
//! Prometheus and into a real medic process; the same queries over HTTP, the same answers
//! (relative tolerance 1e-6, buckets by their bounds). medic is killed and restarted in between,
//! so its answers come from what its WAL kept.
//!
//! Left out on purpose:
//! `histogram_quantile` (Prometheus 2.x interpolates linearly inside exponential buckets, 3.x and
//! medic exponentially) and fractions with bounds inside a bucket (the same difference); and what
//! 2.42 does not compute yet: a histogram times or divided by a scalar comes back unchanged
//! (`rate(h[5m]) * 2`), `sum_over_time`/`avg_over_time` of histograms give 0. medic computes those
//! as Prometheus 3 does; its upstream test scripts (v3.14) check them.

use std::time::{Duration, Instant};

use medic_model::{FloatHistogram, Labels};
use prost::Message;

use crate::support::*;

/// prompb's native histogram (integer counts, buckets as spans and deltas), as Prometheus
/// 2.42's remote-write receiver reads it.
mod wire {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct WriteRequest {
        #[prost(message, repeated, tag = "1")]
        pub timeseries: Vec<TimeSeries>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Label {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(string, tag = "2")]
        pub value: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TimeSeries {
        #[prost(message, repeated, tag = "1")]
        pub labels: Vec<Label>,
        #[prost(message, repeated, tag = "4")]
        pub histograms: Vec<Histogram>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct BucketSpan {
        #[prost(sint32, tag = "1")]
        pub offset: i32,
        #[prost(uint32, tag = "2")]
        pub length: u32,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Histogram {
        #[prost(uint64, tag = "1")]
        pub count_int: u64,
        #[prost(double, tag = "3")]
        pub sum: f64,
        #[prost(sint32, tag = "4")]
        pub schema: i32,
        #[prost(double, tag = "5")]
        pub zero_threshold: f64,
        #[prost(uint64, tag = "6")]
        pub zero_count_int: u64,
        #[prost(message, repeated, tag = "8")]
        pub negative_spans: Vec<BucketSpan>,
        #[prost(sint64, repeated, tag = "9")]
        pub negative_deltas: Vec<i64>,
        #[prost(message, repeated, tag = "11")]
        pub positive_spans: Vec<BucketSpan>,
        #[prost(sint64, repeated, tag = "12")]
        pub positive_deltas: Vec<i64>,
        #[prost(int64, tag = "15")]
        pub timestamp: i64,
    }
}

/// One histogram as integer bucket counts by index.
#[derive(Clone)]
struct IntHistogram {
    schema: i32,
    sum: f64,
    zero: u64,
    positive: Vec<(i32, u64)>,
    negative: Vec<(i32, u64)>,
}

impl IntHistogram {
    fn count(&self) -> u64 {
        self.zero
            + self.positive.iter().map(|b| b.1).sum::<u64>()
            + self.negative.iter().map(|b| b.1).sum::<u64>()
    }

    fn wire(&self, t: i64) -> wire::Histogram {
        let side = |s: &[(i32, u64)]| {
            let floats: Vec<(i32, f64)> = s.iter().map(|&(i, c)| (i, c as f64)).collect();
            let (spans, counts) = FloatHistogram::spans(&floats);
            let mut prev = 0i64;
            let deltas = counts
                .iter()
                .map(|c| {
                    let d = *c as i64 - prev;
                    prev = *c as i64;
                    d
                })
                .collect::<Vec<_>>();
            let spans = spans
                .iter()
                .map(|s| wire::BucketSpan {
                    offset: s.offset,
                    length: s.length,
                })
                .collect();
            (spans, deltas)
        };
        let (positive_spans, positive_deltas) = side(&self.positive);
        let (negative_spans, negative_deltas) = side(&self.negative);
        wire::Histogram {
            count_int: self.count(),
            sum: self.sum,
            schema: self.schema,
            zero_threshold: 0.001,
            zero_count_int: self.zero,
            negative_spans,
            negative_deltas,
            positive_spans,
            positive_deltas,
            timestamp: t,
        }
    }
}

/// 1 h of two latency histograms at 15 s, off the minute grid, ending before `end_ms`:
/// instance `a` at schema 1, `b` at schema 0 with a counter reset half way.
fn dataset(end_ms: i64) -> Vec<(Labels, Vec<(i64, IntHistogram)>)> {
    let mut seed = 11u64;
    let mut rnd = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut out = Vec::new();
    for (k, (inst, schema)) in [("a", 1), ("b", 0)].into_iter().enumerate() {
        let start = end_ms - 3_600_000 + 1_237 + 4_111 * k as i64;
        let mut h = IntHistogram {
            schema,
            sum: 0.0,
            zero: 0,
            positive: (-2..6).map(|i| (i, 0)).collect(),
            negative: (0..2).map(|i| (i, 0)).collect(),
        };
        let mut points = Vec::new();
        let mut t = start;
        while t < end_ms {
            if inst == "b" && t >= start + 1_800_000 && t < start + 1_815_000 {
                // A restart: every count starts again from zero.
                h.sum = 0.0;
                h.zero = 0;
                h.positive.iter_mut().for_each(|b| b.1 = 0);
                h.negative.iter_mut().for_each(|b| b.1 = 0);
            }
            for b in h.positive.iter_mut() {
                let n = rnd(6);
                b.1 += n;
                h.sum += n as f64 * 2f64.powi(b.0) * 0.7;
            }
            for b in h.negative.iter_mut() {
                let n = rnd(2);
                b.1 += n;
                h.sum -= n as f64 * 0.3;
            }
            h.zero += rnd(3);
            points.push((t, h.clone()));
            t += 15_000;
        }
        let labels = Labels::from_pairs([
            ("__name__", "request_latency_seconds"),
            ("instance", inst),
            ("job", "api"),
        ]);
        out.push((labels, points));
    }
    out
}

/// A query's answer (Prometheus's JSON, as both serve it) as comparable points: labels →
/// (float, or histogram buckets `(lower, upper, count)` with count and sum).
type Answer = std::collections::BTreeMap<String, Vec<f64>>;

fn from_prometheus(j: &serde_json::Value) -> Answer {
    let num = |v: &serde_json::Value| v.as_str().unwrap().parse::<f64>().unwrap();
    let mut out = Answer::new();
    for r in j["data"]["result"].as_array().unwrap() {
        let mut m: Vec<(String, String)> = r["metric"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
            .collect();
        m.sort();
        let key = format!("{m:?}");
        let vals = if let Some(v) = r.get("value") {
            vec![num(&v[1])]
        } else {
            let h = &r["histogram"][1];
            let mut v = vec![num(&h["count"]), num(&h["sum"])];
            for b in h["buckets"].as_array().into_iter().flatten() {
                v.extend([num(&b[1]), num(&b[2]), num(&b[3])]);
            }
            v
        };
        out.insert(key, vals);
    }
    out
}

/// An instant query's answer from a Prometheus-compatible API at `base`.
async fn instant(c: &reqwest::Client, base: &str, q: &str, t: i64) -> Answer {
    let j: serde_json::Value = c
        .get(format!("{base}/api/v1/query"))
        .query(&[("query", q), ("time", &(t as f64 / 1000.0).to_string())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(j["status"], "success", "{base}: {q}: {j}");
    from_prometheus(&j)
}

fn close(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-6 * a.abs().max(b.abs())
}

const QUERIES: &[&str] = &[
    "request_latency_seconds",
    "histogram_count(request_latency_seconds)",
    "histogram_sum(request_latency_seconds)",
    "rate(request_latency_seconds[5m])",
    "histogram_count(rate(request_latency_seconds[5m]))",
    "histogram_sum(increase(request_latency_seconds[10m]))",
    "histogram_fraction(0, 4, rate(request_latency_seconds[5m]))",
    "histogram_fraction(-1, 1, increase(request_latency_seconds[10m]))",
    "sum(rate(request_latency_seconds[5m]))",
    "sum by (job) (increase(request_latency_seconds[15m]))",
    "histogram_count(sum(rate(request_latency_seconds[1m])))",
    "count_over_time(request_latency_seconds[5m])",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_histogram_queries_match_a_real_prometheus() {
    require_binary("/usr/bin/prometheus", "prometheus");
    let dir = tempfile::tempdir().unwrap();
    let prometheus = Prometheus::start(
        dir.path(),
        |_| "global: {scrape_interval: 15s}\n".to_string(),
        &[
            "--web.enable-remote-write-receiver",
            "--enable-feature=native-histograms",
        ],
    );
    let prom = prometheus.url();
    let c = client();
    let deadline = Instant::now() + Duration::from_secs(60);
    while c
        .get(format!("{prom}/-/ready"))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
        != 200
    {
        assert!(Instant::now() < deadline, "prometheus did not become ready");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let end = now - now % 60_000 - 120_000;
    let data = dataset(end);
    let medic_data = dir.path().join("medic");
    let medic = Medic::start(&medic_data, None, &[]);
    let medic_base = medic.url("");

    let mut req = wire::WriteRequest::default();
    for (labels, points) in &data {
        req.timeseries.push(wire::TimeSeries {
            labels: labels
                .iter()
                .map(|l| wire::Label {
                    name: l.name.to_string(),
                    value: l.value.to_string(),
                })
                .collect(),
            histograms: points.iter().map(|(t, h)| h.wire(*t)).collect(),
        });
    }
    let body = snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap();
    for base in [prom.clone(), medic_base.clone()] {
        let r = post_write(&c, &base, body.clone()).await.unwrap();
        assert!(
            r.status().is_success(),
            "{base} refused the histograms: {} {}",
            r.status(),
            r.text().await.unwrap_or_default()
        );
    }
    // What medic acknowledged survives a kill: its answers below come from the WAL.
    drop(medic);
    let medic = Medic::start(&medic_data, None, &[]);
    let medic_base = medic.url("");

    let mut failures = Vec::new();
    let mut compared = 0;
    for q in QUERIES {
        for t in [end - 1_000_007, end - 293_000, end - 7_000] {
            let theirs = instant(&c, &prom, q, t).await;
            let ours = instant(&c, &medic_base, q, t).await;
            assert!(!theirs.is_empty(), "prometheus has no answer for {q}");
            let same = ours.len() == theirs.len()
                && ours.iter().zip(&theirs).all(|((ka, a), (kb, b))| {
                    ka == kb && a.len() == b.len() && a.iter().zip(b).all(|(x, y)| close(*x, *y))
                });
            compared += 1;
            if !same {
                failures.push(format!(
                    "{q} @{t}:\n  medic      {ours:?}\n  prometheus {theirs:?}"
                ));
            }
        }
    }
    assert_eq!(compared, QUERIES.len() * 3);
    assert!(
        failures.is_empty(),
        "{} of {compared} answers differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Remote write 2.0 into a real medic: symbols, a float series and a custom-bucket histogram
/// series, the `*-Written` headers, and the data read back over the query API. (No sender of
/// 2.0 runs here — Debian's Prometheus is 2.42 — so the request is built with prost from the
/// published .proto.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_write_2_stores_floats_and_histograms_and_says_how_many() {
    use medic_server::remote_write_v2::proto::{BucketSpan, Histogram};
    use medic_server::remote_write_v2::{encode, proto};
    let dir = tempfile::tempdir().unwrap();
    let medic = Medic::start(&dir.path().join("data"), None, &[]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let t0 = now - now % 1000 - 60_000;
    let symbols = [
        "",
        "__name__",
        "jobs_done_total",
        "job",
        "batch",
        "job_seconds",
    ];
    let req = proto::Request {
        symbols: symbols.iter().map(|s| s.to_string()).collect(),
        timeseries: vec![
            proto::TimeSeries {
                labels_refs: vec![1, 2, 3, 4],
                samples: vec![
                    proto::Sample {
                        value: 5.0,
                        timestamp: t0,
                    },
                    proto::Sample {
                        value: 8.0,
                        timestamp: t0 + 15_000,
                    },
                ],
                histograms: vec![],
            },
            proto::TimeSeries {
                labels_refs: vec![1, 5, 3, 4],
                samples: vec![],
                histograms: vec![Histogram {
                    count_int: Some(7),
                    sum: 7.5,
                    schema: -53,
                    positive_spans: vec![BucketSpan {
                        offset: 0,
                        length: 3,
                    }],
                    positive_deltas: vec![1, 2, 0],
                    custom_values: vec![0.5, 2.0],
                    timestamp: t0,
                    ..Default::default()
                }],
            },
        ],
    };
    let c = client();
    let r = c
        .post(medic.url("/api/v1/write"))
        .header("Content-Encoding", "snappy")
        .header(
            "Content-Type",
            "application/x-protobuf;proto=io.prometheus.write.v2.Request",
        )
        .header("X-Prometheus-Remote-Write-Version", "2.0.0")
        .body(encode(&req))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "{:?}", r.text().await);
    let h = |name: &str| r.headers()[name].to_str().unwrap().to_string();
    assert_eq!(h("X-Prometheus-Remote-Write-Samples-Written"), "2");
    assert_eq!(h("X-Prometheus-Remote-Write-Histograms-Written"), "1");

    let query = |q: &str| {
        let c = c.clone();
        let url = medic.url("/api/v1/query");
        let q = q.to_string();
        async move {
            let j: serde_json::Value = c
                .get(url)
                .query(&[
                    ("query", q.as_str()),
                    ("time", &((t0 + 20_000) as f64 / 1000.0).to_string()),
                ])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(j["status"], "success", "{j}");
            j["data"]["result"].clone()
        }
    };
    let floats = query("jobs_done_total{job=\"batch\"}").await;
    assert_eq!(floats[0]["value"][1], "8");
    // Buckets (-Inf, 0.5]: 1, (0.5, 2]: 3, (2, +Inf]: 3 — the deltas 1, +2, 0.
    let hist = query("histogram_count(job_seconds)").await;
    assert_eq!(hist[0]["value"][1], "7");
    let frac = query("histogram_fraction(0.5, 2, job_seconds)").await;
    assert_eq!(frac[0]["value"][1], "0.42857142857142855");

    // The export API carries the histograms in the query API's shape, beside the floats.
    let text = c
        .get(medic.url("/api/v1/export"))
        .query(&[
            ("match[]", "{job=\"batch\"}"),
            ("start", &((t0 - 60_000) / 1000).to_string()),
            ("end", &((t0 + 60_000) / 1000).to_string()),
        ])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(lines[0]["metric"]["__name__"], "job_seconds", "{text}");
    assert_eq!(
        lines[0]["histograms"],
        serde_json::json!([[t0 / 1000, {"count": "7", "sum": "7.5", "buckets": [
            [0, "-Inf", "0.5", "1"],
            [0, "0.5", "2", "3"],
            [0, "2", "+Inf", "3"],
        ]}]]),
        "{text}"
    );
    assert_eq!(lines[0]["values"], serde_json::json!([]));
    assert_eq!(lines[1]["values"], serde_json::json!([5.0, 8.0]), "{text}");
    assert!(lines[1].get("histograms").is_none(), "{text}");

    // An unknown protobuf message is refused by name.
    let r = c
        .post(medic.url("/api/v1/write"))
        .header("Content-Encoding", "snappy")
        .header(
            "Content-Type",
            "application/x-protobuf;proto=io.prometheus.write.v3.Request",
        )
        .body(encode(&req))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    assert!(r.text().await.unwrap().contains("v3.Request"));
}
