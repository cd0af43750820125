//! Prometheus's query API: `/api/v1/query`, `/api/v1/query_range`, `/api/v1/format_query`,
//! `/api/v1/status/buildinfo`, with Prometheus's JSON shapes, number formatting and status codes
//! (400 bad query, 422 execution error, 503 timeout).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use medic_model::FloatHistogram;
use medic_promql::{format_value, Annotations, Engine, Error as PromqlError, RangeSeries, Value};
use serde_json::{json, Value as Json};

use super::AppState;
use super::{ApiError, Params};

/// Most points one range query may return per series, as in Prometheus.
const MAX_POINTS_PER_SERIES: i64 = 11_000;

/// A timestamp in seconds as Prometheus writes it: a JSON number with millisecond precision.
pub(crate) fn ts(ms: i64) -> Json {
    if ms % 1000 == 0 {
        return Json::from(ms / 1000);
    }
    serde_json::Number::from_f64(ms as f64 / 1000.0).map_or(Json::Null, Json::Number)
}

fn point(t: i64, v: f64) -> Json {
    json!([ts(t), format_value(v)])
}

/// A native histogram as Prometheus writes it: count, sum and every populated bucket as
/// `[boundaries, lower, upper, count]`, where boundaries says which ends are inclusive (0: the
/// upper, 1: the lower, 3: both), numbers as strings.
pub(crate) fn histogram_json(h: &FloatHistogram) -> Json {
    let buckets: Vec<Json> = h
        .buckets()
        .iter()
        .filter(|b| b.count != 0.0)
        .map(|b| {
            let boundaries = if b.zero {
                3
            } else if b.upper <= 0.0 && !h.uses_custom_buckets() {
                1
            } else {
                0
            };
            json!([
                boundaries,
                format_value(b.lower),
                format_value(b.upper),
                format_value(b.count)
            ])
        })
        .collect();
    let mut o = serde_json::Map::new();
    o.insert("count".into(), format_value(h.count).into());
    o.insert("sum".into(), format_value(h.sum).into());
    if !buckets.is_empty() {
        o.insert("buckets".into(), Json::Array(buckets));
    }
    Json::Object(o)
}

/// One series of a matrix: `values` for its floats and `histograms` for its histograms, each
/// only when there are any, as Prometheus writes them.
fn series_json(s: &RangeSeries) -> Json {
    let mut o = serde_json::Map::new();
    o.insert("metric".into(), json!(s.labels));
    if !s.samples.is_empty() || s.histograms.is_empty() {
        let values = s.samples.iter().map(|x| point(x.t, x.v)).collect();
        o.insert("values".into(), Json::Array(values));
    }
    if !s.histograms.is_empty() {
        let hs = s
            .histograms
            .iter()
            .map(|x| json!([ts(x.t), histogram_json(&x.h)]))
            .collect();
        o.insert("histograms".into(), Json::Array(hs));
    }
    Json::Object(o)
}

fn matrix_json(series: &[RangeSeries]) -> Json {
    Json::Array(series.iter().map(series_json).collect())
}

/// A range query's whole success response, written straight into bytes: the same text
/// `json!` and serde would give for [`matrix_json`], without building a tree of values for
/// every point first (a dashboard's result has hundreds of thousands).
fn matrix_response(series: &[RangeSeries], notes: &Annotations) -> Vec<u8> {
    use std::io::Write;
    let points: usize = series.iter().map(|s| s.samples.len()).sum();
    let mut out = Vec::with_capacity(64 + series.len() * 128 + points * 32);
    out.extend_from_slice(br#"{"status":"success","data":{"resultType":"matrix","result":["#);
    for (i, s) in series.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        if !s.histograms.is_empty() {
            // Histograms are few; their series take the general path.
            let _ = serde_json::to_writer(&mut out, &series_json(s));
            continue;
        }
        out.extend_from_slice(br#"{"metric":"#);
        // Labels serialize as a JSON object; writing into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut out, &s.labels);
        out.extend_from_slice(br#","values":["#);
        for (k, x) in s.samples.iter().enumerate() {
            if k > 0 {
                out.push(b',');
            }
            out.push(b'[');
            if x.t % 1000 == 0 {
                let _ = write!(out, "{}", x.t / 1000);
            } else {
                let _ = serde_json::to_writer(&mut out, &(x.t as f64 / 1000.0));
            }
            out.extend_from_slice(b",\"");
            if x.v.is_nan() {
                out.extend_from_slice(b"NaN");
            } else if x.v == f64::INFINITY {
                out.extend_from_slice(b"+Inf");
            } else if x.v == f64::NEG_INFINITY {
                out.extend_from_slice(b"-Inf");
            } else {
                let _ = write!(out, "{}", x.v);
            }
            out.extend_from_slice(b"\"]");
        }
        out.extend_from_slice(b"]}");
    }
    out.extend_from_slice(b"]}");
    for (key, texts) in annotations_json(notes) {
        let _ = write!(out, ",\"{key}\":");
        let _ = serde_json::to_writer(&mut out, &texts);
    }
    out.push(b'}');
    out
}

/// Most warnings, and most infos, one response lists (Prometheus's API lists 10 of each and
/// says how many more there were).
const MAX_ANNOTATIONS: usize = 10;

/// A response's `warnings` and `infos`, each present only when not empty, as in Prometheus's
/// API (texts without Prometheus's `(line:column)` suffix: medic's parser keeps no positions).
fn annotations_json(notes: &Annotations) -> Vec<(&'static str, Vec<String>)> {
    let list = |texts: Vec<&str>, kind: &str| {
        let more = texts.len().saturating_sub(MAX_ANNOTATIONS);
        let mut out: Vec<String> = texts
            .into_iter()
            .take(MAX_ANNOTATIONS)
            .map(str::to_string)
            .collect();
        if more > 0 {
            out.push(format!("{more} more {kind} annotations omitted"));
        }
        out
    };
    let mut out = Vec::new();
    let warnings = list(notes.warnings().collect(), "warning");
    if !warnings.is_empty() {
        out.push(("warnings", warnings));
    }
    let infos = list(notes.infos().collect(), "info");
    if !infos.is_empty() {
        out.push(("infos", infos));
    }
    out
}

fn value_json(v: &Value, t: i64) -> Json {
    match v {
        Value::Scalar(x) => json!({"resultType": "scalar", "result": point(t, *x)}),
        Value::String(s) => json!({"resultType": "string", "result": [ts(t), s]}),
        Value::Vector(vec) => json!({
            "resultType": "vector",
            "result": vec.iter().map(|s| match &s.h {
                Some(h) => json!({"metric": s.labels, "histogram": [ts(s.t), histogram_json(h)]}),
                None => json!({"metric": s.labels, "value": point(s.t, s.v)}),
            }).collect::<Vec<_>>(),
        }),
        Value::Matrix(m) => json!({"resultType": "matrix", "result": matrix_json(m)}),
    }
}

fn query_error(e: PromqlError) -> ApiError {
    match e {
        PromqlError::Parse(m) => ApiError::bad_data(format!("invalid parameter \"query\": {m}")),
        PromqlError::TooDeep { .. } => {
            ApiError::bad_data(format!("invalid parameter \"query\": {e}"))
        }
        PromqlError::Timeout(_) => ApiError::timeout(e.to_string()),
        other => ApiError::execution(other.to_string()),
    }
}

fn query_param(p: &Params) -> Result<String, ApiError> {
    match p.get("query") {
        Some(q) if !q.trim().is_empty() => Ok(q.to_string()),
        _ => Err(ApiError::bad_data(
            "invalid parameter \"query\": query must not be empty",
        )),
    }
}

/// A duration parameter: Prometheus syntax (`15s`) or seconds (`15`, `0.5`).
fn duration_param(p: &Params, key: &str) -> Result<Option<i64>, ApiError> {
    let Some(s) = p.get(key) else { return Ok(None) };
    if let Ok(f) = s.parse::<f64>() {
        if f.is_finite() && f.abs() < 9.2e15 {
            return Ok(Some((f * 1000.0).round() as i64));
        }
    }
    medic_model::parse_duration(s)
        .map(|d| Some(d.as_millis() as i64))
        .map_err(|_| {
            ApiError::bad_data(format!(
                "invalid parameter \"{key}\": cannot parse {s:?} to a valid duration"
            ))
        })
}

/// Sets its flag when dropped: when the client disconnects, the server drops the handler's
/// future, and with it this, and the query stops at its next check instead of running on.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The engine for one request (its `timeout` may shorten the configured one), cancelled when
/// the returned guard is dropped.
fn engine_for(st: &AppState, p: &Params) -> Result<(Engine, CancelOnDrop), ApiError> {
    let mut opts = st.engine.options().clone();
    if let Some(ms) = duration_param(p, "timeout")? {
        if ms > 0 {
            opts.timeout = opts
                .timeout
                .min(std::time::Duration::from_millis(ms as u64));
        }
    }
    // Thanos's `max_source_resolution`: `raw` (or 0s), a duration, or `auto` (the default).
    match p.get("max_source_resolution") {
        None | Some("auto") => {}
        Some("raw") => opts.max_source_resolution_ms = Some(0),
        Some(_) => opts.max_source_resolution_ms = duration_param(p, "max_source_resolution")?,
    }
    let cancel = Arc::new(AtomicBool::new(false));
    opts.cancel = Some(cancel.clone());
    Ok((Engine::new(opts), CancelOnDrop(cancel)))
}

/// Counts a query stopped because its client went away (nobody is left to tell).
fn note_cancelled<T>(st: &AppState, r: &Result<T, PromqlError>) {
    if matches!(r, Err(PromqlError::Cancelled)) {
        st.http.queries_cancelled.inc();
    }
}

/// `GET|POST /api/v1/query`.
pub async fn query(State(st): State<Arc<AppState>>, p: Params) -> Result<Response, ApiError> {
    if let Some(b) = &st.query_backend {
        return Ok(b.forward(&["api", "v1", "query"], p.pairs()).await);
    }
    let query = query_param(&p)?;
    let now = medic_model::Clock::now_ms(&medic_model::SystemClock);
    let t = p.time("time", now)?;
    let (engine, _cancel) = engine_for(&st, &p)?;
    let db = st.db.clone();
    let state = st.clone();
    let (result, notes) = tokio::task::spawn_blocking(move || {
        let r = engine.instant_annotated(db.as_ref(), &query, t);
        note_cancelled(&state, &r);
        r
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?
    .map_err(query_error)?;
    let mut body = json!({"status": "success", "data": value_json(&result, t)});
    for (key, texts) in annotations_json(&notes) {
        body[key] = json!(texts);
    }
    Ok(axum::Json(body).into_response())
}

/// `GET|POST /api/v1/query_range`.
pub async fn query_range(State(st): State<Arc<AppState>>, p: Params) -> Result<Response, ApiError> {
    if let Some(b) = &st.query_backend {
        return Ok(b.forward(&["api", "v1", "query_range"], p.pairs()).await);
    }
    let query = query_param(&p)?;
    let start = p
        .get("start")
        .ok_or_else(|| ApiError::bad_data("invalid parameter \"start\": missing"))?;
    let end = p
        .get("end")
        .ok_or_else(|| ApiError::bad_data("invalid parameter \"end\": missing"))?;
    let start = medic_model::parse_api_time(start).ok_or_else(|| {
        ApiError::bad_data(format!(
            "invalid parameter \"start\": cannot parse {start:?} to a valid timestamp"
        ))
    })?;
    let end = medic_model::parse_api_time(end).ok_or_else(|| {
        ApiError::bad_data(format!(
            "invalid parameter \"end\": cannot parse {end:?} to a valid timestamp"
        ))
    })?;
    if end < start {
        return Err(ApiError::bad_data(
            "invalid parameter \"end\": end timestamp must not be before start time",
        ));
    }
    let step = duration_param(&p, "step")?
        .ok_or_else(|| ApiError::bad_data("invalid parameter \"step\": missing"))?;
    if step <= 0 {
        return Err(ApiError::bad_data("invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer"));
    }
    if (end - start) / step > MAX_POINTS_PER_SERIES {
        return Err(ApiError::bad_data("exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"));
    }
    let (engine, _cancel) = engine_for(&st, &p)?;
    let db = st.db.clone();
    let state = st.clone();
    // VictoriaMetrics's `nocache=1`: compute every step, and keep nothing.
    let mut cache = st.result_cache.clone();
    // A chosen resolution is not what the cache holds: computed, not kept.
    let chosen = p.get("max_source_resolution").is_some_and(|v| v != "auto");
    if let (Some(c), true) = (
        &cache,
        chosen || matches!(p.get("nocache"), Some("1" | "true")),
    ) {
        c.note_bypass();
        cache = None;
    }
    let (series, notes) = tokio::task::spawn_blocking(move || {
        let expr = Engine::parse(&query)?;
        let r = match cache {
            Some(cache) => {
                let now = medic_model::Clock::now_ms(&medic_model::SystemClock);
                let (series, notes, _) =
                    cache.range_annotated(&engine, db.as_ref(), &expr, start, end, step, now)?;
                Ok((series, notes))
            }
            None => engine.range_expr_annotated(db.as_ref(), &expr, start, end, step),
        };
        note_cancelled(&state, &r);
        r
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?
    .map_err(query_error)?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        matrix_response(&series, &notes),
    )
        .into_response())
}

/// `GET|POST /api/v1/format_query`.
pub async fn format_query(p: Params) -> Result<Response, ApiError> {
    let query = query_param(&p)?;
    let expr = Engine::parse(&query).map_err(query_error)?;
    Ok(axum::Json(json!({"status": "success", "data": expr.prettify()})).into_response())
}

/// `GET /api/v1/status/buildinfo`.
pub async fn buildinfo() -> Response {
    axum::Json(json!({
        "status": "success",
        "data": {
            "version": env!("CARGO_PKG_VERSION"),
            "revision": "",
            "branch": "",
            "buildUser": "",
            "buildDate": "",
            "goVersion": "rust",
        }
    }))
    .into_response()
}

impl ApiError {
    /// 503 `timeout`.
    pub fn timeout(message: impl Into<String>) -> Self {
        ApiError::with_status(StatusCode::SERVICE_UNAVAILABLE, "timeout", message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use medic_model::{Labels, Sample};

    /// The streamed response says what serde says for the same result (keys may come in
    /// another order), and writes numbers as Prometheus does.
    #[test]
    fn the_written_matrix_is_what_serde_writes() {
        let series = [
            RangeSeries::floats(
                Labels::from_pairs([("__name__", "up"), ("job", "a\"b\\c\u{1}ü")]),
                vec![
                    Sample::new(1_700_000_000_000, 1.0),
                    Sample::new(1_700_000_000_123, 0.1 + 0.2),
                    Sample::new(-1_500, f64::NAN),
                    Sample::new(7, f64::INFINITY),
                    Sample::new(8, f64::NEG_INFINITY),
                    Sample::new(9, 1e300),
                    Sample::new(10, -0.0),
                ],
            ),
            RangeSeries::floats(Labels::empty(), vec![Sample::new(0, 2.5e-7)]),
        ];
        for s in [&series[..], &series[..1], &[]] {
            let want = json!({"status": "success", "data": {"resultType": "matrix", "result": matrix_json(s)}});
            let got: Json =
                serde_json::from_slice(&matrix_response(s, &Annotations::default())).unwrap();
            assert_eq!(got, want);
        }
        let text =
            String::from_utf8(matrix_response(&series[..1], &Annotations::default())).unwrap();
        for point in [
            r#"[1700000000,"1"]"#,
            r#"[1700000000.123,"0.30000000000000004"]"#,
            r#"[-1.5,"NaN"]"#,
            r#"[0.007,"+Inf"]"#,
            r#"[0.008,"-Inf"]"#,
        ] {
            assert!(text.contains(point), "{point} in {text}");
        }
    }

    /// Warnings and infos follow `data` as Prometheus's API writes them: absent when there
    /// are none, at most 10 of a kind and then a count of the rest.
    #[test]
    fn annotations_follow_the_data() {
        use medic_promql::annotations::Annotation;
        let series = [RangeSeries::floats(
            Labels::empty(),
            vec![Sample::new(0, 1.0)],
        )];
        let mut notes = Annotations::default();
        for k in 0..12 {
            notes.add(Annotation::Warning(format!("PromQL warning: w{k:02}")));
        }
        notes.add(Annotation::Info("PromQL info: \"quoted\"".into()));
        let got: Json = serde_json::from_slice(&matrix_response(&series, &notes)).unwrap();
        let mut warnings: Vec<Json> = (0..10)
            .map(|k| json!(format!("PromQL warning: w{k:02}")))
            .collect();
        warnings.push(json!("2 more warning annotations omitted"));
        assert_eq!(got["warnings"], Json::Array(warnings));
        assert_eq!(got["infos"], json!(["PromQL info: \"quoted\""]));
        assert_eq!(got["data"]["result"], matrix_json(&series));
        let plain: Json =
            serde_json::from_slice(&matrix_response(&series, &Annotations::default())).unwrap();
        assert!(plain.get("warnings").is_none() && plain.get("infos").is_none());
    }

    /// Histograms in Prometheus's shape: buckets in value order with their inclusive ends
    /// (negative buckets include their lower end, the zero bucket both), empty ones left out.
    #[test]
    fn histograms_are_written_as_prometheus_writes_them() {
        let h = medic_model::histogram::parse_test_expression(
            "{{count:6 sum:5 z_bucket:1 z_bucket_w:0.5 buckets:[1 0 2] offset:1 n_buckets:[2]}}",
        )
        .unwrap();
        assert_eq!(
            histogram_json(&h),
            json!({"count": "6", "sum": "5", "buckets": [
                [1, "-1", "-0.5", "2"],
                [3, "-0.5", "0.5", "1"],
                [0, "1", "2", "1"],
                [0, "4", "8", "2"],
            ]})
        );
        let series = [RangeSeries {
            labels: Labels::from_pairs([("__name__", "h")]),
            samples: vec![Sample::new(0, 1.0)],
            histograms: vec![medic_model::HistogramSample {
                t: 1000,
                h: Arc::new(h),
            }],
        }];
        let got: Json =
            serde_json::from_slice(&matrix_response(&series, &Annotations::default())).unwrap();
        assert_eq!(got["data"]["result"][0]["values"], json!([[0, "1"]]));
        assert_eq!(got["data"]["result"][0]["histograms"][0][0], json!(1));
        assert_eq!(
            got["data"]["result"][0]["histograms"][0][1]["count"],
            json!("6")
        );
    }
}
