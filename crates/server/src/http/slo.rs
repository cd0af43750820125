//! The SLO API under `/api/v1/medic/slos`: every SLO whose Sloth series are being recorded —
//! from a Sloth spec medic loads, or from rules Sloth itself generated — with its objective,
//! error budget, the SLI's error ratio and burn rate over each window, and the budget left in
//! the period. Read from the recorded series at one time (default now), as Sloth's dashboards
//! read them.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use medic_model::{Clock as _, Labels};
use medic_promql::Value as PromValue;
use serde_json::{json, Map, Value};

use super::error::{medic_err, medic_ok};
use super::params::params;
use super::AppState;

/// One SLO as its series show it.
#[derive(Debug, Default)]
struct Slo {
    labels: Labels,
    objective: Option<f64>,
    budget: Option<f64>,
    period_days: Option<f64>,
    current_burn: Option<f64>,
    period_burn: Option<f64>,
    remaining: Option<f64>,
    /// `sloth_window` → error ratio.
    ratios: BTreeMap<String, f64>,
}

fn finite(v: Option<f64>) -> Value {
    v.filter(|x| x.is_finite()).map_or(Value::Null, Value::from)
}

/// Minutes of a Prometheus duration, to order windows from shortest to longest.
fn window_minutes(w: &str) -> u64 {
    medic_model::parse_duration(w).map_or(u64::MAX, |d| d.as_secs() / 60)
}

impl Slo {
    fn to_json(&self) -> Value {
        let get = |k: &str| self.labels.get(k).unwrap_or("").to_string();
        let mut windows: Vec<(&String, &f64)> = self.ratios.iter().collect();
        windows.sort_by_key(|(w, _)| window_minutes(w));
        let mut ratios = Map::new();
        let mut burn = Map::new();
        for (w, r) in windows {
            ratios.insert(w.clone(), finite(Some(*r)));
            let b = self.budget.filter(|b| *b > 0.0).map(|b| r / b);
            burn.insert(w.clone(), finite(b));
        }
        json!({
            "id": get("sloth_id"),
            "service": get("sloth_service"),
            "slo": get("sloth_slo"),
            "objective": finite(self.objective),
            "error_budget": finite(self.budget),
            "period_days": finite(self.period_days),
            "error_ratio": ratios,
            "burn_rate": burn,
            "current_burn_rate": finite(self.current_burn),
            "period_burn_rate": finite(self.period_burn),
            "budget_remaining": finite(self.remaining),
            "labels": self.labels,
        })
    }
}

/// Every SLO with an `sloth_slo_info` series at `t`, by id.
fn slos_at(st: &AppState, t: i64) -> Result<BTreeMap<String, Slo>, String> {
    let query = |q: &str| -> Result<Vec<(Labels, f64)>, String> {
        match st.engine.instant(st.db.as_ref(), q, t) {
            Ok(PromValue::Vector(v)) => Ok(v
                .into_iter()
                .filter(|s| s.h.is_none())
                .map(|s| (s.labels, s.v))
                .collect()),
            Ok(_) => Ok(Vec::new()),
            Err(e) => Err(format!("{q}: {e}")),
        }
    };
    let mut out: BTreeMap<String, Slo> = BTreeMap::new();
    for (labels, _) in query("sloth_slo_info")? {
        let Some(id) = labels.get("sloth_id").map(str::to_string) else {
            continue;
        };
        let labels = labels.without_metric_name();
        out.insert(
            id,
            Slo {
                labels,
                ..Default::default()
            },
        );
    }
    type Field = fn(&mut Slo) -> &mut Option<f64>;
    let fields: [(&str, Field); 6] = [
        ("slo:objective:ratio", |s| &mut s.objective),
        ("slo:error_budget:ratio", |s| &mut s.budget),
        ("slo:time_period:days", |s| &mut s.period_days),
        ("slo:current_burn_rate:ratio", |s| &mut s.current_burn),
        ("slo:period_burn_rate:ratio", |s| &mut s.period_burn),
        ("slo:period_error_budget_remaining:ratio", |s| {
            &mut s.remaining
        }),
    ];
    for (metric, field) in fields {
        for (labels, v) in query(metric)? {
            if let Some(slo) = labels.get("sloth_id").and_then(|id| out.get_mut(id)) {
                *field(slo) = Some(v);
            }
        }
    }
    for (labels, v) in query(r#"{__name__=~"slo:sli_error:ratio_rate.+"}"#)? {
        let (Some(id), Some(w)) = (labels.get("sloth_id"), labels.get("sloth_window")) else {
            continue;
        };
        if let Some(slo) = out.get_mut(id) {
            slo.ratios.insert(w.to_string(), v);
        }
    }
    Ok(out)
}

/// `time` (default now), the only parameter.
fn time_param(q: &Option<String>) -> Result<i64, (StatusCode, String)> {
    let mut t = medic_model::SystemClock.now_ms();
    for (k, v) in params(q) {
        match k.as_str() {
            "time" => {
                t = medic_model::parse_api_time(&v).ok_or_else(|| {
                    (
                        StatusCode::BAD_REQUEST,
                        format!("time: {v:?} is not a time"),
                    )
                })?
            }
            other => {
                return Err((
                    StatusCode::BAD_REQUEST,
                    format!("unknown parameter {other:?} (want time)"),
                ))
            }
        }
    }
    Ok(t)
}

/// The SLOs at the request's `time`.
async fn load(
    st: Arc<AppState>,
    q: &Option<String>,
) -> Result<BTreeMap<String, Slo>, (StatusCode, String)> {
    let t = time_param(q)?;
    tokio::task::spawn_blocking(move || slos_at(&st, t))
        .await
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| (StatusCode::UNPROCESSABLE_ENTITY, e))
}

/// `GET /api/v1/medic/slos?time=`: every SLO, by id.
pub async fn list(State(st): State<Arc<AppState>>, RawQuery(q): RawQuery) -> Response {
    match load(st, &q).await {
        Ok(slos) => medic_ok(Value::Array(slos.values().map(Slo::to_json).collect())),
        Err((code, msg)) => medic_err(code, msg),
    }
}

/// `GET /api/v1/medic/slos/{id}?time=`: one SLO (`<service>-<slo>`); 404 if it has no series.
pub async fn get_one(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    match load(st, &q).await {
        Ok(slos) => match slos.get(&id) {
            Some(s) => medic_ok(s.to_json()),
            None => medic_err(
                StatusCode::NOT_FOUND,
                format!("no SLO {id:?}: no sloth_slo_info series with that sloth_id"),
            ),
        },
        Err((code, msg)) => medic_err(code, msg),
    }
}
