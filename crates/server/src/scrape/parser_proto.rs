//! The Prometheus protobuf exposition format (`application/vnd.google.protobuf;
//! proto=io.prometheus.client.MetricFamily;encoding=delimited`): length-delimited
//! `MetricFamily` messages. It is the only format that carries native histograms; medic asks for
//! it when a job lists `PrometheusProto` in `scrape_protocols`, as Prometheus does.
//!
//! Series come out as Prometheus's protobuf parser makes them: counters, gauges and untyped
//! metrics under the family name; summaries as `{quantile=…}`, `_sum`, `_count`; a histogram
//! with native buckets as one native histogram (plus its classic `_bucket`/`_sum`/`_count`
//! series when `always_scrape_classic_histograms` is set), otherwise as the classic series.
//! `le` and `quantile` values are written as OpenMetrics writes floats (`1.0`, not `1`).

use std::sync::Arc;

use medic_model::histogram::CounterResetHint;
use medic_model::{is_valid_label_name, is_valid_metric_name, Label, Labels, METRIC_NAME};

use super::parser::{Metadata, MetricMeta, ParseError, ParsedSample};
use crate::remote_histogram::{BucketSpan as WireSpan, Histogram as WireHistogram};

/// `io.prometheus.client` messages (client_model's metrics.proto, proto2).
mod proto {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct MetricFamily {
        #[prost(string, optional, tag = "1")]
        pub name: Option<String>,
        #[prost(string, optional, tag = "2")]
        pub help: Option<String>,
        #[prost(int32, optional, tag = "3")]
        pub r#type: Option<i32>,
        #[prost(message, repeated, tag = "4")]
        pub metric: Vec<Metric>,
        #[prost(string, optional, tag = "5")]
        pub unit: Option<String>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct LabelPair {
        #[prost(string, optional, tag = "1")]
        pub name: Option<String>,
        #[prost(string, optional, tag = "2")]
        pub value: Option<String>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Value {
        #[prost(double, optional, tag = "1")]
        pub value: Option<f64>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Quantile {
        #[prost(double, optional, tag = "1")]
        pub quantile: Option<f64>,
        #[prost(double, optional, tag = "2")]
        pub value: Option<f64>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Summary {
        #[prost(uint64, optional, tag = "1")]
        pub sample_count: Option<u64>,
        #[prost(double, optional, tag = "2")]
        pub sample_sum: Option<f64>,
        #[prost(message, repeated, tag = "3")]
        pub quantile: Vec<Quantile>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Bucket {
        #[prost(uint64, optional, tag = "1")]
        pub cumulative_count: Option<u64>,
        #[prost(double, optional, tag = "2")]
        pub upper_bound: Option<f64>,
        #[prost(double, optional, tag = "4")]
        pub cumulative_count_float: Option<f64>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Span {
        #[prost(sint32, optional, tag = "1")]
        pub offset: Option<i32>,
        #[prost(uint32, optional, tag = "2")]
        pub length: Option<u32>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Histogram {
        #[prost(uint64, optional, tag = "1")]
        pub sample_count: Option<u64>,
        #[prost(double, optional, tag = "2")]
        pub sample_sum: Option<f64>,
        #[prost(message, repeated, tag = "3")]
        pub bucket: Vec<Bucket>,
        #[prost(double, optional, tag = "4")]
        pub sample_count_float: Option<f64>,
        #[prost(sint32, optional, tag = "5")]
        pub schema: Option<i32>,
        #[prost(double, optional, tag = "6")]
        pub zero_threshold: Option<f64>,
        #[prost(uint64, optional, tag = "7")]
        pub zero_count: Option<u64>,
        #[prost(double, optional, tag = "8")]
        pub zero_count_float: Option<f64>,
        #[prost(message, repeated, tag = "9")]
        pub negative_span: Vec<Span>,
        #[prost(sint64, repeated, tag = "10")]
        pub negative_delta: Vec<i64>,
        #[prost(double, repeated, tag = "11")]
        pub negative_count: Vec<f64>,
        #[prost(message, repeated, tag = "12")]
        pub positive_span: Vec<Span>,
        #[prost(sint64, repeated, tag = "13")]
        pub positive_delta: Vec<i64>,
        #[prost(double, repeated, tag = "14")]
        pub positive_count: Vec<f64>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Metric {
        #[prost(message, repeated, tag = "1")]
        pub label: Vec<LabelPair>,
        #[prost(message, optional, tag = "2")]
        pub gauge: Option<Value>,
        #[prost(message, optional, tag = "3")]
        pub counter: Option<Value>,
        #[prost(message, optional, tag = "4")]
        pub summary: Option<Summary>,
        #[prost(message, optional, tag = "5")]
        pub untyped: Option<Value>,
        #[prost(int64, optional, tag = "6")]
        pub timestamp_ms: Option<i64>,
        #[prost(message, optional, tag = "7")]
        pub histogram: Option<Histogram>,
    }
}

const COUNTER: i32 = 0;
const GAUGE: i32 = 1;
const SUMMARY: i32 = 2;
const HISTOGRAM: i32 = 4;
const GAUGE_HISTOGRAM: i32 = 5;

/// A float as OpenMetrics writes it: `1.0`, `0.25`, `+Inf`.
fn om_float(v: f64) -> String {
    if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else if v.is_nan() {
        "NaN".into()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.1}")
    } else {
        medic_model::histogram::format_go_g(v)
    }
}

/// Parses a protobuf scrape body. `limit` bounds the samples (floats and histograms) one body
/// may yield; `classic` keeps the classic series of histograms that have native buckets too.
pub fn parse(
    body: &[u8],
    limit: usize,
    classic: bool,
) -> Result<(Vec<ParsedSample>, Metadata), ParseError> {
    let mut out = Vec::new();
    let mut meta = Metadata::new();
    let mut pos = 0;
    let mut family = 0;
    while pos < body.len() {
        family += 1;
        let at = pos;
        let err = |message: String| ParseError {
            line: family,
            message: format!("metric family {family} (byte {at}): {message}"),
        };
        let mut rest = &body[pos..];
        let len = prost::encoding::decode_varint(&mut rest).map_err(|e| err(e.to_string()))?;
        let start = body.len() - rest.len();
        let end = start
            .checked_add(len as usize)
            .filter(|e| *e <= body.len())
            .ok_or_else(|| err("length past the end of the body".into()))?;
        let mf = <proto::MetricFamily as prost::Message>::decode(&body[start..end])
            .map_err(|e| err(e.to_string()))?;
        pos = end;
        let name = mf.name.clone().unwrap_or_default();
        if !is_valid_metric_name(&name) {
            return Err(err(format!("invalid metric name {name:?}")));
        }
        meta.insert(name.clone(), family_meta(&mf));
        for m in &mf.metric {
            convert(&name, mf.r#type.unwrap_or(3), m, classic, &mut out).map_err(err)?;
            if out.len() > limit {
                return Err(err(format!("more than {limit} samples in one scrape")));
            }
        }
    }
    Ok((out, meta))
}

fn family_meta(mf: &proto::MetricFamily) -> MetricMeta {
    let kind = match mf.r#type.unwrap_or(3) {
        COUNTER => "counter",
        GAUGE => "gauge",
        SUMMARY => "summary",
        HISTOGRAM => "histogram",
        GAUGE_HISTOGRAM => "gaugehistogram",
        _ => "unknown",
    };
    MetricMeta {
        kind: kind.into(),
        help: mf.help.clone().unwrap_or_default(),
        unit: mf.unit.clone().unwrap_or_default(),
    }
}

/// The series of one metric of a family.
fn convert(
    name: &str,
    kind: i32,
    m: &proto::Metric,
    classic: bool,
    out: &mut Vec<ParsedSample>,
) -> Result<(), String> {
    let mut base = Vec::with_capacity(m.label.len() + 2);
    for l in &m.label {
        let (n, v) = (
            l.name.as_deref().unwrap_or(""),
            l.value.as_deref().unwrap_or(""),
        );
        if !is_valid_label_name(n) || n == METRIC_NAME {
            return Err(format!("invalid label name {n:?}"));
        }
        base.push(Label::new(n, v));
    }
    let timestamp = m.timestamp_ms.filter(|t| *t != 0);
    let series = |suffix: &str, extra: Option<(&str, String)>| -> Result<Labels, String> {
        let mut l = base.clone();
        l.push(Label::new(METRIC_NAME, format!("{name}{suffix}")));
        if let Some((n, v)) = extra {
            l.push(Label::new(n, v));
        }
        Labels::from_unsorted(l).map_err(|n| format!("label {n:?} appears twice"))
    };
    let float = |out: &mut Vec<ParsedSample>, labels: Labels, value: f64| {
        out.push(ParsedSample {
            labels,
            value,
            timestamp,
            histogram: None,
        })
    };
    let value = |v: &Option<proto::Value>| v.as_ref().and_then(|v| v.value).unwrap_or(0.0);
    match kind {
        COUNTER => float(out, series("", None)?, value(&m.counter)),
        GAUGE => float(out, series("", None)?, value(&m.gauge)),
        SUMMARY => {
            let s = m.summary.clone().unwrap_or_default();
            for q in &s.quantile {
                let at = om_float(q.quantile.unwrap_or(0.0));
                float(
                    out,
                    series("", Some(("quantile", at)))?,
                    q.value.unwrap_or(0.0),
                );
            }
            float(out, series("_sum", None)?, s.sample_sum.unwrap_or(0.0));
            float(
                out,
                series("_count", None)?,
                s.sample_count.unwrap_or(0) as f64,
            );
        }
        HISTOGRAM | GAUGE_HISTOGRAM => {
            let h = m.histogram.clone().unwrap_or_default();
            let native = !h.positive_span.is_empty()
                || !h.negative_span.is_empty()
                || h.zero_threshold.unwrap_or(0.0) > 0.0
                || h.zero_count.unwrap_or(0) > 0
                || h.zero_count_float.unwrap_or(0.0) > 0.0;
            if native {
                let nh = native_histogram(&h, kind == GAUGE_HISTOGRAM)?;
                out.push(ParsedSample {
                    labels: series("", None)?,
                    value: 0.0,
                    timestamp,
                    histogram: Some(Arc::new(nh)),
                });
            }
            if !native || classic {
                let count = h
                    .sample_count_float
                    .unwrap_or(h.sample_count.unwrap_or(0) as f64);
                let mut inf = false;
                for b in &h.bucket {
                    let le = b.upper_bound.unwrap_or(f64::INFINITY);
                    inf |= le == f64::INFINITY;
                    let c = b
                        .cumulative_count_float
                        .unwrap_or(b.cumulative_count.unwrap_or(0) as f64);
                    float(out, series("_bucket", Some(("le", om_float(le))))?, c);
                }
                if !inf {
                    float(out, series("_bucket", Some(("le", "+Inf".into())))?, count);
                }
                float(out, series("_sum", None)?, h.sample_sum.unwrap_or(0.0));
                float(out, series("_count", None)?, count);
            }
        }
        _ => float(out, series("", None)?, value(&m.untyped)),
    }
    Ok(())
}

/// The native part of an exposed histogram, through the remote-write conversion (the two carry
/// the same spans and counts).
fn native_histogram(
    h: &proto::Histogram,
    gauge: bool,
) -> Result<medic_model::FloatHistogram, String> {
    let spans = |s: &[proto::Span]| -> Vec<WireSpan> {
        s.iter()
            .map(|s| WireSpan {
                offset: s.offset.unwrap_or(0),
                length: s.length.unwrap_or(0),
            })
            .collect()
    };
    let wire = WireHistogram {
        count_int: h.sample_count,
        count_float: h.sample_count_float,
        sum: h.sample_sum.unwrap_or(0.0),
        schema: h.schema.unwrap_or(0),
        zero_threshold: h.zero_threshold.unwrap_or(0.0),
        zero_count_int: h.zero_count,
        zero_count_float: h.zero_count_float,
        negative_spans: spans(&h.negative_span),
        negative_deltas: h.negative_delta.clone(),
        negative_counts: h.negative_count.clone(),
        positive_spans: spans(&h.positive_span),
        positive_deltas: h.positive_delta.clone(),
        positive_counts: h.positive_count.clone(),
        ..Default::default()
    };
    let mut fh = wire.to_float()?;
    if gauge {
        fh.counter_reset_hint = CounterResetHint::Gauge;
    }
    Ok(fh)
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    fn delimited(families: &[proto::MetricFamily]) -> Vec<u8> {
        let mut out = Vec::new();
        for f in families {
            f.encode_length_delimited(&mut out).unwrap();
        }
        out
    }

    fn family(name: &str, kind: i32, metric: proto::Metric) -> proto::MetricFamily {
        proto::MetricFamily {
            name: Some(name.into()),
            help: Some("help".into()),
            r#type: Some(kind),
            metric: vec![metric],
            unit: None,
        }
    }

    #[test]
    fn counters_summaries_and_both_kinds_of_histogram() {
        let label = |n: &str, v: &str| proto::LabelPair {
            name: Some(n.into()),
            value: Some(v.into()),
        };
        let counter = proto::Metric {
            label: vec![label("code", "200")],
            counter: Some(proto::Value { value: Some(7.0) }),
            ..Default::default()
        };
        let summary = proto::Metric {
            summary: Some(proto::Summary {
                sample_count: Some(3),
                sample_sum: Some(1.5),
                quantile: vec![proto::Quantile {
                    quantile: Some(0.5),
                    value: Some(0.4),
                }],
            }),
            ..Default::default()
        };
        let classic = proto::Metric {
            histogram: Some(proto::Histogram {
                sample_count: Some(4),
                sample_sum: Some(2.0),
                bucket: vec![proto::Bucket {
                    cumulative_count: Some(3),
                    upper_bound: Some(1.0),
                    cumulative_count_float: None,
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        let native = proto::Metric {
            histogram: Some(proto::Histogram {
                sample_count: Some(3),
                sample_sum: Some(2.5),
                schema: Some(0),
                zero_threshold: Some(0.001),
                zero_count: Some(1),
                positive_span: vec![proto::Span {
                    offset: Some(0),
                    length: Some(2),
                }],
                positive_delta: vec![1, 0],
                ..Default::default()
            }),
            ..Default::default()
        };
        let body = delimited(&[
            family("requests_total", COUNTER, counter),
            family("rpc_seconds", SUMMARY, summary),
            family("classic_seconds", HISTOGRAM, classic),
            family("native_seconds", HISTOGRAM, native),
        ]);
        let (got, meta) = parse(&body, 100, false).unwrap();
        let text: Vec<String> = got
            .iter()
            .map(|s| match &s.histogram {
                Some(h) => format!(
                    "{} {}",
                    s.labels,
                    medic_model::histogram::format_test_expression(h)
                ),
                None => format!("{} {}", s.labels, s.value),
            })
            .collect();
        assert_eq!(
            text,
            [
                r#"requests_total{code="200"} 7"#,
                r#"rpc_seconds{quantile="0.5"} 0.4"#,
                "rpc_seconds_sum 1.5",
                "rpc_seconds_count 3",
                r#"classic_seconds_bucket{le="1.0"} 3"#,
                r#"classic_seconds_bucket{le="+Inf"} 4"#,
                "classic_seconds_sum 2",
                "classic_seconds_count 4",
                "native_seconds {{count:3 sum:2.5 z_bucket:1 z_bucket_w:0.001 buckets:[1 1]}}",
            ]
        );
        assert_eq!(meta["rpc_seconds"].kind, "summary");
        // Truncated bodies are errors that say where, never panics.
        for cut in 1..body.len() {
            let _ = parse(&body[..cut], 100, false);
        }
        let e = parse(&body[..body.len() - 3], 100, false).unwrap_err();
        assert!(e.message.contains("metric family 4"), "{e}");
        assert!(parse(&body, 5, false).is_err());
    }
}
