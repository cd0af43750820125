//! The HTTP API: Prometheus's shapes for the endpoints Prometheus has (`/api/v1/series`,
//! `/labels`, `/label/<name>/values`, `/targets`, `/write`), medic's own elsewhere.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Path, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use medic_model::{is_stale_nan, parse_api_time, parse_selector, Matcher, Queryable};
use serde_json::{json, Value};
use tracing::warn;

use crate::app::AppState;
use crate::remote_write;

/// Builds the router.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/-/healthy", get(healthy))
        .route("/-/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/api/v1/write", post(write))
        .route("/api/v1/targets", get(targets))
        .route("/api/v1/series", get(series).post(series))
        .route("/api/v1/labels", get(labels).post(labels))
        .route("/api/v1/label/{name}/values", get(label_values))
        .route("/api/v1/export", get(export).post(export))
        .route(
            "/api/v1/query",
            get(crate::query_api::query).post(crate::query_api::query),
        )
        .route(
            "/api/v1/query_range",
            get(crate::query_api::query_range).post(crate::query_api::query_range),
        )
        .route(
            "/api/v1/format_query",
            get(crate::query_api::format_query).post(crate::query_api::format_query),
        )
        .route("/api/v1/status/buildinfo", get(crate::query_api::buildinfo))
        .route("/api/v1/status/tsdb", get(tsdb_status))
        .route("/api/v1/status/config", get(crate::status_api::config))
        .route("/api/v1/status/flags", get(crate::status_api::flags))
        .route(
            "/api/v1/status/runtimeinfo",
            get(crate::status_api::runtimeinfo),
        )
        .route("/api/v1/metadata", get(crate::status_api::metadata))
        .route(
            "/api/v1/targets/metadata",
            get(crate::status_api::targets_metadata),
        )
        .route(
            "/api/v1/query_exemplars",
            get(crate::status_api::query_exemplars).post(crate::status_api::query_exemplars),
        )
        .route("/federate", get(crate::status_api::federate))
        .route("/api/v1/rules", get(crate::rules_api::rules))
        .route("/api/v1/alerts", get(crate::rules_api::alerts))
        .route(
            "/-/reload",
            post(crate::rules_api::reload).put(crate::rules_api::reload),
        )
        .route("/api/v1/admin/tsdb/flush", post(flush))
        .route(
            "/api/v2/alerts",
            get(crate::alert_api::get_alerts).post(crate::alert_api::post_alerts),
        )
        .route("/api/v2/alerts/groups", get(crate::alert_api::get_groups))
        .route(
            "/api/v2/silences",
            get(crate::alert_api::get_silences).post(crate::alert_api::post_silences),
        )
        .route(
            "/api/v2/silence/{id}",
            get(crate::alert_api::get_silence).delete(crate::alert_api::delete_silence),
        )
        .route("/api/v2/receivers", get(crate::alert_api::get_receivers))
        .route("/api/v2/status", get(crate::alert_api::get_status))
        .route(
            "/api/v1/medic/alerts/webhook",
            post(crate::alert_api::post_webhook),
        )
        .route(
            "/api/v1/medic/alerts/cloudwatch",
            post(crate::alert_api::post_cloudwatch),
        )
        .route(
            "/api/v1/medic/alerts/groups",
            get(crate::alert_api::medic_groups),
        )
        .route(
            "/api/v1/medic/alerts/ack",
            post(crate::alert_api::post_ack).delete(crate::alert_api::delete_ack),
        )
        .route(
            "/api/v1/medic/alerts/history",
            get(crate::alert_api::get_history),
        )
        .route(
            "/api/v1/medic/heal/playbooks",
            get(crate::heal_api::get_playbooks),
        )
        .route(
            "/api/v1/medic/heal/executions",
            get(crate::heal_api::get_executions),
        )
        .route(
            "/api/v1/medic/heal/executions/{id}",
            get(crate::heal_api::get_execution),
        )
        .route(
            "/api/v1/medic/heal/executions/{id}/approve",
            post(crate::heal_api::post_approve),
        )
        .route(
            "/api/v1/medic/heal/executions/{id}/reject",
            post(crate::heal_api::post_reject),
        )
        .route(
            "/api/v1/medic/heal/trigger",
            post(crate::heal_api::post_trigger),
        )
        .route(
            "/api/v1/medic/heal/pauses",
            get(crate::heal_api::get_pauses),
        )
        .route(
            "/api/v1/medic/heal/pause",
            post(crate::heal_api::post_pause),
        )
        .route(
            "/api/v1/medic/heal/resume",
            post(crate::heal_api::post_resume),
        )
        .route(
            "/api/v1/medic/anomalies",
            get(crate::anomaly_api::get_anomalies),
        )
        .route(
            "/api/v1/medic/anomalies/baseline",
            get(crate::anomaly_api::get_baseline),
        )
        .route(
            "/api/v1/medic/anomalies/report",
            get(crate::anomaly_api::get_report),
        )
        .route("/api/v1/medic/heal/trust", get(crate::heal_api::get_trust))
        .route(
            "/api/v1/medic/heal/dry-run",
            post(crate::heal_api::post_dry_run),
        )
        .fallback(not_found)
        .layer(axum::middleware::from_fn(require_json))
        .layer(axum::middleware::from_fn_with_state(state.clone(), track))
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(state)
}

/// State-changing requests to the JSON APIs (Alertmanager's v2, medic's own) must say they
/// are JSON: a web page can POST `text/plain` to any origin without asking, so accepting it would
/// let any page an operator visits approve a repair or add a silence. Alertmanager answers 415
/// too.
async fn require_json(req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let json_api = path.starts_with("/api/v2/") || path.starts_with("/api/v1/medic/");
    let writes = matches!(*req.method(), Method::POST | Method::PUT);
    if json_api && writes {
        let ct = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let is_json = ct
            .split(';')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "{path} takes a JSON body: send Content-Type: application/json (got {:?})\n",
                    ct
                ),
            )
                .into_response();
        }
    }
    next.run(req).await
}

/// Records request count and latency per matched route.
async fn track(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let handler = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "other".into());
    let start = Instant::now();
    let resp = next.run(req).await;
    let code = resp.status().as_u16().to_string();
    st.http
        .requests
        .get_or_create(&vec![("handler", handler.clone()), ("code", code)])
        .inc();
    st.http
        .duration
        .get_or_create(&vec![("handler", handler)])
        .observe(start.elapsed().as_secs_f64());
    resp
}

async fn healthy() -> &'static str {
    "medic is Healthy.\n"
}

async fn ready() -> &'static str {
    "medic is Ready.\n"
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "404 page not found\n").into_response()
}

async fn metrics(State(st): State<Arc<AppState>>) -> Response {
    let body = st.self_metrics.render();
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// A Prometheus API error, rendered as `{"status":"error","errorType":…,"error":…}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

impl ApiError {
    /// An error with any status and Prometheus `errorType`.
    pub fn with_status(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            message: message.into(),
        }
    }

    /// 400 `bad_data`: the request is malformed.
    pub fn bad_data(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            kind: "bad_data",
            message: message.into(),
        }
    }

    /// 422 `execution`: the request was understood but could not be carried out.
    pub fn execution(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            kind: "execution",
            message: message.into(),
        }
    }

    /// 500 `internal`.
    pub fn internal(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            kind: "internal",
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            axum::Json(json!({"status": "error", "errorType": self.kind, "error": self.message})),
        )
            .into_response()
    }
}

pub(crate) fn success(data: Value) -> Response {
    axum::Json(json!({"status": "success", "data": data})).into_response()
}

async fn write(State(st): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    if !st.config.remote_write.enabled {
        return (
            StatusCode::NOT_FOUND,
            "remote write receiver is disabled (remote_write.enabled: false)\n",
        )
            .into_response();
    }
    let limit = st.config.remote_write.max_body_size.0 as usize;
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
    {
        if len > limit {
            return too_large(format!("body of {len} bytes exceeds the limit of {limit} bytes (remote_write.max_body_size)\n"));
        }
    }
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => {
            return too_large(format!(
                "body exceeds the limit of {limit} bytes (remote_write.max_body_size)\n"
            ));
        }
    };
    let max_decoded = st.config.remote_write.max_decoded_size.0 as usize;
    // What decoding and storing this body will hold: about 8× its decoded size. Taken from the
    // shared budget, or refused at once with 503 (Prometheus retries); a body larger than the
    // whole budget may still go alone.
    let decoded = snap::raw::decompress_len(&bytes)
        .unwrap_or(0)
        .min(max_decoded);
    let total = (st.config.remote_write.max_inflight_bytes.0 >> 10).max(1) as usize;
    let kib = ((bytes.len() + decoded.saturating_mul(8)) >> 10)
        .clamp(1, total.min(u32::MAX as usize)) as u32;
    let Ok(permit) = st.write_budget.clone().try_acquire_many_owned(kib) else {
        st.http
            .refused
            .get_or_create(&vec![("reason", "remote_write_inflight".to_string())])
            .inc();
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "1")],
            "too many remote-write bytes in flight (remote_write.max_inflight_bytes); retry shortly\n",
        )
            .into_response();
    };
    let db = st.db.clone();
    let result = tokio::task::spawn_blocking(move || {
        let _held = permit;
        let raw = remote_write::decompress(&bytes, max_decoded)?;
        remote_write::ingest(db.as_ref(), &raw)
    })
    .await;
    use remote_write::{DecodeError, IngestError};
    match result {
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("internal error: {e}\n"),
        )
            .into_response(),
        Ok(Err(IngestError::Decode(e @ DecodeError::TooLarge { .. }))) => {
            (StatusCode::PAYLOAD_TOO_LARGE, format!("{e}\n")).into_response()
        }
        Ok(Err(IngestError::Decode(e))) => {
            (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response()
        }
        Ok(Err(IngestError::Storage(e))) => {
            warn!(error = %e, "remote write: storage error");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("storage error: {e}\n"),
            )
                .into_response()
        }
        Ok(Ok(outcome)) => {
            if outcome.rejected.is_empty() {
                StatusCode::NO_CONTENT.into_response()
            } else {
                (StatusCode::BAD_REQUEST, format!("{}\n", outcome.message())).into_response()
            }
        }
    }
}

async fn targets(State(st): State<Arc<AppState>>, params: Params) -> Response {
    let state = params.get("state").unwrap_or("any").to_string();
    let (active, dropped) = st.scrape.as_ref().map(|s| s.targets()).unwrap_or_default();
    let mut data = serde_json::Map::new();
    if state == "any" || state == "active" {
        data.insert("activeTargets".into(), json!(active));
    } else {
        data.insert("activeTargets".into(), json!([]));
    }
    if state == "any" || state == "dropped" {
        data.insert("droppedTargets".into(), json!(dropped));
    } else {
        data.insert("droppedTargets".into(), json!([]));
    }
    success(Value::Object(data))
}

/// Query-string and form parameters, repeated keys kept.
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Parses a query string and, for form POSTs, the body.
    pub fn parse(query: Option<&str>, body: Option<&[u8]>) -> Params {
        let mut v: Vec<(String, String)> = Vec::new();
        if let Some(q) = query {
            v.extend(form_urlencoded::parse(q.as_bytes()).into_owned());
        }
        if let Some(b) = body {
            v.extend(form_urlencoded::parse(b).into_owned());
        }
        Params(v)
    }

    /// First value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// All values of `key`.
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A time parameter; absent gives `default`.
    pub fn time(&self, key: &str, default: i64) -> Result<i64, ApiError> {
        match self.get(key) {
            None | Some("") => Ok(default),
            Some(s) => parse_api_time(s).ok_or_else(|| {
                ApiError::bad_data(format!(
                    "invalid parameter \"{key}\": cannot parse {s:?} to a valid timestamp"
                ))
            }),
        }
    }

    /// `start` and `end`, defaulting to all time; `end` must not be before `start`.
    pub fn range(&self) -> Result<(i64, i64), ApiError> {
        let start = self.time("start", MIN_TIME)?;
        let end = self.time("end", MAX_TIME)?;
        if end < start {
            return Err(ApiError::bad_data(
                "end timestamp must not be before start time",
            ));
        }
        Ok((start, end))
    }

    /// `match[]` selectors, parsed.
    pub fn matchers(&self) -> Result<Vec<Vec<Matcher>>, ApiError> {
        self.all("match[]")
            .into_iter()
            .map(|s| {
                parse_selector(s)
                    .map_err(|e| ApiError::bad_data(format!("invalid parameter \"match[]\": {e}")))
            })
            .collect()
    }

    /// `match[]` selectors, at least one.
    pub fn required_matchers(&self) -> Result<Vec<Vec<Matcher>>, ApiError> {
        let sets = self.matchers()?;
        if sets.is_empty() {
            return Err(ApiError::bad_data("no match[] parameter provided"));
        }
        Ok(sets)
    }
}

/// Largest form body accepted by the query and index APIs.
const MAX_FORM_BYTES: usize = 16 << 20;

/// Extracts [`Params`] from the query string and, for form POSTs, the body, as Prometheus's
/// handlers accept both.
impl<S: Send + Sync> axum::extract::FromRequest<S> for Params {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, ApiError> {
        let query = req.uri().query().map(str::to_string);
        let is_form = req.method() == Method::POST
            && req
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        let body = if is_form {
            Some(
                axum::body::to_bytes(req.into_body(), MAX_FORM_BYTES)
                    .await
                    .map_err(|_| {
                        ApiError::bad_data(format!("form body larger than {MAX_FORM_BYTES} bytes"))
                    })?,
            )
        } else {
            None
        };
        Ok(Params::parse(query.as_deref(), body.as_deref()))
    }
}
const MIN_TIME: i64 = i64::MIN / 2;
const MAX_TIME: i64 = i64::MAX / 2;

/// Runs a storage read off the async runtime.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(ApiError::execution(e)),
        Err(e) => Err(ApiError::internal(e.to_string())),
    }
}

async fn series(State(st): State<Arc<AppState>>, p: Params) -> Result<Response, ApiError> {
    let sets = p.required_matchers()?;
    let (start, end) = p.range()?;
    let db = st.db.clone();
    let series = blocking(move || select_union(db.as_ref(), &sets, start, end)).await?;
    let labels: Vec<&medic_model::Labels> = series.iter().map(|s| &s.labels).collect();
    Ok(success(json!(labels)))
}

/// The series matching any of the selector sets, each once, in label order.
pub(crate) fn select_union(
    db: &dyn Queryable,
    sets: &[Vec<Matcher>],
    start: i64,
    end: i64,
) -> Result<Vec<medic_model::Series>, String> {
    let q = db.querier(start, end).map_err(|e| e.to_string())?;
    let mut all = std::collections::BTreeMap::new();
    for ms in sets {
        for s in q.select(ms).map_err(|e| e.to_string())? {
            let s = s.map_err(|e| e.to_string())?;
            all.entry(s.labels.clone()).or_insert(s);
        }
    }
    Ok(all.into_values().collect())
}

async fn labels(State(st): State<Arc<AppState>>, p: Params) -> Result<Response, ApiError> {
    label_query(st, p, None).await
}

async fn label_values(
    State(st): State<Arc<AppState>>,
    Path(name): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    if !medic_model::is_valid_label_name(&name) {
        return Err(ApiError::bad_data(format!("invalid label name: {name:?}")));
    }
    label_query(st, p, Some(name)).await
}

async fn label_query(
    st: Arc<AppState>,
    p: Params,
    name: Option<String>,
) -> Result<Response, ApiError> {
    let sets = p.matchers()?;
    let (start, end) = p.range()?;
    let db = st.db.clone();
    let list = blocking(move || {
        let q = db.querier(start, end).map_err(|e| e.to_string())?;
        let sets = if sets.is_empty() {
            vec![Vec::new()]
        } else {
            sets
        };
        let mut out = BTreeSet::new();
        for ms in &sets {
            let v = match &name {
                Some(n) => q.label_values(n, ms),
                None => q.label_names(ms),
            }
            .map_err(|e| e.to_string())?;
            out.extend(v);
        }
        Ok(out.into_iter().collect::<Vec<_>>())
    })
    .await?;
    Ok(success(json!(list)))
}

/// `GET /api/v1/export?match[]=…&start=…&end=…`: raw samples as JSON lines, one series per
/// line, in VictoriaMetrics's export shape (`{"metric":{…},"values":[…],"timestamps":[…]}`).
/// Non-finite values are written as the strings "NaN", "+Inf", "-Inf"; staleness markers are
/// left out.
async fn export(State(st): State<Arc<AppState>>, p: Params) -> Result<Response, ApiError> {
    let sets = p.required_matchers()?;
    let (start, end) = p.range()?;
    let db = st.db.clone();
    let text = blocking(move || {
        let mut out = String::new();
        for s in select_union(db.as_ref(), &sets, start, end)? {
            let mut values = Vec::with_capacity(s.samples.len());
            let mut timestamps = Vec::with_capacity(s.samples.len());
            for x in s.samples.iter().filter(|x| !is_stale_nan(x.v)) {
                values.push(if x.v.is_finite() {
                    json!(x.v)
                } else if x.v.is_nan() {
                    json!("NaN")
                } else if x.v > 0.0 {
                    json!("+Inf")
                } else {
                    json!("-Inf")
                });
                timestamps.push(x.t);
            }
            if values.is_empty() {
                continue;
            }
            out.push_str(
                &json!({"metric": s.labels, "values": values, "timestamps": timestamps})
                    .to_string(),
            );
            out.push('\n');
        }
        Ok(out)
    })
    .await?;
    Ok(([(header::CONTENT_TYPE, "application/stream+json")], text).into_response())
}

async fn tsdb_status(State(st): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let db = st.db.clone();
    let s = blocking(move || Ok(db.stats())).await?;
    Ok(success(json!({
        "headStats": {
            "numSeries": s.head_series,
            "minTime": s.head_min_time,
            "maxTime": s.head_max_time,
        },
        "blocks": s.blocks,
        "blocksBytes": s.blocks_bytes,
        "walBytes": s.wal_bytes,
    })))
}

async fn flush(State(st): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let db = st.db.clone();
    let summary = blocking(move || db.flush().map_err(|e| e.to_string())).await?;
    Ok(success(json!(summary)))
}

/// 413 for a body left unread: with `Connection: close`, so that the client does not send its
/// next request on a connection the server is about to drop.
fn too_large(message: String) -> Response {
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        [(header::CONNECTION, "close")],
        message,
    )
        .into_response()
}
