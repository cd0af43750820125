//! Prometheus's query API: `/api/v1/query`, `/api/v1/query_range`, `/api/v1/format_query`,
//! `/api/v1/status/buildinfo`, with Prometheus's JSON shapes, number formatting and status codes
//! (400 bad query, 422 execution error, 503 timeout).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use medic_promql::{format_value, Engine, Error as PromqlError, RangeSeries, Value};
use serde_json::{json, Value as Json};

use super::AppState;
use super::{ApiError, Params};

/// Most points one range query may return per series, as in Prometheus.
const MAX_POINTS_PER_SERIES: i64 = 11_000;

/// A timestamp in seconds as Prometheus writes it: a JSON number with millisecond precision.
fn ts(ms: i64) -> Json {
    if ms % 1000 == 0 {
        return Json::from(ms / 1000);
    }
    serde_json::Number::from_f64(ms as f64 / 1000.0).map_or(Json::Null, Json::Number)
}

fn point(t: i64, v: f64) -> Json {
    json!([ts(t), format_value(v)])
}

fn matrix_json(series: &[RangeSeries]) -> Json {
    Json::Array(
        series
            .iter()
            .map(|s| json!({"metric": s.labels, "values": s.samples.iter().map(|x| point(x.t, x.v)).collect::<Vec<_>>()}))
            .collect(),
    )
}

fn value_json(v: &Value, t: i64) -> Json {
    match v {
        Value::Scalar(x) => json!({"resultType": "scalar", "result": point(t, *x)}),
        Value::String(s) => json!({"resultType": "string", "result": [ts(t), s]}),
        Value::Vector(vec) => json!({
            "resultType": "vector",
            "result": vec.iter().map(|s| json!({"metric": s.labels, "value": point(s.t, s.v)})).collect::<Vec<_>>(),
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

fn engine_for(st: &AppState, p: &Params) -> Result<Engine, ApiError> {
    let mut opts = st.engine.options().clone();
    if let Some(ms) = duration_param(p, "timeout")? {
        if ms > 0 {
            opts.timeout = opts
                .timeout
                .min(std::time::Duration::from_millis(ms as u64));
        }
    }
    Ok(Engine::new(opts))
}

/// `GET|POST /api/v1/query`.
pub async fn query(State(st): State<Arc<AppState>>, p: Params) -> Result<Response, ApiError> {
    let query = query_param(&p)?;
    let now = medic_model::Clock::now_ms(&medic_model::SystemClock);
    let t = p.time("time", now)?;
    let engine = engine_for(&st, &p)?;
    let db = st.db.clone();
    let result = tokio::task::spawn_blocking(move || engine.instant(db.as_ref(), &query, t))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(query_error)?;
    Ok(axum::Json(json!({"status": "success", "data": value_json(&result, t)})).into_response())
}

/// `GET|POST /api/v1/query_range`.
pub async fn query_range(State(st): State<Arc<AppState>>, p: Params) -> Result<Response, ApiError> {
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
    let engine = engine_for(&st, &p)?;
    let db = st.db.clone();
    // VictoriaMetrics's `nocache=1`: compute every step, and keep nothing.
    let mut cache = st.result_cache.clone();
    if let (Some(c), Some("1" | "true")) = (&cache, p.get("nocache")) {
        c.note_bypass();
        cache = None;
    }
    let series = tokio::task::spawn_blocking(move || {
        let expr = Engine::parse(&query)?;
        match cache {
            Some(cache) => {
                let now = medic_model::Clock::now_ms(&medic_model::SystemClock);
                let (series, _) =
                    cache.range(&engine, db.as_ref(), &expr, start, end, step, now)?;
                Ok(series)
            }
            None => engine.range_expr(db.as_ref(), &expr, start, end, step),
        }
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?
    .map_err(query_error)?;
    Ok(axum::Json(json!({"status": "success", "data": {"resultType": "matrix", "result": matrix_json(&series)}})).into_response())
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
