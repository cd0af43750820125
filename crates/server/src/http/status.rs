//! The rest of Prometheus's read API that Grafana and other clients call: metric metadata
//! (`/api/v1/metadata`, `/api/v1/targets/metadata`) from the HELP/TYPE/UNIT lines scrapes
//! saw, `/api/v1/query_exemplars` (medic keeps no exemplars: always empty), the status pages
//! (`/api/v1/status/config` with secrets masked, `/flags`, `/runtimeinfo`) and `/federate`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::params::blocking;
use super::prom::select_union;
use super::AppState;
use super::{success, ApiError, Params};

fn limit(p: &Params, key: &str) -> Result<Option<usize>, ApiError> {
    match p.get(key) {
        None | Some("") => Ok(None),
        Some(s) => match s.parse::<i64>() {
            Ok(n) if n <= 0 => Ok(None),
            Ok(n) => Ok(Some(n as usize)),
            Err(_) => Err(ApiError::bad_data(format!(
                "invalid parameter \"{key}\": {s:?} is not a number"
            ))),
        },
    }
}

/// `GET /api/v1/metadata`: each metric family with the distinct metadata targets give it.
pub async fn metadata(State(st): State<Arc<AppState>>, p: Params) -> Result<Response, ApiError> {
    let max = limit(&p, "limit")?;
    let per_metric = limit(&p, "limit_per_metric")?;
    let only = p.get("metric").filter(|m| !m.is_empty());
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (_, families) in st.scrape.iter().flat_map(|s| s.metadata()) {
        for (name, meta) in families.iter() {
            if only.is_some_and(|m| m != name) {
                continue;
            }
            let v = json!(meta);
            let list = out.entry(name.clone()).or_default();
            if !list.contains(&v) && per_metric.is_none_or(|n| list.len() < n) {
                list.push(v);
            }
        }
    }
    if let Some(n) = max {
        out = out.into_iter().take(n).collect();
    }
    Ok(success(json!(out)))
}

/// `GET /api/v1/targets/metadata`: metadata per target, filtered by `match_target` (a
/// selector over target labels) and `metric`.
pub async fn targets_metadata(
    State(st): State<Arc<AppState>>,
    p: Params,
) -> Result<Response, ApiError> {
    let matchers = match p.get("match_target").filter(|m| !m.is_empty()) {
        Some(s) => medic_model::parse_selector(s)
            .map_err(|e| ApiError::bad_data(format!("invalid parameter \"match_target\": {e}")))?,
        None => Vec::new(),
    };
    let only = p.get("metric").filter(|m| !m.is_empty());
    let max = limit(&p, "limit")?;
    let mut out = Vec::new();
    for (target, families) in st.scrape.iter().flat_map(|s| s.metadata()) {
        if !matchers
            .iter()
            .all(|m| m.matches(target.get(&m.name).unwrap_or("")))
        {
            continue;
        }
        for (name, meta) in families.iter() {
            if only.is_some_and(|m| m != name) {
                continue;
            }
            if max.is_some_and(|n| out.len() >= n) {
                break;
            }
            out.push(json!({
                "target": target,
                "metric": name,
                "type": meta.kind,
                "help": meta.help,
                "unit": meta.unit,
            }));
        }
    }
    Ok(success(Value::Array(out)))
}

/// `GET|POST /api/v1/query_exemplars`: medic stores no exemplars, so the answer is always an
/// empty list (the query is still checked, as Prometheus checks it).
pub async fn query_exemplars(p: Params) -> Result<Response, ApiError> {
    if let Some(q) = p.get("query") {
        medic_promql::Engine::parse(q)
            .map_err(|e| ApiError::bad_data(format!("invalid parameter \"query\": {e}")))?;
    }
    Ok(success(json!([])))
}

/// `GET /api/v1/status/config`: the configuration file as loaded, secrets masked.
pub async fn config(State(st): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let yaml = match st.reloader.config_file() {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                ApiError::internal(format!("cannot read the configuration file: {e}"))
            })?;
            medic_alert::config::redact(&text)
        }
        None => "# medic runs on its embedded defaults (no --config)\n".to_string(),
    };
    Ok(success(json!({ "yaml": yaml })))
}

/// `GET /api/v1/status/flags`: the settings that are flags in Prometheus, under its names.
pub async fn flags(State(st): State<Arc<AppState>>) -> Response {
    let c = &st.config;
    let path = |p: Option<&std::path::Path>| p.map(|p| p.display().to_string()).unwrap_or_default();
    success(json!({
        "config.file": path(st.reloader.config_file()),
        "storage.tsdb.path": c.storage.path.display().to_string(),
        "storage.tsdb.retention.time": c.storage.retention.to_string(),
        "web.listen-address": c.server.listen,
        "web.external-url": c.server.external_url.clone().unwrap_or_default(),
        "query.max-samples": c.query.max_samples.to_string(),
        "query.timeout": c.query.timeout.to_string(),
        "query.lookback-delta": c.query.lookback_delta.to_string(),
    }))
}

/// `GET /api/v1/status/runtimeinfo`: Prometheus's fields, with what medic has for them.
pub async fn runtimeinfo(State(st): State<Arc<AppState>>) -> Response {
    let cwd = std::env::current_dir()
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    success(json!({
        "startTime": medic_model::format_rfc3339(st.alerts.started_at()),
        "CWD": cwd,
        "reloadConfigSuccess": true,
        "lastConfigTime": medic_model::format_rfc3339(st.alerts.started_at()),
        "corruptionCount": 0,
        "goroutineCount": 0,
        "GOMAXPROCS": threads,
        "GOMEMLIMIT": 0,
        "GOGC": "",
        "GODEBUG": "",
        "storageRetention": st.config.storage.retention.to_string(),
    }))
}

/// `GET /federate?match[]=…`: the newest sample of every matching series (within the lookback),
/// in the text format, with the external labels added — what a Prometheus federating from medic
/// scrapes.
pub async fn federate(State(st): State<Arc<AppState>>, p: Params) -> Result<Response, ApiError> {
    let sets = p.required_matchers()?;
    let now = medic_model::Clock::now_ms(&medic_model::SystemClock);
    let lookback = st.engine.options().lookback_ms;
    let db = st.db.clone();
    let series = blocking(move || select_union(db.as_ref(), &sets, now - lookback, now)).await?;
    let external = &st.config.global.external_labels;
    let mut by_name: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for s in series {
        let Some(last) = s.samples.last() else {
            continue;
        };
        if medic_model::is_stale_nan(last.v) {
            continue;
        }
        let mut b = s.labels.to_builder();
        for (k, v) in external {
            if s.labels.get(k).is_none() {
                b.set(k.as_str(), v.as_str());
            }
        }
        let labels = b.build();
        let name = labels.get("__name__").unwrap_or("").to_string();
        let pairs: Vec<String> = labels
            .iter()
            .filter(|l| &*l.name != "__name__")
            .map(|l| format!("{}={}", l.name, quote(&l.value)))
            .collect();
        by_name.entry(name.clone()).or_default().push(format!(
            "{name}{{{}}} {} {}",
            pairs.join(","),
            medic_promql::format_value(last.v),
            last.t
        ));
    }
    let mut body = String::new();
    for (name, lines) in by_name {
        body.push_str(&format!("# TYPE {name} untyped\n"));
        for l in lines {
            body.push_str(&l);
            body.push('\n');
        }
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response())
}

/// A label value quoted as the text format writes it (`\\`, `"` and newline escaped).
fn quote(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 2);
    out.push('"');
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `GET /api/v1/medic/whoami`: the identity the request's credentials name, its role and every
/// permission it holds (what the console offers); `signed_in: false` without valid
/// credentials (a 200, so a page asking does not log an error). Without `auth:` everyone is
/// the anonymous admin.
pub(super) async fn whoami(
    State(st): State<Arc<AppState>>,
    who: Option<axum::Extension<crate::auth::Identity>>,
) -> Response {
    use crate::auth::Permission;
    let Some(axum::Extension(id)) = who else {
        return super::error::medic_ok(json!({"signed_in": false, "permissions": []}));
    };
    let permissions: Vec<&str> = Permission::ALL
        .into_iter()
        .filter(|p| id.allows(*p))
        .map(Permission::as_str)
        .collect();
    super::error::medic_ok(json!({
        "signed_in": true,
        "name": id.name,
        "role": id.role,
        "authenticated": st.auth.enabled(),
        "permissions": permissions,
        // Whether the log store is on (the console's Logs page).
        "logs": st.logs.is_some(),
    }))
}
