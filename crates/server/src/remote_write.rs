//! The Prometheus remote write 1.0 receiver: snappy-compressed protobuf `WriteRequest`s. Valid
//! samples of a request are stored even when others are rejected; the rejected ones are counted
//! by reason and reported back, as Prometheus does.

use std::collections::BTreeMap;

use medic_model::{Appendable, Label, Labels, StorageError};

/// The remote write protobuf messages (prometheus/prompb/types.proto, remote.proto), written
/// with prost's derive so no protoc is needed at build time.
pub mod proto {
    /// `prometheus.WriteRequest`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct WriteRequest {
        /// Series with their samples.
        #[prost(message, repeated, tag = "1")]
        pub timeseries: Vec<TimeSeries>,
    }

    /// `prometheus.TimeSeries`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TimeSeries {
        /// Labels, including `__name__`.
        #[prost(message, repeated, tag = "1")]
        pub labels: Vec<Label>,
        /// Float samples.
        #[prost(message, repeated, tag = "2")]
        pub samples: Vec<Sample>,
        /// Native histogram samples (not stored yet; counted as rejected).
        #[prost(message, repeated, tag = "4")]
        pub histograms: Vec<Histogram>,
    }

    /// `prometheus.Label`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Label {
        /// Name.
        #[prost(string, tag = "1")]
        pub name: String,
        /// Value.
        #[prost(string, tag = "2")]
        pub value: String,
    }

    /// `prometheus.Sample`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Sample {
        /// Value.
        #[prost(double, tag = "1")]
        pub value: f64,
        /// Milliseconds since the epoch.
        #[prost(int64, tag = "2")]
        pub timestamp: i64,
    }

    /// `prometheus.Histogram`, reduced to its timestamp: medic only counts these for now.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Histogram {
        /// Milliseconds since the epoch.
        #[prost(int64, tag = "15")]
        pub timestamp: i64,
    }
}

/// Why a request body was refused as a whole.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Snappy decompression failed.
    #[error("snappy decode failed: {0}")]
    Snappy(String),
    /// The decompressed body is larger than allowed.
    #[error("decompressed body would be {size} bytes, over the limit of {limit}")]
    TooLarge {
        /// Claimed size.
        size: usize,
        /// Configured limit.
        limit: usize,
    },
    /// Protobuf decoding failed.
    #[error("protobuf decode failed: {0}")]
    Protobuf(String),
}

/// Decompresses and decodes a request body.
pub fn decode(body: &[u8], max_decoded: usize) -> Result<proto::WriteRequest, DecodeError> {
    let size = snap::raw::decompress_len(body).map_err(|e| DecodeError::Snappy(e.to_string()))?;
    if size > max_decoded {
        return Err(DecodeError::TooLarge {
            size,
            limit: max_decoded,
        });
    }
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| DecodeError::Snappy(e.to_string()))?;
    <proto::WriteRequest as prost::Message>::decode(raw.as_slice())
        .map_err(|e| DecodeError::Protobuf(e.to_string()))
}

/// Longest example quoted back per rejection reason, so a huge label cannot bloat responses.
const MAX_EXAMPLE: usize = 240;

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

/// What happened to one request's samples.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Samples stored.
    pub accepted: usize,
    /// Rejected samples by reason: count and the first example.
    pub rejected: BTreeMap<&'static str, (usize, String)>,
}

impl Outcome {
    fn reject(&mut self, reason: &'static str, n: usize, example: impl FnOnce() -> String) {
        let e = self
            .rejected
            .entry(reason)
            .or_insert_with(|| (0, truncate(example(), MAX_EXAMPLE)));
        e.0 += n;
    }

    /// Total rejected samples.
    pub fn rejected_count(&self) -> usize {
        self.rejected.values().map(|(n, _)| n).sum()
    }

    /// A message listing rejections by reason, for the HTTP response.
    pub fn message(&self) -> String {
        let mut parts = Vec::new();
        for (reason, (n, example)) in &self.rejected {
            parts.push(format!("{reason}: {n} (first: {example})"));
        }
        format!(
            "stored {} samples, rejected {}: {}",
            self.accepted,
            self.rejected_count(),
            parts.join("; ")
        )
    }
}

/// Stores a decoded request in one transaction.
pub fn ingest(store: &dyn Appendable, req: proto::WriteRequest) -> Result<Outcome, StorageError> {
    let mut out = Outcome::default();
    let mut app = store.appender();
    for ts in req.timeseries {
        if !ts.histograms.is_empty() {
            out.reject("native_histogram_unsupported", ts.histograms.len(), || {
                "native histograms are not stored yet".into()
            });
        }
        if ts.samples.is_empty() {
            continue;
        }
        let raw: Vec<Label> = ts
            .labels
            .into_iter()
            .map(|l| Label::new(l.name, l.value))
            .collect();
        let labels = match Labels::from_unsorted(raw) {
            Ok(l) => l,
            Err(name) => {
                out.reject("invalid_labels", ts.samples.len(), || {
                    format!("label {name:?} appears twice in one series")
                });
                continue;
            }
        };
        let r = match app.series_ref(&labels) {
            Ok(r) => r,
            Err(e) => {
                out.reject(e.reason(), ts.samples.len(), || format!("{labels}: {e}"));
                continue;
            }
        };
        for s in ts.samples {
            if let Err(e) = app.append(r, s.timestamp, s.value) {
                out.reject(e.reason(), 1, || format!("{labels} @ {}: {e}", s.timestamp));
            }
        }
    }
    let summary = app.commit()?;
    out.accepted = summary.accepted;
    for (r, e) in summary.rejected {
        out.reject(e.reason(), 1, || format!("series ref {r}: {e}"));
    }
    Ok(out)
}

/// Encodes a request (for tests and tools that send remote write).
pub fn encode(req: &proto::WriteRequest) -> Vec<u8> {
    let raw = prost::Message::encode_to_vec(req);
    snap::raw::Encoder::new()
        .compress_vec(&raw)
        .expect("snappy compression of a Vec cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;
    use medic_model::{MemStorage, Queryable};

    fn ts(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> proto::TimeSeries {
        proto::TimeSeries {
            labels: labels
                .iter()
                .map(|(n, v)| proto::Label {
                    name: n.to_string(),
                    value: v.to_string(),
                })
                .collect(),
            samples: samples
                .iter()
                .map(|&(timestamp, value)| proto::Sample { value, timestamp })
                .collect(),
            histograms: vec![],
        }
    }

    #[test]
    fn round_trip_and_partial_rejection() {
        let req = proto::WriteRequest {
            timeseries: vec![
                ts(
                    &[("__name__", "a"), ("x", "1")],
                    &[(1000, 1.0), (2000, 2.0)],
                ),
                ts(&[("__name__", "b"), ("x", "1"), ("x", "2")], &[(1000, 1.0)]),
                ts(
                    &[("__name__", "c"), ("bad-name", "1")],
                    &[(1000, 1.0), (2000, 1.0)],
                ),
            ],
        };
        let body = encode(&req);
        let decoded = decode(&body, 1 << 20).unwrap();
        assert_eq!(decoded, req);
        let store = MemStorage::new();
        let out = ingest(&store, decoded).unwrap();
        assert_eq!(out.accepted, 2);
        assert_eq!(out.rejected_count(), 3);
        assert_eq!(out.rejected["invalid_labels"].0, 3);
        let msg = out.message();
        assert!(
            msg.contains("appears twice") || msg.contains("bad-name"),
            "{msg}"
        );
        let q = store.querier(0, 5000).unwrap();
        assert_eq!(q.label_values("__name__", &[]).unwrap(), vec!["a"]);
    }

    #[test]
    fn garbage_bodies_are_errors() {
        assert!(matches!(
            decode(b"not snappy at all \xff\xff\xff\xff\xff", 1 << 20),
            Err(DecodeError::Snappy(_))
        ));
        let not_proto = snap::raw::Encoder::new().compress_vec(&[0xff; 32]).unwrap();
        assert!(matches!(
            decode(&not_proto, 1 << 20),
            Err(DecodeError::Protobuf(_))
        ));
        let big = snap::raw::Encoder::new()
            .compress_vec(&vec![0u8; 4096])
            .unwrap();
        assert!(matches!(
            decode(&big, 100),
            Err(DecodeError::TooLarge { .. })
        ));
    }
}
