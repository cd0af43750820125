//! `remote_write:` as a list — Prometheus's remote write *out*: the stores medic sends every
//! sample it stores to (VictoriaMetrics, Thanos Receive, Mimir, another Prometheus), each
//! through a queue on disk (docs/ha.md#remote-write-out). The same fields as Prometheus's,
//! with those medic does not implement refused by name.

use super::*;

/// One destination.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteWriteTarget {
    /// The receiver's URL (`http://vm:8428/api/v1/write`).
    pub url: String,
    /// A name for metrics and the queue's directory (default: derived from the URL).
    #[serde(default)]
    pub name: Option<String>,
    /// Timeout of one request (default 30s).
    #[serde(default = "default_remote_timeout")]
    pub remote_timeout: Dur,
    /// Extra HTTP headers on every request (`X-Scope-OrgID` for Mimir).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Relabelling applied to each series before it is queued; `drop` keeps it out.
    #[serde(default)]
    pub write_relabel_configs: Vec<RelabelConfig>,
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
    #[serde(default)]
    pub queue_config: QueueConfig,
    /// Accepted for compatibility; medic sends no metadata.
    #[serde(default)]
    pub metadata_config: Option<serde_norway::Value>,
    /// Accepted for compatibility; medic stores no exemplars.
    #[serde(default)]
    pub send_exemplars: bool,
}

/// `queue_config:` — Prometheus's fields, and the bound of medic's queue on disk.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// Accepted for compatibility (Prometheus's in-memory buffer per shard); medic's queue is
    /// on disk, bounded by `max_bytes`.
    #[serde(default)]
    pub capacity: Option<usize>,
    /// Most requests in flight at once; series are split across them by hash, so each
    /// series' samples arrive in order (default 4).
    #[serde(default = "default_max_shards")]
    pub max_shards: usize,
    /// Accepted for compatibility.
    #[serde(default)]
    pub min_shards: Option<usize>,
    /// Samples per request (default 2000).
    #[serde(default = "default_max_samples_per_send")]
    pub max_samples_per_send: usize,
    /// Longest a sample waits for a batch to fill (default 5s).
    #[serde(default = "default_batch_send_deadline")]
    pub batch_send_deadline: Dur,
    /// First retry delay, doubled up to `max_backoff` (default 30ms).
    #[serde(default = "default_min_backoff")]
    pub min_backoff: Dur,
    /// Longest retry delay (default 5s).
    #[serde(default = "default_max_backoff")]
    pub max_backoff: Dur,
    /// Retry on 429 Too Many Requests as on 5xx (default true, as Prometheus 2.x since 2.43).
    #[serde(default = "super::storage::default_true")]
    pub retry_on_http_429: bool,
    /// medic: most bytes the queue may hold on disk while the destination is away (default
    /// 1GiB); beyond it the oldest samples are dropped and counted.
    #[serde(default = "default_queue_bytes")]
    pub max_bytes: ByteSize,
}

fn default_remote_timeout() -> Dur {
    Dur::from_secs(30)
}
fn default_max_shards() -> usize {
    4
}
fn default_max_samples_per_send() -> usize {
    2000
}
fn default_batch_send_deadline() -> Dur {
    Dur::from_secs(5)
}
fn default_min_backoff() -> Dur {
    Dur::from_millis(30)
}
fn default_max_backoff() -> Dur {
    Dur::from_secs(5)
}
fn default_queue_bytes() -> ByteSize {
    ByteSize(1 << 30)
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            capacity: None,
            max_shards: default_max_shards(),
            min_shards: None,
            max_samples_per_send: default_max_samples_per_send(),
            batch_send_deadline: default_batch_send_deadline(),
            min_backoff: default_min_backoff(),
            max_backoff: default_max_backoff(),
            retry_on_http_429: true,
            max_bytes: default_queue_bytes(),
        }
    }
}

impl RemoteWriteTarget {
    /// The name used for metrics and the queue directory: `name`, or the URL's host, port and
    /// path with everything but letters, digits, `-` and `.` as `_`.
    pub fn queue_name(&self) -> String {
        let raw = match &self.name {
            Some(n) => n.clone(),
            None => {
                let u = self
                    .url
                    .split_once("://")
                    .map_or(self.url.as_str(), |x| x.1);
                // Credentials in the URL are not part of the name.
                u.rsplit_once('@').map_or(u, |x| x.1).to_string()
            }
        };
        raw.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    }

    pub(super) fn validate(&self, at: &str) -> Result<(), String> {
        let u = reqwest::Url::parse(&self.url).map_err(|e| format!("{at}.url: {e}"))?;
        if !matches!(u.scheme(), "http" | "https") {
            return Err(format!("{at}.url: scheme must be http or https"));
        }
        if self.queue_config.max_shards == 0 || self.queue_config.max_samples_per_send == 0 {
            return Err(format!(
                "{at}.queue_config: max_shards and max_samples_per_send must be at least 1"
            ));
        }
        if self.queue_config.min_backoff > self.queue_config.max_backoff {
            return Err(format!(
                "{at}.queue_config: min_backoff is longer than max_backoff"
            ));
        }
        // Checked here: a bad header would otherwise fail every request, retried forever.
        check_headers(&format!("{at}.headers"), &self.headers)?;
        for (i, r) in self.write_relabel_configs.iter().enumerate() {
            r.validate()
                .map_err(|e| format!("{at}.write_relabel_configs[{i}]: {e}"))?;
        }
        Ok(())
    }
}

/// Every `headers:` entry a valid HTTP header name and value; `at` names the field.
pub(super) fn check_headers(at: &str, headers: &BTreeMap<String, String>) -> Result<(), String> {
    for (k, v) in headers {
        reqwest::header::HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| format!("{at}: {k:?} is not a valid header name"))?;
        reqwest::header::HeaderValue::from_str(v)
            .map_err(|_| format!("{at}.{k}: not a valid header value"))?;
    }
    Ok(())
}

/// Checks every destination, and that their names (queue directories) are distinct.
pub(super) fn validate_all(targets: &[RemoteWriteTarget]) -> Result<(), String> {
    let mut names = std::collections::HashSet::new();
    for (i, t) in targets.iter().enumerate() {
        t.validate(&format!("remote_write[{i}]"))?;
        if !names.insert(t.queue_name()) {
            return Err(format!(
                "remote_write[{i}]: another destination has the name {:?}; give each a distinct name",
                t.queue_name()
            ));
        }
    }
    Ok(())
}
