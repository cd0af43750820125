//! medic's own alert endpoints under `/api/v1/medic/alerts/`: alert sources (Alertmanager
//! webhook payloads, CloudWatch alarm events via EventBridge), groups with short ids,
//! acknowledgements and history.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use serde::Deserialize;
use serde_json::{json, Value};

use medic_alert::state::{EventKind, HistoryQuery};
use medic_alert::types::rfc3339_millis as rfc3339_nano;
use medic_alert::{Alert, Annotations, Fingerprint};
use medic_model::Labels;

use crate::auth::{Identity, Permission};

use super::alerts::{alert_json, labels_json, store, to_alerts, Converted, PostableAlert};
use super::error::{medic_err, medic_ok, HttpError};
use super::params::{filter_matchers, receiver_regex};
use super::params::{params, read_body};
use super::AppState;

/// The short id of a group: the first 12 hex digits of its key's SHA-256.
pub fn group_id(key: &str) -> String {
    medic_alert::notify::group_key_hash(key)[..12].to_string()
}

/// `POST /api/v1/medic/alerts/webhook`: alerts in Alertmanager's webhook payload (version 4),
/// as another Alertmanager or a tool that speaks its webhook format sends them.
pub async fn post_webhook(
    State(st): State<Arc<AppState>>,
    who: Option<Extension<Identity>>,
    body: Body,
) -> Response {
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
    match store(
        st.alerts.clone(),
        to_alerts(p.alerts, now, timeout),
        who.as_deref(),
    )
    .await
    {
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
        source: Default::default(),
    })
}

/// `POST /api/v1/medic/alerts/cloudwatch`: CloudWatch alarm state changes as EventBridge
/// delivers them (one event, or a list).
pub async fn post_cloudwatch(
    State(st): State<Arc<AppState>>,
    who: Option<Extension<Identity>>,
    body: Body,
) -> Response {
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
    match store(st.alerts.clone(), c, who.as_deref()).await {
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
        Err(e) => return e.medic_response(),
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

/// Finds a group by key or short id; for an identity with a scope, only a group whose every
/// alert the scope covers (403 otherwise).
fn resolve_group(st: &AppState, group: &str, who: Option<&Identity>) -> Result<String, HttpError> {
    let groups = st.alerts.groups(&[], None);
    let hits: Vec<&medic_alert::manager::GroupView> = groups
        .iter()
        .filter(|g| g.key == group || group_id(&g.key).starts_with(group))
        .collect();
    match hits.as_slice() {
        [one] => {
            if let Some(w) = who {
                if !one
                    .alerts
                    .iter()
                    .all(|a| w.may(Permission::Ack, &a.alert.labels))
                {
                    return Err(HttpError::medic(
                        StatusCode::FORBIDDEN,
                        format!(
                            "{} may acknowledge only groups whose alerts match {}",
                            w.name, w.scope
                        ),
                    ));
                }
            }
            Ok(one.key.clone())
        }
        [] => Err(HttpError::medic(
            StatusCode::NOT_FOUND,
            format!("no alert group {group:?} (see medic alerts groups)"),
        )),
        _ => Err(HttpError::medic(
            StatusCode::BAD_REQUEST,
            format!(
                "{group:?} matches {} groups; give more of the id",
                hits.len()
            ),
        )),
    }
}

/// `POST /api/v1/medic/alerts/ack`: `{"group": key or id, "author", "comment", "duration"}`.
pub async fn post_ack(
    State(st): State<Arc<AppState>>,
    who: Option<Extension<Identity>>,
    body: Body,
) -> Response {
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
    let key = match resolve_group(&st, &r.group, who.as_deref()) {
        Ok(k) => k,
        Err(e) => return e.medic_response(),
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
pub async fn delete_ack(
    State(st): State<Arc<AppState>>,
    who: Option<Extension<Identity>>,
    RawQuery(q): RawQuery,
) -> Response {
    let p = params(&q);
    let Some((_, group)) = p.iter().find(|(k, _)| k == "group") else {
        return medic_err(StatusCode::BAD_REQUEST, "missing group parameter");
    };
    let key = match resolve_group(&st, group, who.as_deref()) {
        Ok(k) => k,
        Err(e) => return e.medic_response(),
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
            "group" => match resolve_group(&st, v, None) {
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
}
