//! `query.backend:` — a Prometheus-compatible store (VictoriaMetrics, Prometheus, Thanos
//! Query, Mimir) that answers medic's PromQL through its HTTP API instead of the embedded
//! TSDB: the rules and anomaly rules, the heal engine's queries, and `/api/v1/query`,
//! `/api/v1/query_range`, `/api/v1/series`, `/api/v1/labels` and `/api/v1/label/…/values`
//! (docs/ha.md#an-external-metrics-backend). The client fields are Prometheus's
//! `http_config`.

use super::*;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryBackendConfig {
    /// The root of the store's Prometheus HTTP API, to which `/api/v1/query` is appended:
    /// `http://victoriametrics:8428`, `http://vmselect:8481/select/0/prometheus`,
    /// `http://prometheus:9090`, `http://thanos-query:10902`, `http://mimir:8080/prometheus`.
    pub url: String,
    /// Longest one request may take (default: `query.timeout`).
    #[serde(default)]
    pub timeout: Option<Dur>,
    /// Extra HTTP headers on every request (`X-Scope-OrgID` for Mimir and Thanos tenants).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub basic_auth: Option<BasicAuth>,
    #[serde(default)]
    pub authorization: Option<Authorization>,
    #[serde(default)]
    pub bearer_token: Option<String>,
    #[serde(default)]
    pub bearer_token_file: Option<PathBuf>,
    #[serde(default)]
    pub tls_config: Option<TlsConfig>,
}

impl QueryBackendConfig {
    pub(super) fn validate(&self) -> Result<(), String> {
        let u = reqwest::Url::parse(&self.url).map_err(|e| format!("query.backend.url: {e}"))?;
        if !matches!(u.scheme(), "http" | "https") {
            return Err("query.backend.url: scheme must be http or https".into());
        }
        if u.query().is_some() || u.fragment().is_some() {
            return Err(
                "query.backend.url: give the API's root without a query string (…/api/v1/query is appended)"
                    .into(),
            );
        }
        if u.path().trim_end_matches('/').ends_with("/api/v1/query") {
            return Err(
                "query.backend.url: give the API's root, without /api/v1/query (it is appended)"
                    .into(),
            );
        }
        super::remote_out::check_headers("query.backend.headers", &self.headers)?;
        if self.timeout.is_some_and(|t| t.is_zero()) {
            return Err("query.backend.timeout must be greater than 0".into());
        }
        Ok(())
    }
}
