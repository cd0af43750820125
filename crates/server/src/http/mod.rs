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
mod backup;
mod error;
mod guards;
mod heal;
mod incidents;
mod loki;
mod params;
mod prom;
mod query;
mod reports;
mod rules;
mod silences;
mod slo;
mod sources;
mod state;
mod status;
mod tokens;

pub use alerts::decode_posted_alerts;
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

use crate::auth::{Denied, Permission};
use guards::{allowed_host, limit_body, over_client_rate, require_json, same_origin};

/// Every route, with the permission each of its methods needs: a route cannot be registered
/// without saying who may call it.
fn routes() -> Routes {
    let r = prometheus_status_routes(prometheus_routes(Routes::default()));
    console_routes(backup_routes(log_routes(incident_routes(
        medic_view_routes(medic_routes(alertmanager_routes(r))),
    ))))
}

/// The web console's page and files (public: they hold no data) and who is signed in.
fn console_routes(r: Routes) -> Routes {
    use crate::console;
    let public = &[(Method::GET, Permission::Public)];
    r.route("/", public, get(console::to_console))
        .route("/console", public, get(console::to_console))
        .route("/console/", public, get(console::index))
        .route("/console/assets/{file}", public, get(console::asset))
        .route("/api/v1/medic/whoami", public, get(status::whoami))
}

/// Backups: snapshots for `medic backup create` (admin), the schedule's state.
fn backup_routes(r: Routes) -> Routes {
    r.route(
        "/api/v1/medic/backup/snapshots",
        &[(Method::POST, Permission::Admin)],
        post(backup::create_snapshot),
    )
    .route(
        "/api/v1/medic/backup/snapshots/{id}",
        &[(Method::DELETE, Permission::Admin)],
        axum::routing::delete(backup::delete_snapshot),
    )
    .route(
        "/api/v1/medic/backup/snapshots/{id}/file",
        &[(Method::GET, Permission::Admin)],
        get(backup::read_file),
    )
    .route(
        "/api/v1/medic/backup/status",
        &[(Method::GET, Permission::Read)],
        get(backup::status),
    )
}

/// Loki's push and query API, and OTLP/HTTP logs.
fn log_routes(r: Routes) -> Routes {
    let read = &[
        (Method::GET, Permission::Read),
        (Method::POST, Permission::Read),
    ][..];
    r.route(
        "/loki/api/v1/push",
        &[(Method::POST, Permission::Ingest)],
        post(loki::push),
    )
    .route(
        "/otlp/v1/logs",
        &[(Method::POST, Permission::Ingest)],
        post(loki::otlp),
    )
    .route(
        "/v1/logs",
        &[(Method::POST, Permission::Ingest)],
        post(loki::otlp),
    )
    .route(
        "/loki/api/v1/query",
        read,
        get(loki::query).post(loki::query),
    )
    .route(
        "/loki/api/v1/query_range",
        read,
        get(loki::query_range).post(loki::query_range),
    )
    .route(
        "/loki/api/v1/labels",
        read,
        get(loki::labels).post(loki::labels),
    )
    .route(
        "/loki/api/v1/label/{name}/values",
        read,
        get(loki::label_values).post(loki::label_values),
    )
    .route(
        "/loki/api/v1/series",
        read,
        get(loki::series).post(loki::series),
    )
    .route(
        "/loki/api/v1/tail",
        &[(Method::GET, Permission::Read)],
        get(loki::tail),
    )
    .route(
        "/api/v1/medic/logs/flush",
        &[(Method::POST, Permission::Admin)],
        post(loki::flush),
    )
}

/// Prometheus's data endpoints, and medic's own health and metrics.
fn prometheus_routes(r: Routes) -> Routes {
    r.route(
        "/-/healthy",
        &[(Method::GET, Permission::Public)],
        get(healthy),
    )
    .route("/-/ready", &[(Method::GET, Permission::Public)], get(ready))
    .route(
        "/metrics",
        &[(Method::GET, Permission::Public)],
        get(metrics),
    )
    .route(
        "/api/v1/write",
        &[(Method::POST, Permission::Ingest)],
        post(prom::write),
    )
    .route(
        "/api/v1/targets",
        &[(Method::GET, Permission::Read)],
        get(prom::targets),
    )
    .route(
        "/api/v1/series",
        &[
            (Method::GET, Permission::Read),
            (Method::POST, Permission::Read),
        ],
        get(prom::series).post(prom::series),
    )
    .route(
        "/api/v1/labels",
        &[
            (Method::GET, Permission::Read),
            (Method::POST, Permission::Read),
        ],
        get(prom::labels).post(prom::labels),
    )
    .route(
        "/api/v1/label/{name}/values",
        &[(Method::GET, Permission::Read)],
        get(prom::label_values),
    )
    .route(
        "/api/v1/export",
        &[
            (Method::GET, Permission::Read),
            (Method::POST, Permission::Read),
        ],
        get(prom::export).post(prom::export),
    )
    .route(
        "/api/v1/query",
        &[
            (Method::GET, Permission::Read),
            (Method::POST, Permission::Read),
        ],
        get(query::query).post(query::query),
    )
    .route(
        "/api/v1/query_range",
        &[
            (Method::GET, Permission::Read),
            (Method::POST, Permission::Read),
        ],
        get(query::query_range).post(query::query_range),
    )
    .route(
        "/api/v1/format_query",
        &[
            (Method::GET, Permission::Read),
            (Method::POST, Permission::Read),
        ],
        get(query::format_query).post(query::format_query),
    )
}

/// Prometheus's status, rules, reload and admin endpoints.
fn prometheus_status_routes(r: Routes) -> Routes {
    r.route(
        "/api/v1/status/buildinfo",
        &[(Method::GET, Permission::Read)],
        get(query::buildinfo),
    )
    .route(
        "/api/v1/status/tsdb",
        &[(Method::GET, Permission::Read)],
        get(prom::tsdb_status),
    )
    .route(
        "/api/v1/status/config",
        &[(Method::GET, Permission::Read)],
        get(status::config),
    )
    .route(
        "/api/v1/status/flags",
        &[(Method::GET, Permission::Read)],
        get(status::flags),
    )
    .route(
        "/api/v1/status/runtimeinfo",
        &[(Method::GET, Permission::Read)],
        get(status::runtimeinfo),
    )
    .route(
        "/api/v1/metadata",
        &[(Method::GET, Permission::Read)],
        get(status::metadata),
    )
    .route(
        "/api/v1/targets/metadata",
        &[(Method::GET, Permission::Read)],
        get(status::targets_metadata),
    )
    .route(
        "/api/v1/query_exemplars",
        &[
            (Method::GET, Permission::Read),
            (Method::POST, Permission::Read),
        ],
        get(status::query_exemplars).post(status::query_exemplars),
    )
    .route(
        "/federate",
        &[(Method::GET, Permission::Read)],
        get(status::federate),
    )
    .route(
        "/api/v1/rules",
        &[(Method::GET, Permission::Read)],
        get(rules::rules),
    )
    .route(
        "/api/v1/alerts",
        &[(Method::GET, Permission::Read)],
        get(rules::alerts),
    )
    .route(
        "/-/reload",
        &[
            (Method::POST, Permission::Admin),
            (Method::PUT, Permission::Admin),
        ],
        post(rules::reload).put(rules::reload),
    )
    .route(
        "/api/v1/admin/tsdb/flush",
        &[(Method::POST, Permission::Admin)],
        post(prom::flush),
    )
}

/// Alertmanager's API v2.
fn alertmanager_routes(r: Routes) -> Routes {
    r.route(
        "/api/v2/alerts",
        &[
            (Method::GET, Permission::Read),
            (Method::POST, Permission::Ingest),
        ],
        get(alerts::get_alerts).post(alerts::post_alerts),
    )
    .route(
        "/api/v2/alerts/groups",
        &[(Method::GET, Permission::Read)],
        get(alerts::get_groups),
    )
    .route(
        "/api/v2/silences",
        &[
            (Method::GET, Permission::Read),
            (Method::POST, Permission::Silence),
        ],
        get(silences::get_silences).post(silences::post_silences),
    )
    .route(
        "/api/v2/silence/{id}",
        &[
            (Method::GET, Permission::Read),
            (Method::DELETE, Permission::Silence),
        ],
        get(silences::get_silence).delete(silences::delete_silence),
    )
    .route(
        "/api/v2/receivers",
        &[(Method::GET, Permission::Read)],
        get(alerts::get_receivers),
    )
    .route(
        "/api/v2/status",
        &[(Method::GET, Permission::Read)],
        get(alerts::get_status),
    )
}

/// medic's read-only views over what its rules record: SLOs and anomalies.
/// Incidents: read with `read`, change with `ack` (within the identity's scope). Reports:
/// read and generate with `read`; delivering one needs `admin` (checked in the handler).
fn incident_routes(r: Routes) -> Routes {
    r.route(
        "/api/v1/medic/reports",
        &[(Method::GET, Permission::Read)],
        get(reports::list),
    )
    .route(
        "/api/v1/medic/reports/generate",
        &[(Method::POST, Permission::Read)],
        post(reports::generate),
    )
    .route(
        "/api/v1/medic/reports/{id}",
        &[(Method::GET, Permission::Read)],
        get(reports::get_one),
    )
    .route(
        "/api/v1/medic/incidents",
        &[
            (Method::GET, Permission::Read),
            (Method::POST, Permission::Ack),
        ],
        get(incidents::list).post(incidents::open),
    )
    .route(
        "/api/v1/medic/incidents/{id}",
        &[(Method::GET, Permission::Read)],
        get(incidents::get_one),
    )
    .route(
        "/api/v1/medic/incidents/{id}/report",
        &[(Method::GET, Permission::Read)],
        get(incidents::report),
    )
    .route(
        "/api/v1/medic/incidents/{id}/{action}",
        &[(Method::POST, Permission::Ack)],
        post(incidents::act),
    )
}

fn medic_view_routes(r: Routes) -> Routes {
    r.route(
        "/api/v1/medic/slos",
        &[(Method::GET, Permission::Read)],
        get(slo::list),
    )
    .route(
        "/api/v1/medic/slos/{id}",
        &[(Method::GET, Permission::Read)],
        get(slo::get_one),
    )
    .route(
        "/api/v1/medic/anomalies",
        &[(Method::GET, Permission::Read)],
        get(anomaly::get_anomalies),
    )
    .route(
        "/api/v1/medic/anomalies/baseline",
        &[(Method::GET, Permission::Read)],
        get(anomaly::get_baseline),
    )
    .route(
        "/api/v1/medic/anomalies/report",
        &[(Method::GET, Permission::Read)],
        get(anomaly::get_report),
    )
}

/// medic's own API.
fn medic_routes(r: Routes) -> Routes {
    r.route(
        "/api/v1/medic/alerts/webhook",
        &[(Method::POST, Permission::Ingest)],
        post(sources::post_webhook),
    )
    .route(
        "/api/v1/medic/alerts/cloudwatch",
        &[(Method::POST, Permission::Ingest)],
        post(sources::post_cloudwatch),
    )
    .route(
        "/api/v1/medic/alerts/groups",
        &[(Method::GET, Permission::Read)],
        get(sources::medic_groups),
    )
    .route(
        "/api/v1/medic/alerts/ack",
        &[
            (Method::POST, Permission::Ack),
            (Method::DELETE, Permission::Ack),
        ],
        post(sources::post_ack).delete(sources::delete_ack),
    )
    .route(
        "/api/v1/medic/alerts/history",
        &[(Method::GET, Permission::Read)],
        get(sources::get_history),
    )
    .route(
        "/api/v1/medic/heal/playbooks",
        &[(Method::GET, Permission::Read)],
        get(heal::get_playbooks),
    )
    .route(
        "/api/v1/medic/heal/executions",
        &[(Method::GET, Permission::Read)],
        get(heal::get_executions),
    )
    .route(
        "/api/v1/medic/heal/executions/{id}",
        &[(Method::GET, Permission::Read)],
        get(heal::get_execution),
    )
    .route(
        "/api/v1/medic/heal/executions/{id}/approve",
        &[(Method::POST, Permission::HealDecide)],
        post(heal::post_approve),
    )
    .route(
        "/api/v1/medic/heal/executions/{id}/reject",
        &[(Method::POST, Permission::HealDecide)],
        post(heal::post_reject),
    )
    .route(
        "/api/v1/medic/heal/trigger",
        &[(Method::POST, Permission::HealTrigger)],
        post(heal::post_trigger),
    )
    .route(
        "/api/v1/medic/heal/pauses",
        &[(Method::GET, Permission::Read)],
        get(heal::get_pauses),
    )
    .route(
        "/api/v1/medic/heal/pause",
        &[(Method::POST, Permission::HealPause)],
        post(heal::post_pause),
    )
    .route(
        "/api/v1/medic/heal/resume",
        &[(Method::POST, Permission::HealPause)],
        post(heal::post_resume),
    )
    .route(
        "/api/v1/medic/heal/trust",
        &[(Method::GET, Permission::Read)],
        get(heal::get_trust),
    )
    .route(
        "/api/v1/medic/heal/dry-run",
        &[(Method::POST, Permission::HealTrigger)],
        post(heal::post_dry_run),
    )
    .route(
        "/api/v1/medic/audit",
        &[(Method::GET, Permission::Audit)],
        get(audit::get_audit),
    )
    .route(
        "/api/v1/medic/audit/verify",
        &[(Method::GET, Permission::Audit)],
        get(audit::get_verify),
    )
    .route(
        "/api/v1/medic/tokens",
        &[
            (Method::GET, Permission::Admin),
            (Method::POST, Permission::Admin),
        ],
        get(tokens::get_tokens).post(tokens::post_token),
    )
    .route(
        "/api/v1/medic/tokens/{id}",
        &[(Method::DELETE, Permission::Admin)],
        axum::routing::delete(tokens::delete_token),
    )
}

/// The router, with the permission each route and method needs.
#[derive(Default)]
struct Routes {
    router: Router<Arc<AppState>>,
    declared: Vec<(&'static str, Method, Permission)>,
}

impl Routes {
    fn route(
        mut self,
        path: &'static str,
        perms: &[(Method, Permission)],
        methods: axum::routing::MethodRouter<Arc<AppState>>,
    ) -> Self {
        self.declared
            .extend(perms.iter().map(|(m, p)| (path, m.clone(), *p)));
        self.router = self.router.route(path, methods);
        self
    }
}

/// Every registered route and method with the permission it needs (for the permission matrix
/// test and `docs/security.md`).
pub fn declared_routes() -> Vec<(&'static str, Method, Permission)> {
    routes().declared
}

/// Builds the router.
pub fn router(state: Arc<AppState>) -> Router {
    let Routes { router, declared } = routes();
    let perms: Arc<Permissions> = Arc::new(
        declared
            .into_iter()
            .map(|(path, m, p)| ((path.to_string(), m), p))
            .collect(),
    );
    router
        .fallback(not_found)
        .layer(axum::middleware::from_fn(require_json))
        .layer(axum::middleware::from_fn(same_origin))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            allowed_host,
        ))
        .layer(axum::middleware::from_fn_with_state(
            (state.clone(), perms.clone()),
            authorize,
        ))
        .layer(axum::middleware::from_fn_with_state(
            (state.clone(), perms),
            audit::record_requests,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            limit_body,
        ))
        .layer(axum::middleware::from_fn_with_state(state.clone(), track))
        .layer(axum::extract::DefaultBodyLimit::max(
            state.config.server.max_request_body.0 as usize,
        ))
        .with_state(state)
}

/// Permission by (route, method).
pub(crate) type Permissions = std::collections::HashMap<(String, Method), Permission>;

/// The permission a request's route and method declare (`None`: the method is not declared;
/// unknown paths are public, for their 404).
fn permission(perms: &Permissions, req: &Request) -> Option<Permission> {
    let method = match req.method() {
        &Method::HEAD => Method::GET,
        m => m.clone(),
    };
    match req.extensions().get::<MatchedPath>() {
        None => Some(Permission::Public),
        Some(p) => perms.get(&(p.as_str().to_string(), method)).copied(),
    }
}

/// Lets a request through if its identity's role has the permission its route and method
/// declare: 401 (with a Basic challenge) without valid credentials, 403 without the
/// permission, 405 for a method the route does not declare. The identity goes on the request
/// (for handlers) and on the response (for the audit log).
async fn authorize(
    State((st, perms)): State<(Arc<AppState>, Arc<Permissions>)>,
    mut req: Request,
    next: Next,
) -> Response {
    let perm = permission(&perms, &req);
    let path = req.uri().path().to_string();
    let dialect = if path.starts_with("/api/v2/") {
        Dialect::Alertmanager
    } else if path.starts_with("/api/v1/medic/") {
        Dialect::Medic
    } else {
        Dialect::Prometheus
    };
    let Some(perm) = perm else {
        return HttpError::with_status(
            StatusCode::METHOD_NOT_ALLOWED,
            "bad_data",
            format!("{} is not allowed on {path}", req.method()),
        )
        .in_dialect(dialect)
        .into_response();
    };
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    match st.auth.authorize(header.as_deref(), perm) {
        Ok(id) => {
            if let Some(e) = over_client_rate(&st, &req, id.as_ref(), perm) {
                let mut r = e.in_dialect(dialect).into_response();
                r.headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
                return r;
            }
            if let Some(id) = &id {
                req.extensions_mut().insert(id.clone());
            }
            let mut resp = next.run(req).await;
            if let Some(id) = id {
                resp.extensions_mut().insert(id);
            }
            resp
        }
        Err(Denied::Unauthenticated) => {
            // The console signs in with its own form: no browser prompt for its requests.
            let console = req.headers().contains_key("x-medic-console");
            let mut resp = HttpError::with_status(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "authentication required: basic auth or a bearer token",
            )
            .in_dialect(dialect)
            .into_response();
            if !console {
                resp.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static("Basic realm=\"medic\""),
                );
            }
            resp
        }
        Err(Denied::Forbidden { who, needs }) => {
            let mut resp = HttpError::with_status(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "{} ({}) may not do this: it needs the {} permission",
                    who.name,
                    who.role,
                    needs.as_str()
                ),
            )
            .in_dialect(dialect)
            .into_response();
            resp.extensions_mut().insert(who);
            resp
        }
    }
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
