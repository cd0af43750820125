//! Request parameters: query string and form bodies (repeated keys kept), times, matchers, limits; and the blocking helper for storage reads.

use super::error::{medic_err, v2_error};
use super::*;

/// Query-string and form parameters, repeated keys kept.
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Parses a query string and, for form POSTs, the body.
    pub fn parse(query: Option<&str>, body: Option<&[u8]>) -> Params {
        let mut v: Vec<(String, String)> = Vec::new();
        if let Some(q) = query {
            v.extend(form_urlencoded::parse(q.as_bytes()).into_owned());
        }
        if let Some(b) = body {
            v.extend(form_urlencoded::parse(b).into_owned());
        }
        Params(v)
    }

    /// Every parameter, in the order given (what a forwarded request carries).
    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }

    /// First value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// All values of `key`.
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A time parameter; absent gives `default`.
    pub fn time(&self, key: &str, default: i64) -> Result<i64, ApiError> {
        match self.get(key) {
            None | Some("") => Ok(default),
            Some(s) => parse_api_time(s).ok_or_else(|| {
                ApiError::bad_data(format!(
                    "invalid parameter \"{key}\": cannot parse {s:?} to a valid timestamp"
                ))
            }),
        }
    }

    /// `start` and `end`, defaulting to all time; `end` must not be before `start`.
    pub fn range(&self) -> Result<(i64, i64), ApiError> {
        let start = self.time("start", MIN_TIME)?;
        let end = self.time("end", MAX_TIME)?;
        if end < start {
            return Err(ApiError::bad_data(
                "end timestamp must not be before start time",
            ));
        }
        Ok((start, end))
    }

    /// `match[]` selectors, parsed.
    pub fn matchers(&self) -> Result<Vec<Vec<Matcher>>, ApiError> {
        self.all("match[]")
            .into_iter()
            .map(|s| {
                parse_selector(s)
                    .map_err(|e| ApiError::bad_data(format!("invalid parameter \"match[]\": {e}")))
            })
            .collect()
    }

    /// `match[]` selectors, at least one.
    pub fn required_matchers(&self) -> Result<Vec<Vec<Matcher>>, ApiError> {
        let sets = self.matchers()?;
        if sets.is_empty() {
            return Err(ApiError::bad_data("no match[] parameter provided"));
        }
        Ok(sets)
    }
}

/// Largest form body accepted by the query and index APIs.
pub(super) const MAX_FORM_BYTES: usize = 16 << 20;

/// Extracts [`Params`] from the query string and, for form POSTs, the body, as Prometheus's
/// handlers accept both.
impl<S: Send + Sync> axum::extract::FromRequest<S> for Params {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, ApiError> {
        let query = req.uri().query().map(str::to_string);
        let is_form = req.method() == Method::POST
            && req
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        let body = if is_form {
            Some(
                axum::body::to_bytes(req.into_body(), MAX_FORM_BYTES)
                    .await
                    .map_err(|_| {
                        ApiError::too_large("form body larger than server.max_request_body")
                    })?,
            )
        } else {
            None
        };
        Ok(Params::parse(query.as_deref(), body.as_deref()))
    }
}
pub(super) const MIN_TIME: i64 = i64::MIN / 2;
pub(super) const MAX_TIME: i64 = i64::MAX / 2;

/// Runs a storage read off the async runtime.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(ApiError::execution(e)),
        Err(e) => Err(ApiError::internal(e.to_string())),
    }
}

/// The largest request body the alert and heal endpoints read.
const MAX_BODY: usize = 16 << 20;

pub(super) async fn read_body(body: Body) -> Result<bytes::Bytes, Response> {
    axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
        v2_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body larger than server.max_request_body".to_string(),
        )
    })
}

pub(super) fn params(q: &Option<String>) -> Vec<(String, String)> {
    q.as_deref()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

pub(super) fn bool_param(
    p: &[(String, String)],
    name: &str,
    default: bool,
) -> Result<bool, HttpError> {
    match p.iter().rev().find(|(k, _)| k == name) {
        None => Ok(default),
        Some((_, v)) => match v.as_str() {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            _ => Err(HttpError::bad_data(format!(
                "{name}: {v:?} is not a boolean"
            ))),
        },
    }
}

pub(super) fn filter_matchers(p: &[(String, String)]) -> Result<Vec<Matcher>, HttpError> {
    let mut out = Vec::new();
    for (k, v) in p {
        if k == "filter" {
            out.extend(
                medic_alert::matchers::parse_matchers(v)
                    .map_err(|e| HttpError::bad_data(format!("filter {v:?}: {e}")))?,
            );
        }
    }
    Ok(out)
}

pub(super) fn receiver_regex(p: &[(String, String)]) -> Result<Option<regex::Regex>, HttpError> {
    match p.iter().rev().find(|(k, _)| k == "receiver") {
        None => Ok(None),
        Some((_, r)) => regex::RegexBuilder::new(&format!("^(?:{r})$"))
            .size_limit(1 << 20)
            .build()
            .map(Some)
            .map_err(|e| HttpError::bad_data(format!("receiver: invalid regular expression: {e}"))),
    }
}

/// A JSON request body as `T`; a 400 naming `what`, the line and the column when it is not.
pub(super) async fn json_body<T: serde::de::DeserializeOwned>(
    body: Body,
    what: &str,
) -> Result<T, Response> {
    let bytes = read_body(body).await?;
    serde_json::from_slice(&bytes)
        .map_err(|e| medic_err(StatusCode::BAD_REQUEST, format!("invalid {what}: {e}")))
}

/// Who did it, for the journal: the authenticated identity when authentication is on (a
/// request cannot claim to be someone else), else what the request says.
pub(super) fn actor(st: &AppState, who: Option<&crate::auth::Identity>, claimed: &str) -> String {
    match who {
        Some(w) if st.auth.enabled() => w.name.clone(),
        _ => claimed.to_string(),
    }
}
