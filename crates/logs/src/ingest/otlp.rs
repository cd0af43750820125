//! OTLP/HTTP logs (`POST /v1/logs`), protobuf or JSON, mapped as Loki maps them: the resource
//! attributes Loki indexes by default become stream labels (dots turned into underscores,
//! `service_name="unknown_service"` when none is given); every other resource attribute, the
//! log record's attributes, its severity, scope and trace context become structured metadata;
//! the body is the line (a non-string body as JSON).

use std::collections::BTreeMap;

use medic_model::Labels;
use serde::Deserialize;

use super::IngestError;
use crate::entry::{Entry, Push, Stream};
use crate::logql::parsers::sanitize;

/// Resource attributes that become stream labels (Loki's default `otlp_config`).
const INDEXED: &[&str] = &[
    "service.name",
    "service.namespace",
    "service.instance.id",
    "deployment.environment",
    "deployment.environment.name",
    "cloud.region",
    "cloud.availability_zone",
    "k8s.cluster.name",
    "k8s.namespace.name",
    "k8s.pod.name",
    "k8s.container.name",
    "container.name",
    "k8s.replicaset.name",
    "k8s.deployment.name",
    "k8s.statefulset.name",
    "k8s.daemonset.name",
    "k8s.cronjob.name",
    "k8s.job.name",
];

/// The OTLP logs messages (opentelemetry-proto, logs/v1 and common/v1), decoded with prost.
pub mod proto {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ExportLogsServiceRequest {
        #[prost(message, repeated, tag = "1")]
        pub resource_logs: Vec<ResourceLogs>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ResourceLogs {
        #[prost(message, optional, tag = "1")]
        pub resource: Option<Resource>,
        #[prost(message, repeated, tag = "2")]
        pub scope_logs: Vec<ScopeLogs>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Resource {
        #[prost(message, repeated, tag = "1")]
        pub attributes: Vec<KeyValue>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ScopeLogs {
        #[prost(message, optional, tag = "1")]
        pub scope: Option<Scope>,
        #[prost(message, repeated, tag = "2")]
        pub log_records: Vec<LogRecord>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Scope {
        #[prost(string, tag = "1")]
        pub name: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct LogRecord {
        #[prost(fixed64, tag = "1")]
        pub time_unix_nano: u64,
        #[prost(fixed64, tag = "11")]
        pub observed_time_unix_nano: u64,
        #[prost(int32, tag = "2")]
        pub severity_number: i32,
        #[prost(string, tag = "3")]
        pub severity_text: String,
        #[prost(message, optional, tag = "5")]
        pub body: Option<AnyValue>,
        #[prost(message, repeated, tag = "6")]
        pub attributes: Vec<KeyValue>,
        #[prost(bytes = "vec", tag = "9")]
        pub trace_id: Vec<u8>,
        #[prost(bytes = "vec", tag = "10")]
        pub span_id: Vec<u8>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct KeyValue {
        #[prost(string, tag = "1")]
        pub key: String,
        #[prost(message, optional, tag = "2")]
        pub value: Option<AnyValue>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct AnyValue {
        #[prost(oneof = "Value", tags = "1, 2, 3, 4, 5, 6, 7")]
        pub value: Option<Value>,
    }
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Value {
        #[prost(string, tag = "1")]
        String(String),
        #[prost(bool, tag = "2")]
        Bool(bool),
        #[prost(int64, tag = "3")]
        Int(i64),
        #[prost(double, tag = "4")]
        Double(f64),
        #[prost(message, tag = "5")]
        Array(ArrayValue),
        #[prost(message, tag = "6")]
        Kvlist(KeyValueList),
        #[prost(bytes = "vec", tag = "7")]
        Bytes(Vec<u8>),
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ArrayValue {
        #[prost(message, repeated, tag = "1")]
        pub values: Vec<AnyValue>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct KeyValueList {
        #[prost(message, repeated, tag = "1")]
        pub values: Vec<KeyValue>,
    }
}

use proto::{AnyValue, KeyValue, Value};

/// Decodes a protobuf `ExportLogsServiceRequest`.
pub fn decode_proto(body: &[u8], now_ns: i64) -> Result<Push, IngestError> {
    let req: proto::ExportLogsServiceRequest =
        prost::Message::decode(body).map_err(|e| IngestError::Proto(e.to_string()))?;
    Ok(convert(req, now_ns))
}

/// Decodes the OTLP/JSON encoding (lowerCamelCase fields, 64-bit integers as strings, trace
/// and span ids as hex).
pub fn decode_json(body: &[u8], now_ns: i64) -> Result<Push, IngestError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    let req: json::Request =
        serde_path_to_error::deserialize(de).map_err(|e| IngestError::Json {
            path: e.path().to_string(),
            msg: e.inner().to_string(),
        })?;
    Ok(convert(req.into_proto()?, now_ns))
}

fn convert(req: proto::ExportLogsServiceRequest, now_ns: i64) -> Push {
    let mut streams: BTreeMap<Labels, Vec<Entry>> = BTreeMap::new();
    for rl in req.resource_logs {
        let mut labels = BTreeMap::new();
        let mut resource_meta = Vec::new();
        for kv in rl.resource.map(|r| r.attributes).unwrap_or_default() {
            let v = any_to_string(kv.value.as_ref());
            if INDEXED.contains(&kv.key.as_str()) {
                labels.insert(sanitize(&kv.key), v);
            } else {
                resource_meta.push((sanitize(&kv.key), v));
            }
        }
        labels
            .entry("service_name".to_string())
            .or_insert_with(|| "unknown_service".to_string());
        let labels = Labels::from_pairs(labels);
        let entries = streams.entry(labels).or_default();
        for sl in rl.scope_logs {
            let scope = sl.scope.map(|s| s.name).filter(|s| !s.is_empty());
            for r in sl.log_records {
                let ts = [r.time_unix_nano, r.observed_time_unix_nano]
                    .into_iter()
                    .find(|t| *t > 0)
                    .map_or(now_ns, |t| t.min(i64::MAX as u64) as i64);
                let mut metadata = resource_meta.clone();
                for kv in &r.attributes {
                    metadata.push((sanitize(&kv.key), any_to_string(kv.value.as_ref())));
                }
                if !r.severity_text.is_empty() {
                    metadata.push(("severity_text".into(), r.severity_text.clone()));
                }
                if r.severity_number != 0 {
                    metadata.push(("severity_number".into(), r.severity_number.to_string()));
                }
                if let Some(s) = &scope {
                    metadata.push(("scope_name".into(), s.clone()));
                }
                if !r.trace_id.is_empty() {
                    metadata.push(("trace_id".into(), hex(&r.trace_id)));
                }
                if !r.span_id.is_empty() {
                    metadata.push(("span_id".into(), hex(&r.span_id)));
                }
                entries.push(Entry {
                    ts,
                    line: any_to_string(r.body.as_ref()),
                    metadata,
                });
            }
        }
    }
    streams
        .into_iter()
        .filter(|(_, e)| !e.is_empty())
        .map(|(labels, entries)| Stream { labels, entries })
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A value as a label or line: strings as they are, everything else as JSON.
fn any_to_string(v: Option<&AnyValue>) -> String {
    match v.and_then(|v| v.value.as_ref()) {
        None => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => to_json(other).to_string(),
    }
}

fn to_json(v: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::String(s) => J::String(s.clone()),
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => J::from(*i),
        Value::Double(d) => serde_json::Number::from_f64(*d).map_or(J::Null, J::Number),
        Value::Bytes(b) => J::String(hex(b)),
        Value::Array(a) => J::Array(
            a.values
                .iter()
                .map(|x| x.value.as_ref().map_or(J::Null, to_json))
                .collect(),
        ),
        Value::Kvlist(l) => J::Object(kv_object(&l.values)),
    }
}

fn kv_object(kvs: &[KeyValue]) -> serde_json::Map<String, serde_json::Value> {
    kvs.iter()
        .map(|kv| {
            (
                kv.key.clone(),
                kv.value
                    .as_ref()
                    .and_then(|v| v.value.as_ref())
                    .map_or(serde_json::Value::Null, to_json),
            )
        })
        .collect()
}

/// OTLP/JSON shapes, converted to the protobuf structs.
mod json {
    use super::*;

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Request {
        #[serde(default)]
        resource_logs: Vec<ResourceLogs>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct ResourceLogs {
        #[serde(default)]
        resource: Option<Resource>,
        #[serde(default)]
        scope_logs: Vec<ScopeLogs>,
    }
    #[derive(Deserialize)]
    struct Resource {
        #[serde(default)]
        attributes: Vec<Kv>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct ScopeLogs {
        #[serde(default)]
        scope: Option<Scope>,
        #[serde(default)]
        log_records: Vec<Record>,
    }
    #[derive(Deserialize)]
    struct Scope {
        #[serde(default)]
        name: String,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Record {
        #[serde(default)]
        time_unix_nano: Option<Num>,
        #[serde(default)]
        observed_time_unix_nano: Option<Num>,
        #[serde(default)]
        severity_number: Option<i32>,
        #[serde(default)]
        severity_text: String,
        #[serde(default)]
        body: Option<Any>,
        #[serde(default)]
        attributes: Vec<Kv>,
        #[serde(default)]
        trace_id: String,
        #[serde(default)]
        span_id: String,
    }
    #[derive(Deserialize)]
    struct Kv {
        key: String,
        #[serde(default)]
        value: Option<Any>,
    }
    /// 64-bit integers arrive as strings in OTLP/JSON, but numbers are accepted too.
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Num {
        S(String),
        N(u64),
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Any {
        string_value: Option<String>,
        bool_value: Option<bool>,
        int_value: Option<Num>,
        double_value: Option<f64>,
        array_value: Option<Array>,
        kvlist_value: Option<KvList>,
        bytes_value: Option<String>,
    }
    #[derive(Deserialize)]
    struct Array {
        #[serde(default)]
        values: Vec<Any>,
    }
    #[derive(Deserialize)]
    struct KvList {
        #[serde(default)]
        values: Vec<Kv>,
    }

    fn num(n: Option<Num>, field: &str) -> Result<u64, IngestError> {
        match n {
            None => Ok(0),
            Some(Num::N(v)) => Ok(v),
            Some(Num::S(s)) => s.parse().map_err(|_| IngestError::Field {
                field: field.into(),
                msg: format!("{s:?} is not an unsigned integer"),
            }),
        }
    }

    fn unhex(s: &str, field: &str) -> Result<Vec<u8>, IngestError> {
        if !s.len().is_multiple_of(2) {
            return Err(IngestError::Field {
                field: field.into(),
                msg: format!("{s:?} is not hex"),
            });
        }
        (0..s.len())
            .step_by(2)
            .map(|i| {
                u8::from_str_radix(&s[i..i + 2], 16).map_err(|_| IngestError::Field {
                    field: field.into(),
                    msg: format!("{s:?} is not hex"),
                })
            })
            .collect()
    }

    impl Any {
        fn into_proto(self) -> Result<AnyValue, IngestError> {
            let value = if let Some(s) = self.string_value {
                Some(Value::String(s))
            } else if let Some(b) = self.bool_value {
                Some(Value::Bool(b))
            } else if let Some(i) = self.int_value {
                Some(Value::Int(match i {
                    Num::N(n) => n as i64,
                    Num::S(s) => s.parse().map_err(|_| IngestError::Field {
                        field: "intValue".into(),
                        msg: format!("{s:?} is not an integer"),
                    })?,
                }))
            } else if let Some(d) = self.double_value {
                Some(Value::Double(d))
            } else if let Some(a) = self.array_value {
                Some(Value::Array(proto::ArrayValue {
                    values: a
                        .values
                        .into_iter()
                        .map(Any::into_proto)
                        .collect::<Result<_, _>>()?,
                }))
            } else if let Some(l) = self.kvlist_value {
                Some(Value::Kvlist(proto::KeyValueList {
                    values: l
                        .values
                        .into_iter()
                        .map(Kv::into_proto)
                        .collect::<Result<_, _>>()?,
                }))
            } else {
                self.bytes_value.map(|b| Value::Bytes(b.into_bytes()))
            };
            Ok(AnyValue { value })
        }
    }

    impl Kv {
        fn into_proto(self) -> Result<KeyValue, IngestError> {
            Ok(KeyValue {
                key: self.key,
                value: self.value.map(Any::into_proto).transpose()?,
            })
        }
    }

    impl Request {
        pub fn into_proto(self) -> Result<proto::ExportLogsServiceRequest, IngestError> {
            let mut out = proto::ExportLogsServiceRequest::default();
            for rl in self.resource_logs {
                let resource = rl
                    .resource
                    .map(|r| {
                        r.attributes
                            .into_iter()
                            .map(Kv::into_proto)
                            .collect::<Result<Vec<_>, _>>()
                    })
                    .transpose()?;
                let mut scope_logs = Vec::new();
                for sl in rl.scope_logs {
                    let mut log_records = Vec::new();
                    for r in sl.log_records {
                        log_records.push(proto::LogRecord {
                            time_unix_nano: num(r.time_unix_nano, "timeUnixNano")?,
                            observed_time_unix_nano: num(
                                r.observed_time_unix_nano,
                                "observedTimeUnixNano",
                            )?,
                            severity_number: r.severity_number.unwrap_or(0),
                            severity_text: r.severity_text,
                            body: r.body.map(Any::into_proto).transpose()?,
                            attributes: r
                                .attributes
                                .into_iter()
                                .map(Kv::into_proto)
                                .collect::<Result<_, _>>()?,
                            trace_id: unhex(&r.trace_id, "traceId")?,
                            span_id: unhex(&r.span_id, "spanId")?,
                        });
                    }
                    scope_logs.push(proto::ScopeLogs {
                        scope: sl.scope.map(|s| proto::Scope { name: s.name }),
                        log_records,
                    });
                }
                out.resource_logs.push(proto::ResourceLogs {
                    resource: resource.map(|attributes| proto::Resource { attributes }),
                    scope_logs,
                });
            }
            Ok(out)
        }
    }
}
