//! The heal engine's HTTP API under `/api/v1/medic/heal/`: playbooks, executions, manual
//! triggers, approvals, pauses, trust and dry runs.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use medic_heal::journal::{ExecutionQuery, Status};
use serde::Deserialize;
use serde_json::json;

use super::error::{heal_err, medic_err, medic_ok};
use super::params::{actor, json_body, params};
use super::AppState;

/// `GET /api/v1/medic/heal/playbooks`
pub async fn get_playbooks(State(st): State<Arc<AppState>>) -> Response {
    medic_ok(json!(st.heal.playbooks()))
}

/// `GET /api/v1/medic/heal/executions?playbook=&target=&status=&since=&until=&limit=`
pub async fn get_executions(State(st): State<Arc<AppState>>, RawQuery(q): RawQuery) -> Response {
    let mut query = ExecutionQuery {
        limit: 100,
        ..Default::default()
    };
    for (k, v) in params(&q) {
        match k.as_str() {
            "playbook" => query.playbook = Some(v),
            "target" => query.target = Some(v),
            "status" => match Status::parse(&v) {
                Some(s) => query.status = Some(s),
                None => {
                    return medic_err(
                        StatusCode::BAD_REQUEST,
                        format!("status: unknown status {v:?}"),
                    )
                }
            },
            "since" | "until" => match medic_model::parse_api_time(&v) {
                Some(t) => {
                    if k == "since" {
                        query.since = Some(t)
                    } else {
                        query.until = Some(t)
                    }
                }
                None => {
                    return medic_err(StatusCode::BAD_REQUEST, format!("{k}: {v:?} is not a time"))
                }
            },
            "limit" => match v.parse() {
                Ok(n) => query.limit = n,
                Err(_) => {
                    return medic_err(
                        StatusCode::BAD_REQUEST,
                        format!("limit: {v:?} is not a number"),
                    )
                }
            },
            other => {
                return medic_err(
                    StatusCode::BAD_REQUEST,
                    format!("unknown parameter {other:?}"),
                )
            }
        }
    }
    let heal = st.heal.clone();
    match tokio::task::spawn_blocking(move || heal.executions(&query)).await {
        Ok(Ok(v)) => medic_ok(json!(v)),
        Ok(Err(e)) => heal_err(e),
        Err(e) => medic_err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// `GET /api/v1/medic/heal/executions/{id}`
pub async fn get_execution(State(st): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    match st.heal.execution(&id) {
        Ok(Some(e)) => medic_ok(json!(e)),
        Ok(None) => medic_err(StatusCode::NOT_FOUND, format!("no execution {id}")),
        Err(e) => heal_err(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TriggerReq {
    playbook: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    by: Option<String>,
}

/// `POST /api/v1/medic/heal/trigger` `{"playbook", "labels", "by"}`: the manual trigger.
pub async fn post_trigger(
    State(st): State<Arc<AppState>>,
    who: Option<axum::Extension<crate::auth::Identity>>,
    body: Body,
) -> Response {
    let r: TriggerReq = match json_body(body, "trigger").await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    if let Some(w) = who.as_deref() {
        let labels =
            medic_model::Labels::from_pairs(r.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        if !w.may(crate::auth::Permission::HealTrigger, &labels) {
            return medic_err(
                StatusCode::FORBIDDEN,
                format!(
                    "{} may trigger repairs only for targets matching {}",
                    w.name, w.scope
                ),
            );
        }
    }
    let by = actor(&st, who.as_deref(), r.by.as_deref().unwrap_or("api"));
    match st.heal.trigger(&r.playbook, r.labels, &by).await {
        Ok(e) => medic_ok(json!(e)),
        Err(e) => heal_err(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionReq {
    #[serde(default)]
    by: String,
    #[serde(default)]
    comment: String,
}

async fn decide(
    st: Arc<AppState>,
    who: Option<crate::auth::Identity>,
    id: String,
    body: Body,
    approved: bool,
) -> Response {
    let r: DecisionReq = match json_body(body, "decision").await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let by = actor(&st, who.as_ref(), &r.by);
    if by.trim().is_empty() {
        return medic_err(StatusCode::BAD_REQUEST, "by: who decides is required");
    }
    match st.heal.decide(&id, approved, &by, &r.comment) {
        Ok(()) => medic_ok(json!({"id": id, "approved": approved, "by": by})),
        Err(e) => heal_err(e),
    }
}

/// `POST /api/v1/medic/heal/executions/{id}/approve` `{"by", "comment"}`
pub async fn post_approve(
    State(st): State<Arc<AppState>>,
    who: Option<axum::Extension<crate::auth::Identity>>,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    decide(st, who.map(|w| w.0), id, body, true).await
}

/// `POST /api/v1/medic/heal/executions/{id}/reject` `{"by", "comment"}`
pub async fn post_reject(
    State(st): State<Arc<AppState>>,
    who: Option<axum::Extension<crate::auth::Identity>>,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    decide(st, who.map(|w| w.0), id, body, false).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PauseReq {
    scope: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    by: Option<String>,
    /// How long (Prometheus duration); until resumed when absent.
    #[serde(default)]
    duration: Option<String>,
}

/// `GET /api/v1/medic/heal/pauses`
pub async fn get_pauses(State(st): State<Arc<AppState>>) -> Response {
    medic_ok(json!(st.heal.pauses()))
}

/// `POST /api/v1/medic/heal/pause` `{"scope": "all" | "playbook:NAME" | "target:T", …}`
pub async fn post_pause(State(st): State<Arc<AppState>>, body: Body) -> Response {
    let r: PauseReq = match json_body(body, "pause").await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let until = match &r.duration {
        None => None,
        Some(d) => match medic_model::parse_duration(d) {
            Ok(d) => Some(st.alerts.now() + d.as_millis() as i64),
            Err(e) => return medic_err(StatusCode::BAD_REQUEST, format!("duration: {e}")),
        },
    };
    let by = r.by.unwrap_or_else(|| "api".into());
    match st.heal.pause(&r.scope, &r.reason, &by, until) {
        Ok(p) => medic_ok(json!(p)),
        Err(e) => heal_err(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResumeReq {
    scope: String,
}

/// `POST /api/v1/medic/heal/resume` `{"scope"}`
pub async fn post_resume(State(st): State<Arc<AppState>>, body: Body) -> Response {
    let r: ResumeReq = match json_body(body, "resume").await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    match st.heal.resume_scope(&r.scope) {
        Ok(p) => medic_ok(json!(p)),
        Err(e) => heal_err(e),
    }
}

/// `GET /api/v1/medic/heal/trust`
pub async fn get_trust(State(st): State<Arc<AppState>>) -> Response {
    medic_ok(json!(st.heal.trust()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DryRunReq {
    playbook: String,
    alert: medic_heal::plan::AlertFile,
}

/// `POST /api/v1/medic/heal/dry-run` `{"playbook", "alert": {labels, annotations, evidence}}`:
/// the plan for a loaded playbook, as `medic heal dry-run` prints it.
pub async fn post_dry_run(State(st): State<Arc<AppState>>, body: Body) -> Response {
    let r: DryRunReq = match json_body(body, "dry run").await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let Some(pb) = st.heal.playbook(&r.playbook) else {
        return medic_err(
            StatusCode::NOT_FOUND,
            format!("no playbook named {:?}", r.playbook),
        );
    };
    let (plan, acts) = medic_heal::plan::dry_run(&pb, &r.alert);
    medic_ok(json!({"plan": plan, "would_act": acts}))
}
