//! `/api/v1/medic/tokens`: bearer tokens made, listed and revoked at run time (admin only). A
//! new token is in the creation response and nowhere else; the list shows names, roles,
//! scopes, expiry and who made or revoked each, never a token or its hash.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{json, Value};

use medic_state::{StoredToken, TokenError};

use super::error::{medic_err, medic_ok};
use super::params::read_body;
use super::AppState;
use crate::auth::{Identity, NewToken};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateReq {
    name: String,
    role: String,
    #[serde(default)]
    scope: String,
    /// A duration from now (`30d`, `12h`); absent: never expires.
    #[serde(default)]
    expires_in: Option<String>,
}

fn token_json(t: &StoredToken, now: i64) -> Value {
    let state = if t.revoked_at.is_some() {
        "revoked"
    } else if t.live(now) {
        "active"
    } else {
        "expired"
    };
    let mut v = json!(t);
    v["state"] = json!(state);
    v["source"] = json!("api");
    v
}

fn no_store() -> Response {
    medic_err(
        StatusCode::SERVICE_UNAVAILABLE,
        "this medic keeps no run-time tokens",
    )
}

fn token_err(e: TokenError) -> Response {
    match e {
        TokenError::NameTaken(_) => medic_err(StatusCode::CONFLICT, e.to_string()),
        TokenError::NotFound(_) => medic_err(StatusCode::NOT_FOUND, e.to_string()),
        TokenError::Storage(_) => medic_err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// The longest name a token may have.
const MAX_NAME: usize = 128;

/// `POST /api/v1/medic/tokens` `{"name", "role", "scope", "expires_in"}` → 201 with the token,
/// shown this once.
pub async fn post_token(
    State(st): State<Arc<AppState>>,
    who: Option<axum::Extension<Identity>>,
    body: Body,
) -> Response {
    let Some(tokens) = st.auth.runtime_tokens() else {
        return no_store();
    };
    let bytes = match read_body(body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let r: CreateReq = match serde_json::from_slice(&bytes) {
        Ok(r) => r,
        Err(e) => return medic_err(StatusCode::BAD_REQUEST, format!("invalid token: {e}")),
    };
    let name = r.name.trim();
    if name.is_empty() || name.len() > MAX_NAME || name.chars().any(char::is_control) {
        return medic_err(
            StatusCode::BAD_REQUEST,
            format!("name: 1 to {MAX_NAME} printable characters"),
        );
    }
    if st.auth.config().tokens.contains_key(name) {
        return medic_err(
            StatusCode::CONFLICT,
            format!("name: {name:?} is a token of auth.tokens in the configuration"),
        );
    }
    let scope = (!r.scope.trim().is_empty()).then_some(r.scope.trim());
    if let Err(e) = st.auth.config().check_role_and_scope(&r.role, scope) {
        return medic_err(StatusCode::BAD_REQUEST, e);
    }
    let now = medic_model::Clock::now_ms(&medic_model::SystemClock);
    let expires_at = match r.expires_in.as_deref().map(medic_model::parse_duration) {
        None => None,
        Some(Ok(d)) if !d.is_zero() => Some(now.saturating_add(d.as_millis() as i64)),
        Some(Ok(_)) => return medic_err(StatusCode::BAD_REQUEST, "expires_in: must be positive"),
        Some(Err(e)) => return medic_err(StatusCode::BAD_REQUEST, format!("expires_in: {e}")),
    };
    let new = NewToken {
        name: name.to_string(),
        role: r.role,
        scope: scope.unwrap_or("").to_string(),
        expires_at,
    };
    let by = who.map_or_else(|| "anonymous".to_string(), |w| w.name.clone());
    match tokens.create(new, &by) {
        Ok((row, secret)) => {
            let mut v = token_json(&row, now);
            v["token"] = json!(secret);
            let mut resp = medic_ok(v);
            *resp.status_mut() = StatusCode::CREATED;
            resp
        }
        Err(e) => token_err(e),
    }
}

/// `GET /api/v1/medic/tokens`: the tokens of `auth.tokens` and those made at run time.
pub async fn get_tokens(State(st): State<Arc<AppState>>) -> Response {
    let Some(tokens) = st.auth.runtime_tokens() else {
        return no_store();
    };
    let now = medic_model::Clock::now_ms(&medic_model::SystemClock);
    let mut out: Vec<Value> = st
        .auth
        .config()
        .tokens
        .iter()
        .map(|(name, t)| {
            json!({"name": name, "role": t.role, "scope": t.scope.clone().unwrap_or_default(),
                   "state": "active", "source": "config"})
        })
        .collect();
    match tokens.list() {
        Ok(list) => out.extend(list.iter().map(|t| token_json(t, now))),
        Err(e) => return token_err(e),
    }
    medic_ok(Value::Array(out))
}

/// `DELETE /api/v1/medic/tokens/{id}` (an id or the name of a live token): revoked at once.
pub async fn delete_token(
    State(st): State<Arc<AppState>>,
    who: Option<axum::Extension<Identity>>,
    Path(id): Path<String>,
) -> Response {
    let Some(tokens) = st.auth.runtime_tokens() else {
        return no_store();
    };
    let by = who.map_or_else(|| "anonymous".to_string(), |w| w.name.clone());
    let now = medic_model::Clock::now_ms(&medic_model::SystemClock);
    match tokens.revoke(&id, &by) {
        Ok(t) => medic_ok(token_json(&t, now)),
        Err(e) => token_err(e),
    }
}
