//! Loki's HTTP API over medic's log store, in Loki's exact shapes so Grafana's Loki data source,
//! logcli and the Loki clients work unmodified: push (JSON and snappy protobuf), OTLP/HTTP logs,
//! `query`, `query_range`, `labels`, `label/<name>/values`, `series`. Errors are Loki's: a
//! plain-text body with the status (400 for a bad query, with its line and column).

use std::io::Read;

use axum::body::Bytes;
use axum::Json;
use medic_logs::ingest::{self, IngestError};
use medic_logs::logql::{self, ast::Expr, logs, metric, Direction, EvalError};

use super::params::Params;
use super::*;
use crate::logs::{now_ns, Logs};

/// Loki's default `limit` for log queries.
const DEFAULT_LIMIT: usize = 100;
const NS: i64 = 1_000_000_000;

fn plain(status: StatusCode, msg: impl Into<String>) -> Response {
    let mut m = msg.into();
    if !m.ends_with('\n') {
        m.push('\n');
    }
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        m,
    )
        .into_response()
}

/// Loki's error: a status and a plain-text message.
pub(super) struct LokiError(StatusCode, String);

impl IntoResponse for LokiError {
    fn into_response(self) -> Response {
        plain(self.0, self.1)
    }
}

fn err(status: StatusCode, msg: impl Into<String>) -> LokiError {
    LokiError(status, msg.into())
}

fn store(st: &AppState) -> Result<Arc<Logs>, LokiError> {
    st.logs.clone().ok_or_else(|| {
        err(
            StatusCode::NOT_FOUND,
            "logs are disabled (logs.enabled: false)",
        )
    })
}

/// The body, gunzipped when `Content-Encoding: gzip` (the OpenTelemetry collector's default).
fn decoded_body(headers: &HeaderMap, body: Bytes) -> Result<Vec<u8>, LokiError> {
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    if !gzip {
        return Ok(body.to_vec());
    }
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&body[..])
        .take(ingest::MAX_DECOMPRESSED as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| err(StatusCode::BAD_REQUEST, format!("invalid gzip body: {e}")))?;
    if out.len() > ingest::MAX_DECOMPRESSED {
        return Err(err(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "decompressed body exceeds {} bytes",
                ingest::MAX_DECOMPRESSED
            ),
        ));
    }
    Ok(out)
}

fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

async fn read(body: Body) -> Result<Bytes, LokiError> {
    axum::body::to_bytes(body, usize::MAX).await.map_err(|_| {
        err(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body larger than server.max_request_body",
        )
    })
}

/// Stores a decoded push; 204 when all of it was stored (Loki's answer).
async fn store_push(
    logs: Arc<Logs>,
    decoded: Result<medic_logs::Push, IngestError>,
    ok: impl FnOnce() -> Response,
) -> Response {
    let push = match decoded {
        Ok(p) => p,
        Err(e) => return err(StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    let result = tokio::task::spawn_blocking(move || logs.store.push(push, now_ns())).await;
    match result {
        Ok(Ok(_)) => ok(),
        Ok(Err(e @ medic_logs::store::Error::Refused { .. })) => {
            err(StatusCode::BAD_REQUEST, e.to_string()).into_response()
        }
        Ok(Err(e)) => {
            warn!(error = %e, "log push: storage error");
            err(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("storing the push failed: {e}"),
            )
            .into_response()
        }
        Err(e) => err(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("internal error: {e}"),
        )
        .into_response(),
    }
}

/// The log store and a push's body, read (within `server.max_request_body`) and gunzipped.
async fn incoming(
    st: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Arc<Logs>, Vec<u8>), LokiError> {
    let logs = store(st)?;
    let body = read(body).await?;
    Ok((logs, decoded_body(headers, body)?))
}

/// `POST /loki/api/v1/push`.
pub(super) async fn push(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (logs, raw) = match incoming(&st, &headers, body).await {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    let decoded = match content_type(&headers).as_str() {
        "application/json" => ingest::loki::decode_json(&raw),
        "application/x-protobuf" | "" => ingest::loki::decode_proto(&raw),
        other => return err(StatusCode::UNSUPPORTED_MEDIA_TYPE, format!("unsupported Content-Type {other:?}; send application/json or application/x-protobuf (snappy)")).into_response(),
    };
    store_push(logs, decoded, || StatusCode::NO_CONTENT.into_response()).await
}

/// `POST /otlp/v1/logs` (Loki's path) and `POST /v1/logs` (the OTLP default).
pub(super) async fn otlp(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (logs, raw) = match incoming(&st, &headers, body).await {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    let ct = content_type(&headers);
    let json = ct == "application/json";
    let decoded = match ct.as_str() {
        "application/json" => ingest::otlp::decode_json(&raw, now_ns()),
        "application/x-protobuf" => ingest::otlp::decode_proto(&raw, now_ns()),
        other => return err(StatusCode::UNSUPPORTED_MEDIA_TYPE, format!("unsupported Content-Type {other:?}; OTLP/HTTP sends application/x-protobuf or application/json")).into_response(),
    };
    // An empty ExportLogsServiceResponse, in the request's encoding.
    store_push(logs, decoded, move || {
        if json {
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                "{}",
            )
                .into_response()
        } else {
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/x-protobuf")],
                Vec::<u8>::new(),
            )
                .into_response()
        }
    })
    .await
}

/// A Loki timestamp: RFC 3339, float seconds, or integer nanoseconds (integers of up to 10
/// digits are seconds).
fn parse_time(s: &str) -> Result<i64, String> {
    if let Ok(n) = s.parse::<i64>() {
        return Ok(if n.unsigned_abs() < 10_000_000_000 {
            n.saturating_mul(NS)
        } else {
            n
        });
    }
    if let Ok(f) = s.parse::<f64>() {
        if f.is_finite() {
            return Ok((f * 1e9) as i64);
        }
    }
    medic_model::parse_rfc3339(s)
        .map(|ms| ms.saturating_mul(1_000_000))
        .ok_or_else(|| format!("cannot parse {s:?} to a valid timestamp"))
}

fn time_param(p: &Params, key: &str, default: i64) -> Result<i64, LokiError> {
    match p.get(key) {
        None | Some("") => Ok(default),
        Some(v) => {
            parse_time(v).map_err(|e| err(StatusCode::BAD_REQUEST, format!("invalid {key}: {e}")))
        }
    }
}

/// Duration strings (`15s`) or float seconds.
fn duration_param(p: &Params, key: &str) -> Result<Option<i64>, LokiError> {
    let Some(v) = p.get(key).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let secs = v.parse::<f64>().ok().or_else(|| logql::parse_duration(v));
    match secs {
        Some(s) if s > 0.0 && s.is_finite() => Ok(Some((s * 1e9) as i64)),
        _ => Err(err(
            StatusCode::BAD_REQUEST,
            format!("invalid {key}: {v:?} is not a positive duration"),
        )),
    }
}

/// `[start, end)`: Loki's `start`/`end`/`since` (default the last hour).
fn range(p: &Params) -> Result<(i64, i64), LokiError> {
    let end = time_param(p, "end", now_ns())?;
    let since = duration_param(p, "since")?.unwrap_or(3600 * NS);
    let start = time_param(p, "start", end - since)?;
    if end < start {
        return Err(err(
            StatusCode::BAD_REQUEST,
            "end timestamp must not be before start time",
        ));
    }
    Ok((start, end))
}

fn eval_error(e: EvalError) -> LokiError {
    match e {
        EvalError::Source(m) => err(StatusCode::INTERNAL_SERVER_ERROR, m),
        other => err(StatusCode::BAD_REQUEST, other.to_string()),
    }
}

fn limit(p: &Params, logs: &Logs) -> Result<usize, LokiError> {
    let n = match p.get("limit").filter(|v| !v.is_empty()) {
        None => DEFAULT_LIMIT,
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| err(StatusCode::BAD_REQUEST, format!("invalid limit: {v:?}")))?,
    };
    if n > logs.max_entries {
        return Err(err(
            StatusCode::BAD_REQUEST,
            format!(
                "max entries limit per query exceeded, limit > max_entries_limit ({n} > {})",
                logs.max_entries
            ),
        ));
    }
    Ok(n)
}

fn direction(p: &Params) -> Result<Direction, LokiError> {
    match p.get("direction").map(str::to_ascii_lowercase).as_deref() {
        None | Some("") | Some("backward") => Ok(Direction::Backward),
        Some("forward") => Ok(Direction::Forward),
        Some(other) => Err(err(
            StatusCode::BAD_REQUEST,
            format!("invalid direction {other:?}; expected forward or backward"),
        )),
    }
}

fn ok(data: Value) -> Response {
    Json(json!({"status": "success", "data": data})).into_response()
}

/// Loki's float format for sample values.
fn value_str(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{v}")
    }
}

fn ts_json(ns: i64) -> Value {
    let secs = ns as f64 / 1e9;
    if ns % NS == 0 {
        json!(ns / NS)
    } else {
        json!(secs)
    }
}

/// `GET|POST /loki/api/v1/query_range`.
pub(super) async fn query_range(State(st): State<Arc<AppState>>, p: Params) -> Response {
    run_query(st, p, false)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// `GET|POST /loki/api/v1/query`.
pub(super) async fn query(State(st): State<Arc<AppState>>, p: Params) -> Response {
    run_query(st, p, true)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn run_query(st: Arc<AppState>, p: Params, instant: bool) -> Result<Response, LokiError> {
    let logs = store(&st)?;
    let text = p.get("query").unwrap_or("").to_string();
    if text.is_empty() {
        return Err(err(StatusCode::BAD_REQUEST, "query parameter is required"));
    }
    let expr = logql::parse(&text).map_err(|e| err(StatusCode::BAD_REQUEST, e.to_string()))?;
    let (start, end) = if instant {
        let t = time_param(&p, "time", now_ns())?;
        (t, t)
    } else {
        range(&p)?
    };
    let limit = limit(&p, &logs)?;
    let dir = direction(&p)?;
    let step = match duration_param(&p, "step")? {
        Some(s) => s,
        // Loki's default: the range in 250 steps, at least a second.
        None => ((end - start) / 250 / NS).max(1) * NS,
    };
    let started = std::time::Instant::now();
    let data = tokio::task::spawn_blocking(move || -> Result<Value, EvalError> {
        match expr {
            Expr::Log(_) if instant => Err(EvalError::Invalid("log queries are not supported as an instant query type, please change your query to a range query type".into())),
            Expr::Log(l) => {
                let streams = logs::query_logs(&logs.store, &l, start, end, limit, dir)?;
                let result: Vec<Value> = streams
                    .into_iter()
                    .map(|s| json!({"stream": s.labels, "values": s.entries.into_iter().map(|(ts, line)| json!([ts.to_string(), line])).collect::<Vec<_>>()}))
                    .collect();
                Ok(json!({"resultType": "streams", "result": result}))
            }
            Expr::Metric(m) => {
                let steps = metric::Steps { start, end, step };
                let vectors = metric::eval(&logs.store, &m, steps)?;
                Ok(metric_json(&m, &steps, vectors, instant))
            }
        }
    })
    .await
    .map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map_err(eval_error)?;
    let mut data = data;
    data["stats"] = json!({"summary": {"execTime": started.elapsed().as_secs_f64()}});
    Ok(ok(data))
}

fn metric_json(
    m: &logql::ast::MetricExpr,
    steps: &metric::Steps,
    vectors: Vec<metric::Vector>,
    instant: bool,
) -> Value {
    if instant && metric::is_scalar(m) {
        let v = vectors
            .first()
            .and_then(|v| v.first())
            .map_or(f64::NAN, |s| s.value);
        return json!({"resultType": "scalar", "result": [ts_json(steps.start), value_str(v)]});
    }
    if instant {
        let result: Vec<Value> = vectors
            .into_iter()
            .next()
            .unwrap_or_default()
            .into_iter()
            .map(|s| json!({"metric": s.labels, "value": [ts_json(steps.start), value_str(s.value)]}))
            .collect();
        return json!({"resultType": "vector", "result": result});
    }
    let mut series: std::collections::BTreeMap<logql::pipeline::LabelMap, Vec<Value>> =
        Default::default();
    for (t, v) in steps.times().zip(vectors) {
        for s in v {
            series
                .entry(s.labels)
                .or_default()
                .push(json!([ts_json(t), value_str(s.value)]));
        }
    }
    let result: Vec<Value> = series
        .into_iter()
        .map(|(k, v)| json!({"metric": k, "values": v}))
        .collect();
    json!({"resultType": "matrix", "result": result})
}

/// `GET /loki/api/v1/labels`.
pub(super) async fn labels(State(st): State<Arc<AppState>>, p: Params) -> Response {
    label_query(st, p, None)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// `GET /loki/api/v1/label/{name}/values`.
pub(super) async fn label_values(
    State(st): State<Arc<AppState>>,
    Path(name): Path<String>,
    p: Params,
) -> Response {
    label_query(st, p, Some(name))
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn label_query(
    st: Arc<AppState>,
    p: Params,
    name: Option<String>,
) -> Result<Response, LokiError> {
    let logs = store(&st)?;
    let (start, end) = range(&p)?;
    let matchers = match p.get("query").filter(|q| !q.is_empty()) {
        Some(q) => {
            logql::parse_selector(q).map_err(|e| err(StatusCode::BAD_REQUEST, e.to_string()))?
        }
        None => Vec::new(),
    };
    let values = tokio::task::spawn_blocking(move || match name {
        None => logs.store.label_names(start, end),
        Some(n) => logs.store.label_values(&n, &matchers, start, end),
    })
    .await
    .map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(ok(json!(values)))
}

/// `GET|POST /loki/api/v1/series`.
pub(super) async fn series(State(st): State<Arc<AppState>>, p: Params) -> Response {
    series_query(st, p)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn series_query(st: Arc<AppState>, p: Params) -> Result<Response, LokiError> {
    let logs = store(&st)?;
    let (start, end) = range(&p)?;
    let mut sets = Vec::new();
    for m in p.all("match[]").into_iter().chain(p.all("match")) {
        sets.push(
            logql::parse_selector(m)
                .map_err(|e| err(StatusCode::BAD_REQUEST, format!("match[] {m:?}: {e}")))?,
        );
    }
    if sets.is_empty() {
        sets.push(Vec::new());
    }
    let found = tokio::task::spawn_blocking(move || {
        let mut all: Vec<medic_model::Labels> = sets
            .iter()
            .flat_map(|m| logs.store.series(m, start, end))
            .collect();
        all.sort();
        all.dedup();
        all
    })
    .await
    .map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let data: Vec<Value> = found
        .iter()
        .map(|l| {
            Value::Object(
                l.iter()
                    .map(|l| (l.name.to_string(), Value::String(l.value.to_string())))
                    .collect(),
            )
        })
        .collect();
    Ok(ok(json!(data)))
}

/// `POST /api/v1/medic/logs/flush`: writes the log head to parts now (backups, benchmarks).
pub(super) async fn flush(State(st): State<Arc<AppState>>) -> Response {
    let logs = match store(&st) {
        Ok(l) => l,
        Err(r) => return r.into_response(),
    };
    match tokio::task::spawn_blocking(move || logs.store.flush()).await {
        Ok(Ok(())) => StatusCode::NO_CONTENT.into_response(),
        Ok(Err(e)) => err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        Err(e) => err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// `GET /loki/api/v1/tail` (websocket): the lines of a log query from `start` (default an hour
/// ago, at most `limit`), then new ones as they arrive, in Loki's tail messages
/// (`{"streams":[…],"dropped_entries":null}`), polled once a second.
pub(super) async fn tail(
    State(st): State<Arc<AppState>>,
    ws: axum::extract::ws::WebSocketUpgrade,
    p: Params,
) -> Response {
    let prepared = (|| {
        let logs = store(&st)?;
        let text = p.get("query").unwrap_or("");
        let expr =
            match logql::parse(text).map_err(|e| err(StatusCode::BAD_REQUEST, e.to_string()))? {
                Expr::Log(l) => l,
                Expr::Metric(_) => {
                    return Err(err(
                        StatusCode::BAD_REQUEST,
                        "tail needs a log query, not a metric query",
                    ))
                }
            };
        let start = time_param(&p, "start", now_ns() - 3600 * NS)?;
        let limit = limit(&p, &logs)?;
        Ok((logs, expr, start, limit))
    })();
    match prepared {
        Ok((logs, expr, start, limit)) => {
            ws.on_upgrade(move |socket| tail_loop(socket, logs, expr, start, limit))
        }
        Err(e) => e.into_response(),
    }
}

async fn tail_loop(
    mut socket: axum::extract::ws::WebSocket,
    logs: Arc<Logs>,
    expr: logql::ast::LogExpr,
    mut from: i64,
    limit: usize,
) {
    use axum::extract::ws::Message;
    let expr = Arc::new(expr);
    // Lines already sent at `from`, so one arriving later at the same nanosecond is not lost
    // and none is sent twice.
    let mut sent_at_from: std::collections::HashSet<(String, String)> = Default::default();
    loop {
        let (l, e, start) = (logs.clone(), expr.clone(), from);
        let found = tokio::task::spawn_blocking(move || {
            logs::query_logs(&l.store, &e, start, now_ns() + 1, limit, Direction::Forward)
        })
        .await;
        let Ok(Ok(streams)) = found else { break };
        let mut out = Vec::new();
        for s in streams {
            let key = logs::format_labels(&s.labels);
            let mut values = Vec::new();
            for (ts, line) in s.entries {
                if ts == from && sent_at_from.contains(&(key.clone(), line.clone())) {
                    continue;
                }
                if ts > from {
                    from = ts;
                    sent_at_from.clear();
                }
                sent_at_from.insert((key.clone(), line.clone()));
                values.push(json!([ts.to_string(), line]));
            }
            if !values.is_empty() {
                out.push(json!({"stream": s.labels, "values": values}));
            }
        }
        if !out.is_empty() {
            let msg = json!({"streams": out, "dropped_entries": null}).to_string();
            if socket.send(Message::Text(msg.into())).await.is_err() {
                break;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            m = socket.recv() => match m {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                Some(Ok(_)) => {}
            },
        }
    }
}
