//! The external metrics backend (`query.backend`): a Prometheus-compatible store whose HTTP API
//! answers medic's PromQL — the rules (through `medic_rules::QueryBackend`), the heal engine
//! (as its `InstantQuery`) and the query endpoints of medic's own API, which are forwarded
//! with their parameters and answered with the store's status and body.

mod answer;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::response::{IntoResponse, Response};
use medic_model::{InstantQuery, QueryError, QuerySeries};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::config::QueryBackendConfig;

/// The largest answer read from the store; a bigger one is refused, not buffered.
const MAX_ANSWER_BYTES: usize = 256 << 20;

/// `medic_query_backend_*`.
#[derive(Clone)]
pub struct QueryBackendMetrics {
    requests: Family<Vec<(&'static str, String)>, Counter>,
    duration: Histogram,
}

impl Default for QueryBackendMetrics {
    fn default() -> Self {
        Self {
            requests: Family::default(),
            duration: Histogram::new(exponential_buckets(0.001, 3.0, 10)),
        }
    }
}

impl QueryBackendMetrics {
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "medic_query_backend_requests",
            "Requests to the query backend, by endpoint and status code (0: no answer)",
            self.requests.clone(),
        );
        r.register(
            "medic_query_backend_request_duration_seconds",
            "Time from sending a request to the query backend to reading its whole answer",
            self.duration.clone(),
        );
    }
}

/// What the store answered.
struct Answer {
    status: u16,
    content_type: Option<reqwest::header::HeaderValue>,
    body: Vec<u8>,
}

/// A client of one store's Prometheus HTTP API.
pub struct QueryBackend {
    config: QueryBackendConfig,
    base: reqwest::Url,
    /// The URL as errors and logs show it: scheme, host, port and path, no credentials.
    shown: String,
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
    metrics: QueryBackendMetrics,
}

impl QueryBackend {
    /// A client for `config` (checked at load); requests time out after `config.timeout`, or
    /// `default_timeout`. Must be called inside the runtime that will carry its requests.
    pub fn new(
        config: &QueryBackendConfig,
        default_timeout: Duration,
        metrics: QueryBackendMetrics,
    ) -> Result<Arc<QueryBackend>, crate::Error> {
        let base = reqwest::Url::parse(&config.url)
            .map_err(|e| crate::Error::Internal(format!("query.backend.url: {e}")))?;
        let shown = format!(
            "{}://{}{}",
            base.scheme(),
            base.host_str().unwrap_or(""),
            base.port().map(|p| format!(":{p}")).unwrap_or_default()
        ) + base.path().trim_end_matches('/');
        let timeout = config.timeout.map_or(default_timeout, |t| t.duration());
        let b = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("medic/", env!("CARGO_PKG_VERSION")));
        let client = crate::client_auth::with_tls(b, config.tls_config.as_ref(), "query.backend")?
            .build()
            .map_err(|e| crate::Error::Internal(format!("query.backend: {e}")))?;
        Ok(Arc::new(QueryBackend {
            config: config.clone(),
            base,
            shown,
            client,
            runtime: tokio::runtime::Handle::current(),
            metrics,
        }))
    }

    /// The store's URL as logs show it (no credentials).
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// The URL of an endpoint below the API's root; each segment is percent-encoded, so a
    /// label name from a request cannot change the path.
    fn endpoint(&self, segments: &[&str]) -> reqwest::Url {
        let mut u = self.base.clone();
        if let Ok(mut p) = u.path_segments_mut() {
            p.pop_if_empty().extend(segments);
        }
        u
    }

    /// POSTs `params` as a form to the endpoint and reads the answer (at most
    /// [`MAX_ANSWER_BYTES`]). Errors never hold credentials.
    async fn post(&self, segments: &[&str], params: &[(String, String)]) -> Result<Answer, String> {
        let began = Instant::now();
        // The first three segments only: a label name must not become a metric label.
        let endpoint = format!("/{}", segments[..segments.len().min(3)].join("/"));
        let result = self.send(segments, params).await;
        let code = result.as_ref().map_or(0, |a| a.status);
        self.metrics
            .requests
            .get_or_create(&vec![("endpoint", endpoint), ("code", code.to_string())])
            .inc();
        self.metrics.duration.observe(began.elapsed().as_secs_f64());
        result.map_err(|e| format!("query backend {}: {e}", self.shown))
    }

    async fn send(&self, segments: &[&str], params: &[(String, String)]) -> Result<Answer, String> {
        let c = &self.config;
        let mut req = self.client.post(self.endpoint(segments)).form(params);
        for (k, v) in &c.headers {
            req = req.header(k, v);
        }
        let req = crate::client_auth::apply(
            req,
            c.basic_auth.as_ref(),
            c.authorization.as_ref(),
            c.bearer_token.as_deref(),
            c.bearer_token_file.as_deref(),
        )?;
        let mut resp = req.send().await.map_err(|e| e.without_url().to_string())?;
        let status = resp.status().as_u16();
        let content_type = resp.headers().get(reqwest::header::CONTENT_TYPE).cloned();
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| e.without_url().to_string())?
        {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(format!(
                    "the answer is larger than {} MiB",
                    MAX_ANSWER_BYTES >> 20
                ));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer {
            status,
            content_type,
            body,
        })
    }

    /// Forwards a request of medic's API to the same endpoint of the store and answers with
    /// the store's status and body; a store that cannot be reached gives 503 in Prometheus's
    /// error shape.
    pub async fn forward(&self, segments: &[&str], params: &[(String, String)]) -> Response {
        use axum::http::{header, StatusCode};
        match self.post(segments, params).await {
            Ok(a) => {
                let status = StatusCode::from_u16(a.status).unwrap_or(StatusCode::BAD_GATEWAY);
                let ct = a.content_type.unwrap_or_else(|| {
                    reqwest::header::HeaderValue::from_static("application/json")
                });
                (status, [(header::CONTENT_TYPE, ct)], a.body).into_response()
            }
            Err(e) => (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(serde_json::json!({
                    "status": "error", "errorType": "unavailable", "error": e,
                })),
            )
                .into_response(),
        }
    }

    /// A query from a blocking thread (the rules' and the heal engine's).
    fn query_blocking(
        &self,
        segments: &[&str],
        expr: &str,
        params: Vec<(String, String)>,
    ) -> Result<Vec<QuerySeries>, QueryError> {
        let a = self
            .runtime
            .block_on(self.post(segments, &params))
            .map_err(QueryError::Failed)?;
        let what = format!("query backend {}", self.shown);
        if a.status >= 500 && !a.body.starts_with(b"{") {
            return Err(QueryError::Failed(format!("{what}: status {}", a.status)));
        }
        answer::series(&a.body, expr, &what)
    }
}

/// The backend `config` names, with its metrics registered; none when `query.backend` is
/// not set.
pub fn open(
    config: &crate::config::Config,
    self_metrics: &crate::selfmetrics::SelfMetrics,
) -> Result<Option<Arc<QueryBackend>>, crate::Error> {
    let Some(c) = &config.query.backend else {
        return Ok(None);
    };
    let metrics = QueryBackendMetrics::default();
    self_metrics.with_registry(|r| metrics.register(r));
    let b = QueryBackend::new(c, config.query.timeout.duration(), metrics)?;
    tracing::info!(url = %b.shown(), "queries are answered by the query backend");
    Ok(Some(b))
}

/// Milliseconds as the API's seconds, exactly.
fn seconds(ms: i64) -> String {
    if ms < 0 {
        return format!("-{}", seconds(ms.checked_neg().unwrap_or(i64::MAX)));
    }
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

impl InstantQuery for QueryBackend {
    fn instant(&self, expr: &str, t: i64) -> Result<Vec<QuerySeries>, QueryError> {
        let params = vec![("query".into(), expr.into()), ("time".into(), seconds(t))];
        self.query_blocking(&["api", "v1", "query"], expr, params)
    }

    fn range(
        &self,
        expr: &str,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<Vec<QuerySeries>, QueryError> {
        let params = vec![
            ("query".into(), expr.into()),
            ("start".into(), seconds(start)),
            ("end".into(), seconds(end)),
            ("step".into(), seconds(step)),
        ];
        self.query_blocking(&["api", "v1", "query_range"], expr, params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_exact_for_negative_and_fractional_times() {
        assert_eq!(seconds(1_700_000_000_500), "1700000000.500");
        assert_eq!(seconds(15_000), "15.000");
        assert_eq!(seconds(-1), "-0.001");
        assert_eq!(seconds(-1500), "-1.500");
    }
}
