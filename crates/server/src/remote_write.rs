//! The Prometheus remote write 1.0 receiver: snappy-compressed protobuf `WriteRequest`s, float
//! samples and native histograms (`crate::remote_histogram`). Valid samples of a request are
//! stored even when others are rejected; the rejected ones are counted by reason and reported
//! back, as Prometheus does.

use std::collections::BTreeMap;

use medic_model::{Appendable, Appender, Label, Labels, StorageError};

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
        /// Native histogram samples.
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

    pub use crate::remote_histogram::{BucketSpan, Histogram};
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

/// Decompresses a request body, refusing (from the snappy header, before allocating) bodies that
/// would exceed `max_decoded`.
pub fn decompress(body: &[u8], max_decoded: usize) -> Result<Vec<u8>, DecodeError> {
    let size = snap::raw::decompress_len(body).map_err(|e| DecodeError::Snappy(e.to_string()))?;
    if size > max_decoded {
        return Err(DecodeError::TooLarge {
            size,
            limit: max_decoded,
        });
    }
    snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| DecodeError::Snappy(e.to_string()))
}

/// Decompresses and decodes a request body into owned messages (tools and tests; the receiver
/// uses the borrowing decoder in [`wire`]).
pub fn decode(body: &[u8], max_decoded: usize) -> Result<proto::WriteRequest, DecodeError> {
    let raw = decompress(body, max_decoded)?;
    <proto::WriteRequest as prost::Message>::decode(raw.as_slice())
        .map_err(|e| DecodeError::Protobuf(e.to_string()))
}

/// A protobuf reader for `WriteRequest` that borrows label strings from the request buffer, so a
/// sample for a known series costs no allocation. Checked against prost in the tests.
pub mod wire {
    use super::DecodeError;

    /// One `TimeSeries`, borrowed.
    #[derive(Debug, Default)]
    pub struct Series<'a> {
        /// Labels in wire order.
        pub labels: Vec<(&'a str, &'a str)>,
        /// `(timestamp, value)` samples.
        pub samples: Vec<(i64, f64)>,
        /// Native histogram messages, undecoded (`prometheus.Histogram`).
        pub histograms: Vec<&'a [u8]>,
    }

    struct Reader<'a> {
        buf: &'a [u8],
        pos: usize,
    }

    fn err(what: &str, pos: usize) -> DecodeError {
        DecodeError::Protobuf(format!("{what} at byte {pos}"))
    }

    impl<'a> Reader<'a> {
        fn done(&self) -> bool {
            self.pos >= self.buf.len()
        }

        fn varint(&mut self) -> Result<u64, DecodeError> {
            let mut v = 0u64;
            for shift in (0..64).step_by(7) {
                let b = *self
                    .buf
                    .get(self.pos)
                    .ok_or_else(|| err("truncated varint", self.pos))?;
                self.pos += 1;
                v |= u64::from(b & 0x7f) << shift;
                if b < 0x80 {
                    return Ok(v);
                }
            }
            Err(err("varint too long", self.pos))
        }

        fn fixed64(&mut self) -> Result<u64, DecodeError> {
            let b = self
                .buf
                .get(self.pos..self.pos + 8)
                .ok_or_else(|| err("truncated fixed64", self.pos))?;
            self.pos += 8;
            Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
        }

        fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
            let n = self.varint()? as usize;
            let end = self
                .pos
                .checked_add(n)
                .filter(|e| *e <= self.buf.len())
                .ok_or_else(|| err("length past end of message", self.pos))?;
            let b = &self.buf[self.pos..end];
            self.pos = end;
            Ok(b)
        }

        fn str(&mut self) -> Result<&'a str, DecodeError> {
            let at = self.pos;
            std::str::from_utf8(self.bytes()?).map_err(|_| err("string is not valid UTF-8", at))
        }

        /// Reads a field key: (field number, wire type).
        fn key(&mut self) -> Result<(u64, u8), DecodeError> {
            let k = self.varint()?;
            if k >> 3 == 0 {
                return Err(err("field number 0", self.pos));
            }
            Ok((k >> 3, (k & 7) as u8))
        }

        fn skip(&mut self, wire: u8) -> Result<(), DecodeError> {
            match wire {
                0 => {
                    self.varint()?;
                }
                1 => {
                    self.fixed64()?;
                }
                2 => {
                    self.bytes()?;
                }
                5 => {
                    if self.pos + 4 > self.buf.len() {
                        return Err(err("truncated fixed32", self.pos));
                    }
                    self.pos += 4;
                }
                w => return Err(err(&format!("unsupported wire type {w}"), self.pos)),
            }
            Ok(())
        }
    }

    /// Calls `f` for every series of an uncompressed `WriteRequest`, reusing one [`Series`].
    pub fn for_each_series<'a>(
        buf: &'a [u8],
        mut f: impl FnMut(&Series<'a>) -> Result<(), DecodeError>,
    ) -> Result<(), DecodeError> {
        let mut top = Reader { buf, pos: 0 };
        let mut series = Series::default();
        while !top.done() {
            let (field, wire) = top.key()?;
            if field != 1 || wire != 2 {
                top.skip(wire)?;
                continue;
            }
            let mut ts = Reader {
                buf: top.bytes()?,
                pos: 0,
            };
            series.labels.clear();
            series.samples.clear();
            series.histograms.clear();
            while !ts.done() {
                match ts.key()? {
                    (1, 2) => {
                        let mut l = Reader {
                            buf: ts.bytes()?,
                            pos: 0,
                        };
                        let (mut name, mut value) = ("", "");
                        while !l.done() {
                            match l.key()? {
                                (1, 2) => name = l.str()?,
                                (2, 2) => value = l.str()?,
                                (_, w) => l.skip(w)?,
                            }
                        }
                        series.labels.push((name, value));
                    }
                    (2, 2) => {
                        let mut smp = Reader {
                            buf: ts.bytes()?,
                            pos: 0,
                        };
                        let (mut t, mut v) = (0i64, 0f64);
                        while !smp.done() {
                            match smp.key()? {
                                (1, 1) => v = f64::from_bits(smp.fixed64()?),
                                (2, 0) => t = smp.varint()? as i64,
                                (_, w) => smp.skip(w)?,
                            }
                        }
                        series.samples.push((t, v));
                    }
                    (4, 2) => series.histograms.push(ts.bytes()?),
                    (_, w) => ts.skip(w)?,
                }
            }
            f(&series)?;
        }
        Ok(())
    }
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
    /// Of `accepted`, native histograms.
    pub accepted_histograms: usize,
    /// Rejected samples by reason: count and the first example.
    pub rejected: BTreeMap<&'static str, (usize, String)>,
}

impl Outcome {
    pub(crate) fn reject(
        &mut self,
        reason: &'static str,
        n: usize,
        example: impl FnOnce() -> String,
    ) {
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

/// Why a whole request failed: it did not decode, or the store failed. Either way nothing of it
/// was stored.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The body is not a valid request.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The store could not commit.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Decodes an uncompressed `WriteRequest` and stores it in one transaction. The whole body is
/// decoded before anything is committed, so a malformed body stores nothing.
pub fn ingest(store: &dyn Appendable, raw: &[u8]) -> Result<Outcome, IngestError> {
    let mut out = Outcome::default();
    let mut app = store.appender();
    let mut sorted: Vec<(&str, &str)> = Vec::new();
    let mut histograms = Vec::new();
    let decoded = wire::for_each_series(raw, |ts| {
        histograms.clear();
        for raw in &ts.histograms {
            histograms.push(
                <proto::Histogram as prost::Message>::decode(*raw)
                    .map_err(|e| DecodeError::Protobuf(format!("histogram: {e}")))?,
            );
        }
        sorted.clear();
        sorted.extend(ts.labels.iter().copied());
        store_series(
            app.as_mut(),
            &mut out,
            &mut sorted,
            &ts.samples,
            &histograms,
        );
        Ok(())
    });
    if let Err(e) = decoded {
        app.rollback();
        return Err(e.into());
    }
    commit(app, out)
}

/// Commits a request's transaction; what the commit refused joins the outcome.
pub(crate) fn commit(
    app: Box<dyn Appender + '_>,
    mut out: Outcome,
) -> Result<Outcome, IngestError> {
    let summary = app.commit()?;
    out.accepted = summary.accepted;
    out.accepted_histograms = summary.accepted_histograms;
    for (r, e) in summary.rejected {
        out.reject(e.reason(), 1, || format!("series ref {r}: {e}"));
    }
    Ok(out)
}

/// Buffers one series' floats and histograms in `app` (shared by remote write 1.0 and 2.0).
/// `labels` holds the series' label pairs as sent; it is sorted here, empty values dropped as
/// the model does.
pub(crate) fn store_series(
    app: &mut dyn Appender,
    out: &mut Outcome,
    labels: &mut Vec<(&str, &str)>,
    samples: &[(i64, f64)],
    histograms: &[proto::Histogram],
) {
    let n = samples.len() + histograms.len();
    if n == 0 {
        return;
    }
    labels.retain(|(_, v)| !v.is_empty());
    // Prometheus sends labels sorted; sort anyway.
    if !labels.windows(2).all(|w| w[0].0 < w[1].0) {
        labels.sort_by(|a, b| a.0.cmp(b.0));
    }
    let sorted = &*labels;
    let r = match app.existing_series_ref(Labels::hash_pairs(sorted), sorted) {
        Some(r) => r,
        None => {
            let raw: Vec<Label> = sorted.iter().map(|(n, v)| Label::new(*n, *v)).collect();
            let labels = match Labels::from_unsorted(raw) {
                Ok(l) => l,
                Err(name) => {
                    out.reject("invalid_labels", n, || {
                        format!("label {name:?} appears twice in one series")
                    });
                    return;
                }
            };
            match app.series_ref(&labels) {
                Ok(r) => r,
                Err(e) => {
                    out.reject(e.reason(), n, || format!("{labels}: {e}"));
                    return;
                }
            }
        }
    };
    let example = |t: i64, why: &dyn std::fmt::Display| {
        let labels = Labels::from_pairs(sorted.iter().copied());
        format!("{labels} @ {t}: {why}")
    };
    for &(t, v) in samples {
        if let Err(e) = app.append(r, t, v) {
            out.reject(e.reason(), 1, || example(t, &e));
        }
    }
    for h in histograms {
        let t = h.timestamp;
        let stored = h
            .to_float()
            .map_err(|why| ("invalid_histogram", why))
            .and_then(|fh| {
                app.append_histogram(r, t, std::sync::Arc::new(fh))
                    .map_err(|e| (e.reason(), e.to_string()))
            });
        if let Err((reason, why)) = stored {
            out.reject(reason, 1, || example(t, &why));
        }
    }
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
        let out = ingest(&store, &decompress(&body, 1 << 20).unwrap()).unwrap();
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
    fn wire_decoder_agrees_with_prost() {
        let mut req = proto::WriteRequest::default();
        for i in 0..50 {
            let mut t = ts(
                &[("__name__", "m"), ("i", &i.to_string()), ("ü", "ω")],
                &[(i, i as f64 * 0.5), (i + 1, f64::NAN)],
            );
            if i % 7 == 0 {
                t.histograms.push(proto::Histogram {
                    timestamp: 5,
                    schema: 1,
                    count_int: Some(3),
                    ..Default::default()
                });
            }
            req.timeseries.push(t);
        }
        let raw = prost::Message::encode_to_vec(&req);
        let mut got = Vec::new();
        wire::for_each_series(&raw, |s| {
            got.push((
                s.labels
                    .iter()
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .collect::<Vec<_>>(),
                s.samples
                    .iter()
                    .map(|(t, v)| (*t, v.to_bits()))
                    .collect::<Vec<_>>(),
                s.histograms.len(),
            ));
            Ok(())
        })
        .unwrap();
        let want: Vec<_> = req
            .timeseries
            .iter()
            .map(|t| {
                (
                    t.labels
                        .iter()
                        .map(|l| (l.name.clone(), l.value.clone()))
                        .collect::<Vec<_>>(),
                    t.samples
                        .iter()
                        .map(|s| (s.timestamp, s.value.to_bits()))
                        .collect::<Vec<_>>(),
                    t.histograms.len(),
                )
            })
            .collect();
        assert_eq!(got, want);
        // Every truncation of a valid message is an error or a shorter valid message, never a
        // panic, and prost agrees on which.
        for cut in 0..raw.len().min(400) {
            let mine = wire::for_each_series(&raw[..cut], |_| Ok(())).is_ok();
            let theirs = <proto::WriteRequest as prost::Message>::decode(&raw[..cut]).is_ok();
            assert_eq!(mine, theirs, "cut at {cut}");
        }
        // Random bytes never panic.
        let mut x = 0x1234_5678u64;
        for _ in 0..2000 {
            let junk: Vec<u8> = (0..64)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let _ = wire::for_each_series(&junk, |_| Ok(()));
        }
    }

    #[test]
    fn malformed_body_stores_nothing() {
        let req = proto::WriteRequest {
            timeseries: vec![
                ts(&[("__name__", "a")], &[(1, 1.0)]),
                ts(&[("__name__", "b")], &[(1, 1.0)]),
            ],
        };
        let raw = prost::Message::encode_to_vec(&req);
        let store = MemStorage::new();
        // The second series is cut short: the first must not be stored either.
        assert!(ingest(&store, &raw[..raw.len() - 3]).is_err());
        assert!(store
            .querier(0, 10)
            .unwrap()
            .label_names(&[])
            .unwrap()
            .is_empty());
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
