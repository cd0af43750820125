//! The heal engine in `medic run`: PromQL answers for it, the alert manager as its source of
//! alerts and its way to people, and its HTTP API under `/api/v1/medic/heal/`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use medic_alert::{Alert, AlertManager, Fingerprint};
use medic_heal::engine::{BoxFuture, Hooks, Notification};
use medic_heal::journal::{ExecutionQuery, Status};
use medic_model::{InstantQuery, Labels, QuerySeries, Queryable};
use serde::Deserialize;
use serde_json::json;

use crate::alert_api::{medic_err, medic_ok, params, read_body};
use crate::app::AppState;

/// PromQL over medic's store, for the heal engine.
pub struct PromQuery {
    pub engine: medic_promql::Engine,
    pub store: Arc<dyn Queryable>,
}

impl InstantQuery for PromQuery {
    fn instant(&self, expr: &str, t: i64) -> Result<Vec<QuerySeries>, String> {
        use medic_promql::Value;
        match self
            .engine
            .instant(&*self.store, expr, t)
            .map_err(|e| e.to_string())?
        {
            Value::Scalar(v) => Ok(vec![QuerySeries {
                labels: Labels::empty(),
                samples: vec![(t, v)],
            }]),
            Value::Vector(v) => Ok(v
                .into_iter()
                .map(|s| QuerySeries {
                    labels: s.labels,
                    samples: vec![(s.t, s.v)],
                })
                .collect()),
            Value::Matrix(m) => Ok(m
                .into_iter()
                .map(|s| QuerySeries {
                    labels: s.labels,
                    samples: s.samples.iter().map(|p| (p.t, p.v)).collect(),
                })
                .collect()),
            Value::String(_) => Err(format!("{expr}: a string is not a usable result")),
        }
    }

    fn range(
        &self,
        expr: &str,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<Vec<QuerySeries>, String> {
        let r = self
            .engine
            .range(&*self.store, expr, start, end, step)
            .map_err(|e| e.to_string())?;
        Ok(r.into_iter()
            .map(|s| QuerySeries {
                labels: s.labels,
                samples: s.samples.iter().map(|p| (p.t, p.v)).collect(),
            })
            .collect())
    }
}

/// The alert manager as the heal engine sees it.
pub struct AlertHooks(pub Arc<AlertManager>);

fn fingerprint(labels: &BTreeMap<String, String>) -> Fingerprint {
    Fingerprint::of(&Labels::from_pairs(
        labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    ))
}

impl Hooks for AlertHooks {
    fn alert_resolved(&self, labels: &BTreeMap<String, String>) -> Option<bool> {
        let a = self.0.get(fingerprint(labels))?;
        Some(a.resolved_at(self.0.now()))
    }

    fn repairing(&self, labels: &BTreeMap<String, String>, note: Option<String>) {
        self.0.set_repair(fingerprint(labels), note);
    }

    fn notify(&self, n: Notification) -> BoxFuture<Result<(), String>> {
        let am = self.0.clone();
        Box::pin(async move {
            let now = am.now();
            let labels = Labels::from_pairs([
                ("alertname", "MedicHeal"),
                ("medic_event", n.event.as_str()),
                ("playbook", n.playbook.as_str()),
                ("target", n.target.as_str()),
            ]);
            let mut annotations = BTreeMap::new();
            annotations.insert("summary".to_string(), n.title.clone());
            annotations.insert("description".to_string(), n.text.clone());
            annotations.insert("execution".to_string(), n.execution.clone());
            let alert = Alert {
                labels,
                annotations,
                starts_at: now,
                // A success closes the matter: it goes out as resolved.
                ends_at: if n.event == "success" { now } else { 0 },
                generator_url: String::new(),
                updated_at: now,
                timeout: false,
                value: None,
            };
            let mut errors = Vec::new();
            for r in &n.receivers {
                if let Err(e) = am.send_direct(r, vec![alert.clone()]).await {
                    errors.push(e);
                }
            }
            if errors.is_empty() {
                Ok(())
            } else {
                Err(errors.join("; "))
            }
        })
    }
}

/// Connects the alert manager's alerts to the engine.
pub fn observe(am: &AlertManager, heal: Arc<medic_heal::Engine>) {
    am.set_observer(Arc::new(move |alerts: &[Arc<Alert>]| {
        let inputs: Vec<medic_heal::AlertInput> = alerts
            .iter()
            .map(|a| medic_heal::AlertInput {
                fingerprint: a.fingerprint().to_string(),
                labels: a
                    .labels
                    .iter()
                    .map(|l| (l.name.to_string(), l.value.to_string()))
                    .collect(),
                annotations: a.annotations.clone(),
                starts_at: a.starts_at,
                ends_at: a.ends_at,
            })
            .collect();
        heal.on_alerts(&inputs);
    }));
}

fn heal_err(e: medic_heal::Error) -> Response {
    let status = match &e {
        medic_heal::Error::NotFound(_) => StatusCode::NOT_FOUND,
        medic_heal::Error::Invalid(_) | medic_heal::Error::Playbook { .. } => {
            StatusCode::BAD_REQUEST
        }
        medic_heal::Error::State(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    medic_err(status, e.to_string())
}

async fn json_body<T: serde::de::DeserializeOwned>(body: Body, what: &str) -> Result<T, Response> {
    let bytes = read_body(body).await?;
    serde_json::from_slice(&bytes)
        .map_err(|e| medic_err(StatusCode::BAD_REQUEST, format!("invalid {what}: {e}")))
}

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
pub async fn post_trigger(State(st): State<Arc<AppState>>, body: Body) -> Response {
    let r: TriggerReq = match json_body(body, "trigger").await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let by = r.by.unwrap_or_else(|| "api".into());
    match st.heal.trigger(&r.playbook, r.labels, &by).await {
        Ok(e) => medic_ok(json!(e)),
        Err(e) => heal_err(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionReq {
    by: String,
    #[serde(default)]
    comment: String,
}

async fn decide(st: Arc<AppState>, id: String, body: Body, approved: bool) -> Response {
    let r: DecisionReq = match json_body(body, "decision").await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    if r.by.trim().is_empty() {
        return medic_err(StatusCode::BAD_REQUEST, "by: who decides is required");
    }
    match st.heal.decide(&id, approved, &r.by, &r.comment) {
        Ok(()) => medic_ok(json!({"id": id, "approved": approved, "by": r.by})),
        Err(e) => heal_err(e),
    }
}

/// `POST /api/v1/medic/heal/executions/{id}/approve` `{"by", "comment"}`
pub async fn post_approve(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    decide(st, id, body, true).await
}

/// `POST /api/v1/medic/heal/executions/{id}/reject` `{"by", "comment"}`
pub async fn post_reject(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    decide(st, id, body, false).await
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
