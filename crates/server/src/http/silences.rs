//! Alertmanager's API v2 for silences (`/api/v2/silences`, `/api/v2/silence/{id}`), in its
//! exact shapes.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use medic_alert::silence::{Silence, SilenceError};
use medic_alert::types::rfc3339_millis as rfc3339_nano;
use medic_model::{Labels, MatchType, Matcher};

use super::alerts::parse_time;
use super::error::v2_error;
use super::params::{filter_matchers, params, read_body};
use super::AppState;
use crate::auth::{Identity, Permission};

fn silence_json(s: &Silence, now: i64) -> Value {
    json!({
        "id": s.id,
        "status": {"state": s.state(now).as_str()},
        "updatedAt": rfc3339_nano(s.updated_at),
        "comment": s.comment,
        "createdBy": s.created_by,
        "endsAt": rfc3339_nano(s.ends_at),
        "matchers": s.matchers.iter().map(|m| json!({
            "isEqual": matches!(m.kind, MatchType::Equal | MatchType::Regexp),
            "isRegex": matches!(m.kind, MatchType::Regexp | MatchType::NotRegexp),
            "name": m.name,
            "value": m.value,
        })).collect::<Vec<_>>(),
        "startsAt": rfc3339_nano(s.starts_at),
        "expireOnResolve": s.expire_on_resolve,
    })
}

/// `GET /api/v2/silences`: active first (soonest end first), then pending (soonest start
/// first), then expired (latest end first), as Alertmanager sorts them.
pub async fn get_silences(State(st): State<Arc<AppState>>, RawQuery(q): RawQuery) -> Response {
    let p = params(&q);
    let filter = match filter_matchers(&p) {
        Ok(f) => f,
        Err(e) => return e.v2(),
    };
    let now = st.alerts.now();
    let mut sils: Vec<Silence> = st
        .alerts
        .silences()
        .into_iter()
        .filter(|s| {
            let as_labels = Labels::from_pairs(
                s.matchers
                    .iter()
                    .map(|m| (m.name.as_str(), m.value.as_str())),
            );
            medic_alert::matchers::matches_all(&filter, &as_labels)
        })
        .collect();
    use medic_alert::silence::SilenceState::*;
    let rank = |s: &Silence| match s.state(now) {
        Active => (0, s.ends_at),
        Pending => (1, s.starts_at),
        Expired => (2, -s.ends_at),
    };
    sils.sort_by_key(rank);
    Json(
        sils.iter()
            .map(|s| silence_json(s, now))
            .collect::<Vec<_>>(),
    )
    .into_response()
}

/// `GET /api/v2/silence/{id}`.
pub async fn get_silence(State(st): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    match st.alerts.silence(&id) {
        Some(s) => Json(silence_json(&s, st.alerts.now())).into_response(),
        None => v2_error(StatusCode::NOT_FOUND, format!("silence {id} not found")),
    }
}

/// `DELETE /api/v2/silence/{id}`.
pub async fn delete_silence(
    State(st): State<Arc<AppState>>,
    who: Option<Extension<Identity>>,
    Path(id): Path<String>,
) -> Response {
    if let (Some(w), Some(s)) = (who.as_deref(), st.alerts.silence(&id)) {
        if let Err(r) = within_scope(w, &s.matchers) {
            return *r;
        }
    }
    let am = st.alerts.clone();
    match tokio::task::spawn_blocking(move || am.expire_silence(&id)).await {
        Ok(Ok(())) => StatusCode::OK.into_response(),
        Ok(Err(e @ SilenceError::NotFound(_))) => v2_error(StatusCode::NOT_FOUND, e.to_string()),
        Ok(Err(e)) => v2_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => v2_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// 403 unless a silence with `matchers` stays inside the identity's scope.
fn within_scope(w: &Identity, matchers: &[Matcher]) -> Result<(), Box<Response>> {
    if !w.allows(Permission::Silence) || w.scope.bounds(matchers) {
        return Ok(());
    }
    Err(Box::new(v2_error(
        StatusCode::FORBIDDEN,
        format!(
            "{} may silence only within {}: the silence needs those matchers",
            w.name, w.scope
        ),
    )))
}

#[derive(Debug, Deserialize)]
struct PostableMatcher {
    name: String,
    value: String,
    #[serde(rename = "isRegex")]
    is_regex: bool,
    #[serde(rename = "isEqual", default = "yes")]
    is_equal: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
struct PostableSilence {
    #[serde(default)]
    id: String,
    matchers: Vec<PostableMatcher>,
    #[serde(rename = "startsAt")]
    starts_at: String,
    #[serde(rename = "endsAt")]
    ends_at: String,
    #[serde(rename = "createdBy")]
    created_by: String,
    comment: String,
    /// medic's extension: expire once the alerts it silenced have resolved.
    #[serde(rename = "expireOnResolve", default)]
    expire_on_resolve: bool,
}

/// `POST /api/v2/silences`: create, or update by id.
pub async fn post_silences(
    State(st): State<Arc<AppState>>,
    who: Option<Extension<Identity>>,
    body: Body,
) -> Response {
    let bytes = match read_body(body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let p: PostableSilence = match serde_json::from_slice(&bytes) {
        Ok(p) => p,
        Err(e) => {
            return v2_error(
                StatusCode::BAD_REQUEST,
                format!("invalid silence JSON: {e}"),
            )
        }
    };
    let mut matchers = Vec::new();
    for m in &p.matchers {
        let kind = match (m.is_regex, m.is_equal) {
            (false, true) => MatchType::Equal,
            (false, false) => MatchType::NotEqual,
            (true, true) => MatchType::Regexp,
            (true, false) => MatchType::NotRegexp,
        };
        match Matcher::new(kind, m.name.clone(), m.value.clone()) {
            Ok(x) => matchers.push(x),
            Err(e) => return v2_error(StatusCode::BAD_REQUEST, e.to_string()),
        }
    }
    if let Some(w) = who.as_deref() {
        if let Err(r) = within_scope(w, &matchers) {
            return *r;
        }
    }
    let (starts_at, ends_at) = match (
        parse_time(Some(&p.starts_at), "startsAt"),
        parse_time(Some(&p.ends_at), "endsAt"),
    ) {
        (Ok(s), Ok(e)) => (s, e),
        (Err(m), _) | (_, Err(m)) => return v2_error(StatusCode::BAD_REQUEST, m),
    };
    if starts_at >= ends_at {
        return v2_error(
            StatusCode::BAD_REQUEST,
            "Failed to create silence: start time must be before end time",
        );
    }
    if ends_at < st.alerts.now() {
        return v2_error(
            StatusCode::BAD_REQUEST,
            "Failed to create silence: end time can't be in the past",
        );
    }
    let sil = Silence {
        id: p.id,
        matchers,
        starts_at,
        ends_at,
        updated_at: 0,
        created_by: p.created_by,
        comment: p.comment,
        expire_on_resolve: p.expire_on_resolve,
    };
    let am = st.alerts.clone();
    let refused = |reason: &str| {
        st.http
            .refused
            .get_or_create(&vec![("reason", reason.to_string())])
            .inc();
    };
    match tokio::task::spawn_blocking(move || am.set_silence(sil)).await {
        Ok(Ok(id)) => Json(json!({"silenceID": id})).into_response(),
        Ok(Err(e @ SilenceError::NotFound(_))) => v2_error(StatusCode::NOT_FOUND, e.to_string()),
        Ok(Err(e @ SilenceError::TooMany { .. })) => {
            refused("max_silences");
            v2_error(StatusCode::TOO_MANY_REQUESTS, e.to_string())
        }
        Ok(Err(e @ SilenceError::TooLarge { .. })) => {
            refused("silence_too_large");
            v2_error(StatusCode::PAYLOAD_TOO_LARGE, e.to_string())
        }
        Ok(Err(e)) => v2_error(StatusCode::BAD_REQUEST, e.to_string()),
        Err(e) => v2_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
