//! The alert manager's HTTP API: Alertmanager's API v2 (`/api/v2/alerts`, `/alerts/groups`,
//! `/silences`, `/silence/{id}`, `/receivers`, `/status`) in its exact shapes, so Prometheus
//! can send alerts here and `amtool` works unmodified; and medic's own endpoints under
//! `/api/v1/medic/alerts/` for alert sources (Alertmanager webhook payloads, CloudWatch alarm
//! events via EventBridge), acknowledgements and history.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use medic_alert::silence::{Silence, SilenceError};
use medic_alert::state::{EventKind, HistoryQuery};
use medic_alert::types::rfc3339_millis as rfc3339_nano;
use medic_alert::{Alert, AlertFilter, AlertManager, AlertView, Annotations, Fingerprint};
use medic_model::{Labels, MatchType, Matcher};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::app::AppState;

/// The largest request body the alert endpoints read.
const MAX_BODY: usize = 16 << 20;

/// Hands alerts from medic's rules to the alert manager, and to external Alertmanagers when
/// `alerting.alertmanagers` names some.
pub struct RulesNotifier(
    pub Arc<AlertManager>,
    pub Option<Arc<crate::forward::Forwarder>>,
);

impl medic_rules::Notifier for RulesNotifier {
    fn notify(&self, alerts: Vec<medic_rules::Notification>) {
        let batch: Vec<Alert> = alerts
            .into_iter()
            .map(|n| Alert {
                labels: n.labels,
                annotations: n
                    .annotations
                    .iter()
                    .map(|l| (l.name.to_string(), l.value.to_string()))
                    .collect(),
                starts_at: n.starts_at,
                ends_at: n.ends_at,
                generator_url: n.generator_url,
                updated_at: 0,
                timeout: false,
                value: Some(n.value),
            })
            .collect();
        if let Some(f) = &self.1 {
            f.send(&batch);
        }
        if let Err(e) = self.0.put(batch) {
            tracing::error!(error = %e, "alerts from rules were not stored");
        }
    }
}

/// An error in Alertmanager's v2 style: the status and a JSON string body.
fn v2_error(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(Value::String(msg.into()))).into_response()
}

/// A request error before a response is built: the status and the reason.
#[derive(Debug)]
struct BadRequest(StatusCode, String);

impl BadRequest {
    fn new(msg: impl Into<String>) -> Self {
        BadRequest(StatusCode::BAD_REQUEST, msg.into())
    }

    /// As an API v2 response.
    fn v2(self) -> Response {
        v2_error(self.0, self.1)
    }

    /// As a medic API response.
    fn medic(self) -> Response {
        medic_err(self.0, self.1)
    }
}

pub(crate) async fn read_body(body: Body) -> Result<bytes::Bytes, Response> {
    axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
        v2_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body larger than {MAX_BODY} bytes"),
        )
    })
}

pub(crate) fn params(q: &Option<String>) -> Vec<(String, String)> {
    q.as_deref()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

fn bool_param(p: &[(String, String)], name: &str, default: bool) -> Result<bool, BadRequest> {
    match p.iter().rev().find(|(k, _)| k == name) {
        None => Ok(default),
        Some((_, v)) => match v.as_str() {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            _ => Err(BadRequest::new(format!("{name}: {v:?} is not a boolean"))),
        },
    }
}

fn filter_matchers(p: &[(String, String)]) -> Result<Vec<Matcher>, BadRequest> {
    let mut out = Vec::new();
    for (k, v) in p {
        if k == "filter" {
            out.extend(
                medic_alert::matchers::parse_matchers(v)
                    .map_err(|e| BadRequest::new(format!("filter {v:?}: {e}")))?,
            );
        }
    }
    Ok(out)
}

fn receiver_regex(p: &[(String, String)]) -> Result<Option<regex::Regex>, BadRequest> {
    match p.iter().rev().find(|(k, _)| k == "receiver") {
        None => Ok(None),
        Some((_, r)) => regex::RegexBuilder::new(&format!("^(?:{r})$"))
            .size_limit(1 << 20)
            .build()
            .map(Some)
            .map_err(|e| BadRequest::new(format!("receiver: invalid regular expression: {e}"))),
    }
}

fn labels_json(l: &Labels) -> Value {
    Value::Object(
        l.iter()
            .map(|l| (l.name.to_string(), json!(&*l.value)))
            .collect(),
    )
}

fn alert_json(v: &AlertView) -> Value {
    let a = &v.alert;
    let mut receivers: Vec<&String> = v.receivers.iter().collect();
    receivers.sort();
    let mut out = json!({
        "annotations": a.annotations,
        "endsAt": rfc3339_nano(a.ends_at),
        "fingerprint": a.fingerprint().to_string(),
        "receivers": receivers.iter().map(|r| json!({"name": r})).collect::<Vec<_>>(),
        "startsAt": rfc3339_nano(a.starts_at),
        "status": {
            "inhibitedBy": v.inhibited_by,
            "silencedBy": v.silenced_by,
            "state": v.state(),
        },
        "updatedAt": rfc3339_nano(a.updated_at),
        "labels": labels_json(&a.labels),
    });
    // `omitempty`, as in Alertmanager's API.
    if !a.generator_url.is_empty() {
        out["generatorURL"] = json!(a.generator_url);
    }
    out
}

/// Go's zero time (`0001-01-01T00:00:00Z`) and absent values mean "not set".
fn parse_time(s: Option<&str>, field: &str) -> Result<i64, String> {
    match s {
        None | Some("") => Ok(0),
        Some(t) if t.starts_with("0001-01-01T00:00:00") => Ok(0),
        Some(t) => medic_model::parse_rfc3339(t)
            .ok_or_else(|| format!("{field}: {t:?} is not an RFC 3339 time")),
    }
}

/// `PostableAlert`.
#[derive(Debug, Deserialize)]
struct PostableAlert {
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(rename = "startsAt")]
    starts_at: Option<String>,
    #[serde(rename = "endsAt")]
    ends_at: Option<String>,
    #[serde(rename = "generatorURL", default)]
    generator_url: String,
}

/// Received alerts turned into stored ones, and the ones refused (`alert N: why`).
struct Converted {
    alerts: Vec<Alert>,
    refused: Vec<String>,
}

/// Turns received alerts into stored ones the way Alertmanager's API does: a missing start is
/// the end if one is given, else now; a missing end is now + `resolve_timeout`. An alert whose
/// times do not parse is refused alone; the others are kept.
fn to_alerts(posted: Vec<PostableAlert>, now: i64, resolve_timeout: i64) -> Converted {
    let mut out = Converted {
        alerts: Vec::with_capacity(posted.len()),
        refused: Vec::new(),
    };
    for (i, p) in posted.into_iter().enumerate() {
        let times = parse_time(p.starts_at.as_deref(), "startsAt")
            .and_then(|s| Ok((s, parse_time(p.ends_at.as_deref(), "endsAt")?)));
        let (mut starts_at, mut ends_at) = match times {
            Ok(t) => t,
            Err(e) => {
                out.refused.push(format!("alert {i}: {e}"));
                continue;
            }
        };
        if starts_at == 0 {
            starts_at = if ends_at != 0 { ends_at } else { now };
        }
        let timeout = ends_at == 0;
        if timeout {
            ends_at = now + resolve_timeout;
        }
        let labels = Labels::from_pairs(p.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let alert = Alert {
            labels,
            annotations: p.annotations.into_iter().collect::<Annotations>(),
            starts_at,
            ends_at,
            generator_url: p.generator_url,
            updated_at: now,
            timeout,
            value: None,
        };
        match medic_alert::manager::validate_alert(&alert) {
            Ok(()) => out.alerts.push(alert),
            Err(e) => out.refused.push(format!("alert {i}: {e}")),
        }
    }
    out
}

/// Stores the valid alerts of a batch. A batch with refused alerts answers 400 naming them —
/// after the valid ones are stored, as Alertmanager does (Prometheus does not retry a 400, so
/// refusing the whole batch would lose the valid alerts).
async fn store(am: Arc<AlertManager>, c: Converted) -> Response {
    let Converted {
        alerts,
        mut refused,
    } = c;
    let total = alerts.len() + refused.len();
    let r = match tokio::task::spawn_blocking(move || am.put(alerts)).await {
        Ok(Err(medic_alert::Error::Invalid(m))) => {
            refused.push(m);
            Ok(Ok(()))
        }
        other => other,
    };
    match r {
        Ok(Ok(())) if refused.is_empty() => StatusCode::OK.into_response(),
        Ok(Ok(())) => v2_error(
            StatusCode::BAD_REQUEST,
            format!(
                "{} of {total} alerts refused, the others were stored: {}",
                refused.len(),
                refused.join("; ")
            ),
        ),
        Ok(Err(e)) => v2_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => v2_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// `POST /api/v2/alerts`.
pub async fn post_alerts(State(st): State<Arc<AppState>>, body: Body) -> Response {
    let bytes = match read_body(body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let posted: Vec<PostableAlert> = match serde_json::from_slice(&bytes) {
        Ok(p) => p,
        Err(e) => return v2_error(StatusCode::BAD_REQUEST, format!("invalid alerts JSON: {e}")),
    };
    let now = st.alerts.now();
    let timeout = st.alerts.loaded().config.global.resolve_timeout.0;
    store(st.alerts.clone(), to_alerts(posted, now, timeout)).await
}

/// `GET /api/v2/alerts`.
pub async fn get_alerts(State(st): State<Arc<AppState>>, RawQuery(q): RawQuery) -> Response {
    let p = params(&q);
    let f = (|| {
        // `unprocessed` is accepted for compatibility; medic processes alerts as they arrive.
        bool_param(&p, "unprocessed", true)?;
        Ok::<_, BadRequest>(AlertFilter {
            matchers: filter_matchers(&p)?,
            receiver: receiver_regex(&p)?,
            active: bool_param(&p, "active", true)?,
            silenced: bool_param(&p, "silenced", true)?,
            inhibited: bool_param(&p, "inhibited", true)?,
            resolved: false,
        })
    })();
    let f = match f {
        Ok(f) => f,
        Err(e) => return e.v2(),
    };
    let alerts: Vec<Value> = st.alerts.alerts(&f).iter().map(alert_json).collect();
    Json(alerts).into_response()
}

/// `GET /api/v2/alerts/groups`.
pub async fn get_groups(State(st): State<Arc<AppState>>, RawQuery(q): RawQuery) -> Response {
    let p = params(&q);
    let parsed = (|| {
        Ok::<_, BadRequest>((
            filter_matchers(&p)?,
            receiver_regex(&p)?,
            bool_param(&p, "active", true)?,
            bool_param(&p, "silenced", true)?,
            bool_param(&p, "inhibited", true)?,
        ))
    })();
    let (matchers, receiver, active, silenced, inhibited) = match parsed {
        Ok(x) => x,
        Err(e) => return e.v2(),
    };
    let groups: Vec<Value> = st
        .alerts
        .groups(&matchers, receiver.as_ref())
        .into_iter()
        .filter_map(|g| {
            let alerts: Vec<Value> = g
                .alerts
                .iter()
                .filter(|v| {
                    (active || v.state() != "active")
                        && (silenced || v.silenced_by.is_empty())
                        && (inhibited || v.inhibited_by.is_empty())
                })
                .map(alert_json)
                .collect();
            (!alerts.is_empty()).then(|| {
                json!({"alerts": alerts, "labels": labels_json(&g.labels), "receiver": {"name": g.receiver}})
            })
        })
        .collect();
    Json(groups).into_response()
}

/// `GET /api/v2/receivers`.
pub async fn get_receivers(State(st): State<Arc<AppState>>) -> Response {
    let r: Vec<Value> = st
        .alerts
        .loaded()
        .receivers()
        .into_iter()
        .map(|n| json!({"name": n}))
        .collect();
    Json(r).into_response()
}

/// `GET /api/v2/status`.
pub async fn get_status(State(st): State<Arc<AppState>>) -> Response {
    Json(json!({
        "cluster": {"peers": [], "status": "disabled"},
        "config": {"original": st.alerts.loaded().original},
        "uptime": rfc3339_nano(st.alerts.started_at()),
        "versionInfo": {
            "branch": "",
            "buildDate": "",
            "buildUser": "",
            "goVersion": "",
            "revision": "",
            "version": concat!("medic-", env!("CARGO_PKG_VERSION")),
        },
    }))
    .into_response()
}

fn silence_json(s: &Silence, now: i64) -> Value {
    json!({
        "id": s.id,
        "status": {"state": s.state(now).as_str()},
        "updatedAt": rfc3339_nano(s.updated_at),
        "comment": s.comment,
        "createdBy": s.created_by,
        "endsAt": rfc3339_nano(s.ends_at),
        "matchers": s.matchers.iter().map(|m| json!({
            "isEqual": matches!(m.kind, MatchType::Equal | MatchType::Regexp),
            "isRegex": matches!(m.kind, MatchType::Regexp | MatchType::NotRegexp),
            "name": m.name,
            "value": m.value,
        })).collect::<Vec<_>>(),
        "startsAt": rfc3339_nano(s.starts_at),
        "expireOnResolve": s.expire_on_resolve,
    })
}

/// `GET /api/v2/silences`: active first (soonest end first), then pending (soonest start
/// first), then expired (latest end first), as Alertmanager sorts them.
pub async fn get_silences(State(st): State<Arc<AppState>>, RawQuery(q): RawQuery) -> Response {
    let p = params(&q);
    let filter = match filter_matchers(&p) {
        Ok(f) => f,
        Err(e) => return e.v2(),
    };
    let now = st.alerts.now();
    let mut sils: Vec<Silence> = st
        .alerts
        .silences()
        .into_iter()
        .filter(|s| {
            let as_labels = Labels::from_pairs(
                s.matchers
                    .iter()
                    .map(|m| (m.name.as_str(), m.value.as_str())),
            );
            medic_alert::matchers::matches_all(&filter, &as_labels)
        })
        .collect();
    use medic_alert::silence::SilenceState::*;
    let rank = |s: &Silence| match s.state(now) {
        Active => (0, s.ends_at),
        Pending => (1, s.starts_at),
        Expired => (2, -s.ends_at),
    };
    sils.sort_by_key(rank);
    Json(
        sils.iter()
            .map(|s| silence_json(s, now))
            .collect::<Vec<_>>(),
    )
    .into_response()
}

/// `GET /api/v2/silence/{id}`.
pub async fn get_silence(State(st): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    match st.alerts.silence(&id) {
        Some(s) => Json(silence_json(&s, st.alerts.now())).into_response(),
        None => v2_error(StatusCode::NOT_FOUND, format!("silence {id} not found")),
    }
}

/// `DELETE /api/v2/silence/{id}`.
pub async fn delete_silence(State(st): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    let am = st.alerts.clone();
    match tokio::task::spawn_blocking(move || am.expire_silence(&id)).await {
        Ok(Ok(())) => StatusCode::OK.into_response(),
        Ok(Err(e @ SilenceError::NotFound(_))) => v2_error(StatusCode::NOT_FOUND, e.to_string()),
        Ok(Err(e)) => v2_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => v2_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[derive(Debug, Deserialize)]
struct PostableMatcher {
    name: String,
    value: String,
    #[serde(rename = "isRegex")]
    is_regex: bool,
    #[serde(rename = "isEqual", default = "yes")]
    is_equal: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
struct PostableSilence {
    #[serde(default)]
    id: String,
    matchers: Vec<PostableMatcher>,
    #[serde(rename = "startsAt")]
    starts_at: String,
    #[serde(rename = "endsAt")]
    ends_at: String,
    #[serde(rename = "createdBy")]
    created_by: String,
    comment: String,
    /// medic's extension: expire once the alerts it silenced have resolved.
    #[serde(rename = "expireOnResolve", default)]
    expire_on_resolve: bool,
}

/// `POST /api/v2/silences`: create, or update by id.
pub async fn post_silences(State(st): State<Arc<AppState>>, body: Body) -> Response {
    let bytes = match read_body(body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let p: PostableSilence = match serde_json::from_slice(&bytes) {
        Ok(p) => p,
        Err(e) => {
            return v2_error(
                StatusCode::BAD_REQUEST,
                format!("invalid silence JSON: {e}"),
            )
        }
    };
    let mut matchers = Vec::new();
    for m in &p.matchers {
        let kind = match (m.is_regex, m.is_equal) {
            (false, true) => MatchType::Equal,
            (false, false) => MatchType::NotEqual,
            (true, true) => MatchType::Regexp,
            (true, false) => MatchType::NotRegexp,
        };
        match Matcher::new(kind, m.name.clone(), m.value.clone()) {
            Ok(x) => matchers.push(x),
            Err(e) => return v2_error(StatusCode::BAD_REQUEST, e.to_string()),
        }
    }
    let (starts_at, ends_at) = match (
        parse_time(Some(&p.starts_at), "startsAt"),
        parse_time(Some(&p.ends_at), "endsAt"),
    ) {
        (Ok(s), Ok(e)) => (s, e),
        (Err(m), _) | (_, Err(m)) => return v2_error(StatusCode::BAD_REQUEST, m),
    };
    if starts_at >= ends_at {
        return v2_error(
            StatusCode::BAD_REQUEST,
            "Failed to create silence: start time must be before end time",
        );
    }
    if ends_at < st.alerts.now() {
        return v2_error(
            StatusCode::BAD_REQUEST,
            "Failed to create silence: end time can't be in the past",
        );
    }
    let sil = Silence {
        id: p.id,
        matchers,
        starts_at,
        ends_at,
        updated_at: 0,
        created_by: p.created_by,
        comment: p.comment,
        expire_on_resolve: p.expire_on_resolve,
    };
    let am = st.alerts.clone();
    match tokio::task::spawn_blocking(move || am.set_silence(sil)).await {
        Ok(Ok(id)) => Json(json!({"silenceID": id})).into_response(),
        Ok(Err(e @ SilenceError::NotFound(_))) => v2_error(StatusCode::NOT_FOUND, e.to_string()),
        Ok(Err(e)) => v2_error(StatusCode::BAD_REQUEST, e.to_string()),
        Err(e) => v2_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

// ---- medic's own endpoints ----

pub(crate) fn medic_ok(data: Value) -> Response {
    Json(json!({"status": "success", "data": data})).into_response()
}

pub(crate) fn medic_err(status: StatusCode, msg: impl Into<String>) -> Response {
    (
        status,
        Json(json!({"status": "error", "error": msg.into()})),
    )
        .into_response()
}

/// The short id of a group: the first 12 hex digits of its key's SHA-256.
pub fn group_id(key: &str) -> String {
    medic_alert::notify::group_key_hash(key)[..12].to_string()
}

/// `POST /api/v1/medic/alerts/webhook`: alerts in Alertmanager's webhook payload (version 4),
/// as another Alertmanager or a tool that speaks its webhook format sends them.
pub async fn post_webhook(State(st): State<Arc<AppState>>, body: Body) -> Response {
    #[derive(Deserialize)]
    struct Payload {
        alerts: Vec<PostableAlert>,
    }
    let bytes = match read_body(body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let p: Payload = match serde_json::from_slice(&bytes) {
        Ok(p) => p,
        Err(e) => {
            return medic_err(
                StatusCode::BAD_REQUEST,
                format!("invalid webhook payload: {e}"),
            )
        }
    };
    let now = st.alerts.now();
    let timeout = st.alerts.loaded().config.global.resolve_timeout.0;
    match store(st.alerts.clone(), to_alerts(p.alerts, now, timeout)).await {
        r if r.status() == StatusCode::OK => medic_ok(json!({})),
        r => r,
    }
}

/// CloudWatch's timestamps (`2019-10-02T17:04:40.985+0000`) with the offset's colon restored.
fn cloudwatch_time(s: &str) -> Option<i64> {
    let fixed = match s.len().checked_sub(5).map(|i| s.split_at(i)) {
        Some((head, tail))
            if (tail.starts_with('+') || tail.starts_with('-'))
                && tail[1..].bytes().all(|b| b.is_ascii_digit()) =>
        {
            format!("{head}{}:{}", &tail[..3], &tail[3..])
        }
        _ => s.to_string(),
    };
    medic_model::parse_rfc3339(&fixed)
}

/// Converts one EventBridge "CloudWatch Alarm State Change" event: `ALARM` fires (until an
/// `OK` or `INSUFFICIENT_DATA` event resolves it).
pub fn cloudwatch_alert(ev: &Value, now: i64) -> Result<Alert, String> {
    let s = |v: &Value| v.as_str().map(str::to_string);
    let detail_type = ev.get("detail-type").and_then(Value::as_str).unwrap_or("");
    if detail_type != "CloudWatch Alarm State Change" {
        return Err(format!(
            "detail-type {detail_type:?} is not \"CloudWatch Alarm State Change\""
        ));
    }
    let d = ev.get("detail").ok_or("missing detail")?;
    let name = d
        .get("alarmName")
        .and_then(s)
        .ok_or("missing detail.alarmName")?;
    let state = d
        .pointer("/state/value")
        .and_then(s)
        .ok_or("missing detail.state.value")?;
    let at = d
        .pointer("/state/timestamp")
        .and_then(Value::as_str)
        .and_then(cloudwatch_time)
        .or_else(|| {
            ev.get("time")
                .and_then(Value::as_str)
                .and_then(medic_model::parse_rfc3339)
        })
        .unwrap_or(now);
    let mut labels = vec![
        ("alertname".to_string(), name),
        ("source".to_string(), "cloudwatch".to_string()),
    ];
    for (k, v) in [("region", "region"), ("account", "account")] {
        if let Some(x) = ev.get(v).and_then(s) {
            labels.push((k.to_string(), x));
        }
    }
    let mut annotations = Annotations::new();
    if let Some(r) = d.pointer("/state/reason").and_then(s) {
        annotations.insert("summary".into(), r);
    }
    if let Some(r) = d.pointer("/configuration/description").and_then(s) {
        if !r.is_empty() {
            annotations.insert("description".into(), r);
        }
    }
    if let Some(arn) = ev.pointer("/resources/0").and_then(s) {
        annotations.insert("alarm_arn".into(), arn);
    }
    let prev = d
        .pointer("/previousState/timestamp")
        .and_then(Value::as_str)
        .and_then(cloudwatch_time);
    let (starts_at, ends_at) = match state.as_str() {
        "ALARM" => (at, 0),
        "OK" | "INSUFFICIENT_DATA" => (prev.unwrap_or(at).min(at), at),
        other => return Err(format!("unknown alarm state {other:?}")),
    };
    annotations.insert("cloudwatch_state".into(), state);
    Ok(Alert {
        labels: Labels::from_pairs(labels.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
        annotations,
        starts_at,
        ends_at,
        generator_url: String::new(),
        updated_at: now,
        timeout: false,
        value: None,
    })
}

/// `POST /api/v1/medic/alerts/cloudwatch`: CloudWatch alarm state changes as EventBridge
/// delivers them (one event, or a list).
pub async fn post_cloudwatch(State(st): State<Arc<AppState>>, body: Body) -> Response {
    let bytes = match read_body(body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let v: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => return medic_err(StatusCode::BAD_REQUEST, format!("invalid JSON: {e}")),
    };
    let events = match v {
        Value::Array(a) => a,
        one => vec![one],
    };
    let now = st.alerts.now();
    let mut alerts = Vec::new();
    for (i, e) in events.iter().enumerate() {
        match cloudwatch_alert(e, now) {
            Ok(a) => alerts.push(a),
            Err(m) => return medic_err(StatusCode::BAD_REQUEST, format!("event {i}: {m}")),
        }
    }
    let c = Converted {
        alerts,
        refused: Vec::new(),
    };
    match store(st.alerts.clone(), c).await {
        r if r.status() == StatusCode::OK => medic_ok(json!({})),
        r => r,
    }
}

/// `GET /api/v1/medic/alerts/groups`: groups with their key, short id and acknowledgement.
pub async fn medic_groups(State(st): State<Arc<AppState>>, RawQuery(q): RawQuery) -> Response {
    let p = params(&q);
    let (matchers, receiver) = match filter_matchers(&p).and_then(|m| Ok((m, receiver_regex(&p)?)))
    {
        Ok(x) => x,
        Err(e) => return e.medic(),
    };
    let groups: Vec<Value> = st
        .alerts
        .groups(&matchers, receiver.as_ref())
        .into_iter()
        .map(|g| {
            json!({
                "id": group_id(&g.key),
                "groupKey": g.key,
                "receiver": g.receiver,
                "labels": labels_json(&g.labels),
                "alerts": g.alerts.iter().map(alert_json).collect::<Vec<_>>(),
                "ack": g.ack.map(|a| json!({
                    "author": a.author,
                    "comment": a.comment,
                    "at": rfc3339_nano(a.at),
                    "expiresAt": rfc3339_nano(a.expires_at),
                })),
            })
        })
        .collect();
    medic_ok(Value::Array(groups))
}

/// Finds a group by key or short id.
fn resolve_group(st: &AppState, group: &str) -> Result<String, BadRequest> {
    let groups = st.alerts.groups(&[], None);
    let hits: Vec<&str> = groups
        .iter()
        .filter(|g| g.key == group || group_id(&g.key).starts_with(group))
        .map(|g| g.key.as_str())
        .collect();
    match hits.as_slice() {
        [one] => Ok(one.to_string()),
        [] => Err(BadRequest(
            StatusCode::NOT_FOUND,
            format!("no alert group {group:?} (see medic alerts groups)"),
        )),
        _ => Err(BadRequest(
            StatusCode::BAD_REQUEST,
            format!(
                "{group:?} matches {} groups; give more of the id",
                hits.len()
            ),
        )),
    }
}

/// `POST /api/v1/medic/alerts/ack`: `{"group": key or id, "author", "comment", "duration"}`.
pub async fn post_ack(State(st): State<Arc<AppState>>, body: Body) -> Response {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct AckReq {
        group: String,
        author: String,
        #[serde(default)]
        comment: String,
        duration: Option<String>,
    }
    let bytes = match read_body(body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let r: AckReq = match serde_json::from_slice(&bytes) {
        Ok(r) => r,
        Err(e) => {
            return medic_err(
                StatusCode::BAD_REQUEST,
                format!("invalid acknowledgement: {e}"),
            )
        }
    };
    let duration = match &r.duration {
        None => st.config.alerting.default_ack_duration.as_millis(),
        Some(d) => match medic_model::parse_duration(d) {
            Ok(d) => d.as_millis() as i64,
            Err(e) => return medic_err(StatusCode::BAD_REQUEST, format!("duration: {e}")),
        },
    };
    let key = match resolve_group(&st, &r.group) {
        Ok(k) => k,
        Err(e) => return e.medic(),
    };
    let am = st.alerts.clone();
    let k = key.clone();
    match tokio::task::spawn_blocking(move || am.ack(&k, &r.author, &r.comment, duration)).await {
        Ok(Ok(a)) => medic_ok(json!({
            "id": group_id(&key),
            "groupKey": key,
            "author": a.author,
            "comment": a.comment,
            "expiresAt": rfc3339_nano(a.expires_at),
            "alerts": a.firing.len(),
        })),
        Ok(Err(medic_alert::Error::NotFound(m))) => medic_err(StatusCode::NOT_FOUND, m),
        Ok(Err(medic_alert::Error::Invalid(m))) => medic_err(StatusCode::BAD_REQUEST, m),
        Ok(Err(e)) => medic_err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => medic_err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// `DELETE /api/v1/medic/alerts/ack?group=…`.
pub async fn delete_ack(State(st): State<Arc<AppState>>, RawQuery(q): RawQuery) -> Response {
    let p = params(&q);
    let Some((_, group)) = p.iter().find(|(k, _)| k == "group") else {
        return medic_err(StatusCode::BAD_REQUEST, "missing group parameter");
    };
    let key = match resolve_group(&st, group) {
        Ok(k) => k,
        Err(e) => return e.medic(),
    };
    match st.alerts.unack(&key) {
        Ok(()) => medic_ok(json!({"groupKey": key})),
        Err(medic_alert::Error::NotFound(m)) => medic_err(StatusCode::NOT_FOUND, m),
        Err(e) => medic_err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// `GET /api/v1/medic/alerts/history`: `fingerprint`, `group` (key or id), `filter`
/// (matchers, repeatable), `kind` (repeatable), `since`/`until` (RFC 3339 or Unix seconds),
/// `limit` (default 1000). Newest first.
pub async fn get_history(State(st): State<Arc<AppState>>, RawQuery(q): RawQuery) -> Response {
    let p = params(&q);
    let mut hq = HistoryQuery::default();
    for (k, v) in &p {
        let bad = |m: String| medic_err(StatusCode::BAD_REQUEST, format!("{k}: {m}"));
        match k.as_str() {
            "fingerprint" => match Fingerprint::parse(v) {
                Some(f) => hq.fingerprint = Some(f),
                None => return bad(format!("{v:?} is not a fingerprint")),
            },
            "group" => match resolve_group(&st, v) {
                Ok(key) => hq.group_key = Some(key),
                // A group that no longer exists can still have history under its full key.
                Err(_) => hq.group_key = Some(v.clone()),
            },
            "filter" => match medic_alert::matchers::parse_matchers(v) {
                Ok(m) => hq.matchers.extend(m),
                Err(e) => return bad(e),
            },
            "kind" => match EventKind::parse(v) {
                Some(kind) => hq.kinds.push(kind),
                None => return bad(format!("unknown kind {v:?}")),
            },
            "since" | "until" => match medic_model::parse_api_time(v) {
                Some(t) if k == "since" => hq.since = Some(t),
                Some(t) => hq.until = Some(t),
                None => return bad(format!("{v:?} is not a time")),
            },
            "limit" => match v.parse::<usize>() {
                Ok(n) => hq.limit = n.min(100_000),
                Err(_) => return bad(format!("{v:?} is not a number")),
            },
            _ => return medic_err(StatusCode::BAD_REQUEST, format!("unknown parameter {k:?}")),
        }
    }
    let am = st.alerts.clone();
    match tokio::task::spawn_blocking(move || am.history(&hq)).await {
        Ok(Ok(events)) => medic_ok(Value::Array(
            events
                .iter()
                .map(|e| {
                    json!({
                        "at": rfc3339_nano(e.at),
                        "kind": e.kind.as_str(),
                        "fingerprint": e.fingerprint.map(|f| f.to_string()),
                        "labels": labels_json(&e.labels),
                        "groupKey": e.group_key,
                        "receiver": e.receiver,
                        "detail": e.detail,
                        "author": e.author,
                    })
                })
                .collect(),
        )),
        Ok(Err(e)) => medic_err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => medic_err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloudwatch_events_become_alerts() {
        // The example event from the CloudWatch documentation.
        let ev: Value = serde_json::from_str(r#"{
          "version": "0", "id": "c4c1c1c9-6542-e61b-6ef0-8c4d36933a92",
          "detail-type": "CloudWatch Alarm State Change", "source": "aws.cloudwatch",
          "account": "123456789012", "time": "2019-10-02T17:04:40Z", "region": "us-east-1",
          "resources": ["arn:aws:cloudwatch:us-east-1:123456789012:alarm:ServerCpuTooHigh"],
          "detail": {
            "alarmName": "ServerCpuTooHigh",
            "configuration": {"description": "Goes into alarm when server CPU utilization is too high!"},
            "previousState": {"reason": "...", "timestamp": "2019-10-02T17:04:40.985+0000", "value": "OK"},
            "state": {"reason": "Threshold Crossed: 1 out of the last 1 datapoints [0.0666851903306472 (01/10/19 13:46:00)] was greater than the threshold (0.0).", "timestamp": "2019-10-02T17:04:40.989+0000", "value": "ALARM"}
          }
        }"#).unwrap();
        let a = cloudwatch_alert(&ev, 0).unwrap();
        assert_eq!(a.labels.get("alertname"), Some("ServerCpuTooHigh"));
        assert_eq!(a.labels.get("region"), Some("us-east-1"));
        assert_eq!(
            a.starts_at,
            medic_model::parse_rfc3339("2019-10-02T17:04:40.989Z").unwrap()
        );
        assert_eq!(a.ends_at, 0);
        assert!(a.annotations["summary"].starts_with("Threshold Crossed"));
        let mut ok = ev.clone();
        ok["detail"]["state"]["value"] = json!("OK");
        let r = cloudwatch_alert(&ok, 0).unwrap();
        assert_eq!(r.ends_at, a.starts_at);
        let mut bad = ev;
        bad["detail-type"] = json!("EC2 Instance State-change Notification");
        assert!(cloudwatch_alert(&bad, 0)
            .unwrap_err()
            .contains("detail-type"));
    }

    #[test]
    fn posted_alerts_get_alertmanager_defaults() {
        let p: Vec<PostableAlert> = serde_json::from_str(
            r#"[{"labels": {"alertname": "a"}}, {"labels": {"alertname": "b"}, "endsAt": "2020-01-01T00:00:00Z"}, {"labels": {"alertname": "c"}, "startsAt": "0001-01-01T00:00:00Z"}]"#,
        )
        .unwrap();
        let now = medic_model::parse_rfc3339("2024-01-01T00:00:00Z").unwrap();
        let a = to_alerts(p, now, 300_000).alerts;
        assert_eq!(
            (a[0].starts_at, a[0].ends_at, a[0].timeout),
            (now, now + 300_000, true)
        );
        let past = medic_model::parse_rfc3339("2020-01-01T00:00:00Z").unwrap();
        assert_eq!(
            (a[1].starts_at, a[1].ends_at, a[1].timeout),
            (past, past, false)
        );
        assert_eq!(a[2].starts_at, now);
        // An end without a start: the start is the end, also for an end in the future.
        let p: Vec<PostableAlert> = serde_json::from_str(
            r#"[{"labels": {"alertname": "d"}, "endsAt": "2030-01-01T00:00:00Z"}]"#,
        )
        .unwrap();
        let a = to_alerts(p, now, 300_000).alerts;
        let future = medic_model::parse_rfc3339("2030-01-01T00:00:00Z").unwrap();
        assert_eq!((a[0].starts_at, a[0].ends_at), (future, future));
        let bad: Vec<PostableAlert> = serde_json::from_str(
            r#"[{"labels": {"a": "b"}, "startsAt": "yesterday"}, {"labels": {"a": "c"}}]"#,
        )
        .unwrap();
        let c = to_alerts(bad, now, 1);
        assert_eq!(c.alerts.len(), 1, "the valid alert is kept");
        assert!(c.refused[0].starts_with("alert 0: ") && c.refused[0].contains("startsAt"));
    }
}
