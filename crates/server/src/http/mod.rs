//! The HTTP layer: the router, the shared [`AppState`], one error type ([`HttpError`]) that
//! renders each API's own shape, and one file per API:
//!
//! - `prom`, `query`, `status`, `rules`: Prometheus's HTTP API in its exact shapes;
//! - `alerts`, `silences`: Alertmanager's API v2, so Prometheus and `amtool` work unmodified;
//! - `sources`: medic's alert sources, acknowledgements and history;
//! - `heal`, `anomaly`: medic's own APIs; `audit`: the audit log, and the middleware that
//!   records every state-changing request;
//! - `params`: request parameters; `error`: the error type; `state`: what handlers share.
//!
//! Handlers depend on this module and the crates they serve; nothing here depends on
//! `crate::app`, which builds the state and serves the router.

mod alerts;
mod anomaly;
mod audit;
mod error;
mod heal;
mod params;
mod prom;
mod query;
mod rules;
mod silences;
mod sources;
mod state;
mod status;

pub use audit::verdict_json;
pub use error::{success, ApiError, Dialect, HttpError};
pub use params::Params;
pub use state::AppState;

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

/// Builds the router.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/-/healthy", get(healthy))
        .route("/-/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/api/v1/write", post(prom::write))
        .route("/api/v1/targets", get(prom::targets))
        .route("/api/v1/series", get(prom::series).post(prom::series))
        .route("/api/v1/labels", get(prom::labels).post(prom::labels))
        .route("/api/v1/label/{name}/values", get(prom::label_values))
        .route("/api/v1/export", get(prom::export).post(prom::export))
        .route("/api/v1/query", get(query::query).post(query::query))
        .route(
            "/api/v1/query_range",
            get(query::query_range).post(query::query_range),
        )
        .route(
            "/api/v1/format_query",
            get(query::format_query).post(query::format_query),
        )
        .route("/api/v1/status/buildinfo", get(query::buildinfo))
        .route("/api/v1/status/tsdb", get(prom::tsdb_status))
        .route("/api/v1/status/config", get(status::config))
        .route("/api/v1/status/flags", get(status::flags))
        .route("/api/v1/status/runtimeinfo", get(status::runtimeinfo))
        .route("/api/v1/metadata", get(status::metadata))
        .route("/api/v1/targets/metadata", get(status::targets_metadata))
        .route(
            "/api/v1/query_exemplars",
            get(status::query_exemplars).post(status::query_exemplars),
        )
        .route("/federate", get(status::federate))
        .route("/api/v1/rules", get(rules::rules))
        .route("/api/v1/alerts", get(rules::alerts))
        .route("/-/reload", post(rules::reload).put(rules::reload))
        .route("/api/v1/admin/tsdb/flush", post(prom::flush))
        .route(
            "/api/v2/alerts",
            get(alerts::get_alerts).post(alerts::post_alerts),
        )
        .route("/api/v2/alerts/groups", get(alerts::get_groups))
        .route(
            "/api/v2/silences",
            get(silences::get_silences).post(silences::post_silences),
        )
        .route(
            "/api/v2/silence/{id}",
            get(silences::get_silence).delete(silences::delete_silence),
        )
        .route("/api/v2/receivers", get(alerts::get_receivers))
        .route("/api/v2/status", get(alerts::get_status))
        .route("/api/v1/medic/alerts/webhook", post(sources::post_webhook))
        .route(
            "/api/v1/medic/alerts/cloudwatch",
            post(sources::post_cloudwatch),
        )
        .route("/api/v1/medic/alerts/groups", get(sources::medic_groups))
        .route(
            "/api/v1/medic/alerts/ack",
            post(sources::post_ack).delete(sources::delete_ack),
        )
        .route("/api/v1/medic/alerts/history", get(sources::get_history))
        .route("/api/v1/medic/heal/playbooks", get(heal::get_playbooks))
        .route("/api/v1/medic/heal/executions", get(heal::get_executions))
        .route(
            "/api/v1/medic/heal/executions/{id}",
            get(heal::get_execution),
        )
        .route(
            "/api/v1/medic/heal/executions/{id}/approve",
            post(heal::post_approve),
        )
        .route(
            "/api/v1/medic/heal/executions/{id}/reject",
            post(heal::post_reject),
        )
        .route("/api/v1/medic/heal/trigger", post(heal::post_trigger))
        .route("/api/v1/medic/heal/pauses", get(heal::get_pauses))
        .route("/api/v1/medic/heal/pause", post(heal::post_pause))
        .route("/api/v1/medic/heal/resume", post(heal::post_resume))
        .route("/api/v1/medic/anomalies", get(anomaly::get_anomalies))
        .route(
            "/api/v1/medic/anomalies/baseline",
            get(anomaly::get_baseline),
        )
        .route("/api/v1/medic/anomalies/report", get(anomaly::get_report))
        .route("/api/v1/medic/heal/trust", get(heal::get_trust))
        .route("/api/v1/medic/heal/dry-run", post(heal::post_dry_run))
        .route("/api/v1/medic/audit", get(audit::get_audit))
        .route("/api/v1/medic/audit/verify", get(audit::get_verify))
        .fallback(not_found)
        .layer(axum::middleware::from_fn(require_json))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            audit::record_requests,
        ))
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
