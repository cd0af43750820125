//! `/api/v1/medic/incidents`: list, show, open by hand, and people's actions (ack, assign,
//! comment, mitigate, resolve, close). Reading needs `read`; changing needs `ack`, limited by
//! the identity's scope to incidents whose labels it covers.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use medic_alert::incident::{Action, Incident, IncidentError, Level, Status};
use serde::Deserialize;
use serde_json::json;

use super::error::{medic_err, medic_ok};
use super::params::{actor, json_body, params};
use super::AppState;
use crate::auth::{Identity, Permission};
use crate::incidents::{IncidentsError, ListFilter};

/// An incident with its figures (time to acknowledge, mitigate, resolve; time in each state).
fn with_figures(inc: &Incident, now: i64) -> serde_json::Value {
    let mut v = json!(inc);
    v["figures"] = json!(inc.figures(now));
    v
}

fn incident_err(e: IncidentsError) -> Response {
    match e {
        IncidentsError::Incident(e @ IncidentError::Unknown(_)) => {
            medic_err(StatusCode::NOT_FOUND, e.to_string())
        }
        IncidentsError::Incident(e @ IncidentError::Transition { .. }) => {
            medic_err(StatusCode::CONFLICT, e.to_string())
        }
        IncidentsError::Incident(e @ IncidentError::Invalid(_)) => {
            medic_err(StatusCode::BAD_REQUEST, e.to_string())
        }
        IncidentsError::Store(e) => medic_err(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

fn parse_id(id: &str) -> Result<u64, String> {
    id.parse()
        .map_err(|_| format!("incident id: {id:?} is not a number"))
}

/// `GET /api/v1/medic/incidents?status=&level=&since=&limit=`: newest first.
pub async fn list(State(st): State<Arc<AppState>>, RawQuery(q): RawQuery) -> Response {
    let mut f = ListFilter::default();
    for (k, v) in params(&q) {
        let bad = |what: &str| medic_err(StatusCode::BAD_REQUEST, format!("{k}: {v:?} {what}"));
        match k.as_str() {
            "status" => {
                match serde_json::from_value::<Status>(json!(v)) {
                    Ok(s) => f.status = Some(s),
                    Err(_) => return bad(
                        "is not a status (triggered, acknowledged, mitigated, resolved, closed)",
                    ),
                }
            }
            "level" => match serde_json::from_value::<Level>(json!(v.to_ascii_uppercase())) {
                Ok(l) => f.level = Some(l),
                Err(_) => return bad("is not a level (P0 to P3)"),
            },
            "since" => match medic_model::parse_api_time(&v) {
                Some(t) => f.since = Some(t),
                None => return bad("is not an RFC 3339 time or Unix seconds"),
            },
            "limit" => match v.parse() {
                Ok(n) => f.limit = n,
                Err(_) => return bad("is not a number"),
            },
            _ => return medic_err(StatusCode::BAD_REQUEST, format!("unknown parameter {k:?}")),
        }
    }
    let now = st.incidents.now_ms();
    let out: Vec<_> = st
        .incidents
        .list(&f)
        .iter()
        .map(|i| {
            let mut v = with_figures(i, now);
            // The list is a summary: the timeline is for `GET …/{id}`.
            v["timeline_entries"] = json!(i.timeline.len());
            if let Some(o) = v.as_object_mut() {
                o.remove("timeline");
            }
            v
        })
        .collect();
    medic_ok(json!(out))
}

/// `GET /api/v1/medic/incidents/{id}`
pub async fn get_one(State(st): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    let id = match parse_id(&id) {
        Ok(id) => id,
        Err(e) => return medic_err(StatusCode::BAD_REQUEST, e),
    };
    match st.incidents.get(id) {
        Some(i) => medic_ok(with_figures(&i, st.incidents.now_ms())),
        None => medic_err(StatusCode::NOT_FOUND, format!("no incident {id}")),
    }
}

/// The name a request claims, `api` when it names none.
fn claimed(by: Option<&str>) -> &str {
    by.filter(|c| !c.trim().is_empty()).unwrap_or("api")
}

/// Whether `who` may change an incident with these labels (its scope covers them); the
/// refusal's message if not.
fn may_change(who: Option<&Identity>, key: &[(String, String)]) -> Result<(), String> {
    let Some(w) = who else { return Ok(()) };
    let labels = medic_model::Labels::from_pairs(key.iter().cloned());
    if w.may(Permission::Ack, &labels) {
        return Ok(());
    }
    Err(format!(
        "{} may change only incidents whose labels match {}",
        w.name, w.scope
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OpenReq {
    title: String,
    level: Level,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    by: Option<String>,
}

/// `POST /api/v1/medic/incidents` `{"title", "level", "labels", "by"}`: opens one by hand.
pub async fn open(
    State(st): State<Arc<AppState>>,
    who: Option<axum::Extension<Identity>>,
    body: Body,
) -> Response {
    let r: OpenReq = match json_body(body, "incident").await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let key: Vec<(String, String)> = r.labels.into_iter().collect();
    if let Err(e) = may_change(who.as_deref(), &key) {
        return medic_err(StatusCode::FORBIDDEN, e);
    }
    let by = actor(&st, who.as_deref(), claimed(r.by.as_deref()));
    match st.incidents.open_by_hand(&by, &r.title, r.level, key).await {
        Ok(i) => medic_ok(with_figures(&i, st.incidents.now_ms())),
        Err(e) => incident_err(e),
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ActReq {
    #[serde(default)]
    by: Option<String>,
    /// `assign`: who.
    #[serde(default)]
    assignee: Option<String>,
    /// `comment`: the text; other actions: an optional comment added with them.
    #[serde(default)]
    text: Option<String>,
}

/// `POST /api/v1/medic/incidents/{id}/{action}` with action `ack`, `assign` (`{"assignee"}`),
/// `comment` (`{"text"}`), `mitigate`, `resolve` or `close`.
pub async fn act(
    State(st): State<Arc<AppState>>,
    who: Option<axum::Extension<Identity>>,
    Path((id, action)): Path<(String, String)>,
    body: Body,
) -> Response {
    let id = match parse_id(&id) {
        Ok(id) => id,
        Err(e) => return medic_err(StatusCode::BAD_REQUEST, e),
    };
    let r: ActReq = match json_body(body, "incident action").await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let action = match action.as_str() {
        "ack" | "acknowledge" => Action::Acknowledge,
        "assign" => match r.assignee.as_deref().map(str::trim) {
            Some(a) if !a.is_empty() => Action::Assign(a.to_string()),
            _ => return medic_err(StatusCode::BAD_REQUEST, "assignee: who is required"),
        },
        "comment" => Action::Comment(r.text.clone().unwrap_or_default()),
        "mitigate" => Action::Mitigate,
        "resolve" => Action::Resolve,
        "close" => Action::Close,
        other => {
            return medic_err(
                StatusCode::NOT_FOUND,
                format!("unknown incident action {other:?} (ack, assign, comment, mitigate, resolve, close)"),
            )
        }
    };
    let Some(inc) = st.incidents.get(id) else {
        return medic_err(StatusCode::NOT_FOUND, format!("no incident {id}"));
    };
    if let Err(e) = may_change(who.as_deref(), &inc.key) {
        return medic_err(StatusCode::FORBIDDEN, e);
    }
    let by = actor(&st, who.as_deref(), claimed(r.by.as_deref()));
    let with_comment = !matches!(action, Action::Comment(_));
    let mut result = st.incidents.act(id, &by, action).await;
    if let (Ok(_), true, Some(text)) = (&result, with_comment, r.text) {
        if !text.trim().is_empty() {
            result = st.incidents.act(id, &by, Action::Comment(text)).await;
        }
    }
    match result {
        Ok(i) => medic_ok(with_figures(&i, st.incidents.now_ms())),
        Err(e) => incident_err(e),
    }
}

/// `GET /api/v1/medic/incidents/{id}/report?format=markdown|html&regenerate=true`: the
/// post-incident report, stored with the incident and made again when the incident changed
/// since (or when asked).
pub async fn report(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let id = match parse_id(&id) {
        Ok(id) => id,
        Err(e) => return medic_err(StatusCode::BAD_REQUEST, e),
    };
    let mut html = false;
    let mut regenerate = false;
    for (k, v) in params(&q) {
        match (k.as_str(), v.as_str()) {
            ("format", "markdown" | "md") => html = false,
            ("format", "html") => html = true,
            ("regenerate", "true" | "1") => regenerate = true,
            ("regenerate", "false" | "0") => regenerate = false,
            _ => {
                return medic_err(
                    StatusCode::BAD_REQUEST,
                    format!("{k}={v:?}: expected format=markdown|html, regenerate=true|false"),
                )
            }
        }
    }
    let st2 = st.clone();
    let made = tokio::task::spawn_blocking(move || {
        st2.incidents.report(id, regenerate, |inc| {
            crate::incidents::report::gather(&st2, inc)
        })
    })
    .await;
    let r = match made {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return incident_err(e),
        Err(e) => return medic_err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let (body, ctype) = if html {
        (r.html, "text/html; charset=utf-8")
    } else {
        (r.markdown, "text/markdown; charset=utf-8")
    };
    Response::builder()
        .header(axum::http::header::CONTENT_TYPE, ctype)
        .body(Body::from(body))
        .unwrap_or_else(|e| medic_err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}
