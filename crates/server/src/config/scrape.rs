//! `scrape_configs`: Prometheus's scrape configuration, field for field, with its credentials, TLS and service discovery.

use super::*;

/// One entry of `scrape_configs:`, in Prometheus's syntax.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeConfig {
    /// Name of the job; becomes the `job` label.
    pub job_name: String,
    /// How often to scrape (default: `global.scrape_interval`).
    pub scrape_interval: Option<Dur>,
    /// Scrape timeout (default: `global.scrape_timeout`, capped at the interval).
    pub scrape_timeout: Option<Dur>,
    /// HTTP path (default `/metrics`).
    #[serde(default = "default_metrics_path")]
    pub metrics_path: String,
    /// `http` (default) or `https`.
    #[serde(default = "default_scheme")]
    pub scheme: String,
    /// URL query parameters.
    #[serde(default)]
    pub params: BTreeMap<String, Vec<String>>,
    /// Basic authentication.
    pub basic_auth: Option<BasicAuth>,
    /// `Authorization` header credentials.
    pub authorization: Option<Authorization>,
    /// Bearer token (legacy form of `authorization`).
    pub bearer_token: Option<String>,
    /// File holding a bearer token (legacy form of `authorization.credentials_file`).
    pub bearer_token_file: Option<PathBuf>,
    /// TLS settings for `https` targets.
    pub tls_config: Option<TlsConfig>,
    /// Keep the scraped value of labels that clash with target labels (default false: the
    /// scraped ones are renamed `exported_<name>`).
    #[serde(default)]
    pub honor_labels: bool,
    /// Use timestamps the target exposes (default true).
    #[serde(default = "default_true")]
    pub honor_timestamps: bool,
    /// Fail a scrape that yields more samples than this after metric relabelling (0 = none).
    #[serde(default)]
    pub sample_limit: usize,
    /// Largest uncompressed response body (default 64MiB); larger scrapes fail.
    #[serde(default = "default_body_limit")]
    pub body_size_limit: ByteSize,
    /// Samples one scrape may parse before it fails: `storage.max_series` (a scrape cannot
    /// store more), so one response cannot take memory past it. Set by medic, not the file.
    #[serde(skip)]
    pub parse_limit: usize,
    /// Fixed lists of targets.
    #[serde(default)]
    pub static_configs: Vec<StaticConfig>,
    /// Targets read from JSON or YAML files, re-read when they change.
    #[serde(default)]
    pub file_sd_configs: Vec<FileSdConfig>,
    /// Targets from an HTTP endpoint answering target groups in JSON (Prometheus's http_sd).
    #[serde(default)]
    pub http_sd_configs: Vec<crate::scrape::sd::HttpSdConfig>,
    /// Targets from DNS names (Prometheus's dns_sd: `A` and `AAAA` records with a port).
    #[serde(default)]
    pub dns_sd_configs: Vec<crate::scrape::sd::DnsSdConfig>,
    /// Parsed so a `prometheus.yml` loads, but not run: medic cannot reach Consul here and
    /// does not discover from it yet (a warning at start says so).
    #[serde(default)]
    pub consul_sd_configs: Vec<serde_norway::Value>,
    /// Parsed so a `prometheus.yml` loads, but not run (see `consul_sd_configs`).
    #[serde(default)]
    pub kubernetes_sd_configs: Vec<serde_norway::Value>,
    /// The exposition formats to ask for, most wanted first (Prometheus's names:
    /// `PrometheusProto`, `OpenMetricsText1.0.0`, `OpenMetricsText0.0.1`,
    /// `PrometheusText1.0.0`, `PrometheusText0.0.4`). Native histograms come only in
    /// `PrometheusProto`. Default: the text formats, OpenMetrics first.
    #[serde(default)]
    pub scrape_protocols: Option<Vec<ScrapeProtocol>>,
    /// Keep the classic `_bucket`/`_sum`/`_count` series of a histogram that also has native
    /// buckets (protobuf scrapes; Prometheus 2's name `scrape_classic_histograms` works too).
    #[serde(default, alias = "scrape_classic_histograms")]
    pub always_scrape_classic_histograms: bool,
    /// Accepted for compatibility; medic always asks for gzip.
    #[serde(default)]
    pub enable_compression: Option<bool>,
    /// Accepted for compatibility; redirects are followed.
    #[serde(default)]
    pub follow_redirects: Option<bool>,
    /// Accepted for compatibility.
    #[serde(default)]
    pub enable_http2: Option<bool>,
    /// Relabelling of targets before scraping.
    #[serde(default)]
    pub relabel_configs: Vec<RelabelConfig>,
    /// Relabelling of scraped samples before storing.
    #[serde(default)]
    pub metric_relabel_configs: Vec<RelabelConfig>,
}

/// One entry of `scrape_protocols`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum ScrapeProtocol {
    /// `application/vnd.google.protobuf` (delimited `io.prometheus.client.MetricFamily`).
    PrometheusProto,
    #[serde(rename = "OpenMetricsText1.0.0")]
    OpenMetricsText1,
    #[serde(rename = "OpenMetricsText0.0.1")]
    OpenMetricsText0,
    #[serde(rename = "PrometheusText1.0.0")]
    PrometheusText1,
    #[serde(rename = "PrometheusText0.0.4")]
    PrometheusText0,
}

impl ScrapeProtocol {
    fn media_type(self) -> &'static str {
        match self {
            ScrapeProtocol::PrometheusProto => {
                "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"
            }
            ScrapeProtocol::OpenMetricsText1 => "application/openmetrics-text;version=1.0.0",
            ScrapeProtocol::OpenMetricsText0 => "application/openmetrics-text;version=0.0.1",
            ScrapeProtocol::PrometheusText1 => "text/plain;version=1.0.0",
            ScrapeProtocol::PrometheusText0 => "text/plain;version=0.0.4",
        }
    }

    /// The `Accept` header for these protocols, weighted in order as Prometheus weighs them.
    pub fn accept_header(protocols: &[ScrapeProtocol]) -> String {
        let mut weight = 6;
        let mut seen = Vec::new();
        let mut parts: Vec<String> = protocols
            .iter()
            .filter(|p| {
                let first = !seen.contains(*p);
                seen.push(**p);
                first
            })
            .map(|p| {
                let part = format!("{};q=0.{weight}", p.media_type());
                weight -= 1;
                part
            })
            .collect();
        parts.push(format!("*/*;q=0.{weight}"));
        parts.join(",")
    }
}

pub(super) fn default_metrics_path() -> String {
    "/metrics".into()
}
pub(super) fn default_scheme() -> String {
    "http".into()
}
pub(super) fn default_body_limit() -> ByteSize {
    ByteSize(64 << 20)
}

impl ScrapeConfig {
    /// The files holding this job's credentials and CA certificates, as written.
    pub fn credential_files(&self) -> Vec<PathBuf> {
        let files = [
            self.bearer_token_file.as_ref(),
            self.basic_auth
                .as_ref()
                .and_then(|b| b.password_file.as_ref()),
            self.authorization
                .as_ref()
                .and_then(|a| a.credentials_file.as_ref()),
            self.tls_config.as_ref().and_then(|t| t.ca_file.as_ref()),
        ];
        files.into_iter().flatten().cloned().collect()
    }
}

/// `basic_auth:`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    /// User name.
    pub username: String,
    /// Password.
    pub password: Option<String>,
    /// File holding the password.
    pub password_file: Option<PathBuf>,
}

/// `authorization:`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Authorization {
    /// Scheme (default `Bearer`).
    #[serde(rename = "type", default = "default_auth_type")]
    pub kind: String,
    /// Credentials.
    pub credentials: Option<String>,
    /// File holding the credentials.
    pub credentials_file: Option<PathBuf>,
}

pub(super) fn default_auth_type() -> String {
    "Bearer".into()
}

/// `tls_config:`
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file with CA certificates to trust in addition to the system's.
    pub ca_file: Option<PathBuf>,
    /// Skip certificate verification (insecure; for tests only).
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// `static_configs:` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticConfig {
    /// `host:port` of each target.
    #[serde(default)]
    pub targets: Vec<String>,
    /// Labels added to every target of this group.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// `file_sd_configs:` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSdConfig {
    /// File paths or globs (`targets/*.json`); JSON or YAML lists of `{targets, labels}`.
    pub files: Vec<String>,
    /// How often to re-read the files (default 5m); changes are also noticed at that pace.
    #[serde(default = "default_refresh")]
    pub refresh_interval: Dur,
}

pub(super) fn default_refresh() -> Dur {
    Dur::from_secs(300)
}
