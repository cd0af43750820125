//! Native histograms in remote write 1.0: `prometheus.Histogram` (prompb/types.proto) and its
//! conversion to the model's [`FloatHistogram`]. Integer histograms carry their bucket counts as
//! deltas from the previous bucket, float histograms as absolute counts; both become float
//! counts, as PromQL computes with them.

use medic_model::histogram::{CounterResetHint, Span, CUSTOM_BUCKETS_SCHEMA};
use medic_model::FloatHistogram;

/// `prometheus.Histogram`. The `oneof`s of the .proto (`count`, `zero_count`) are read as the
/// optional fields they are on the wire.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Histogram {
    #[prost(uint64, optional, tag = "1")]
    pub count_int: Option<u64>,
    #[prost(double, optional, tag = "2")]
    pub count_float: Option<f64>,
    #[prost(double, tag = "3")]
    pub sum: f64,
    #[prost(sint32, tag = "4")]
    pub schema: i32,
    #[prost(double, tag = "5")]
    pub zero_threshold: f64,
    #[prost(uint64, optional, tag = "6")]
    pub zero_count_int: Option<u64>,
    #[prost(double, optional, tag = "7")]
    pub zero_count_float: Option<f64>,
    #[prost(message, repeated, tag = "8")]
    pub negative_spans: Vec<BucketSpan>,
    #[prost(sint64, repeated, tag = "9")]
    pub negative_deltas: Vec<i64>,
    #[prost(double, repeated, tag = "10")]
    pub negative_counts: Vec<f64>,
    #[prost(message, repeated, tag = "11")]
    pub positive_spans: Vec<BucketSpan>,
    #[prost(sint64, repeated, tag = "12")]
    pub positive_deltas: Vec<i64>,
    #[prost(double, repeated, tag = "13")]
    pub positive_counts: Vec<f64>,
    /// 0 unknown, 1 yes (a reset), 2 no, 3 gauge.
    #[prost(int32, tag = "14")]
    pub reset_hint: i32,
    /// Milliseconds since the epoch.
    #[prost(int64, tag = "15")]
    pub timestamp: i64,
    #[prost(double, repeated, tag = "16")]
    pub custom_values: Vec<f64>,
}

/// `prometheus.BucketSpan`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BucketSpan {
    #[prost(sint32, tag = "1")]
    pub offset: i32,
    #[prost(uint32, tag = "2")]
    pub length: u32,
}

/// Most buckets accepted on one side of one histogram. Prometheus's clients default to at most
/// 160 in all; the head keeps one column per bucket, so an unbounded count would let one small
/// request claim memory out of proportion to its size.
const MAX_BUCKETS: u64 = 4096;

fn side(
    spans: &[BucketSpan],
    deltas: &[i64],
    counts: &[f64],
    name: &str,
) -> Result<Vec<(i32, f64)>, String> {
    let total: u64 = spans.iter().map(|s| u64::from(s.length)).sum();
    if total > MAX_BUCKETS {
        return Err(format!(
            "{total} {name} buckets, over the limit of {MAX_BUCKETS}"
        ));
    }
    let counts: Vec<f64> = if !deltas.is_empty() {
        // Integer histogram: each count is the previous one plus its delta.
        let mut acc = 0i64;
        deltas
            .iter()
            .map(|d| {
                acc = acc.saturating_add(*d);
                acc as f64
            })
            .collect()
    } else {
        counts.to_vec()
    };
    if counts.iter().any(|c| *c < 0.0) {
        return Err(format!("a {name} bucket count is negative"));
    }
    let spans: Vec<Span> = spans
        .iter()
        .map(|s| Span {
            offset: s.offset,
            length: s.length,
        })
        .collect();
    FloatHistogram::from_spans(&spans, &counts).ok_or_else(|| {
        format!(
            "{name} spans describe {total} buckets but {} counts were sent",
            counts.len()
        )
    })
}

impl Histogram {
    /// The histogram as the model holds it, or why it is not a valid histogram.
    pub fn to_float(&self) -> Result<FloatHistogram, String> {
        let custom = self.schema == CUSTOM_BUCKETS_SCHEMA;
        if !custom && !(-4..=8).contains(&self.schema) {
            return Err(format!("schema {} is not valid", self.schema));
        }
        if custom && !self.custom_values.windows(2).all(|w| w[0] < w[1]) {
            return Err("custom bucket bounds are not in increasing order".into());
        }
        let counter_reset_hint = match self.reset_hint {
            1 => CounterResetHint::CounterReset,
            2 => CounterResetHint::NotCounterReset,
            3 => CounterResetHint::Gauge,
            _ => CounterResetHint::Unknown,
        };
        let mut h = FloatHistogram {
            counter_reset_hint,
            schema: self.schema,
            zero_threshold: self.zero_threshold,
            zero_count: self
                .zero_count_float
                .or(self.zero_count_int.map(|c| c as f64))
                .unwrap_or(0.0),
            count: self
                .count_float
                .or(self.count_int.map(|c| c as f64))
                .unwrap_or(0.0),
            sum: self.sum,
            positive: side(
                &self.positive_spans,
                &self.positive_deltas,
                &self.positive_counts,
                "positive",
            )?,
            negative: side(
                &self.negative_spans,
                &self.negative_deltas,
                &self.negative_counts,
                "negative",
            )?,
            custom_values: if custom {
                self.custom_values.clone()
            } else {
                Vec::new()
            },
        };
        if custom && !h.negative.is_empty() {
            return Err("a custom-bucket histogram has negative buckets".into());
        }
        h.compact();
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use medic_model::histogram::parse_test_expression;

    #[test]
    fn integer_and_float_histograms_convert_as_prometheus_writes_them() {
        // An integer histogram: counts 1, 3, 0, 2 as deltas 1, +2, -3, +2, in two spans.
        let int = Histogram {
            count_int: Some(7),
            sum: 12.5,
            schema: 1,
            zero_threshold: 0.001,
            zero_count_int: Some(1),
            positive_spans: vec![
                BucketSpan {
                    offset: -1,
                    length: 2,
                },
                BucketSpan {
                    offset: 3,
                    length: 2,
                },
            ],
            positive_deltas: vec![1, 2, -3, 2],
            reset_hint: 2,
            ..Default::default()
        };
        let want = parse_test_expression(
            "{{schema:1 sum:12.5 count:7 z_bucket:1 z_bucket_w:0.001 offset:-1 buckets:[1 3 0 0 0 0 2] counter_reset_hint:not_reset}}",
        )
        .unwrap();
        assert_eq!(int.to_float().unwrap(), want);

        let float = Histogram {
            count_float: Some(15.0),
            sum: 172.5,
            schema: -53,
            positive_spans: vec![BucketSpan {
                offset: 0,
                length: 3,
            }],
            positive_counts: vec![1.0, 6.0, 8.0],
            custom_values: vec![5.0, 10.0],
            ..Default::default()
        };
        let want = parse_test_expression(
            "{{schema:-53 sum:172.5 count:15 custom_values:[5 10] buckets:[1 6 8]}}",
        )
        .unwrap();
        assert_eq!(float.to_float().unwrap(), want);
    }

    #[test]
    fn invalid_histograms_are_named() {
        let mut h = Histogram {
            schema: 9,
            ..Default::default()
        };
        assert!(h.to_float().unwrap_err().contains("schema 9"));
        h.schema = 0;
        h.positive_spans = vec![BucketSpan {
            offset: 0,
            length: 3,
        }];
        h.positive_deltas = vec![1, 1];
        assert!(h.to_float().unwrap_err().contains("3 buckets but 2 counts"));
        h.positive_deltas = vec![1, -2, 1];
        assert!(h.to_float().unwrap_err().contains("negative"));
    }
}
