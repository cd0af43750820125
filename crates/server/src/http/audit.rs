//! The audit trail over HTTP: every state-changing request recorded after it is answered
//! (`record_requests`), and the log read and verified (`GET /api/v1/medic/audit`,
//! `GET /api/v1/medic/audit/verify`).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, MatchedPath, RawQuery, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use medic_model::AuditEntry;
use medic_state::{AuditQuery, Verdict};
use serde_json::{json, Value};

use super::error::{medic_err, medic_ok};
use super::params::params;
use super::{permission, AppState, Permissions};
use crate::auth::Permission;

/// The largest body read to describe a request; the JSON APIs refuse larger ones anyway.
const MAX_AUDITED_BODY: usize = 16 << 20;
/// How much of a request's parameters the log keeps.
const MAX_DETAIL: usize = 4096;

/// Keys whose values never reach the log.
fn is_secret_key(k: &str) -> bool {
    let k = k.to_ascii_lowercase();
    [
        "password",
        "passwd",
        "secret",
        "token",
        "authorization",
        "api_key",
        "apikey",
        "credential",
        "private_key",
    ]
    .iter()
    .any(|s| k.contains(s))
        || k.ends_with("url")
}

/// Replaces the values of secret keys with `<secret>`, at any depth.
pub(crate) fn mask(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if is_secret_key(k) && !x.is_null() {
                    *x = Value::String("<secret>".into());
                } else {
                    mask(x);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(mask),
        _ => {}
    }
}

/// What the log keeps of a request: its query string and JSON body, secrets masked; a batch
/// of alerts as its size and names.
fn describe(route: &str, query: Option<&str>, body: &[u8]) -> String {
    let mut d = serde_json::Map::new();
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        let mut pairs = serde_json::Map::new();
        for (k, v) in form_urlencoded::parse(q.as_bytes()) {
            pairs.insert(k.to_string(), Value::String(v.to_string()));
        }
        d.insert("query".into(), Value::Object(pairs));
    }
    if let Ok(mut v) = serde_json::from_slice::<Value>(body) {
        if route == "/api/v2/alerts" {
            let names: Vec<&str> = v
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a["labels"]["alertname"].as_str())
                .take(10)
                .collect();
            let n = v.as_array().map_or(0, Vec::len);
            v = json!({"alerts": n, "alertnames": names});
        }
        d.insert("body".into(), v);
    } else if !body.is_empty() {
        d.insert("body_bytes".into(), json!(body.len()));
    }
    let mut v = Value::Object(d);
    mask(&mut v);
    let mut s = v.to_string();
    if s.len() > MAX_DETAIL {
        let mut cut = MAX_DETAIL;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

/// Records every state-changing request in the audit log once answered — not remote write
/// (samples are data, not decisions) nor reads sent as POST (queries): who (`anonymous` until identities exist), from
/// which address, what, the parameters and the status, refusals included.
pub(super) async fn record_requests(
    State((st, perms)): State<(Arc<AppState>, Arc<Permissions>)>,
    req: Request,
    next: Next,
) -> Response {
    let method = req.method().clone();
    let changes = matches!(
        method,
        Method::POST | Method::PUT | Method::DELETE | Method::PATCH
    );
    let read = matches!(
        permission(&perms, &req),
        Some(Permission::Read | Permission::Public)
    );
    if !changes || read || req.uri().path() == "/api/v1/write" {
        return next.run(req).await;
    }
    let path = req.uri().path().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| path.clone());
    let source = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "-".to_string(), |c| c.0.to_string());
    let query = req.uri().query().map(str::to_string);
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_AUDITED_BODY).await else {
        let resp = (
            StatusCode::PAYLOAD_TOO_LARGE,
            [(header::CONNECTION, "close")],
            format!("request body larger than {MAX_AUDITED_BODY} bytes"),
        )
            .into_response();
        record(&st, &method, &route, &path, source, "{}".into(), &resp);
        return resp;
    };
    let detail = describe(&route, query.as_deref(), &bytes);
    let resp = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    record(&st, &method, &route, &path, source, detail, &resp);
    resp
}

fn record(
    st: &Arc<AppState>,
    method: &Method,
    route: &str,
    path: &str,
    source: String,
    detail: String,
    resp: &Response,
) {
    let actor = resp
        .extensions()
        .get::<crate::auth::Identity>()
        .map_or_else(|| "unauthenticated".to_string(), |i| i.name.clone());
    let entry = AuditEntry {
        at: medic_model::Clock::now_ms(&medic_model::SystemClock),
        actor,
        source,
        action: format!("{method} {route}"),
        target: path.to_string(),
        detail,
        result: resp.status().as_u16().to_string(),
    };
    let audit = st.audit.clone();
    tokio::task::spawn_blocking(move || audit.record(entry));
}

/// `GET /api/v1/medic/audit?actor=&action=&target=&since=&until=&limit=`: entries, newest
/// first (times in RFC 3339 or Unix seconds).
pub async fn get_audit(State(st): State<Arc<AppState>>, RawQuery(q): RawQuery) -> Response {
    let p = params(&q);
    let get = |k: &str| p.iter().rev().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let time = |k: &str| -> Result<Option<i64>, String> {
        get(k)
            .map(|v| {
                medic_model::parse_api_time(&v)
                    .ok_or_else(|| format!("{k}: {v:?} is not an RFC 3339 time or Unix seconds"))
            })
            .transpose()
    };
    let (since, until) = match (time("since"), time("until")) {
        (Ok(s), Ok(u)) => (s, u),
        (Err(e), _) | (_, Err(e)) => return medic_err(StatusCode::BAD_REQUEST, e),
    };
    let limit = match get("limit").map(|l| l.parse::<usize>()) {
        None => 1000,
        Some(Ok(n)) => n,
        Some(Err(_)) => return medic_err(StatusCode::BAD_REQUEST, "limit: not a number"),
    };
    let query = AuditQuery {
        actor: get("actor"),
        action: get("action"),
        target: get("target"),
        since,
        until,
        limit,
    };
    let audit = st.audit.clone();
    match tokio::task::spawn_blocking(move || audit.query(&query)).await {
        Ok(Ok(rows)) => medic_ok(json!(rows)),
        Ok(Err(e)) => medic_err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => medic_err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// `GET /api/v1/medic/audit/verify`: the whole chain checked.
pub async fn get_verify(State(st): State<Arc<AppState>>) -> Response {
    let audit = st.audit.clone();
    match tokio::task::spawn_blocking(move || audit.verify()).await {
        Ok(Ok(v)) => medic_ok(verdict_json(&v)),
        Ok(Err(e)) => medic_err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => medic_err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// A verdict as the API and the CLI show it.
pub fn verdict_json(v: &Verdict) -> Value {
    match v {
        Verdict::Intact { rows, head } => json!({"intact": true, "rows": rows, "head": head}),
        Verdict::Broken { seq, reason } => json!({"intact": false, "seq": seq, "reason": reason}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_at_any_depth_and_alert_batches_summarised() {
        let body = br#"{"by":"alice","headers":{"Authorization":"Bearer s3cr3t"},"smtp_auth_password":"pw","webhook_url":"https://x/?token=k","nested":[{"api_key":"k2"}]}"#;
        let d = describe(
            "/api/v1/medic/heal/trigger",
            Some("a=1&token=qs3cret"),
            body,
        );
        for secret in ["s3cr3t", "pw\"", "token=k", "k2", "qs3cret"] {
            assert!(!d.contains(secret), "{secret} in {d}");
        }
        assert!(
            d.contains("\"by\":\"alice\"") && d.contains("<secret>"),
            "{d}"
        );
        let alerts =
            br#"[{"labels":{"alertname":"Down","instance":"a"}},{"labels":{"alertname":"Up"}}]"#;
        let d = describe("/api/v2/alerts", None, alerts);
        assert_eq!(d, r#"{"body":{"alertnames":["Down","Up"],"alerts":2}}"#);
    }
}
