//! The Prometheus remote write 2.0 receiver (`io.prometheus.write.v2.Request`): labels as
//! references into one symbol table per request, float samples and native histograms (the same
//! `Histogram` message as 1.0). Exemplars and metadata are read past and not stored; a series'
//! `created_timestamp` is ignored (medic keeps no start timestamps). Senders learn what was
//! written from the `X-Prometheus-Remote-Write-*-Written` response headers.

use medic_model::Appendable;

use crate::remote_write::{commit, store_series, DecodeError, IngestError, Outcome};

/// The 2.0 messages (prometheus/prompb/io/prometheus/write/v2/types.proto), with prost's derive.
pub mod proto {
    pub use crate::remote_histogram::{BucketSpan, Histogram};

    /// `io.prometheus.write.v2.Request`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Request {
        /// Every string the request uses; `symbols[0]` is the empty string.
        #[prost(string, repeated, tag = "4")]
        pub symbols: Vec<String>,
        /// Series with their samples.
        #[prost(message, repeated, tag = "5")]
        pub timeseries: Vec<TimeSeries>,
    }

    /// `io.prometheus.write.v2.TimeSeries`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TimeSeries {
        /// Pairs of symbol references: name, value, name, value, …
        #[prost(uint32, repeated, tag = "1")]
        pub labels_refs: Vec<u32>,
        /// Float samples.
        #[prost(message, repeated, tag = "2")]
        pub samples: Vec<Sample>,
        /// Native histograms.
        #[prost(message, repeated, tag = "3")]
        pub histograms: Vec<Histogram>,
    }

    /// `io.prometheus.write.v2.Sample`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Sample {
        /// Value.
        #[prost(double, tag = "1")]
        pub value: f64,
        /// Milliseconds since the epoch.
        #[prost(int64, tag = "2")]
        pub timestamp: i64,
    }
}

/// The `Content-Type` parameter that selects this version.
pub const PROTO: &str = "io.prometheus.write.v2.Request";

/// Decodes an uncompressed 2.0 request and stores it in one transaction. The whole body is
/// decoded before anything is stored, so a malformed body stores nothing; a series whose label
/// references are broken is rejected on its own (`invalid_labels`).
pub fn ingest(store: &dyn Appendable, raw: &[u8]) -> Result<Outcome, IngestError> {
    let req = <proto::Request as prost::Message>::decode(raw)
        .map_err(|e| DecodeError::Protobuf(e.to_string()))?;
    let mut out = Outcome::default();
    let mut app = store.appender();
    let mut labels: Vec<(&str, &str)> = Vec::new();
    for ts in &req.timeseries {
        let n = ts.samples.len() + ts.histograms.len();
        labels.clear();
        if let Err(why) = resolve_labels(&req.symbols, &ts.labels_refs, &mut labels) {
            out.reject("invalid_labels", n, || why);
            continue;
        }
        let samples: Vec<(i64, f64)> = ts.samples.iter().map(|s| (s.timestamp, s.value)).collect();
        store_series(
            app.as_mut(),
            &mut out,
            &mut labels,
            &samples,
            &ts.histograms,
        );
    }
    commit(app, out)
}

fn resolve_labels<'a>(
    symbols: &'a [String],
    refs: &[u32],
    out: &mut Vec<(&'a str, &'a str)>,
) -> Result<(), String> {
    if !refs.len().is_multiple_of(2) {
        return Err(format!(
            "{} label references: not name/value pairs",
            refs.len()
        ));
    }
    let get = |r: u32| {
        symbols
            .get(r as usize)
            .map(String::as_str)
            .ok_or_else(|| format!("label reference {r} is past the {} symbols", symbols.len()))
    };
    for pair in refs.chunks(2) {
        out.push((get(pair[0])?, get(pair[1])?));
    }
    Ok(())
}

/// Encodes a 2.0 request, snappy-compressed (for tests and tools).
pub fn encode(req: &proto::Request) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(&prost::Message::encode_to_vec(req))
        .expect("snappy compression of a Vec cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;
    use medic_model::{Matcher, Queryable};

    fn sym(req: &mut proto::Request, s: &str) -> u32 {
        match req.symbols.iter().position(|x| x == s) {
            Some(i) => i as u32,
            None => {
                req.symbols.push(s.to_string());
                (req.symbols.len() - 1) as u32
            }
        }
    }

    #[test]
    fn symbols_become_labels_and_broken_references_reject_only_their_series() {
        let mut req = proto::Request {
            symbols: vec![String::new()],
            ..Default::default()
        };
        let refs = [
            sym(&mut req, "__name__"),
            sym(&mut req, "up"),
            sym(&mut req, "job"),
            sym(&mut req, "api"),
        ];
        req.timeseries.push(proto::TimeSeries {
            labels_refs: refs.to_vec(),
            samples: vec![proto::Sample {
                value: 1.0,
                timestamp: 1000,
            }],
            histograms: vec![],
        });
        req.timeseries.push(proto::TimeSeries {
            labels_refs: vec![refs[0], 99],
            samples: vec![proto::Sample {
                value: 1.0,
                timestamp: 1000,
            }],
            histograms: vec![],
        });
        let raw = prost::Message::encode_to_vec(&req);
        let store = medic_model::MemStorage::new();
        let out = ingest(&store, &raw).unwrap();
        assert_eq!(out.accepted, 1);
        assert!(out.rejected["invalid_labels"].1.contains("reference 99"));
        let q = store.querier(0, 2000).unwrap();
        let got: Vec<_> = q
            .select(&[Matcher::parse(r#"job="api""#).unwrap()])
            .unwrap()
            .map(|s| s.unwrap())
            .collect();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].labels.get("__name__"), Some("up"));
        // A body that is not a Request stores nothing.
        assert!(ingest(&store, &raw[..raw.len() - 2]).is_err());
    }
}
