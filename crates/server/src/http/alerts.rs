//! Alertmanager's API v2 for alerts (`/api/v2/alerts`, `/alerts/groups`, `/receivers`,
//! `/status`) in its exact shapes, so Prometheus can send alerts here and `amtool` works
//! unmodified. Silences are in `silences`, medic's own alert endpoints in `sources`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum::Json;
use medic_alert::types::rfc3339_millis as rfc3339_nano;
use medic_alert::{Alert, AlertFilter, AlertManager, AlertSource, AlertView, Annotations};

use crate::auth::{Identity, Permission};
use medic_model::Labels;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::{v2_error, HttpError};
use super::params::{bool_param, filter_matchers, params, read_body, receiver_regex};
use super::AppState;

pub(super) fn labels_json(l: &Labels) -> Value {
    Value::Object(
        l.iter()
            .map(|l| (l.name.to_string(), json!(&*l.value)))
            .collect(),
    )
}

pub(super) fn alert_json(v: &AlertView) -> Value {
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
pub(super) fn parse_time(s: Option<&str>, field: &str) -> Result<i64, String> {
    match s {
        None | Some("") => Ok(0),
        Some(t) if t.starts_with("0001-01-01T00:00:00") => Ok(0),
        Some(t) => medic_model::parse_rfc3339(t)
            .ok_or_else(|| format!("{field}: {t:?} is not an RFC 3339 time")),
    }
}

/// `PostableAlert`.
#[derive(Debug, Deserialize)]
pub(super) struct PostableAlert {
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
pub(super) struct Converted {
    pub(super) alerts: Vec<Alert>,
    pub(super) refused: Vec<String>,
}

/// Turns received alerts into stored ones the way Alertmanager's API does: a missing start is
/// the end if one is given, else now; a missing end is now + `resolve_timeout`. An alert whose
/// times do not parse is refused alone; the others are kept.
pub(super) fn to_alerts(posted: Vec<PostableAlert>, now: i64, resolve_timeout: i64) -> Converted {
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
            source: Default::default(),
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
///
/// Each alert records who sent it and whether that identity may trigger repairs for its labels
/// (a playbook whose `trigger.sources` admits API alerts runs only for those).
pub(super) async fn store(am: Arc<AlertManager>, c: Converted, who: Option<&Identity>) -> Response {
    let Converted {
        mut alerts,
        mut refused,
    } = c;
    for a in &mut alerts {
        a.source = AlertSource::Api {
            identity: who.map_or_else(|| "unknown".to_string(), |w| w.name.clone()),
            may_trigger: who.is_some_and(|w| w.may(Permission::HealTrigger, &a.labels)),
        };
    }
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
        Ok(Err(medic_alert::Error::Limit(m))) => {
            let mut r = v2_error(StatusCode::SERVICE_UNAVAILABLE, m);
            r.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("30"),
            );
            r
        }
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

/// What `POST /api/v2/alerts` makes of a body, without storing it: the alerts accepted and
/// the reasons for those refused (for fuzzing and for tests).
pub fn decode_posted_alerts(body: &[u8], now: i64) -> Result<(Vec<Alert>, Vec<String>), String> {
    let posted: Vec<PostableAlert> =
        serde_json::from_slice(body).map_err(|e| format!("invalid alerts JSON: {e}"))?;
    let c = to_alerts(posted, now, 300_000);
    Ok((c.alerts, c.refused))
}

/// `POST /api/v2/alerts`.
pub async fn post_alerts(
    State(st): State<Arc<AppState>>,
    who: Option<Extension<Identity>>,
    body: Body,
) -> Response {
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
    store(
        st.alerts.clone(),
        to_alerts(posted, now, timeout),
        who.as_deref(),
    )
    .await
}

/// `GET /api/v2/alerts`.
pub async fn get_alerts(State(st): State<Arc<AppState>>, RawQuery(q): RawQuery) -> Response {
    let p = params(&q);
    let f = (|| {
        // `unprocessed` is accepted for compatibility; medic processes alerts as they arrive.
        bool_param(&p, "unprocessed", true)?;
        Ok::<_, HttpError>(AlertFilter {
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
        Ok::<_, HttpError>((
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

#[cfg(test)]
mod tests {
    use super::*;

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
