//! The Prometheus HTTP API's query answers (`{"status":"success","data":{"resultType":…}}`)
//! read into series, as the embedded engine hands them to the rules and the heal engine.

use std::collections::BTreeMap;

use medic_model::{Labels, QueryError, QuerySeries};
use serde::Deserialize;

#[derive(Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: serde_json::Value,
}

/// One `[seconds, "value"]` pair.
type Point = (f64, String);

#[derive(Deserialize)]
struct Instant {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    /// Absent for a native histogram (`histogram`), which the rules cannot use.
    #[serde(default)]
    value: Option<Point>,
}

#[derive(Deserialize)]
struct Range {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    #[serde(default)]
    values: Vec<Point>,
}

fn sample((t, v): &Point) -> Result<(i64, f64), String> {
    let v = v
        .parse::<f64>()
        .map_err(|_| format!("value {v:?} is not a number"))?;
    Ok(((t * 1000.0).round() as i64, v))
}

fn labels(m: &BTreeMap<String, String>) -> Labels {
    Labels::from_pairs(m.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

/// The series of an answer's body; `what` names the backend and query in errors. A scalar
/// is one series without labels; a string is refused as the embedded engine refuses it.
pub fn series(body: &[u8], expr: &str, what: &str) -> Result<Vec<QuerySeries>, QueryError> {
    let failed = |m: String| QueryError::Failed(format!("{what}: {m}"));
    let a: Answer = serde_json::from_slice(body)
        .map_err(|e| failed(format!("the answer is not Prometheus API JSON: {e}")))?;
    if a.status != "success" {
        return Err(failed(format!(
            "{}: {}",
            a.error_type.as_deref().unwrap_or("error"),
            a.error.as_deref().unwrap_or("no message")
        )));
    }
    let data = a
        .data
        .ok_or_else(|| failed("the answer has no data".into()))?;
    let bad = |e: serde_json::Error| failed(format!("{} result: {e}", data.result_type));
    match data.result_type.as_str() {
        "vector" => {
            let v: Vec<Instant> = serde_json::from_value(data.result.clone()).map_err(bad)?;
            v.iter()
                .filter_map(|s| {
                    let p = s.value.as_ref()?;
                    Some(sample(p).map(|p| QuerySeries {
                        labels: labels(&s.metric),
                        samples: vec![p],
                    }))
                })
                .collect::<Result<_, _>>()
                .map_err(failed)
        }
        "matrix" => {
            let m: Vec<Range> = serde_json::from_value(data.result.clone()).map_err(bad)?;
            m.iter()
                .map(|s| {
                    Ok(QuerySeries {
                        labels: labels(&s.metric),
                        samples: s.values.iter().map(sample).collect::<Result<_, _>>()?,
                    })
                })
                .collect::<Result<_, String>>()
                .map_err(failed)
        }
        "scalar" => {
            let p: Point = serde_json::from_value(data.result.clone()).map_err(bad)?;
            Ok(vec![QuerySeries {
                labels: Labels::empty(),
                samples: vec![sample(&p).map_err(failed)?],
            }])
        }
        other => Err(QueryError::NotSeries {
            expr: expr.to_string(),
            kind: if other == "string" {
                "string"
            } else {
                "result of unknown type"
            },
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vectors_matrices_and_scalars_as_prometheus_writes_them() {
        let v = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"__name__":"up","job":"a"},"value":[1700000000.5,"1"]},
            {"metric":{"job":"h"},"histogram":[1700000000,{"count":"2"}]},
            {"metric":{},"value":[1700000000,"+Inf"]}]}}"#;
        let s = series(v, "up", "vm").unwrap();
        assert_eq!(s.len(), 2, "the histogram sample is skipped");
        assert_eq!(
            s[0].labels,
            Labels::from_pairs([("__name__", "up"), ("job", "a")])
        );
        assert_eq!(s[0].samples, vec![(1_700_000_000_500, 1.0)]);
        assert_eq!(s[1].samples[0].1, f64::INFINITY);

        let m = br#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"a":"1"},"values":[[10,"NaN"],[25,"-2.5"]]}]}}"#;
        let s = series(m, "x", "vm").unwrap();
        assert!(s[0].samples[0].1.is_nan());
        assert_eq!(s[0].samples[1], (25_000, -2.5));

        let sc = br#"{"status":"success","data":{"resultType":"scalar","result":[3,"7"]}}"#;
        assert_eq!(series(sc, "7", "vm").unwrap()[0].samples, vec![(3000, 7.0)]);
    }

    #[test]
    fn errors_say_what_the_backend_said() {
        let e = br#"{"status":"error","errorType":"bad_data","error":"unknown function foo"}"#;
        let err = series(e, "foo()", "query backend vm:8428")
            .unwrap_err()
            .to_string();
        assert_eq!(err, "query backend vm:8428: bad_data: unknown function foo");
        let err = series(b"<html>", "up", "b").unwrap_err().to_string();
        assert!(
            err.starts_with("b: the answer is not Prometheus API JSON"),
            "{err}"
        );
        let s = br#"{"status":"success","data":{"resultType":"string","result":[1,"x"]}}"#;
        assert!(matches!(
            series(s, "\"x\"", "b"),
            Err(QueryError::NotSeries { kind: "string", .. })
        ));
        let bad = br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"abc"]}]}}"#;
        assert!(series(bad, "x", "b")
            .unwrap_err()
            .to_string()
            .contains("\"abc\""));
    }
}
