//! Loki's push API body: JSON (`{"streams":[{"stream":{…},"values":[["<ns>","line",{…}]]}]}`)
//! or snappy-compressed protobuf `logproto.PushRequest`, as promtail, Grafana Alloy, Fluent
//! Bit, Vector and the Loki client libraries send it.

use std::collections::BTreeMap;

use medic_model::Labels;
use serde::Deserialize;

use super::IngestError;
use crate::entry::{Entry, Push, Stream};

/// The `logproto` messages a push carries, with prost's derive (no protoc at build time).
pub mod proto {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PushRequest {
        #[prost(message, repeated, tag = "1")]
        pub streams: Vec<StreamAdapter>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct StreamAdapter {
        /// The label set in selector syntax: `{app="x", env="prod"}`.
        #[prost(string, tag = "1")]
        pub labels: String,
        #[prost(message, repeated, tag = "2")]
        pub entries: Vec<EntryAdapter>,
        #[prost(uint64, tag = "3")]
        pub hash: u64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct EntryAdapter {
        #[prost(message, optional, tag = "1")]
        pub timestamp: Option<Timestamp>,
        #[prost(string, tag = "2")]
        pub line: String,
        #[prost(message, repeated, tag = "3")]
        pub structured_metadata: Vec<LabelPair>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct LabelPair {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(string, tag = "2")]
        pub value: String,
    }

    /// `google.protobuf.Timestamp`.
    #[derive(Clone, Copy, PartialEq, prost::Message)]
    pub struct Timestamp {
        #[prost(int64, tag = "1")]
        pub seconds: i64,
        #[prost(int32, tag = "2")]
        pub nanos: i32,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonPush {
    streams: Vec<JsonStream>,
}

#[derive(Deserialize)]
struct JsonStream {
    stream: BTreeMap<String, String>,
    values: Vec<JsonValue>,
}

/// `["<ns>", "line"]` or `["<ns>", "line", {"k": "v"}]`.
#[derive(Deserialize)]
#[serde(untagged)]
enum JsonValue {
    Two(String, String),
    Three(String, String, BTreeMap<String, String>),
}

/// Decodes a JSON push body.
pub fn decode_json(body: &[u8]) -> Result<Push, IngestError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    let p: JsonPush = serde_path_to_error::deserialize(de).map_err(|e| IngestError::Json {
        path: e.path().to_string(),
        msg: e.inner().to_string(),
    })?;
    let mut out = Vec::with_capacity(p.streams.len());
    for (i, s) in p.streams.into_iter().enumerate() {
        let labels = Labels::from_pairs(s.stream);
        let mut entries = Vec::with_capacity(s.values.len());
        for (j, v) in s.values.into_iter().enumerate() {
            let (ts, line, meta) = match v {
                JsonValue::Two(ts, line) => (ts, line, BTreeMap::new()),
                JsonValue::Three(ts, line, meta) => (ts, line, meta),
            };
            let ts = ts.parse::<i64>().map_err(|_| IngestError::Field {
                field: format!("streams[{i}].values[{j}][0]"),
                msg: format!("timestamp {ts:?} is not an integer of nanoseconds"),
            })?;
            entries.push(Entry {
                ts,
                line,
                metadata: meta.into_iter().collect(),
            });
        }
        out.push(Stream { labels, entries });
    }
    Ok(out)
}

/// Decodes a snappy-compressed protobuf push body.
pub fn decode_proto(body: &[u8]) -> Result<Push, IngestError> {
    let raw = super::snappy(body)?;
    let req: proto::PushRequest =
        prost::Message::decode(raw.as_slice()).map_err(|e| IngestError::Proto(e.to_string()))?;
    let mut out = Vec::with_capacity(req.streams.len());
    for (i, s) in req.streams.into_iter().enumerate() {
        let matchers = crate::logql::parse_selector(&s.labels).map_err(|e| IngestError::Field {
            field: format!("streams[{i}].labels"),
            msg: format!("{:?}: {e}", s.labels),
        })?;
        let labels = Labels::from_pairs(matchers.into_iter().map(|m| (m.name, m.value)));
        let entries = s
            .entries
            .into_iter()
            .map(|e| {
                let ts = e.timestamp.map_or(0, |t| {
                    t.seconds
                        .saturating_mul(1_000_000_000)
                        .saturating_add(i64::from(t.nanos))
                });
                Entry {
                    ts,
                    line: e.line,
                    metadata: e
                        .structured_metadata
                        .into_iter()
                        .map(|p| (p.name, p.value))
                        .collect(),
                }
            })
            .collect();
        out.push(Stream { labels, entries });
    }
    Ok(out)
}
