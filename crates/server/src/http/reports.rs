//! `/api/v1/medic/reports`: the configured reports with their next run, stored reports, and
//! reports made on demand. Reading and generating need `read`; delivering to receivers needs
//! `admin` (it sends mail to people).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

use super::error::{medic_err, medic_ok};
use super::params::{json_body, params};
use super::AppState;
use crate::auth::{Identity, Permission};

/// `GET /api/v1/medic/reports?limit=`: definitions and stored reports (newest first).
pub async fn list(State(st): State<Arc<AppState>>, RawQuery(q): RawQuery) -> Response {
    let mut limit = 100;
    for (k, v) in params(&q) {
        match (k.as_str(), v.parse::<usize>()) {
            ("limit", Ok(n)) => limit = n,
            _ => {
                return medic_err(
                    StatusCode::BAD_REQUEST,
                    format!("{k}={v:?}: expected limit=N"),
                )
            }
        }
    }
    let now = jiff::Timestamp::now();
    let next: std::collections::BTreeMap<String, Option<i64>> =
        st.reports.next_runs(now).into_iter().collect();
    let defs: Vec<_> = st
        .reports
        .definitions
        .iter()
        .map(|d| {
            json!({
                "name": d.config.name,
                "schedule": d.config.schedule,
                "timezone": d.config.timezone,
                "period": d.config.period,
                "receivers": d.config.receivers,
                "next_run": next.get(&d.config.name).copied().flatten(),
            })
        })
        .collect();
    match st.reports.list(limit) {
        Ok(stored) => medic_ok(json!({"definitions": defs, "reports": stored})),
        Err(e) => medic_err(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

fn body(format: &str, r: &medic_state::Report) -> Result<(String, &'static str), String> {
    Ok(match format {
        "markdown" | "md" => (r.markdown.clone(), "text/markdown; charset=utf-8"),
        "html" => (r.html.clone(), "text/html; charset=utf-8"),
        "json" => (
            json!({
                "status": "success",
                "data": {
                    "id": r.id,
                    "name": r.name,
                    "period": r.period,
                    "start_ms": r.start_ms,
                    "end_ms": r.end_ms,
                    "generated_at": r.generated_at,
                    "figures": serde_json::from_str::<serde_json::Value>(&r.figures).unwrap_or_default(),
                }
            })
            .to_string(),
            "application/json",
        ),
        other => return Err(format!("format: {other:?}: expected markdown, html or json")),
    })
}

fn respond(format: &str, r: &medic_state::Report) -> Response {
    match body(format, r) {
        Ok((b, ctype)) => Response::builder()
            .header(axum::http::header::CONTENT_TYPE, ctype)
            .body(Body::from(b))
            .unwrap_or_else(|e| medic_err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
        Err(e) => medic_err(StatusCode::BAD_REQUEST, e),
    }
}

/// `GET /api/v1/medic/reports/{id}?format=markdown|html|json`
pub async fn get_one(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return medic_err(
            StatusCode::BAD_REQUEST,
            format!("report id: {id:?} is not a number"),
        );
    };
    let format = params(&q)
        .into_iter()
        .find(|(k, _)| k == "format")
        .map_or("markdown".to_string(), |(_, v)| v);
    match st.reports.get(id) {
        Ok(Some(r)) => respond(&format, &r),
        Ok(None) => medic_err(StatusCode::NOT_FOUND, format!("no report {id}")),
        Err(e) => medic_err(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GenerateReq {
    /// `2026-11`, `2026-11-03`, `2026-W45`, `30d`, `START..END`.
    period: String,
    /// A configured report (its title, series, zone and receivers).
    #[serde(default)]
    name: Option<String>,
    /// The zone of calendar periods when no `name` gives one (default UTC).
    #[serde(default)]
    timezone: Option<String>,
    /// `markdown` (default), `html` or `json` (the figures).
    #[serde(default)]
    format: Option<String>,
    /// Also send it to the configured report's receivers (needs `admin`).
    #[serde(default)]
    deliver: bool,
}

/// `POST /api/v1/medic/reports/generate`: makes, stores and returns a report; the id is in
/// the `Medic-Report-Id` header.
pub async fn generate(
    State(st): State<Arc<AppState>>,
    who: Option<axum::Extension<Identity>>,
    req: Body,
) -> Response {
    let r: GenerateReq = match json_body(req, "report request").await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    if r.deliver {
        if let Some(w) = who.as_deref() {
            if !w.may(Permission::Admin, &medic_model::Labels::empty()) {
                return medic_err(
                    StatusCode::FORBIDDEN,
                    format!("{} may not deliver reports (admin only)", w.name),
                );
            }
        }
        if r.name.is_none() {
            return medic_err(
                StatusCode::BAD_REQUEST,
                "deliver: needs the name of a configured report, whose receivers get it",
            );
        }
    }
    let tz_name = r
        .name
        .as_deref()
        .and_then(|n| st.reports.definition(n))
        .map(|d| d.config.timezone.clone())
        .or(r.timezone.clone())
        .unwrap_or_else(|| "UTC".into());
    let tz = match jiff::tz::TimeZone::get(&tz_name) {
        Ok(tz) => tz,
        Err(e) => {
            return medic_err(
                StatusCode::BAD_REQUEST,
                format!("timezone: {tz_name:?}: {e}"),
            )
        }
    };
    let period = match medic_report::period::Period::parse(&r.period, &tz, jiff::Timestamp::now()) {
        Ok(p) => p,
        Err(e) => return medic_err(StatusCode::BAD_REQUEST, e),
    };
    let format = r.format.clone().unwrap_or_else(|| "markdown".into());
    if !["markdown", "md", "html", "json"].contains(&format.as_str()) {
        return medic_err(
            StatusCode::BAD_REQUEST,
            format!("format: {format:?}: expected markdown, html or json"),
        );
    }
    let st2 = st.clone();
    let name = r.name.clone();
    let made = tokio::task::spawn_blocking(move || {
        st2.reports
            .generate(&st2, name.as_deref(), &period, &tz_name)
    })
    .await;
    let g = match made {
        Ok(Ok(g)) => g,
        Ok(Err(e)) if e.starts_with("no report named") => {
            return medic_err(StatusCode::NOT_FOUND, e)
        }
        Ok(Err(e)) => return medic_err(StatusCode::INTERNAL_SERVER_ERROR, e),
        Err(e) => return medic_err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    if r.deliver {
        let receivers = st
            .reports
            .definition(&g.report.name)
            .map(|d| d.config.receivers.clone())
            .unwrap_or_default();
        let failures = st.reports.deliver(&st.alerts, &receivers, &g).await;
        if !failures.is_empty() {
            return medic_err(
                StatusCode::BAD_GATEWAY,
                format!(
                    "report {} stored, but not delivered: {}",
                    g.report.id,
                    failures.join("; ")
                ),
            );
        }
    }
    let mut resp = respond(&format, &g.report);
    if let Ok(v) = axum::http::HeaderValue::from_str(&g.report.id.to_string()) {
        resp.headers_mut().insert("Medic-Report-Id", v);
    }
    resp
}
